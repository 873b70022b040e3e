"""The distribution: hatchling's package list matches the folders, and the wheel holds them all."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ("servers", "agents", "evals")


def declared_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def test_every_package_folder_is_declared_and_every_declared_package_exists() -> None:
    on_disk = sorted(f"{c}/{p.name}" for c in CONTAINERS for p in (ROOT / c).iterdir()
                     if (p / "__init__.py").is_file())
    assert sorted(declared_packages()) == on_disk
    for container in CONTAINERS:
        assert not (ROOT / container / "__init__.py").exists(), f"{container}/ is a container, not a package"


def test_the_wheel_holds_every_package_under_its_import_name(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("testbeds-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in declared_packages():
        name = package.split("/", 1)[1]
        assert f"{name}/__init__.py" in names
    assert not any(n.startswith(("servers/", "agents/", "evals/", "tests/")) for n in names)
    # data the suites read at run time ship inside their packages
    assert "testbeds_synthtools/data/ontology.txt" in names
    assert "testbeds_sheets/engine/uno_worker.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "testbeds = testbeds_evals.cli:main" in text
    assert "testbeds-latentgym = testbeds_latentgym.__main__:main" in text
    assert "testbeds-sheets = testbeds_sheets.__main__:main" in text
    assert "testbeds-synthtools = testbeds_synthtools.__main__:main" in text
    assert "[gymnasium.envs]" in text
