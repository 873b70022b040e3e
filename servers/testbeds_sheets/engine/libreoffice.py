"""LibreOffice as the reference recalculation engine (design note sheets.md §4).

One `LibreOfficeEngine` runs one headless soffice on a private profile and one small worker under the system
python3 (python3-uno cannot be imported inside a venv), which talks to soffice over UNO and to us in JSON lines.
Each workbook is loaded hidden and read-only, recalculated with `calculateAll()` (LibreOffice otherwise keeps every
cached `<v>` of an Excel file, however stale) and read back cell by cell.

    with LibreOfficeEngine() as engine:
        evaluation = engine.recalculate("model.xlsx")

Error values come back as Excel codes. LibreOffice's own numbers that have no Excel twin become problems: a circular
reference (Err:522) is `circular`; a formula using a function this LibreOffice lacks (7.4: XLOOKUP, XMATCH, LET),
and a `#NAME?` cell that only fails because it reads one, are `skipped`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .values import CellProblem, Evaluation, Value

ENGINE_NAME = "libreoffice"
WORKER_SCRIPT = Path(__file__).with_name("uno_worker.py")

# LibreOffice error numbers (formula/errorcodes.hxx) to Excel codes. 502 (invalid argument) covers what Excel splits
# into #NUM!, #VALUE! and #REF!; it follows LibreOffice's own xlsx export (#VALUE!). 523 is an iteration that did not
# converge (IRR, RATE), which Excel reports as #NUM! where LibreOffice's export writes #N/A.
ERROR_CODES: dict[int, str] = {
    502: "#VALUE!",
    503: "#NUM!",
    504: "#VALUE!",
    519: "#VALUE!",
    521: "#NULL!",
    523: "#NUM!",
    524: "#REF!",
    525: "#NAME?",
    532: "#DIV/0!",
    32767: "#N/A",
}
CIRCULAR_ERROR = 522
# Formula text LibreOffice could not parse: invalid character, unbalanced brackets, missing operator/operand.
PARSE_ERRORS = frozenset({501, 507, 508, 509, 510, 511, 520})

_SOFFICE_FLAGS = ("--headless", "--invisible", "--norestore", "--nologo", "--nodefault", "--nolockcheck")
# A python that imports uno must not see the venv: drop what would redirect its imports.
_FOREIGN_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class LibreOfficeError(RuntimeError):
    """LibreOffice could not start, could not open a workbook, or stopped answering."""


def find_soffice() -> str | None:
    """The soffice executable: `$TESTBEDS_SOFFICE`, else `soffice` on PATH, else None."""
    configured = os.environ.get("TESTBEDS_SOFFICE")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("soffice") or shutil.which("libreoffice")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _FOREIGN_PYTHON_VARS}


@functools.lru_cache(maxsize=4)
def _imports_uno(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", "import uno"], capture_output=True, timeout=30, env=_clean_env(),
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def find_uno_python() -> str | None:
    """A python interpreter that can `import uno`: `$TESTBEDS_UNO_PYTHON`, /usr/bin/python3, LibreOffice's own."""
    candidates = [os.environ.get("TESTBEDS_UNO_PYTHON", ""), "/usr/bin/python3"]
    soffice = find_soffice()
    if soffice:
        candidates.append(str(Path(os.path.realpath(soffice)).with_name("python")))
    candidates.append(shutil.which("python3") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and _imports_uno(candidate):
            return candidate
    return None


def soffice_available() -> bool:
    """True when soffice is installed and a system python can `import uno` (Debian: python3-uno)."""
    return find_soffice() is not None and find_uno_python() is not None


def _template_dir(soffice: str) -> Path:
    """Where a clean profile is kept for reuse: keyed by user and LibreOffice build, in the temp directory."""
    real = os.path.realpath(soffice)
    try:
        stamp = f"{real}:{os.stat(real).st_mtime_ns}"
    except OSError:
        stamp = real
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"testbeds-lo-profile-{os.getuid()}-{digest}"


def to_evaluation(response: dict[str, Any]) -> Evaluation:
    """Turn the worker's raw facts (values, LibreOffice error numbers, skipped cells) into an `Evaluation`."""
    values: dict[str, Value] = {key: value for key, value in response["cells"]}
    problems: dict[str, CellProblem] = {}
    for key, number in response["errors"]:
        if number in ERROR_CODES:
            values[key] = ERROR_CODES[number]
        elif number == CIRCULAR_ERROR:
            problems[key] = CellProblem(kind="circular", message="circular reference (LibreOffice Err:522)")
        elif number in PARSE_ERRORS:
            problems[key] = CellProblem(kind="parse_error", message=f"LibreOffice cannot parse it (Err:{number})")
        else:
            problems[key] = CellProblem(kind="engine_error", message=f"LibreOffice Err:{number}")
    for key, reason in response["skipped"]:
        values.pop(key, None)
        problems[key] = CellProblem(kind="skipped", message=reason[:500])
    return Evaluation(engine=ENGINE_NAME, values=values, formula_cells=list(response["formulas"]), problems=problems)


class LibreOfficeEngine:
    """One headless soffice (private profile) and its UNO worker; recalculates workbooks one at a time.

    Use it as a context manager, or call `start()` and `close()`. Calls are serialised by a lock, so threads may
    share an engine. If soffice dies (a crash on a hostile file), the next call starts a fresh one.
    """

    def __init__(self, *, soffice: str | None = None, python: str | None = None, connect_timeout: float = 30.0,
                 request_timeout: float = 300.0, reuse_profile: bool = True) -> None:
        self.soffice = soffice or find_soffice()
        # Looked up while soffice starts (the check runs a python) unless given.
        self.python = python
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        # A copied profile skips LibreOffice's first-start set-up (measured 0.2-0.4 s of a ~1.5 s start).
        self.reuse_profile = reuse_profile
        self.startup_seconds: float | None = None
        # Seconds spent in LibreOffice on the last workbook: load, calculate, store, read.
        self.last_timings: dict[str, float] = {}
        self._lock = threading.RLock()
        self._root: Path | None = None
        self._office: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=40)
        self._fresh_profile = False
        self._readers: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def __enter__(self) -> LibreOfficeEngine:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True while both soffice and the worker are alive."""
        return (self._office is not None and self._office.poll() is None
                and self._worker is not None and self._worker.poll() is None)

    @property
    def profile_dir(self) -> Path | None:
        """The private LibreOffice profile of the running soffice (deleted on close)."""
        return self._root / "profile" if self._root is not None else None

    @property
    def soffice_pid(self) -> int | None:
        """Process id of the running soffice launcher, the leader of its own process group."""
        return self._office.pid if self._office is not None else None

    def start(self) -> None:
        """Start soffice and the worker and wait until the worker is connected (`connect_timeout`)."""
        with self._lock:
            if self.running:
                return
            self._stop(graceful=False)
            if not self.soffice:
                raise LibreOfficeError("soffice not found: install LibreOffice (Debian: libreoffice-calc-nogui) "
                                       "or set TESTBEDS_SOFFICE")
            began = time.perf_counter()
            try:
                self._launch()
                self._await_ready()
            except BaseException:
                self._stop(graceful=False)
                raise
            self.startup_seconds = time.perf_counter() - began

    def _launch(self) -> None:
        assert self.soffice
        self._root = Path(tempfile.mkdtemp(prefix="testbeds-lo-"))
        profile = self._root / "profile"
        template = _template_dir(self.soffice)
        self._fresh_profile = True
        if self.reuse_profile and template.is_dir():
            with contextlib.suppress(OSError):
                shutil.copytree(template, profile)
                self._fresh_profile = False
        pipe = f"testbeds_lo_{os.getpid()}_{secrets.token_hex(6)}"
        command = [self.soffice, f"-env:UserInstallation={profile.as_uri()}", *_SOFFICE_FLAGS,
                   f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"]
        # Its own session, so the whole group (oosplash and soffice.bin) can be stopped together.
        self._office = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self._lines = queue.Queue()
        self._stderr = deque(maxlen=40)
        self.python = self.python or find_uno_python()
        if not self.python:
            raise LibreOfficeError("no python can `import uno`: install python3-uno or set TESTBEDS_UNO_PYTHON")
        self._worker = subprocess.Popen(
            [self.python, str(WORKER_SCRIPT), "--pipe", pipe, "--connect-timeout", str(self.connect_timeout),
             "--remove-on-orphan", str(self._root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            bufsize=1, env=_clean_env(), cwd=self._root)
        self._readers = [threading.Thread(target=self._pump, args=(self._worker.stdout, self._lines), daemon=True),
                         threading.Thread(target=self._drain, args=(self._worker.stderr, self._stderr), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
        if stream is not None:
            for line in stream:
                lines.put(line)
        lines.put(None)

    @staticmethod
    def _drain(stream: IO[str] | None, tail: deque[str]) -> None:
        if stream is not None:
            for line in stream:
                tail.append(line.rstrip())

    def _diagnostics(self) -> str:
        office = self._office.poll() if self._office else None
        parts = [f"soffice exited with {office}" if office is not None else ""]
        if self._stderr:
            parts.append(f"worker said: {self._stderr[-1].strip()}")
        return "; ".join(p for p in parts if p)[:1500]

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.connect_timeout + 10.0
        message = self._next_message(deadline)
        if not message.get("ready"):
            raise LibreOfficeError(f"LibreOffice did not start: {message.get('error', 'no reason given')}; "
                                   f"{self._diagnostics()}")

    def _next_message(self, deadline: float) -> dict[str, Any]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LibreOfficeError(f"LibreOffice did not answer in time; {self._diagnostics()}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                # soffice gone while the worker waits for it: fail now, not at the deadline.
                if self._office is not None and self._office.poll() is not None and self._worker is not None:
                    with contextlib.suppress(OSError):
                        self._worker.kill()
                continue
            if line is None:
                raise LibreOfficeError(f"the UNO worker stopped; {self._diagnostics()}")
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(line.rstrip())
                continue
            if isinstance(message, dict):
                return message

    def close(self) -> None:
        """Quit soffice (terminating it if it does not quit), stop the worker and delete the profile."""
        with self._lock:
            self._stop(graceful=True)

    def _stop(self, graceful: bool) -> None:
        worker, office, root = self._worker, self._office, self._root
        self._worker = self._office = self._root = None
        if worker is not None:
            said_goodbye = False
            if graceful and worker.poll() is None and office is not None and office.poll() is None:
                with contextlib.suppress(OSError, ValueError, LibreOfficeError):
                    assert worker.stdin is not None
                    worker.stdin.write('{"op": "quit"}\n')
                    worker.stdin.flush()
                    said_goodbye = bool(self._next_message(time.monotonic() + 10.0).get("ok"))
            if not said_goodbye:
                # Its soffice is dead or hung: nothing in the worker is worth waiting for.
                with contextlib.suppress(OSError):
                    worker.kill()
            with contextlib.suppress(OSError, ValueError):
                if worker.stdin is not None:
                    worker.stdin.close()
            try:
                worker.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            # The readers end at EOF once the worker is gone; only then are its pipes closed (no leaked files).
            for reader in self._readers:
                reader.join(timeout=2.0)
            self._readers = []
            for stream in (worker.stdout, worker.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        clean_exit = False
        if office is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                clean_exit = office.wait(timeout=10.0 if graceful else 0.1) == 0
            if not clean_exit:
                # The launcher may be gone while soffice.bin lives on in its group: stop the group either way.
                self._kill_group(office)
        if root is not None:
            if graceful and clean_exit and self.reuse_profile and self._fresh_profile and self.soffice:
                self._keep_template(root / "profile", _template_dir(self.soffice))
            shutil.rmtree(root, ignore_errors=True)

    @staticmethod
    def _kill_group(office: subprocess.Popen[bytes]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(office.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                office.wait(timeout=5.0)

    @staticmethod
    def _keep_template(profile: Path, template: Path) -> None:
        """Save a cleanly closed profile for later engines; concurrent savers race harmlessly on the rename."""
        if template.exists() or not profile.is_dir():
            return
        staging = template.with_name(f"{template.name}.{secrets.token_hex(4)}")
        try:
            shutil.copytree(profile, staging, ignore=shutil.ignore_patterns(".lock", "*.log"))
            staging.rename(template)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)

    # -- requests ------------------------------------------------------------------------------------------------

    def recalculate(self, path: str | Path) -> Evaluation:
        """Load `path`, recalculate every formula and return every non-empty cell's value (engine 'libreoffice')."""
        return to_evaluation(self._recalc(Path(path), None))

    def recalculate_to(self, path: str | Path, out_path: str | Path) -> Evaluation:
        """As `recalculate`, and also save the recalculated workbook as .xlsx at `out_path` (fresh cached values)."""
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        return to_evaluation(self._recalc(Path(path), out))

    def _recalc(self, path: Path, out: Path | None) -> dict[str, Any]:
        if not path.is_file():
            raise FileNotFoundError(f"no workbook at {path}")
        request = {"op": "recalc", "path": str(path.resolve()), "out": str(out.resolve()) if out else None}
        with self._lock:
            if not self.running:
                self.start()
            assert self._worker is not None and self._worker.stdin is not None
            try:
                self._worker.stdin.write(json.dumps(request) + "\n")
                self._worker.stdin.flush()
                response = self._next_message(time.monotonic() + self.request_timeout)
            except (OSError, LibreOfficeError) as exc:
                # A hung or crashed soffice is not reused: the next call starts a fresh one.
                self._stop(graceful=False)
                raise LibreOfficeError(f"LibreOffice failed on {path.name}: {exc}") from exc
            if not response.get("ok"):
                reason = response.get("error", "unknown error")
                if not self.running:
                    reason = f"{self._diagnostics() or 'soffice stopped'} ({reason})"
                    self._stop(graceful=False)
                raise LibreOfficeError(f"LibreOffice could not recalculate {path.name}: {reason}")
            self.last_timings = {k: float(v) for k, v in response.get("timings", {}).items()}
            return response


def recalculate_with_libreoffice(path: str | Path) -> Evaluation:
    """Start LibreOffice, recalculate one workbook, stop it. Prefer one `LibreOfficeEngine` for many workbooks."""
    with LibreOfficeEngine() as engine:
        return engine.recalculate(path)
