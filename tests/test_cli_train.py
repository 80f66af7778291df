"""`kwscore train / runs / eval / cancel / worker`, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--model", "m5", "--epochs", "1", "--batch-size", "32", "--threads", "1",
        "--model-kwargs", '{"n_channel": 8}', "--augment", "light"]  # fmt: skip


def kwscore(*args, timeout=120):
    env = {**os.environ, "KWS_RUN_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kwscore.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(small_synth, tmp_path_factory):
    """One foreground `kwscore train` run: (process result, runs folder, run folder)."""
    runs = tmp_path_factory.mktemp("cli-runs")
    result = kwscore("train", *TINY, "--data", small_synth, "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    return result, runs, Path(result.stdout.strip().splitlines()[-1])


def test_train_in_the_foreground_prints_epochs_then_the_run_folder(trained):
    result, runs, folder = trained
    assert folder.parent == runs and (folder / "report.json").is_file() and (folder / "best.pt").is_file()
    assert "epoch 1: train loss" in result.stdout and "val accuracy" in result.stdout
    assert "test accuracy" in result.stdout
    assert "training" in result.stderr and "it/s" in result.stderr  # the tqdm bar
    assert "decoding training" in result.stderr and "decoding validation" in result.stderr  # the decoding bars
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "succeeded" and status["pid"] != os.getpid()


def test_runs_lists_the_run(trained):
    _, runs, folder = trained
    result = kwscore("runs", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("id "))
    row = next(line for line in lines if line.startswith(folder.name))
    assert header.split()[:4] == ["id", "name", "owner", "status"] and {"model", "data"} <= set(header.split())
    assert row.split()[:5] == [folder.name, "-", "-", "succeeded", "m5"] and "small-synth0/8" in row and "%" in row  # no name, no owner
    empty = kwscore("runs", "--runs-dir", runs / "nothing-here")
    assert empty.returncode == 0 and "No runs" in empty.stdout


def test_eval_json_parses(trained, small_synth):
    _, runs, folder = trained
    result = kwscore(
        "eval", folder.name, "--runs-dir", runs, "--data", small_synth, "--subset", "all", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_total"] == 160 and 0 <= report["accuracy"] <= 1
    assert len(report["confusion"]) == 8 and set(report["per_class_accuracy"]) == set(report["labels"])
    plain = kwscore("eval", folder)  # a folder works too; the dataset defaults to the run's own
    assert plain.returncode == 0 and plain.stdout.startswith("accuracy ") and "testing" in plain.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "m6"], "Unknown model 'm6'"),
        (["train", "--data", "/no/such/folder"], "No dataset at /no/such/folder"),
        (["train", "--fraction", "25"], "Write 0.25 for 25 %"),
        (["train", "--model-kwargs", "{oops"], "--model-kwargs must be JSON"),
        (["eval", "../../etc"], "No run '../../etc'"),
        (["cancel", "20991231-000000-m5-abcdef"], "No run '20991231-000000-m5-abcdef'"),
    ],
)
def test_mistakes_are_one_line_errors(args, message, tmp_path, capsys):
    from kwscore.cli import main

    assert main([*args, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_a_real_process_prints_no_traceback(tmp_path):
    result = kwscore("train", "--model", "m6", "--runs-dir", tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: Unknown model 'm6'")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_background_then_cancel(small_synth, tmp_path):
    runs = tmp_path / "runs"
    result = kwscore(
        "train", *TINY, "--epochs", "400", "--data", small_synth, "--runs-dir", runs, "--background"
    )
    worker = json.loads((runs / "worker.json").read_text())["pid"]
    try:
        assert result.returncode == 0, result.stderr
        folder = Path(result.stdout.strip().splitlines()[-1])
        assert folder.is_dir() and folder.name in result.stdout.splitlines()[0]
        deadline = time.monotonic() + 60
        while (
            json.loads((folder / "status.json").read_text())["state"] == "queued"
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        cancelled = kwscore("cancel", folder.name, "--runs-dir", runs)
        assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{folder.name}: cancelled"
    finally:
        os.killpg(worker, signal.SIGKILL)
