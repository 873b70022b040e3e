"""Cost to target on hand-built trajectories (design note mixopt.md §7)."""

from __future__ import annotations

import pytest
from testbeds_mixopt.targets import Checkpoint, cost_to_target, relative_gap


def test_a_success_never_trained_at_the_target_pays_one_confirmation_run() -> None:
    trajectory = [Checkpoint(0.3, 1.10, False), Checkpoint(0.5, 1.005, False), Checkpoint(0.9, 1.0, True)]
    assert cost_to_target(trajectory, 1.0, "minimize", 0.01) == pytest.approx(1.5)


def test_a_success_already_trained_at_the_target_pays_nothing_more() -> None:
    trajectory = [Checkpoint(0.3, 1.10, False), Checkpoint(1.4, 1.005, True)]
    assert cost_to_target(trajectory, 1.0, "minimize", 0.01) == pytest.approx(1.4)


def test_a_method_that_never_gets_close_is_censored() -> None:
    assert cost_to_target([Checkpoint(5.0, 1.2, True)], 1.0, "minimize", 0.01) is None
    assert cost_to_target([], 1.0, "minimize", 0.01) is None


def test_for_accuracies_higher_is_better() -> None:
    assert relative_gap(0.396, 0.4, "maximize") == pytest.approx(0.01)
    assert cost_to_target([Checkpoint(2.0, 0.397, True)], 0.4, "maximize", 0.01) == 2.0
    assert cost_to_target([Checkpoint(2.0, 0.39, True)], 0.4, "maximize", 0.01) is None
