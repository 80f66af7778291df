"""The Runs page and the queue: the experiment launcher says what it will queue (and never queues
the same grid twice), and the dashboard brings back a worker for queued runs (AppTest, real pages)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kwscore import jobs
from kwscore.recipes import default_config
from tests.workers import kill_started_workers

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def runs_dir(kws_env, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    root = Path(os.environ["KWS_RUNS_DIR"])
    yield root
    jobs.stop_worker(root, stop_runs=True)
    kill_started_workers()


def open_runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("../pages/runs.py").run()
    assert not at.exception, at.exception
    return at


def queued(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_the_experiment_is_planned_first_and_never_queued_twice(runs_dir, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda *a, **k: started.append(1) or 1)  # no training here
    at = open_runs_page()
    at.selectbox(key="exp_model").set_value("m5")
    at.number_input(key="exp_epochs").set_value(2)
    at.button(key="exp_submit").click().run()  # (what Enter in the Epochs field does)
    assert not at.exception, at.exception
    assert queued(runs_dir) == [], "submitting the form only plans the experiment"
    plan = " ".join(m.value for m in at.markdown)
    assert "This queues 8 runs" in plan and "2 epochs each" in plan and "Roughly" in plan, plan
    assert "10 %, 25 %, 50 %, 100 %" in plan and "training clips" in plan

    at.button(key="exp_submit").click().run()  # submitted again: still only a plan
    assert queued(runs_dir) == []
    at.button(key="exp_confirm").click().run()
    assert not at.exception, at.exception
    first = queued(runs_dir)
    assert len(first) == 8 and started

    at.button(key="exp_submit").click().run()  # the same grid again, while it waits
    assert any("already queued" in w.value for w in at.warning), [w.value for w in at.warning]
    assert [b for b in at.button if b.key == "exp_confirm"] == []
    assert queued(runs_dir) == first

    at.number_input(key="exp_epochs").set_value(3)  # a different grid is fine
    at.button(key="exp_submit").click().run()
    assert [b for b in at.button if b.key == "exp_confirm"]
    for run_id in first:  # once the first grid is finished (here: cancelled), it may be queued again
        jobs.cancel(run_id, runs_dir)
    at.number_input(key="exp_epochs").set_value(2)
    at.button(key="exp_submit").click().run()
    at.button(key="exp_confirm").click().run()
    assert not at.exception, at.exception
    assert len(queued(runs_dir)) == 16


def test_the_dashboard_restarts_a_worker_for_queued_runs(runs_dir):
    config = default_config("m5", data=str(Path(os.environ["KWS_DATA_DIR"]) / "synthetic"), epochs=1, batch_size=32,
                            augment="none", threads=1, model_kwargs={"n_channel": 4, "stride": 16})  # fmt: skip
    run_id = jobs.launch(config, runs_dir, start_worker=False)  # queued while no worker lives
    assert jobs.worker_pid(runs_dir) is None
    at = open_runs_page()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 30
    while not jobs.worker_pid(runs_dir):
        assert time.monotonic() < deadline, "the page did not start a worker"
        time.sleep(0.1)
    while jobs.refresh_status(run_id, runs_dir)["state"] == "queued":
        assert time.monotonic() < deadline + 60, "the worker did not take the run"
        time.sleep(0.2)
