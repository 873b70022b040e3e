"""A user's table of runs as a backend: nearest-logged-checkpoint lookup."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from testbeds_mixopt.backends.table import TableBackend
from testbeds_mixopt.domains import TRAIN_DOMAINS
from testbeds_serving.errors import InvalidArgument, NotFound

HEADER = [*TRAIN_DOMAINS, "size_m", "steps", "loss_commoncrawl", "acc_hellaswag", "notes"]
BOOK = [0.0, 0.0, 0.0, 0.0, 1.0]
EVEN = [0.2, 0.2, 0.2, 0.2, 0.2]
CODE = [0.0, 0.5, 0.5, 0.0, 0.0]
ROWS = [
    # mixture, size_m, steps, loss_commoncrawl, acc_hellaswag
    (BOOK, 20, 1000, 4.0, 0.26),
    (BOOK, 20, 4000, 3.6, 0.27),
    (EVEN, 20, 1000, 4.2, 0.25),
    (EVEN, 20, 4000, 3.5, ""),  # hellaswag not logged here
    (CODE, 20, 4000, 3.9, 0.24),
    (BOOK, 150, 4000, 3.0, 0.30),
    (EVEN, 150, 4000, 3.1, 0.31),
    (EVEN, 150, 4000, 3.3, 0.33),  # a seed replicate: averaged
]


def write_table(path: Path, rows: list[tuple] = ROWS, header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for mixture, size, steps, cc, hs in rows:
            writer.writerow([*mixture, size, steps, cc, hs, "run"])
    return path


@pytest.fixture
def table(tmp_path: Path) -> TableBackend:
    return TableBackend(write_table(tmp_path / "runs.csv"))


def test_the_table_reports_its_sizes_and_metrics(table: TableBackend) -> None:
    assert table.name == "table"
    assert table.sizes_m == (20, 150)
    assert table.metrics == ("loss_commoncrawl", "acc_hellaswag")


def test_observe_answers_with_the_nearest_mixture_and_reports_the_distance(table: TableBackend) -> None:
    near_book = [0.05, 0.0, 0.0, 0.0, 0.95]
    assert table.observe(np.array(near_book), 20, 4000, seed=1, run_id=2) == {
        "loss_commoncrawl": 3.6, "acc_hellaswag": 0.27}
    match = table.lookup(near_book, 20, 4000)
    assert match.mixture == BOOK and match.steps == 4000 and match.rows == [2]
    assert match.distance == pytest.approx(np.hypot(0.05, 0.05))
    json.dumps(match.model_dump())


def test_the_step_is_the_largest_logged_one_not_after_the_request(table: TableBackend) -> None:
    assert table.lookup(BOOK, 20, 3999).steps == 1000
    assert table.lookup(BOOK, 20, 4000).steps == 4000
    # Before the first logged checkpoint, the earliest one answers.
    assert table.lookup(BOOK, 20, 500).steps == 1000
    assert table.observe(np.array(BOOK), 20, 500, seed=0, run_id=0)["loss_commoncrawl"] == 4.0


def test_steps_beyond_what_the_table_logged_are_rejected(table: TableBackend) -> None:
    with pytest.raises(InvalidArgument, match="up to step 4000"):
        table.observe(np.array(BOOK), 20, 6000, seed=0, run_id=0)


def test_an_unlogged_size_is_rejected_listing_the_available_ones(table: TableBackend) -> None:
    with pytest.raises(InvalidArgument, match="20M, 150M"):
        table.observe(np.array(BOOK), 60, 1000, seed=0, run_id=0)
    with pytest.raises(InvalidArgument, match="20M, 150M"):
        table.true_values(np.array([BOOK]), 1000, 1000, "loss_commoncrawl")


def test_true_values_use_the_same_lookup_vectorised(table: TableBackend) -> None:
    pool = np.random.default_rng(0).dirichlet(np.ones(5), 500)
    values = table.true_values(pool, 20, 4000, "loss_commoncrawl")
    assert values.shape == (500,)
    for i in (0, 123, 499):
        assert values[i] == table.lookup(pool[i], 20, 4000, "loss_commoncrawl").metrics["loss_commoncrawl"]
    assert set(values.tolist()) <= {3.6, 3.5, 3.9}


def test_a_metric_missing_at_a_checkpoint_falls_back_to_one_that_logged_it(table: TableBackend) -> None:
    # The even run has no hellaswag at 4000: its 1000-step value answers for that metric.
    assert table.true_values(np.array([EVEN]), 20, 4000, "acc_hellaswag")[0] == 0.25
    assert table.observe(np.array(EVEN), 20, 4000, seed=0, run_id=0) == {"loss_commoncrawl": 3.5}


def test_seed_replicates_are_averaged(table: TableBackend) -> None:
    match = table.lookup(EVEN, 150, 4000)
    assert match.metrics["loss_commoncrawl"] == pytest.approx(3.2)
    assert match.rows == [7, 8]


def test_the_optimum_is_the_best_logged_run_in_the_metric_direction(table: TableBackend) -> None:
    mix, value = table.optimum("loss_commoncrawl", 20, 4000)
    assert mix.tolist() == EVEN and value == 3.5 and isinstance(value, float)
    mix, value = table.optimum("acc_hellaswag", 20, 4000)
    assert mix.tolist() == BOOK and value == 0.27
    # The code run logged only step 4000, which answers (as the nearest) for earlier requests too.
    mix, value = table.optimum("loss_commoncrawl", 20, 1000)
    assert mix.tolist() == CODE and value == 3.9
    pool = np.random.default_rng(1).dirichlet(np.ones(5), 200)
    assert table.true_values(pool, 20, 4000, "loss_commoncrawl").min() >= table.optimum("loss_commoncrawl", 20, 4000)[1]


def test_cost_follows_the_nominal_cost_model(table: TableBackend) -> None:
    if importlib.util.find_spec("testbeds_mixopt.cost") is not None:
        from testbeds_mixopt.cost import run_cost

        assert table.cost(150, 4000) == run_cost(150, 4000)
    assert table.cost(1000, 19_500) == pytest.approx(1.0)
    assert table.cost(20, 8000) == pytest.approx(2 * table.cost(20, 4000))


def test_unknown_metrics_are_rejected_naming_what_is_logged(table: TableBackend) -> None:
    with pytest.raises(InvalidArgument, match="loss_commoncrawl, acc_hellaswag"):
        table.true_values(np.array([BOOK]), 20, 1000, "loss_book")


def test_observe_rejects_a_mixture_that_does_not_sum_to_one(table: TableBackend) -> None:
    with pytest.raises(InvalidArgument, match="sum to 1"):
        table.observe(np.array([0.5, 0.5, 0.5, 0.0, 0.0]), 20, 1000, seed=0, run_id=0)


def test_rounded_proportions_are_accepted_and_renormalised(tmp_path: Path) -> None:
    third = [0.333, 0.333, 0.333, 0.0, 0.0]
    table = TableBackend(write_table(tmp_path / "r.csv", [(third, 60, 100, 5.0, 0.25)]))
    assert table.lookup([1 / 3, 1 / 3, 1 / 3, 0, 0], 60, 100).distance == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("header", "rows", "message"), [
    (["wikipedia", "stackexchange", "github", "arxiv", "size_m", "steps", "loss_c4"], [], "lacks the columns book"),
    ([*TRAIN_DOMAINS, "size_m", "steps", "loss_comoncrawl"], [], "unknown metric columns loss_comoncrawl"),
    ([*TRAIN_DOMAINS, "size_m", "steps", "notes"], [], "no metric column"),
    (HEADER, [[0.5, 0.5, 0.5, 0, 0, 20, 100, 4.0, 0.3, ""]], "sum to 1"),
    (HEADER, [[*BOOK, 20, 100, "inf", 0.3, ""]], "finite"),
    (HEADER, [[*BOOK, 20.5, 100, 4.0, 0.3, ""]], "positive integer"),
    (HEADER, [[*BOOK, 20, "x", 4.0, 0.3, ""]], "not a number"),
])
def test_malformed_tables_get_clear_errors(tmp_path: Path, header: list[str], rows: list[list[object]],
                                           message: str) -> None:
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows or [[*BOOK, 20, 100, 4.0][: len(header)]])
    with pytest.raises(InvalidArgument, match=message):
        TableBackend(path)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no table of runs"):
        TableBackend(tmp_path / "absent.csv")


def test_parquet_without_pyarrow_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.parquet"
    path.write_bytes(b"PAR1")
    if importlib.util.find_spec("pyarrow") is not None:
        pytest.skip("pyarrow is installed; the error path cannot be exercised")
    with pytest.raises(InvalidArgument, match="needs pyarrow"):
        TableBackend(path)


def test_records_in_memory_work_like_a_file() -> None:
    records = [dict(zip(TRAIN_DOMAINS, BOOK), size_m=20, steps=100, loss_book=3.0)]
    table = TableBackend(records)
    assert table.observe(np.array(EVEN), 20, 100, seed=0, run_id=0) == {"loss_book": 3.0}
