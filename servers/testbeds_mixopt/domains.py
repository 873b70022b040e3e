"""The problem's fixed vocabulary: training domains, model sizes, steps, metrics and the cost unit.

Domain order everywhere: (Wikipedia, StackExchange, GitHub, ArXiv, Book), as in the paper's network.
"""

from __future__ import annotations

from typing import Literal

TRAIN_DOMAINS: tuple[str, ...] = ("wikipedia", "stackexchange", "github", "arxiv", "book")
N_DOMAINS = len(TRAIN_DOMAINS)

# The seven sizes the paper trained (millions of parameters); the network is valid only there.
SIZES_M: tuple[int, ...] = (20, 60, 150, 300, 500, 700, 1000)
MIN_STEPS, MAX_STEPS, STEP_GRID = 100, 19_500, 100
TARGET_SIZE_M, TARGET_STEPS = 1000, 19_500

# Tokens per step in the paper's layout: 2^19 below 1B, 2^20 at 1B.
def tokens_per_step(size_m: float) -> int:
    return 2**20 if size_m >= 1000 else 2**19


LOSS_METRICS: tuple[str, ...] = ("loss_commoncrawl", "loss_c4", "loss_wikipedia", "loss_stackexchange",
                                 "loss_github", "loss_arxiv", "loss_book")
ACCURACY_METRICS: tuple[str, ...] = ("acc_hellaswag", "acc_piqa", "acc_arc_easy")
METRICS: tuple[str, ...] = LOSS_METRICS + ACCURACY_METRICS
Direction = Literal["minimize", "maximize"]


def default_direction(metric: str) -> Direction:
    return "minimize" if metric.startswith("loss_") else "maximize"


# Checkpoints a run to S reports for free: log-spaced, not all of them, because they share the run's
# noise and would make the GP overconfident (design note mixopt.md §2, "Trace").
FREE_CHECKPOINTS: tuple[int, ...] = (1_000, 2_000, 4_000, 8_000, 12_000)


def checkpoints_of(steps: int, already: int = 0) -> list[int]:
    """The checkpoints a run reports when it trains from `already` to `steps` (the end included)."""
    return [s for s in FREE_CHECKPOINTS if already < s < steps] + [steps]
