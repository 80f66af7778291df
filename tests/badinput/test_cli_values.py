"""Bad input, family "CLI values": what a careless or hostile user types after ``kwscore``.

Seeds out of range, ids and paths longer than the file system allows, JSON nested 100k deep, models
asking for hundreds of gigabytes, a queue that does not answer, a pipe closed early... Each must give
one friendly line on stderr (``error: ...``), exit code 2, no traceback, no run folder left behind,
and finish within the harness's limits (time after start-up, peak memory of the process).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.badinput.harness import (
    CLI_STARTUP_ALLOWANCE_S,
    MAX_MB,
    MAX_SECONDS,
    REPO,
    assert_friendly,
    measure,
    run_cli,
)

LONG_ID = "x" * 300
LONG_PATH = "/tmp/" + "y" * 300
RUN_ID = "20260101-000000-m5-abcdef"  # well formed, but no such run

#: case -> (arguments, extra environment, a piece of the expected message). "{data}" is a real dataset.
CASES = {
    "seed-negative": (["train", "--seed", "-1"], {}, "seed must be a whole number from 0 to 4294967295"),
    "seed-1e23": (["train", "--seed", "1e23"], {}, "invalid int value: '1e23'"),
    "seed-2-to-the-32": (["train", "--seed", str(2**32)], {}, "seed must be a whole number"),
    "seed-23-digits": (["train", "--seed", "9" * 23], {}, "seed must be a whole number"),
    "epochs-zero": (["train", "--epochs", "0"], {}, "epochs must be a whole number ≥ 1"),
    "epochs-float": (["train", "--epochs", "1e9"], {}, "invalid int value"),
    "fraction-nan": (["train", "--fraction", "nan"], {}, "fraction is the share"),
    "fraction-inf": (["train", "--fraction", "inf"], {}, "fraction is the share"),
    "lr-negative": (["train", "--lr", "-1"], {}, "lr must be positive"),
    "lr-nan": (["train", "--lr", "nan"], {}, "lr must be positive"),
    "batch-size-zero": (["train", "--batch-size", "0"], {}, "batch_size must be"),
    "threads-zero": (["train", "--threads", "0"], {}, "threads must be"),
    "max-minutes-negative": (["train", "--max-minutes", "-5"], {}, "max_minutes must be positive"),
    "model-kwargs-deep": (["train", "--model-kwargs", "[" * 100_000], {}, "--model-kwargs must be JSON"),
    "model-kwargs-text": (["train", "--model-kwargs", '"wide"'], {}, "model_kwargs must be a dict"),
    "model-huge": (["train", "--model-kwargs", '{"n_channel": 100000}'], {}, "It was not built"),
    "model-negative-width": (["train", "--model-kwargs", '{"n_channel": -3}'], {}, "do not make a m5 model"),
    "model-unknown": (["train", "--model", "m6"], {}, "Unknown model 'm6'"),
    "commands-unknown": (["train", "--commands", "yes,banana"], {}, r"Unknown command\(s\) banana"),
    "data-long-path": (["train", "--data", LONG_PATH], {}, "File name too long"),
    "runs-dir-is-a-file": (["runs", "--runs-dir", "/dev/null"], {}, "Cannot use /dev/null as the runs folder"),
    "runs-dir-long": (["runs", "--runs-dir", LONG_PATH], {}, "as the runs folder"),
    "eval-long-id": (["eval", LONG_ID], {}, "not a valid run id|File name too long|No run 'x{300}'"),
    "cancel-long-id": (["cancel", LONG_ID], {}, "not a valid run id|File name too long|No run 'x{300}'"),
    "export-long-id": (["export", LONG_ID], {}, "not a valid run id|File name too long|No run 'x{300}'"),
    "detect-long-id": (["detect", LONG_ID, "/dev/null"], {}, "not a valid run id|File name too long|No run 'x{300}'"),
    "eval-long-folder": (["eval", "a/" * 200], {}, "a/a/a/|File name too long"),
    "cancel-dotdot": (["cancel", "../../etc"], {}, r"is not a valid run id|No run '\.\./\.\./etc'"),
    "cancel-missing": (["cancel", RUN_ID], {}, f"There is no run|No run '{RUN_ID}'"),
    "eval-subset-bogus": (["eval", RUN_ID, "--subset", "bogus"], {}, "invalid choice: 'bogus'"),
    "unknown-option": (["runs", "--bogus"], {}, "unrecognized arguments: --bogus"),
    "worker-concurrency-zero": (["worker", "--concurrency", "0"], {}, "concurrency must be a whole number from 1"),
    "worker-concurrency-million": (["worker", "--concurrency", "1000000"], {}, "concurrency must be"),
    "queue-url-refused": (["train", "--background"], {"KWS_QUEUE_URL": "redis://127.0.0.1:1/0"}, "KWS_QUEUE_URL="),
    "queue-url-password-hidden": (["train", "--background"], {"KWS_QUEUE_URL": "redis://:hunter2@127.0.0.1:1/0"},
                                  re.escape("redis://:***@127.0.0.1:1/0")),  # fmt: skip
    "queue-url-garbage": (["train", "--background"], {"KWS_QUEUE_URL": "not a url"}, "KWS_QUEUE_URL="),
    # `kwscore experiment`: a grid of runs; a refusal must queue none of them and leave no record behind
    "experiment-fractions-text": (["experiment", "launch", "--fractions", "half"], {}, "--fractions takes shares"),
    "experiment-fractions-empty": (["experiment", "launch", "--fractions", ""], {}, "--fractions takes shares"),
    "experiment-fractions-zero": (["experiment", "launch", "--fractions", "0,1"], {}, "above 0 and at most 1"),
    "experiment-fractions-nan": (["experiment", "launch", "--fractions", "0.5,nan"], {}, "above 0 and at most 1"),
    "experiment-fractions-200-percent": (["experiment", "launch", "--fractions", "200%"], {}, "at most 1.*got 2"),
    "experiment-fractions-thousand": (["experiment", "launch", "--fractions", ",".join(f"{n / 1000:g}" for n in
                                       range(1, 1001))], {}, r"At most 10 training fractions \(20 runs\)"),  # fmt: skip
    "experiment-fractions-long": (["experiment", "launch", "--fractions", "9" * 100_000], {}, "above 0 and at most 1"),
    "experiment-augment-none": (["experiment", "launch", "--augment", "none"], {}, "need a recipe"),
    "experiment-augment-lab": (["experiment", "launch", "--augment", "lab"], {}, "lives in the dashboard"),
    "experiment-augment-bogus": (["experiment", "launch", "--augment", "bogus"], {}, "Unknown augmentation 'bogus'"),
    "experiment-epochs-zero": (["experiment", "launch", "--epochs", "0"], {}, "epochs must be a whole number ≥ 1"),
    "experiment-seed-negative": (["experiment", "launch", "--seed", "-1"], {}, "seed must be a whole number"),
    "experiment-model-unknown": (["experiment", "launch", "--model", "m6"], {}, "Unknown model 'm6'"),
    "experiment-data-missing": (["experiment", "launch", "--data", "/no/such/folder"], {}, "No dataset at /no/such"),
    "experiment-data-long-path": (["experiment", "launch", "--data", LONG_PATH], {}, "File name too long"),
    "experiment-owner-huge": (["experiment", "launch", "--owner", "x" * 5000], {}, "owner must be a name"),
    "experiment-fraction-by-bogus": (["experiment", "launch", "--fraction-by", "voice"], {}, "invalid choice: 'voice'"),
    "experiment-start": (["experiment", "start"], {}, r"invalid choice: 'start' \(choose from 'launch', 'show', 'list'\)"),
    "experiment-show-none-yet": (["experiment", "show"], {}, "No experiments in"),
    "experiment-show-long-id": (["experiment", "show", LONG_ID], {}, "No experiments in"),
}


def _args(case: str, data: Path, runs: Path) -> tuple[list[str], dict[str, str], str]:
    args, env, expected = CASES[case]
    if args[0] == "train" or args[:2] == ["experiment", "launch"]:
        args = [*args, "--epochs", "1"] if "--epochs" not in args else args
        args = [*args, "--data", str(data)] if "--data" not in args else args
    if "--runs-dir" not in args:
        args = [*args, "--runs-dir", str(runs)]
    return args, env, expected


def _check(err: str, expected: str, runs: Path) -> None:
    assert_friendly(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert re.search(expected, lines[0]), (expected, lines[0])
    assert "hunter2" not in err
    left = [p.name for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
    assert not left, f"a failed start left run folders behind: {left}"


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_value_is_one_friendly_line_and_exit_code_2(case, small_synth, tmp_path, monkeypatch, capsys):
    """Every case through ``kwscore.cli.main`` (the code behind the command), timed and measured here."""
    from kwscore.cli import main

    runs = tmp_path / "runs"
    args, env, expected = _args(case, small_synth, runs)
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def command() -> int:
        try:
            return main(args)
        except SystemExit as exc:  # argparse's own mistakes
            return exc.code

    command()  # once to import what the command needs (torch, ONNX...): start-up is not the case's cost
    capsys.readouterr()
    code, seconds, grown_mb = measure(command)
    err = capsys.readouterr().err
    assert code == 2, (code, err[-2000:])
    _check(err, expected, runs)
    assert seconds <= MAX_SECONDS and grown_mb <= MAX_MB, (seconds, grown_mb)


@pytest.fixture(scope="module")
def startup():
    """An ordinary ``kwscore train --help``: what the interpreter and torch cost before any case."""
    out = run_cli(["train", "--help"])
    assert out.code == 0, out.text[-2000:]
    return out


@pytest.mark.parametrize("case", ["seed-1e23", "model-huge", "eval-long-id", "queue-url-password-hidden",
                                  "experiment-fractions-text"])  # fmt: skip
def test_a_real_process_prints_the_same_one_line(case, startup, small_synth, tmp_path):
    runs = tmp_path / "runs"
    args, env, expected = _args(case, small_synth, runs)
    out = run_cli(args, env={"KWS_HOME": str(tmp_path / "home"), **env})
    assert out.code == 2, (out.code, out.text[-2000:])
    _check(out.err, expected, runs)
    assert "hunter2" not in out.out
    allowed_s = 1.5 * max(startup.seconds, CLI_STARTUP_ALLOWANCE_S) + MAX_SECONDS  # a busy machine starts slowly
    assert out.seconds <= allowed_s, f"{out.seconds:.1f} s (kwscore train --help: {startup.seconds:.1f} s)"
    assert out.peak_mb <= startup.peak_mb + MAX_MB, f"{out.peak_mb:.0f} MB (train --help: {startup.peak_mb:.0f} MB)"


def test_kwscore_runs_into_a_closed_pipe_is_quiet(tmp_path):
    """`kwscore runs | head` used to end in a BrokenPipeError traceback."""
    from tests.badinput.test_runfolders import healthy_run

    runs = tmp_path / "runs"
    for n in range(3):
        healthy_run(runs, f"20260101-00000{n}-m5-00000{n}", str(tmp_path / "nowhere"))
    proc = subprocess.Popen([sys.executable, "-m", "kwscore.cli", "runs", "--runs-dir", str(runs)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader is gone before anything is written (as `head` after its lines)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0 and err == "", err
    piped = subprocess.run(f"{sys.executable} -m kwscore.cli runs --runs-dir {runs} | head -n 1", shell=True,
                           cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert piped.stdout.split()[0] == "id" and "Error" not in piped.stderr, piped.stderr


def test_a_damaged_environment_is_not_a_crash(tmp_path):
    """KWS_WORKERS / KWS_HEARTBEAT_TIMEOUT that are not numbers fall back to the defaults."""
    out = run_cli(["runs", "--runs-dir", str(tmp_path / "runs")],
                  env={"KWS_WORKERS": "lots", "KWS_HEARTBEAT_TIMEOUT": "1e999"})  # fmt: skip
    assert out.code == 0 and "No runs" in out.out and not out.err.strip(), out.text


def test_the_data_path_of_a_run_is_stored_absolute(small_synth, monkeypatch, tmp_path):
    """A relative --data is resolved where the command runs, not later in the worker's folder."""
    from kwscore import jobs
    from kwscore.recipes import default_config

    monkeypatch.chdir(Path(small_synth).parent)
    run_id = jobs.create_run(default_config("m5", data=Path(small_synth).name, mix=[f"./{Path(small_synth).name}"],
                                            epochs=1), tmp_path / "runs")  # fmt: skip
    config = jobs.run_info(run_id, tmp_path / "runs").config
    assert config["data"] == str(small_synth) and config["mix"] == [str(small_synth)]
