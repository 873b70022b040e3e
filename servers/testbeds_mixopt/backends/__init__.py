"""Simulator backends: our parametric simulator (default), the paper's network (read from a user path, never
bundled) and a user's own table of runs."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from testbeds_serving.errors import InvalidArgument

from .base import Backend

BACKENDS = ("parametric", "network", "table")


@cache
def make_backend(name: str, path: str | None = None) -> Backend:
    """The backend `name`; `network` needs the folder holding surrogate_mlp.npz and flops_dataset.csv, `table` a
    CSV of runs. Cached: backends are read-only, and the network's optimum search is worth keeping."""
    if name == "parametric":
        from .parametric import ParametricSimulator

        return ParametricSimulator()
    if name in ("network", "table"):
        if not path:
            raise InvalidArgument(f"the {name} backend needs backend_path: "
                                  + ("the folder holding surrogate_mlp.npz and flops_dataset.csv" if name == "network"
                                     else "a CSV file of runs"))
        if not Path(path).exists():
            raise InvalidArgument(f"backend_path {path!r} does not exist")
        if name == "network":
            from .network import NetworkSimulator

            return NetworkSimulator(path)
        from .table import TableBackend

        return TableBackend(path)
    raise InvalidArgument(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
