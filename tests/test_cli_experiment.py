"""`kwscore experiment launch / show / list`, and the owner the ready model shows in `kwscore runs`,
run as real processes.

Nothing trains here: the test holds the runs folder's worker lock, as a worker busy elsewhere would,
so the experiment's runs stay queued; a finished run is then written the way the runner leaves
its status (state and test accuracy), and `show` must read it back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kwscore import classroom, experiments, jobs
from kwscore.runfiles import RunFiles, file_lock, read_json, write_json


def kwscore(*args, env: dict | None = None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "kwscore.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "KWS_RUN_THREADS": "1", **(env or {})},
    )  # fmt: skip


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs folder whose worker is "busy": this process holds its lock and names itself in
    worker.json, so `kwscore` starts no worker and the queued runs stay queued."""
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    lock = file_lock(jobs.worker_path(root, jobs.WORKER_LOCK))
    lock.acquire(timeout=5)
    write_json(jobs.worker_path(root, jobs.WORKER_INFO), {"pid": os.getpid()})
    try:
        yield root
    finally:
        lock.release()


def run_ids(stdout: str) -> list[tuple[str, str, str]]:
    """The (fraction, augmentation, run id) rows `experiment launch` prints."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] == "%" and parts[2] in ("off", "on"):
            rows.append((parts[0], parts[2], parts[3]))
    return rows


def finish(root: Path, run_id: str, accuracy: float) -> None:
    """Mark a queued run succeeded with this test accuracy, as the runner's last status write does."""
    files = RunFiles(root / run_id)
    status = read_json(files.status_path)
    t = status["created"]
    status.update(state="succeeded", started_at=t + 1, ended_at=t + 30, heartbeat=t + 30, epoch=1,
                  best_val_accuracy=accuracy, test_accuracy=accuracy)  # fmt: skip
    write_json(files.status_path, status)


def test_launch_queues_the_grid_then_show_reads_the_results(small_synth, runs):
    dry = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 1, "--fractions", "0.5,100%",
                  "--augment", "light", "--runs-dir", runs, "--dry-run")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("4 runs of m5: training fractions 50 %, 100 % of ") and "with light" in dry.stdout
    assert "nothing queued" in dry.stdout and experiments.list_experiments(runs) == [] and jobs.list_runs(runs) == []

    launched = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 1, "--fractions", "1,0.5",
                       "--augment", "light", "--owner", "Ana", "--runs-dir", runs)  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    rows = run_ids(launched.stdout)
    assert [(f, a) for f, a, _ in rows] == [("50", "off"), ("50", "on"), ("100", "off"), ("100", "on")]
    (record,) = experiments.list_experiments(runs)  # the one the dashboard lists, written by the same function
    assert f"queued experiment {record['id']} for Ana" in launched.stdout
    assert [r["run_id"] for r in record["runs"]] == [r for _, _, r in rows]
    assert record["owner"] == "Ana" and record["question"] == experiments.QUESTION and record["fractions"] == [0.5, 1.0]
    for (_, setting, run_id), fraction in zip(rows, (0.5, 0.5, 1.0, 1.0), strict=True):
        config = json.loads((runs / run_id / "config.json").read_text())
        assert config["owner"] == "Ana" and config["experiment"] == record["id"] and config["fraction"] == fraction
        assert config["epochs"] == 1 and config["seed"] == 0 and config["data"] == str(small_synth)
        assert config["augment"] == ("none" if setting == "off" else "light")
    assert {i.state for i in jobs.list_runs(runs)} == {"queued"}, "no worker of this test's own took them"

    again = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 1, "--fractions", "0.5,1",
                    "--augment", "light", "--owner", "Ana", "--runs-dir", runs)  # fmt: skip
    assert again.returncode == 2 and f"The same experiment ({record['id']}) is already queued" in again.stderr
    assert len(jobs.list_runs(runs)) == 4

    waiting = kwscore("experiment", "show", "--runs-dir", runs)  # the newest by default
    assert waiting.returncode == 0, waiting.stderr
    assert waiting.stdout.startswith(f"experiment {record['id']}: m5, 1 epochs, seed 0, augmentation light when on; "
                                     "owner Ana")  # fmt: skip
    assert "queued #1" in waiting.stdout and "0 of 4 runs finished" in waiting.stdout

    finish(runs, rows[0][2], 0.5)  # 50 % off
    finish(runs, rows[1][2], 0.625)  # 50 % on
    finish(runs, rows[2][2], 0.75)  # 100 % off
    shown = kwscore("experiment", "show", record["id"][-4:], "--runs-dir", runs)  # the end of the id is enough
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("train data"))
    assert lines[header].split() == ["train", "data", "augmentation", "off", "augmentation", "on", "difference"]
    assert lines[header + 1].split() == ["50", "%", "50.0%", "62.5%", "+12.5", "points"]
    assert lines[header + 2].split()[:4] == ["100", "%", "75.0%", "queued"]
    assert lines[header + 2].split()[-1] == "-", "no difference before both have finished"
    assert "3 of 4 runs finished (3 with a test accuracy)" in shown.stdout

    as_json = json.loads(kwscore("experiment", "show", record["id"], "--json", "--runs-dir", runs).stdout)
    assert as_json["id"] == record["id"] and as_json["owner"] == "Ana"
    assert [(r["fraction"], r["augment"], r["state"], r["test_accuracy"]) for r in as_json["runs"]] == [
        (0.5, "off", "succeeded", 0.5), (0.5, "on", "succeeded", 0.625), (1.0, "off", "succeeded", 0.75),
        (1.0, "on", "queued", None)]  # fmt: skip

    listed = kwscore("experiment", "list", "--runs-dir", runs)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(record["id"]))
    assert row.split()[1:3] == ["Ana", "m5"] and "3/4" in row.split() and row.endswith("50 %, 100 %")


def test_the_class_limits_apply_to_an_owner_and_nothing_is_queued(small_synth, runs):
    classroom.save_limits(classroom.ClassLimits(max_queued_per_student=8, max_epochs=1), runs)
    refused = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 2, "--fractions", "0.5",
                      "--owner", "Ben", "--runs-dir", runs)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.startswith("error: At most 1 epochs per run in this class")
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert jobs.list_runs(runs) == [] and experiments.list_experiments(runs) == []
    operator = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 2, "--fractions", "0.5",
                       "--runs-dir", runs)  # no owner: the operator, never limited  # fmt: skip
    assert operator.returncode == 0, operator.stderr
    assert len(run_ids(operator.stdout)) == 2 and "for " not in operator.stdout.splitlines()[-1]


def test_show_names_what_is_wrong_with_an_id(small_synth, runs):
    assert kwscore("experiment", "list", "--runs-dir", runs).stdout.startswith("No experiments in ")
    for fractions in ("0.25", "0.5"):
        launched = kwscore("experiment", "launch", "--data", small_synth, "--epochs", 1, "--fractions", fractions,
                           "--runs-dir", runs)  # fmt: skip
        assert launched.returncode == 0, launched.stderr
    common = os.path.commonprefix([e["id"] for e in experiments.list_experiments(runs)])  # the date, at least
    for query, message in (("x" * 300, "No experiment 'xxx"), (common, f"2 experiments match '{common}'")):
        out = kwscore("experiment", "show", query, "--runs-dir", runs)
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_runs_shows_the_ready_model_as_kws_studios_not_no_one(small_synth, runs):
    from kwscore.recipes import default_config

    plain = jobs.create_run(default_config("m5", data=str(small_synth), epochs=1), runs)  # launched without a name
    out = kwscore("runs", "--runs-dir", runs, env={"KWS_READY_MODEL": "1", "KWS_DATA_DIR": str(runs.parent / "data")})
    assert out.returncode == 0, out.stderr
    ready = next(line for line in out.stdout.splitlines() if line.startswith("ready-embed-"))
    assert "KWS Studio (ready model)" in ready
    mine = next(line for line in out.stdout.splitlines() if line.startswith(plain))
    assert mine.split()[2] == "-" and "KWS Studio" not in mine
