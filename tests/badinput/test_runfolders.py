"""Bad input, family "run folders": every kind of damaged file a run folder can hold.

:func:`write_cases` is the generator: one healthy, finished run per case (a real tiny checkpoint,
metrics, report, log), then the case damages one file — JSON of the wrong shape, fields of the wrong
type or far out of range (±1e308 times), records without their fields, 100k-deep nesting, empty
files, binary garbage, a FIFO or /dev/zero where a file should be, a checkpoint that passes the safe
loader but asks for a gigantic model...

Every reader must go on: ``kwscore runs``, the worker, and the Runs, Train and Try-it pages list the
run as "damaged: <what>" (or skip the bad record) and never crash, hang or balloon.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kwscore import jobs
from kwscore.runfiles import RunFiles, now, this_host, write_json
from tests.badinput.harness import (
    CLI_STARTUP_ALLOWANCE_S,
    MAX_MB,
    MAX_SECONDS,
    assert_friendly,
    measure,
    run_cli,
)
from tests.workers import kill_started_workers

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
LABELS = ["down", "go", "left", "no", "right", "stop", "up", "yes"]
DEEP = "[" * 100_000 + "]" * 100_000
GARBAGE = bytes(range(256)) * 8


# ------------------------------------------------------------------------------------------------
# The generator: a healthy finished run, then one damage per case
# ------------------------------------------------------------------------------------------------


def _checkpoint(path: Path, **override) -> None:
    """A real (tiny, untrained) M5 checkpoint with its front end and labels, as a run writes it."""
    import io

    import torch

    from kwscore.features import transform_config
    from kwscore.models import build_model
    from kwscore.training import save_checkpoint

    model = build_model("m5", len(LABELS), n_channel=4, stride=16, sample_rate=8000)
    save_checkpoint(path, model, {"labels": LABELS, "transform_config": transform_config(8000, None), "epoch": 2,
                                  "val_accuracy": 0.5})  # fmt: skip
    if override:  # rewrite some of its keys: still a file the safe loader accepts
        ckpt = torch.load(path, weights_only=True)
        ckpt.update(override)
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        path.write_bytes(buffer.getvalue())


def healthy_run(root: Path, run_id: str, data: str) -> RunFiles:
    """A finished run as the runner leaves it: config, status, metrics, report, log and best.pt."""
    from kwscore.recipes import default_config

    files = RunFiles(root / run_id)
    files.dir.mkdir(parents=True)
    files.write_config(default_config("m5", data=data, epochs=2, model_kwargs={"n_channel": 4, "stride": 16},
                                      sample_rate=8000).to_dict())  # fmt: skip
    t = now() - 100
    write_json(files.status_path, {
        "run_id": run_id, "state": "succeeded", "created": t, "started_at": t + 1, "training_started_at": t + 2,
        "ended_at": t + 20, "heartbeat": t + 20, "pid": 999_999, "pid_start": 1, "host": this_host(), "epochs": 2,
        "epoch": 2, "step": 10, "total_steps": 10, "best_val_accuracy": 0.5, "test_accuracy": 0.375,
        "best_epoch": 2,
    })  # fmt: skip
    for step in (5, 10):
        files.append_metric({"kind": "iteration", "step": step, "epoch": step // 5, "loss": 2.0 - step / 10,
                             "lr": 0.01, "elapsed": step / 2})  # fmt: skip
        files.append_metric({"kind": "epoch", "epoch": step // 5, "step": step, "train_loss": 1.5, "val_accuracy": 0.5,
                             "val_loss": 1.4, "lr": 0.01, "elapsed": step, "samples_per_s": 900.0, "best": True})  # fmt: skip
    confusion = [[1 if i == j else 0 for j in range(8)] for i in range(8)]
    files.write_report({
        "accuracy": 0.375, "n_correct": 3, "n_total": 8, "labels": LABELS, "confusion": confusion,
        "per_class_accuracy": {w: 1.0 for w in LABELS}, "per_class_total": {w: 1 for w in LABELS},
        "misclassified": [], "n_params": 1234, "samples_per_s": 900.0, "best_epoch": 2,
    })  # fmt: skip
    files.log("created; trained; tested")
    _checkpoint(files.best_path)
    return files


def _set(name: str, **fields):
    def damage(f: RunFiles) -> None:
        path = f.dir / name
        data = json.loads(path.read_text())
        data.update(fields)
        path.write_text(json.dumps(data))  # allow_nan: NaN / Infinity are what a hostile file may hold

    return damage


def _text(name: str, text: str | bytes):
    def damage(f: RunFiles) -> None:
        (f.dir / name).write_bytes(text if isinstance(text, bytes) else text.encode())

    return damage


def _fifo(name: str):
    def damage(f: RunFiles) -> None:
        (f.dir / name).unlink(missing_ok=True)
        os.mkfifo(f.dir / name)

    return damage


def _symlink(name: str, target: str):
    def damage(f: RunFiles) -> None:
        (f.dir / name).unlink(missing_ok=True)
        (f.dir / name).symlink_to(target)

    return damage


def _sparse(name: str, size: int):
    def damage(f: RunFiles) -> None:
        with open(f.dir / name, "wb") as out:
            out.truncate(size)

    return damage


def _remove(name: str):
    return lambda f: (f.dir / name).unlink()


def _directory(name: str):
    def damage(f: RunFiles) -> None:
        (f.dir / name).unlink()
        (f.dir / name).mkdir()

    return damage


def _metrics(*records: str):
    def damage(f: RunFiles) -> None:
        with open(f.metrics_path, "a") as out:
            out.write("".join(r + "\n" for r in records))

    return damage


def _ckpt(**override):
    return lambda f: _checkpoint(f.best_path, **override)


def _running(**fields):
    """A "running" status (heartbeat long gone) with some fields damaged."""
    return _set("status.json", **{"state": "running", "ended_at": None, "heartbeat": now() - 3600, **fields})


def _queued(**fields):
    return _set("status.json", **{"state": "queued", "started_at": None, "ended_at": None, **fields})


#: case -> (damage, what a reader must report: "damaged" (listed as damaged), "unreadable" (state),
#: or "ok" (listing unaffected: the bad file is read elsewhere and its bad part skipped))
CASES = {
    # config.json
    "config-list": (_text("config.json", "[1, 2]"), "damaged"),
    "config-data-int": (_set("config.json", data=5), "damaged"),
    "config-mix-text": (_set("config.json", mix="abc"), "damaged"),
    "config-commands-dict": (_set("config.json", commands={"yes": 1}), "damaged"),
    "config-fraction-text": (_set("config.json", fraction="x"), "damaged"),
    "config-fraction-nan": (_set("config.json", fraction=float("nan")), "damaged"),
    "config-epochs-1e308": (_set("config.json", epochs=1e308), "damaged"),
    "config-augment-int": (_set("config.json", augment=7), "damaged"),
    "config-model-list": (_set("config.json", model=["m5"]), "damaged"),
    "config-model-kwargs-huge": (_set("config.json", model_kwargs={"n_channel": 10**9, "stride": 16}), "ok"),
    "config-model-kwargs-text": (_set("config.json", model_kwargs="big"), "damaged"),
    "config-features-list": (_set("config.json", model="cnn", features=[1]), "damaged"),
    "config-seed-negative": (_set("config.json", seed=-1), "damaged"),
    "config-null": (_text("config.json", "null"), "damaged"),
    "config-empty": (_text("config.json", ""), "damaged"),
    "config-garbage": (_text("config.json", GARBAGE), "damaged"),
    "config-deep": (_text("config.json", DEEP), "damaged"),
    "config-deep-object": (_text("config.json", '{"a":' * 100_000 + "1" + "}" * 100_000), "damaged"),
    "config-missing": (_remove("config.json"), "damaged"),
    "config-directory": (_directory("config.json"), "damaged"),
    "config-fifo": (_fifo("config.json"), "damaged"),
    "config-dev-zero": (_symlink("config.json", "/dev/zero"), "damaged"),
    "config-20MB": (_sparse("config.json", 20 * 2**20), "damaged"),
    # status.json
    "status-created-text": (_set("status.json", created="x"), "damaged"),
    "status-times-1e308": (_set("status.json", created=1e308, started_at=1e308, ended_at=1e308), "damaged"),
    "status-times-minus-1e308": (_set("status.json", created=-1e308, started_at=-1e308, ended_at=-1e308), "damaged"),
    "status-times-infinite": (_set("status.json", started_at=float("inf"), ended_at=float("-inf")), "damaged"),
    "status-accuracy-1e308": (_set("status.json", test_accuracy=1e308, best_val_accuracy="x"), "damaged"),
    "status-accuracy-nan": (_set("status.json", test_accuracy=float("nan")), "damaged"),
    "status-epoch-negative": (_set("status.json", epoch=-5, epochs=0, total_steps="many", step=[1]), "damaged"),
    "status-error-list": (_set("status.json", error=["boom"], message={"x": 1}), "damaged"),
    "status-pid-text": (_running(pid="1", host=this_host()), "damaged"),
    "status-pid-1e30": (_running(pid=10**30, host=this_host()), "damaged"),
    "status-running-heartbeat-text": (_running(heartbeat="soon", pid=999_999, host=this_host()), "damaged"),
    "status-running-budget-text": (_running(budget_s="x", total_steps=10, step=5, training_started_at="y"), "damaged"),
    "status-queued-epochs-text": (_queued(epochs="many", created=True), "damaged"),
    "status-state-unknown": (_set("status.json", state="exploded"), "unreadable"),
    "status-state-list": (_set("status.json", state=["running"]), "unreadable"),
    "status-list": (_text("status.json", "[1, 2]"), "unreadable"),
    "status-empty": (_text("status.json", ""), "unreadable"),
    "status-garbage": (_text("status.json", GARBAGE), "unreadable"),
    "status-deep": (_text("status.json", DEEP), "unreadable"),
    "status-missing": (_remove("status.json"), "unreadable"),
    "status-fifo": (_fifo("status.json"), "unreadable"),
    "status-dev-zero": (_symlink("status.json", "/dev/zero"), "unreadable"),
    # metrics.jsonl
    "metrics-iteration-bare": (_metrics('{"kind":"iteration"}'), "ok"),
    "metrics-epoch-bare": (_metrics('{"kind":"epoch"}', '{"kind":"epoch","epoch":3,"val_loss":1}'), "ok"),
    "metrics-wrong-types": (_metrics('{"kind":"iteration","step":"7","loss":"x"}',
                                     '{"kind":"epoch","epoch":3,"val_accuracy":"high"}'), "ok"),  # fmt: skip
    "metrics-out-of-range": (_metrics('{"kind":"epoch","epoch":3,"step":15,"val_accuracy":1e308}',
                                      '{"kind":"iteration","step":-4,"loss":1}',
                                      '{"kind":"iteration","step":1e400,"loss":1}'), "ok"),  # fmt: skip
    "metrics-deep": (_metrics(DEEP), "ok"),
    "metrics-garbage": (_text("metrics.jsonl", GARBAGE), "ok"),
    "metrics-fifo": (_fifo("metrics.jsonl"), "ok"),
    "metrics-dev-zero": (_symlink("metrics.jsonl", "/dev/zero"), "ok"),
    # report.json
    "report-list": (_text("report.json", "[1, 2]"), "ok"),
    "report-confusion-ragged": (_set("report.json", confusion=[[1, 2], [3]]), "ok"),
    "report-n-params-text": (_set("report.json", n_params="many"), "ok"),
    "report-misclassified-junk": (_set("report.json", misclassified=[1, {"label": 5}]), "ok"),
    "report-accuracy-1e308": (_set("report.json", accuracy=1e308), "ok"),
    "report-deep": (_text("report.json", DEEP), "ok"),
    "report-fifo": (_fifo("report.json"), "ok"),
    # log.txt
    "log-fifo": (_fifo("log.txt"), "ok"),
    "log-garbage": (_text("log.txt", GARBAGE), "ok"),
    "log-sparse-1GB": (_sparse("log.txt", 2**30), "ok"),
    # best.pt: passes or fails the safe loader, never builds a monster
    "checkpoint-garbage": (_text("best.pt", GARBAGE), "ok"),
    "checkpoint-empty": (_text("best.pt", b""), "ok"),
    "checkpoint-huge-model": (_ckpt(model_kwargs={"n_channel": 200_000, "stride": 16, "sample_rate": 8000}), "ok"),
    "checkpoint-many-classes": (_ckpt(n_classes=50_000_000), "ok"),
    "checkpoint-kwargs-text": (_ckpt(model_kwargs="big"), "ok"),
    "checkpoint-negative-width": (_ckpt(model_kwargs={"n_channel": -3}), "ok"),
    "checkpoint-fifo": (_fifo("best.pt"), "ok"),
}


def case_id(n: int) -> str:
    return f"20260102-0000{n:02d}-m5-{n:06x}"


def write_cases(root: Path, data: str, cases=CASES) -> dict[str, str]:
    """Write one damaged run per case into ``root``; returns case -> run id."""
    ids = {}
    for n, (name, (damage, _)) in enumerate(cases.items()):
        files = healthy_run(root, case_id(n), data)
        damage(files)
        ids[name] = files.run_id
    return ids


# ------------------------------------------------------------------------------------------------
# The family test: every reader, on every case
# ------------------------------------------------------------------------------------------------


def read_everything(root: Path, run_id: str) -> dict:
    """What kwscore's readers make of one run (all of them, as the pages and the CLI call them)."""
    from kwscore.errors import KwsError
    from kwscore.evaluation import load_run_model

    infos = {i.run_id: i for i in jobs.list_runs(root)}
    info = infos[run_id]
    out = {"info": info, "n_runs": len(infos)}
    out["metrics"] = jobs.read_metrics(run_id, root)
    out["report"] = jobs.read_report(run_id, root)
    out["log"] = jobs.read_log(run_id, root)
    out["progress"] = jobs.progress(run_id, root)
    try:
        out["model"] = load_run_model(root / run_id)[0]
    except KwsError as exc:
        out["model_error"] = str(exc)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("no-data") / "nowhere")  # listing and reading never need the data


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_run_folder_is_reported_never_crashes(case, tmp_path, data_root):
    root = tmp_path / "runs"
    root.mkdir()
    fine = healthy_run(root, "20260101-000000-m5-000000", data_root).run_id
    run_id = write_cases(root, data_root, {case: CASES[case]})[case]
    expected = CASES[case][1]

    result, seconds, grown_mb = measure(read_everything, root, run_id)
    assert not isinstance(result, BaseException), f"{type(result).__name__}: {result}"
    assert seconds <= MAX_SECONDS and grown_mb <= MAX_MB, (seconds, grown_mb)
    info = result["info"]
    assert result["n_runs"] == 2 and jobs.run_info(fine, root).error is None  # the other run is untouched
    if expected == "damaged":
        assert (info.error or "").startswith("damaged: "), info.error
        assert info.state in ("succeeded", "failed", "queued", "running", "unreadable")
    elif expected == "unreadable":
        assert info.state == "unreadable" and "unreadable status" in info.error
    else:
        assert info.error is None and info.state == "succeeded", (info.state, info.error)
    # whatever survived is of the right type: a page can format it
    for key in ("created", "started_at", "ended_at", "test_accuracy", "best_val_accuracy"):
        value = getattr(info, key)
        assert value is None or (isinstance(value, int | float) and abs(value) < 1e10), (key, value)
    assert info.epoch is None or isinstance(info.epoch, int)
    assert isinstance(info.config, dict | None) and isinstance(info.data, str | None)
    iterations, epochs = result["metrics"]
    assert all(isinstance(r["step"], int) and isinstance(r["loss"], int | float) for r in iterations)
    assert all(isinstance(r["epoch"], int) and 0 <= r["val_accuracy"] <= 1 for r in epochs)
    if CASES[case][0].__qualname__.startswith("_metrics"):  # records appended: the good ones are kept
        assert [r["step"] for r in iterations] == [5, 10] and [r["epoch"] for r in epochs] == [1, 2]
    fraction, _eta = result["progress"]
    assert 0.0 <= fraction <= 1.0
    assert isinstance(result["log"], str) and len(result["log"]) <= 20_000
    if case.startswith("report-"):
        assert result["report"] is None
    if case.startswith("checkpoint-"):
        assert "model" not in result, "a damaged checkpoint must be refused"
        assert_friendly(result["model_error"])


# ------------------------------------------------------------------------------------------------
# The command line, the worker and the pages with every case at once
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_runs(tmp_path_factory, data_root) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("damaged") / "runs"
    root.mkdir()
    yield root, write_cases(root, data_root)
    jobs.stop_worker(root, stop_runs=True)  # `kwscore runs` starts one for the queued (damaged) runs


def test_kwscore_runs_lists_every_damaged_run(damaged_runs, tmp_path):
    root, ids = damaged_runs
    empty = run_cli(["runs", "--runs-dir", str(tmp_path / "empty")])  # start-up alone, for comparison
    out = run_cli(["runs", "--runs-dir", str(root)])
    assert out.code == 0, out.text[-3000:]
    assert "Traceback" not in out.err and "Error" not in out.err, out.err[-3000:]
    assert out.seconds <= MAX_SECONDS + max(CLI_STARTUP_ALLOWANCE_S, empty.seconds), (out.seconds, empty.seconds)
    assert out.peak_mb <= empty.peak_mb + MAX_MB, (out.peak_mb, empty.peak_mb)
    listed = [line.split()[0] for line in out.out.splitlines()[1:] if line and not line.split()[0].endswith(":")]
    assert set(ids.values()) <= set(listed)
    assert f"{ids['config-list']}: damaged: config.json holds list" in out.out
    assert f"{ids['status-created-text']}: damaged: status.json field 'created' is 'x', not a time" in out.out


@pytest.fixture
def worker_env(monkeypatch, tmp_path):
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KWS_RUN_THREADS", "1")
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    yield
    kill_started_workers()


@pytest.mark.slow
def test_the_worker_survives_damaged_folders_and_runs_the_queue(worker_env, small_synth, tmp_path):
    """config.json = [1, 2] used to kill the worker at start: every later run stayed queued for ever."""
    from kwscore.recipes import default_config

    root = tmp_path / "runs"
    root.mkdir()
    write_cases(root, str(small_synth))
    damaged = healthy_run(root, "20260103-000000-m5-dddddd", str(small_synth))
    _queued()(damaged)
    damaged.config_path.write_text("[1, 2]")  # a queued run that cannot even be read
    jobs.enqueue(damaged.run_id, root)
    good = jobs.launch(default_config("m5", data=str(small_synth), epochs=1, batch_size=32, augment="none",
                                      threads=1, model_kwargs={"n_channel": 4, "stride": 16}), root)  # fmt: skip
    deadline = time.monotonic() + 120
    while jobs.refresh_status(good, root)["state"] not in jobs.FINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.refresh_status(good, root)["state"] == "succeeded", jobs.read_log(good, root)
    status = jobs.refresh_status(damaged.run_id, root)
    assert status["state"] == "failed" and "config.json" in status["error"], status
    log = (root / jobs.WORKER_LOG).read_text()
    assert "damaged: config.json holds list" in log and "Traceback" not in log, log[-3000:]
    assert jobs.worker_pid(root)  # still serving


@pytest.fixture
def pages_env(kws_env, damaged_runs, monkeypatch):
    """The dashboard's runs folder holds every damaged case (copied: the pages may repair statuses)."""
    root, ids = damaged_runs
    runs = Path(os.environ["KWS_RUNS_DIR"])
    shutil.copytree(root, runs, symlinks=True, ignore=shutil.ignore_patterns("worker.*", "queue.sqlite3*"),
                    copy_function=_copy_regular)  # fmt: skip
    yield runs, ids
    kill_started_workers()  # the pages start a worker for the queued (damaged) runs


def _copy_regular(src, dst):
    if Path(src).is_fifo():
        os.mkfifo(dst)
    elif os.path.getsize(src) > 2**25:  # the sparse 1 GB log: keep it sparse
        with open(dst, "wb") as out:
            out.truncate(os.path.getsize(src))
    else:
        shutil.copy2(src, dst)


def _open(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, _trace(at)
    return at


def _trace(at) -> str:
    return "\n".join(f"{e.message}\n" + "\n".join(e.stack_trace) for e in at.exception)


def test_runs_train_and_try_it_pages_show_no_exception(pages_env):
    runs, ids = pages_env
    at = _open("runs")
    table = at.dataframe[0].value
    assert set(ids.values()) <= set(table["run id"])
    problems = dict(zip(table["run id"], table["problem"], strict=True))
    assert problems[ids["config-data-int"]].startswith("damaged: config.json field 'data' is 5")
    for case in DETAIL_CASES:  # study one damaged run of each kind in detail
        at.selectbox(key="runs_detail").set_value(ids[case]).run()
        assert not at.exception, (case, _trace(at))

    at = _open("train")
    watch = at.selectbox(key="train_watch")
    for run_id in watch.options:
        at.selectbox(key="train_watch").set_value(run_id).run()
        assert not at.exception, (run_id, _trace(at))

    at = _open("try_it")
    offered = {_run_of(label, ids) for label in at.selectbox(key="try_run").options}
    assert len(offered) > 10
    for case in DETAIL_CASES:
        if ids[case] in offered:
            at.selectbox(key="try_run").set_value(ids[case]).run()
            assert not at.exception, (case, _trace(at))
    huge = ids["checkpoint-huge-model"]
    at.selectbox(key="try_run").set_value(huge).run()
    assert any("more than the" in e.value and "not built" in e.value for e in at.error), [e.value for e in at.error]


#: One damaged run of each kind, studied one by one on the pages (every one is in their tables).
DETAIL_CASES = [
    "config-list", "config-data-int", "config-model-kwargs-huge", "config-fifo", "status-created-text",
    "status-times-1e308", "status-state-unknown", "status-error-list", "metrics-iteration-bare",
    "metrics-out-of-range", "report-confusion-ragged", "report-misclassified-junk", "log-fifo",
    "checkpoint-garbage", "checkpoint-many-classes",
]  # fmt: skip


def _run_of(label: str, ids: dict[str, str]) -> str:
    """The run a choice's label names: ``<label> · <short id> · <owner>``."""
    parts = [p for p in label.split(" · ") if len(p) >= 6]
    return next(r for r in ids.values() if any(r.endswith(p) for p in parts))

