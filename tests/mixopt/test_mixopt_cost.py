"""Cost model of simulated runs: target-run units, linear in steps, resumes pay the increment."""

from __future__ import annotations

import csv

import pytest
from conftest import shared_data
from testbeds_mixopt.backends.parametric import ParametricSimulator
from testbeds_mixopt.cost import resume_cost, run_cost
from testbeds_mixopt.domains import SIZES_M
from testbeds_serving.errors import InvalidArgument

FLOPS_TABLE = shared_data("mixopt", "flops_dataset.csv")


def test_a_full_target_run_costs_exactly_one_unit() -> None:
    assert run_cost(1000, 19_500) == 1.0
    assert ParametricSimulator().cost(1000, 19_500) == 1.0


def test_full_runs_follow_nominal_six_n_d_with_the_papers_token_layout() -> None:
    # 2^19 tokens per step below 1B, 2^20 at 1B: a 20M run sees half the tokens of a 1B run per step.
    expected = {20: 0.010, 60: 0.030, 150: 0.075, 300: 0.150, 500: 0.250, 700: 0.350, 1000: 1.0}
    for size, cost in expected.items():
        assert run_cost(size, 19_500) == pytest.approx(cost, rel=1e-12)


def test_cost_is_linear_in_steps() -> None:
    for size in SIZES_M:
        unit = run_cost(size, 100)
        for steps in (100, 1_000, 6_000, 12_300, 19_500):
            assert run_cost(size, steps) == pytest.approx(unit * steps / 100, rel=1e-12)
        assert run_cost(size, 0) == 0.0


def test_a_resumed_run_pays_only_the_new_steps() -> None:
    for size in (20, 300, 1000):
        assert resume_cost(size, 6_000, 19_500) == pytest.approx(run_cost(size, 13_500), rel=1e-12)
        assert run_cost(size, 6_000) + resume_cost(size, 6_000, 19_500) == pytest.approx(run_cost(size, 19_500))
        assert resume_cost(size, 8_000, 8_000) == 0.0


def test_a_backward_resume_or_a_nonsense_size_is_rejected_with_a_reason() -> None:
    with pytest.raises(InvalidArgument, match="train forward"):
        resume_cost(150, 12_000, 6_000)
    with pytest.raises(InvalidArgument, match="positive number"):
        run_cost(0, 1_000)
    with pytest.raises(InvalidArgument, match="non-negative"):
        run_cost(150, -100)


def test_the_backend_cost_rejects_sizes_the_simulator_does_not_cover() -> None:
    with pytest.raises(InvalidArgument, match="between 20 and 1000"):
        ParametricSimulator().cost(3000, 19_500)


@pytest.mark.skipif(not FLOPS_TABLE.exists(), reason="the paper's FLOP table is not in ../shared")
def test_nominal_costs_are_within_thirty_percent_of_the_papers_flop_table() -> None:
    labels = {20: "20M", 60: "60M", 150: "150M", 300: "300M", 500: "500M", 700: "700M", 1000: "1B"}
    flops: dict[tuple[str, int], float] = {}
    with FLOPS_TABLE.open() as f:
        for row in csv.DictReader(f):
            flops[(row["model_size"], int(float(row["step"])))] = float(row["flops"])
    full = flops[("1B", 19_500)]
    for size, label in labels.items():
        measured = flops[(label, 19_500)] / full
        assert run_cost(size, 19_500) == pytest.approx(measured, rel=0.30)
        # The table is linear in steps too, so the ratio holds at every step.
        assert flops[(label, 6_000)] / flops[(label, 19_500)] == pytest.approx(6_000 / 19_500, rel=1e-6)
