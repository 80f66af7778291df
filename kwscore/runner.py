"""A complete training run from one config: data -> model -> epochs -> checkpoints -> report.

::

    config = default_config("m5", data="~/.kws-studio/data/synthetic")   # kwscore.recipes
    result = run_training(config, "runs/my-first-run")
    print(result.report["accuracy"])

The pieces live next door: the config and the tuned recipes in :mod:`kwscore.recipes`, the data in
memory in :mod:`kwscore.training_data`, the batched augmentation in :mod:`kwscore.augment`, one
optimizer step and the validation in :mod:`kwscore.training`. This module is the run itself, one
loop you can read top to bottom (:func:`_run`):

1. **Seeds, threads, device**: ``set_seed``, one PyTorch thread per core, CUDA when present.
2. **Data and model**: :func:`kwscore.training_data.prepare_data`; the model, Adam and the
   learning-rate schedule (from the parent run's weights when fine-tuning).
3. **Epochs**: every step is logged (metrics.jsonl, about :data:`MAX_ITERATION_LINES` lines a
   run); the loop stops when the run is cancelled (a ``cancel`` file or SIGTERM, checked every
   step) or its time budget is spent; after each epoch: validate, checkpoint (last.pt, best.pt
   when better), log.
4. **Report**: the best checkpoint on the test split (report.json).

Everything is written through :class:`kwscore.runfiles.RunFiles`; a :class:`Heartbeat` thread
keeps status.json fresh. Run it as its own process with ``python -m kwscore.runner RUN_DIR``
(what the job queue does).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kwscore.errors import KwsError
from kwscore.evaluation import evaluate, load_run_model
from kwscore.labels import task_dataset
from kwscore.models import build_model, count_parameters
from kwscore.recipes import RunConfig, parent_checkpoint
from kwscore.runfiles import FINAL_STATES, RunFiles, clock, now, process_start, this_host
from kwscore.training import (
    configure_threads,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    pick_device,
    save_checkpoint,
    set_seed,
    test,
    train_steps,
)
from kwscore.training_data import prepare_data

#: At most about this many iteration lines per run in metrics.jsonl (plus one line per epoch).
MAX_ITERATION_LINES = 400
#: How often a running run rewrites its heartbeat (and progress) in status.json, in seconds.
HEARTBEAT_INTERVAL_S = 2.0


@dataclass
class Callbacks:
    """Optional hooks, called in the training process.

    - ``on_start(info)``: once the data is ready: ``n_train, n_val, labels, steps_per_epoch,
      total_steps, epochs, device, threads, n_params``.
    - ``on_iteration(record)``: after every step: ``step`` (1-based), ``epoch``, ``loss``, ``lr``,
      ``elapsed``.
    - ``on_epoch(record)``: after each validation: the epoch record written to metrics.jsonl.
    - ``on_decode(subset, done, total)``: while the clips of a split are decoded (before training).
    """

    on_start: Callable[[dict], None] | None = None
    on_iteration: Callable[[dict], None] | None = None
    on_epoch: Callable[[dict], None] | None = None
    on_decode: Callable[[str, int, int], None] | None = None


@dataclass
class RunResult:
    """What :func:`run_training` returns: the final state and, when it succeeded, the report."""

    state: str  #: "succeeded" or "cancelled" (failures raise)
    run_dir: Path
    report: dict | None = None
    model: nn.Module | None = None  #: the best model, in eval mode (None when cancelled)
    transform: nn.Module | None = None  #: its front end: [B, 1, time@16k] -> model input
    labels: list[str] = field(default_factory=list)


class Heartbeat:
    """A background thread that rewrites ``heartbeat`` (and progress) in status.json every ~2 s.

    The heartbeat proves the process is alive even during long steps (decoding, evaluation): a
    run whose heartbeat stops is a dead run (:func:`kwscore.jobs.refresh_status`).
    """

    def __init__(self, files: RunFiles, progress: dict, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.files, self.progress, self.interval = files, progress, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.files.update_status(only_if=("running",), heartbeat=now(), **dict(self.progress))
            except OSError:  # a full disk must not kill training; the next beat tries again
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ============================================================================================
# The run
# ============================================================================================


def run_training(
    config: RunConfig, run_dir: str | os.PathLike, callbacks: Callbacks | None = None
) -> RunResult:
    """Train, validate, checkpoint and test one model, writing everything into ``run_dir``.

    The run's status goes queued -> running -> succeeded | cancelled | failed. Failures are
    recorded in status.json (with the message) and then re-raised; a :class:`KwsError` is a
    mistake the user can fix (its message says how).
    """
    files = RunFiles(run_dir)
    config = config.validate()
    if not _start(files, config):
        return RunResult("cancelled", files.dir)
    progress = {"step": 0, "epoch": 0}
    try:
        with Heartbeat(files, progress):
            result = _run(config, files, callbacks or Callbacks(), progress)
    except KeyboardInterrupt:
        files.update_status(state="cancelled", ended_at=now(), message="interrupted (Ctrl-C)", **progress)
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, KwsError) else f"{type(exc).__name__}: {exc}"
        files.log(f"failed: {message}\n{traceback.format_exc()}")
        files.update_status(state="failed", ended_at=now(), heartbeat=now(), error=message, **progress)
        raise
    if result.state == "cancelled":  # the cancel flag or SIGTERM: a clean stop
        files.log("stopped: cancelled")
        files.update_status(state="cancelled", ended_at=now(), heartbeat=now(), message="cancelled", **progress)
    return result


def _run(config: RunConfig, files: RunFiles, callbacks: Callbacks, progress: dict) -> RunResult:
    """The body of :func:`run_training`, once the run is marked running."""
    started = time.monotonic()
    threads = configure_threads(config.threads or _env_threads())
    set_seed(config.seed)
    device = pick_device()  # CUDA when present (KWS_DEVICE=cpu to keep off it), else the CPU
    files.log(f"run {files.run_id}: {config.model} on {' + '.join(config.data_roots)} ({device}, {threads} thread(s))")

    # -- data, model, optimizer ---------------------------------------------------------------
    parent = parent_checkpoint(config.init, files.dir.parent) if config.init else None
    data = prepare_data(config, files, parent, on_decode=callbacks.on_decode)
    model, optimizer, scheduler = _build(config, data, device, parent)
    train_batches, labels = data["train"], data["labels"]
    steps_per_epoch = len(train_batches)
    info = {
        "n_train": len(train_batches.targets), "n_val": len(data["val"].targets), "labels": labels,
        "steps_per_epoch": steps_per_epoch, "total_steps": steps_per_epoch * config.epochs,
        "epochs": config.epochs, "device": str(device), "threads": threads,
        "n_params": count_parameters(model), "train_selection": data["selection"],
    }  # fmt: skip
    files.update_status(total_steps=info["total_steps"], n_train=info["n_train"], training_started_at=now())
    files.log(f"data: {info['n_train']} training clips, {info['n_val']} validation clips, labels {labels}")
    if callbacks.on_start:
        callbacks.on_start(info)

    # -- the epochs ---------------------------------------------------------------------------
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    scaler = make_grad_scaler(device)  # float16 loss scaling on CUDA, one per run; a no-op on the CPU
    log_every = max(1, -(-info["total_steps"] // MAX_ITERATION_LINES))  # ceil: ≤ ~400 lines a run
    checkpoint = {"labels": labels, "feature_config": data["transform_config"]["features"],
                  "transform_config": data["transform_config"], "run_config": config.to_dict()}  # fmt: skip
    best = {"val_accuracy": -1.0, "epoch": 0}
    step, window, stopped = 0, [], None  # window: losses since the last metrics line
    for epoch in range(1, config.epochs + 1):
        progress["epoch"] = epoch
        tic, loss_sum, n_seen = time.monotonic(), 0.0, 0
        for loss, lr, n in train_steps(model, train_batches, data["train_transform"], criterion, optimizer,
                                       device, scheduler=scheduler, first_step=step, scaler=scaler):  # fmt: skip
            step += 1
            progress["step"] = step
            loss_sum, n_seen = loss_sum + loss * n, n_seen + n
            window.append(loss)
            record = {"kind": "iteration", "step": step, "epoch": epoch, "loss": loss, "lr": lr,
                      "elapsed": round(time.monotonic() - started, 3)}  # fmt: skip
            if step % log_every == 0:  # the mean loss since the last line: a smoother curve
                files.append_metric({**record, "loss": float(np.mean(window))})
                window.clear()
            if callbacks.on_iteration:
                callbacks.on_iteration(record)
            if files.cancel_requested() or _signal_stop.is_set():
                return RunResult("cancelled", files.dir)
            if config.max_minutes and time.monotonic() - started > 60.0 * config.max_minutes:
                stopped = "time budget"
                break
        train_loss, clips_per_s = loss_sum / n_seen, info["n_train"] / (time.monotonic() - tic)

        # validate, checkpoint (last.pt; best.pt when better), log the epoch everywhere
        val = test(model, data["val"], None, device, labels)
        extra = {**checkpoint, "epoch": epoch, "val_accuracy": val["accuracy"]}
        save_checkpoint(files.last_path, model, extra)  # atomic: a crash never leaves half a file
        improved = val["accuracy"] > best["val_accuracy"]
        if config.init:  # fine-tuning: at equal validation accuracy the later, more adapted epoch wins
            improved = val["accuracy"] >= best["val_accuracy"]
        if improved:
            best = {"val_accuracy": val["accuracy"], "epoch": epoch}
            save_checkpoint(files.best_path, model, extra)
        record = {
            "kind": "epoch", "epoch": epoch, "step": step, "train_loss": train_loss,
            "val_accuracy": val["accuracy"], "val_loss": val["loss"], "lr": optimizer.param_groups[0]["lr"],
            "elapsed": round(time.monotonic() - started, 3), "samples_per_s": round(clips_per_s, 1), "best": improved,
        }  # fmt: skip
        files.append_metric(record)
        files.update_status(epoch=epoch, step=step, best_val_accuracy=best["val_accuracy"], best_epoch=best["epoch"])
        files.log(
            f"epoch {epoch}/{config.epochs}: loss {train_loss:.3f}, val accuracy {val['accuracy']:.1%}, "
            f"{clips_per_s:.0f} clips/s"
        )
        if callbacks.on_epoch:
            callbacks.on_epoch(record)
        if stopped:
            files.log(f"time budget of {config.max_minutes} min reached during epoch {epoch}")
            break

    # -- the report: the best checkpoint on the test split ----------------------------------
    model, transform, labels, _ = load_run_model(files.dir, "best", device)
    report = evaluate(model, task_dataset(config.data_roots, "testing", labels, config.seed), transform, labels, device)
    _, epochs = files.read_metrics()
    report.update(
        run_id=files.run_id,
        model=config.model,
        test_accuracy=report["accuracy"],
        best_epoch=best["epoch"],
        best_val_accuracy=best["val_accuracy"],
        epochs_done=len(epochs),
        stopped=stopped,
        duration_s=round(time.monotonic() - started, 2),
        samples_per_s=round(float(np.median([e["samples_per_s"] for e in epochs])), 1) if epochs else None,
        train_selection=data["selection"],
        n_params=info["n_params"],
        device=info["device"],
        threads=info["threads"],
        checkpoint="best.pt",
    )
    files.write_report(report)
    files.update_status(
        state="succeeded", ended_at=now(), heartbeat=now(), test_accuracy=report["accuracy"],
        best_val_accuracy=best["val_accuracy"], message=stopped,
    )  # fmt: skip
    files.log(f"test accuracy {report['accuracy']:.1%} (best epoch {best['epoch']}) at {clock(now())}")
    return RunResult("succeeded", files.dir, report, model, transform, labels)


def _build(config: RunConfig, data: dict, device: torch.device, parent: dict | None = None):
    """The model (on ``device``), Adam and the learning-rate schedule (stepped once per batch).
    When fine-tuning, the model starts from the ``parent`` checkpoint's weights.

    A Mel model's weights are stored "channels last" (``[C, H, W]`` laid out as ``[H, W, C]``),
    the layout the CPU's convolution library computes in: the CNN trained ~40 % faster on 2 cores.
    Same maths and same checkpoints (a state dict does not care about the layout).
    """
    model = build_model(config.model, len(data["labels"]), **config.model_options).to(device)
    if parent is not None:
        if list(parent["labels"]) != data["labels"] or parent["model_name"] != config.model:
            raise KwsError(
                f"Cannot fine-tune {config.init} ({parent['model_name']}: {', '.join(parent['labels'])}) as a "
                f"{config.model} of {', '.join(data['labels'])}: keep its model and words."
            )
        try:
            model.load_state_dict(parent["state_dict"])
        except RuntimeError as exc:
            raise KwsError(f"{config.init}'s weights do not fit this model's options: keep its model_kwargs.") from exc
    if config.representation == "mel":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(
        optimizer, config.scheduler, epochs=config.epochs, steps_per_epoch=len(data["train"]),
        step_size=config.step_size, gamma=config.gamma,
    )  # fmt: skip
    return model, optimizer, scheduler


# ============================================================================================
# The run folder: start, threads, priority
# ============================================================================================


def _start(files: RunFiles, config: RunConfig) -> bool:
    """Create the run's files if needed and mark it running. False when it was cancelled first."""
    files.dir.mkdir(parents=True, exist_ok=True)
    if not files.config_path.exists():
        files.write_config(config.to_dict())
    status = files.read_status()
    if status["state"] == "cancelled":
        return False
    if status["state"] in (*FINAL_STATES, "running"):
        raise KwsError(f"Run {files.run_id} is already {status['state']}: start a new run instead.")
    if status["state"] != "queued":  # a fresh folder (or an unreadable status): start from queued
        files.update_status(state="queued", run_id=files.run_id, created=now())
    status = files.update_status(
        only_if=("queued",), state="running", pid=os.getpid(), pid_start=process_start(os.getpid()),
        host=this_host(), started_at=now(),
        heartbeat=now(), epochs=config.epochs, epoch=0, step=0,
    )  # fmt: skip
    return status["state"] == "running"


def _env_threads() -> int | None:
    """Threads the job worker gives each run (cores / concurrency), if it set KWS_RUN_THREADS."""
    value = os.environ.get("KWS_RUN_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


_signal_stop = threading.Event()  # set by SIGTERM: stop at the next iteration, as if cancelled


def _on_sigterm(signum, frame) -> None:
    _signal_stop.set()


#: A background run is this much nicer (lower CPU priority) than the worker and web server that
#: started it, so pages stay responsive while it trains (``KWS_RUN_NICE`` overrides; 0 = same).
RUN_NICE = 10


def _lower_priority() -> None:
    """Lower this process's CPU priority by ``KWS_RUN_NICE`` (default :data:`RUN_NICE`)."""
    try:
        increment = int(os.environ.get("KWS_RUN_NICE", RUN_NICE))
    except ValueError:
        increment = RUN_NICE
    if increment > 0 and hasattr(os, "nice"):
        try:
            os.nice(min(increment, 39))
        except OSError:  # not allowed here: train at the same priority
            pass
    if increment > 0:
        _lower_session_priority(min(increment, 19))


def _lower_session_priority(nice: int) -> None:
    """Linux's autogroups share the CPU between sessions first and use nice only inside one, so
    nice alone does not put a run behind the web server, which is in another session. A run shares
    its worker's session (the worker starts in its own): that session is lowered to ``nice`` too.
    Nothing happens where the kernel has no autogroups."""
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:  # no autogroups here, or not allowed
        pass


# ============================================================================================
# python -m kwscore.runner RUN_DIR
# ============================================================================================


def main(argv: list[str] | None = None) -> int:
    """Run the config stored in RUN_DIR/config.json. Exit 0 succeeded/cancelled, 1 failed, 2 usage."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m kwscore.runner RUN_DIR", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    _lower_priority()
    files = RunFiles(argv[0])
    try:
        config = RunConfig.from_dict(files.read_config())
    except KwsError as exc:
        files.update_status(state="failed", ended_at=now(), error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result = run_training(config, files.dir)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    print(f"{result.state}: {files.dir}")
    return 0


__all__ = ["Callbacks", "Heartbeat", "RunResult", "main", "run_training"]

if __name__ == "__main__":
    sys.exit(main())
