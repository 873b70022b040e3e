"""Planner tables per task-start prior, shared by the environments' planners.

The metrics ask for Q at every step of every task and the policies plan at every step, while a sequence
has only a handful of distinct task-start priors p0: each env keeps its tables in a small LRU keyed by
p0's bytes (plus, where the table also depends on the task's opening, that opening). One env instance
serves every sequence of a process, possibly from worker threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class PlanCache(Generic[T]):
    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._tables: OrderedDict[tuple[Hashable, ...], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, p0: np.ndarray, build: Callable[[np.ndarray], T], *extra: Hashable) -> T:
        """The table for (p0, *extra), built by `build(p0)` on a miss (outside the lock: two threads may
        build the same table once each; the results are identical)."""
        p0 = np.ascontiguousarray(p0, dtype=np.float64)
        key = (p0.tobytes(), *extra)
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
                return table
        table = build(p0)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table

    def __len__(self) -> int:
        return len(self._tables)
