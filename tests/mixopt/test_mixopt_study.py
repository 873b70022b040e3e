"""A study's ledger: runs, resumes, user results, budget, free checkpoints, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from testbeds_mixopt.backends import make_backend
from testbeds_mixopt.models import RunRequest, StudySpec
from testbeds_mixopt.persistence import StudyStore
from testbeds_mixopt.study import Study
from testbeds_serving.errors import InvalidArgument, NotFound

UNIFORM = [0.2] * 5


def new_study(budget: float = 2.0) -> Study:
    return Study(spec=StudySpec(metric="loss_stackexchange", budget=budget, seed=4), backend=make_backend("parametric"))


def test_a_run_reports_its_free_checkpoints_and_charges_its_cost() -> None:
    study = new_study()
    record = study.execute(RunRequest(mixture=UNIFORM, size_m=150, steps=6_000))
    assert [p.steps for p in study.points] == [1_000, 2_000, 4_000, 6_000]
    assert [p.checkpoint for p in study.points] == [True, True, True, False]
    assert record.cost == pytest.approx(study.backend.cost(150, 6_000))
    assert study.spent == pytest.approx(record.cost)


def test_a_resume_pays_only_the_new_steps_and_keeps_earlier_checkpoints_unchanged() -> None:
    study = new_study()
    study.execute(RunRequest(mixture=UNIFORM, size_m=150, steps=6_000))
    before = [p.value for p in study.points]
    study.execute(RunRequest(mixture=UNIFORM, size_m=150, steps=12_000, resume_run=0))
    assert study.ledger[-1].cost == pytest.approx(study.backend.cost(150, 12_000) - study.backend.cost(150, 6_000))
    assert study.spent == pytest.approx(study.backend.cost(150, 12_000))
    assert [p.steps for p in study.points] == [1_000, 2_000, 4_000, 6_000, 8_000, 12_000]
    assert [p.value for p in study.points][:4] == before
    fresh = new_study()
    fresh.execute(RunRequest(mixture=UNIFORM, size_m=150, steps=12_000))
    assert fresh.points[-1].value == study.points[-1].value  # the value at a step does not depend on resuming


def test_a_run_over_budget_is_refused_and_changes_nothing() -> None:
    study = new_study(budget=0.5)
    with pytest.raises(InvalidArgument, match="remain"):
        study.execute(RunRequest(mixture=UNIFORM, size_m=1000, steps=19_500))
    assert study.runs == [] and study.points == [] and study.spent == 0


@pytest.mark.parametrize(("request_args", "message"), [
    ({"size_m": 150, "steps": 4_000, "resume_run": 0}, "already trained"),
    ({"size_m": 60, "steps": 12_000, "resume_run": 0}, "keeps its mixture and size"),
    ({"size_m": 150, "steps": 12_000, "resume_run": 9}, "does not exist"),
])
def test_bad_resumes_are_refused_with_what_to_do(request_args: dict, message: str) -> None:
    study = new_study()
    study.execute(RunRequest(mixture=UNIFORM, size_m=150, steps=6_000))
    with pytest.raises((InvalidArgument, NotFound), match=message):
        study.execute(RunRequest(mixture=UNIFORM, **request_args))
    assert len(study.ledger) == 1


def test_user_results_are_validated_and_charged() -> None:
    study = new_study()
    with pytest.raises(InvalidArgument, match="finite"):
        study.add_user_run(UNIFORM, 150, 6_000, {"loss_stackexchange": float("nan")})
    with pytest.raises(InvalidArgument, match="objective"):
        study.add_user_run(UNIFORM, 150, 6_000, {"loss_commoncrawl": 3.0})
    with pytest.raises(InvalidArgument, match="sum to 1"):
        study.add_user_run([0.3] * 5, 150, 6_000, {"loss_stackexchange": 1.0})
    record = study.add_user_run(UNIFORM, 150, 6_000, {"loss_stackexchange": 1.1}, cost=0.25)
    assert record.source == "user" and study.spent == 0.25 and study.points[-1].value == 1.1


def test_a_study_survives_a_round_trip_through_its_store(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "studies.db")
    study = new_study()
    study.execute(RunRequest(mixture=UNIFORM, size_m=60, steps=2_000))
    study.add_user_run(UNIFORM, 150, 6_000, {"loss_stackexchange": 1.1})
    store.save("h1", study, "parametric", None)
    loaded, backend, path = store.load("h1")
    assert (backend, path) == ("parametric", None)
    assert loaded.runs == study.runs and loaded.points == study.points and loaded.ledger == study.ledger
    assert loaded.spec == study.spec and loaded.best_so_far() == study.best_so_far()
    assert store.load("nope") is None


def test_several_servers_can_open_a_fresh_study_store_at_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "fresh.db"
    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: StudyStore(path), range(6)))
    study = new_study()
    stores[0].save("h", study, "parametric", None)
    assert stores[5].load("h") is not None


def test_unknown_or_boolean_metrics_in_a_user_result_are_refused() -> None:
    study = new_study()
    with pytest.raises(InvalidArgument, match="unknown metric"):
        study.add_user_run(UNIFORM, 150, 6_000, {"loss_stackexchange": 1.0, "bogus": 2.0})
    with pytest.raises(InvalidArgument, match="finite numbers"):
        study.add_user_run(UNIFORM, 150, 6_000, {"loss_stackexchange": True})
    assert study.runs == []
