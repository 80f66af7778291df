"""kwscore.experiments (no streamlit): an experiment's grid, its owner, and the class's limits on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kwscore import classroom, experiments, jobs
from kwscore.errors import KwsError
from kwscore.recipes import default_config


@pytest.fixture
def runs_dir(kws_env, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    monkeypatch.setattr(jobs, "ensure_worker", lambda *a, **k: 1)  # queued runs stay queued here
    root = Path(os.environ["KWS_RUNS_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def base(owner: str = "", epochs: int = 2):
    return default_config("m5", data=str(Path(os.environ["KWS_DATA_DIR"]) / "synthetic"), epochs=epochs, owner=owner)


def test_an_experiment_records_its_owner_and_each_run_carries_it(runs_dir):
    classroom.save_limits(classroom.ClassLimits(max_queued_per_student=8), runs_dir)
    record = experiments.launch_experiment(base("Ana"), [0.25, 1.0], "standard", question="q")
    assert record["owner"] == "Ana" and len(record["runs"]) == 4
    for run in record["runs"]:
        assert json.loads((runs_dir / run["run_id"] / "config.json").read_text())["owner"] == "Ana"
    (listed,) = experiments.list_experiments()
    assert listed["id"] == record["id"] and listed["owner"] == "Ana"
    est = experiments.experiment_estimate(base("Ana"), [0.25, 1.0])
    assert est["runs"] == 4 and est["ahead"] == 4 and est["train_clips"] > 0 and not est["measured"]
    with pytest.raises(KwsError, match="already queued"):  # the same grid twice
        experiments.launch_experiment(base("Ana"), [0.25, 1.0], "standard")


def test_an_experiment_counts_once_against_the_queue_limit(runs_dir):
    # the default limit (2 at a time per student): a whole 8-run experiment is one of them
    first = experiments.launch_experiment(base("Ben"), [0.1, 0.25, 0.5, 1.0], "standard")
    assert len(first["runs"]) == 8
    assert {json.loads((runs_dir / r["run_id"] / "config.json").read_text())["experiment"] for r in first["runs"]} == {
        first["id"]
    }
    jobs.launch(base("Ben"), runs_dir, start_worker=False)  # one more run: two things waiting
    with pytest.raises(KwsError, match=r"Ben already has 2 run\(s\) or experiment\(s\) queued"):
        experiments.launch_experiment(base("Ben", epochs=3), [0.5], "standard")
    with pytest.raises(KwsError, match=r"Ben already has 2"):
        jobs.launch(base("Ben", epochs=3), runs_dir, start_worker=False)
    assert len(jobs.list_runs()) == 9  # the refusals queued nothing
    jobs.cancel(first["runs"][0]["run_id"], runs_dir, user="Ben")  # still 7 of the experiment waiting: no room
    with pytest.raises(KwsError, match=r"Ben already has 2"):
        jobs.launch(base("Ben", epochs=3), runs_dir, start_worker=False)
    for run in first["runs"][1:]:
        jobs.cancel(run["run_id"], runs_dir, user="Ben")
    experiments.launch_experiment(base("Ben", epochs=3), [0.5], "standard")  # the experiment is over: room again


def test_the_class_limits_refuse_an_experiment_before_any_run_is_queued(runs_dir):
    classroom.save_limits(classroom.ClassLimits(max_queued_per_student=8, max_epochs=1), runs_dir)
    with pytest.raises(KwsError, match="At most 1 epochs"):
        experiments.launch_experiment(base("Ben", epochs=2), [0.5], "standard")
    assert jobs.list_runs() == [] and experiments.list_experiments() == []
    classroom.save_limits(classroom.ClassLimits(max_queued_per_student=8, models=("cnn",)), runs_dir)
    with pytest.raises(KwsError, match="allows these models in this class: cnn"):
        experiments.launch_experiment(base("Ben", epochs=2), [0.5], "standard")
    classroom.save_limits(classroom.ClassLimits(max_queued_per_student=8, max_epochs=1), runs_dir)
    # the teacher (and the operator, no owner) are never limited
    assert len(experiments.launch_experiment(base("Ben", epochs=2), [0.5], "standard", teacher=True)["runs"]) == 2
    assert len(experiments.launch_experiment(base("", epochs=3), [0.5], "standard")["runs"]) == 2


def test_bad_fractions_or_settings_queue_nothing(runs_dir):
    assert experiments.check_fractions([1, 0.25, 0.25, 0.5]) == [0.25, 0.5, 1.0]  # sorted, each once
    for fractions, message in (([], "at least one"), ([0.0], "above 0"), ([1.5], "at most 1"),
                               ([float("nan")], "above 0"), ([True], "above 0"), (["0.5"], "above 0"),
                               ([n / 100 for n in range(1, 12)], "At most 10 training fractions")):  # fmt: skip
        with pytest.raises(KwsError, match=message):
            experiments.launch_experiment(base(), fractions, "standard")
    with pytest.raises(KwsError, match="need a recipe"):
        experiments.launch_experiment(base(), [0.5], "none")
    with pytest.raises(KwsError, match="Unknown augmentation preset|augment"):
        experiments.launch_experiment(base(), [0.5], "sideways")
    assert jobs.list_runs() == [] and experiments.list_experiments() == []


def test_results_follow_the_runs_and_an_experiment_is_found_by_its_id(runs_dir):
    record = experiments.launch_experiment(base(), [1.0, 0.25], "standard")
    assert [(r["fraction"], r["augment"]) for r in record["runs"]] == [(0.25, "off"), (0.25, "on"), (1.0, "off"),
                                                                       (1.0, "on")]  # fmt: skip
    first, second = record["runs"][0]["run_id"], record["runs"][1]["run_id"]
    status = runs_dir / first / "status.json"
    json_status = json.loads(status.read_text())
    status.write_text(json.dumps({**json_status, "state": "succeeded", "started_at": json_status["created"] + 1,
                                  "ended_at": json_status["created"] + 9, "test_accuracy": 0.75}))  # fmt: skip
    jobs.delete(second, runs_dir)
    rows = experiments.experiment_results(record)
    assert [(r["state"], r["accuracy"]) for r in rows] == [("succeeded", 0.75), ("deleted", None), ("queued", None),
                                                           ("queued", None)]  # fmt: skip
    assert rows[0]["info"].run_id == first and rows[1]["info"] is None
    assert experiments.find_experiment(record["id"])["id"] == record["id"]
    assert experiments.find_experiment(record["id"][-4:])["id"] == record["id"]
    assert experiments.find_experiment()["id"] == record["id"]  # the newest
    with pytest.raises(KwsError, match="No experiment 'nope'"):
        experiments.find_experiment("nope")
