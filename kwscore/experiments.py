"""Experiments: a grid of runs that answers one question — "can augmentation make up for less data?".

An experiment queues one base :class:`~kwscore.recipes.RunConfig` once per training fraction ×
augmentation off/on (same model, same seed), and keeps a record of its runs in
``<runs folder>/_experiments/<id>.json`` (a folder whose leading ``_`` no run id can have). The Runs
page and the CLI both use these functions; nothing here imports streamlit.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kwscore.errors import KwsError
from kwscore.runfiles import ACTIVE_STATES, is_number, read_json, write_json

#: Experiments live beside the runs, in a folder whose leading "_" no run id can have.
EXPERIMENTS_FOLDER = "_experiments"
#: Training speed assumed for a model no run on this machine has finished yet (clips per second, 2 cores).
DEFAULT_CLIPS_PER_S = 800.0
#: Per run: start-up, decoding the clips, the test at the end (seconds, roughly).
RUN_OVERHEAD_S = 15.0
#: The question the experiment answers (its record keeps it).
QUESTION = "Can augmentation make up for less training data?"
#: The training fractions offered (Runs page), and those chosen until someone changes them (also the CLI's).
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
DEFAULT_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
#: At most this many fractions (twice as many runs) in one experiment.
MAX_FRACTIONS = 10


def experiments_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    from kwscore import jobs

    return jobs.runs_root(runs_dir) / EXPERIMENTS_FOLDER


def new_experiment_id(model: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{secrets.token_hex(2)}"


def save_experiment(record: dict, runs_dir: str | os.PathLike | None = None) -> Path:
    """Write ``_experiments/<id>.json`` (atomically) in the runs folder."""
    return write_json(experiments_dir(runs_dir) / f"{record['id']}.json", record)


def list_experiments(runs_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every experiment record, newest first; unreadable files are skipped. ``owner`` is ``""`` for
    records written before experiments had owners."""
    out = []
    folder = experiments_dir(runs_dir)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("runs"), list) and isinstance(record.get("id"), str):
            runs = [r for r in record["runs"] if isinstance(r, dict) and isinstance(r.get("run_id"), str)
                    and is_number(r.get("fraction"), 0.0, 1.0) and r.get("augment") in ("off", "on")]  # fmt: skip
            owner = record.get("owner") if isinstance(record.get("owner"), str) else ""
            out.append({**record, "runs": runs, "owner": owner,
                        "created": record.get("created") if is_number(record.get("created")) else None})  # fmt: skip
    return sorted(out, key=lambda r: (r.get("created") or 0.0, r["id"]), reverse=True)


def find_experiment(query: str | None = None, runs_dir: str | os.PathLike | None = None) -> dict:
    """The experiment record whose id is ``query``, or starts or ends with it (the newest when
    ``query`` is empty); :class:`KwsError` when none or several match."""
    records = list_experiments(runs_dir)
    if not records:
        raise KwsError(f"No experiments in {experiments_dir(runs_dir).parent} yet.")
    query = (query or "").strip()
    if not query:
        return records[0]
    exact = [r for r in records if r["id"] == query]
    found = exact or [r for r in records if r["id"].startswith(query) or r["id"].endswith(query)]
    if len(found) == 1:
        return found[0]
    shown = query if len(query) <= 80 else query[:80] + "…"
    if not found:
        raise KwsError(f"No experiment {shown!r}: see `kwscore experiment list`.")
    raise KwsError(f"{len(found)} experiments match {shown!r} ({', '.join(r['id'] for r in found[:5])}): give more of the id.")


def experiment_results(record: dict, infos: list | None = None, runs_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per run of an experiment, in its order (smallest fraction first, off then on):
    ``{"run_id", "fraction", "augment" ("off"/"on"), "info" (its RunInfo, None once deleted), "state"
    ("deleted" once deleted), "accuracy" (test accuracy of a succeeded run, else None)}``.

    ``infos``: the runs (default: :func:`kwscore.jobs.list_runs`)."""
    from kwscore import jobs

    infos = jobs.list_runs(runs_dir) if infos is None else infos
    by_id = {i.run_id: i for i in infos}
    rows = []
    for run in record["runs"]:
        info = by_id.get(run["run_id"])
        state = info.state if info is not None else "deleted"
        accuracy = info.test_accuracy if info is not None and state == "succeeded" else None
        rows.append({"run_id": run["run_id"], "fraction": float(run["fraction"]), "augment": run["augment"],
                     "info": info, "state": state, "accuracy": accuracy})  # fmt: skip
    return rows


def check_fractions(fractions) -> list[float]:
    """The training fractions of an experiment, sorted, each once; :class:`KwsError` (one line) unless
    each is a share of the training split above 0 and at most 1."""
    out = set()
    for f in fractions:
        if not is_number(f, 0.0, 1.0) or float(f) <= 0.0:
            raise KwsError(f"A training fraction is a share of the training split above 0 and at most 1, e.g. 0.25; "
                           f"got {str(f)[:40]}.")  # fmt: skip
        out.add(float(f))
    if not out:
        raise KwsError("Choose at least one training fraction, e.g. 0.1, 0.25, 0.5 and 1.")
    if len(out) > MAX_FRACTIONS:
        raise KwsError(f"At most {MAX_FRACTIONS} training fractions ({2 * MAX_FRACTIONS} runs) in one experiment; "
                       f"got {len(out)}.")  # fmt: skip
    return sorted(out)


def experiment_grid(base, fractions: list[float], augment: Any) -> str:
    """A fingerprint of an experiment's grid: the same runs queued twice have the same one."""
    settings = {k: v for k, v in base.to_dict().items() if k not in ("fraction", "augment")}
    text = json.dumps([settings, sorted(float(f) for f in fractions), augment], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def pending_twin(grid: str, runs_dir: str | os.PathLike | None = None) -> tuple[dict, int] | None:
    """``(record, runs still queued or training)`` of an experiment with this grid that has not
    finished yet, or ``None``: queuing the same grid again would only double the wait."""
    from kwscore import jobs

    root = jobs.runs_root(runs_dir)
    for record in list_experiments(root):
        if record.get("grid") != grid:
            continue
        active = sum(
            jobs.run_info(root / r["run_id"]).state in ACTIVE_STATES
            for r in record["runs"] if (root / r["run_id"]).is_dir()
        )  # fmt: skip
        if active:
            return record, active
    return None


def experiment_estimate(
    base,
    fractions: list[float],
    infos: list | None = None,
    *,
    dataset=None,
    report: Callable[[Any], dict | None] | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> dict:
    """Roughly how long an experiment's runs take here: ``{"runs", "seconds", "clips_per_s",
    "measured" (from earlier runs of the model), "train_clips", "ahead" (runs queued or training)}``.

    ``infos``: the runs (default: :func:`kwscore.jobs.list_runs`); ``dataset``: the base's
    :class:`~kwscore.data.info.DatasetInfo` if the caller has it (else scanned); ``report``: how to
    read a run's report.json (a page passes its cached reader).
    """
    from kwscore import jobs
    from kwscore.data.dataset import resolve_commands
    from kwscore.data.info import dataset_info

    infos = jobs.list_runs(runs_dir) if infos is None else infos
    report = report or jobs.read_report
    speeds = []
    for info in infos:
        if info.model == base.model and info.state == "succeeded":
            measured = report(info) or {}
            if is_number(measured.get("samples_per_s"), 1.0, 1e7):
                speeds.append(float(measured["samples_per_s"]))
    speed = statistics.median(speeds) if speeds else DEFAULT_CLIPS_PER_S
    try:
        info = dataset if dataset is not None else dataset_info(Path(base.data), with_durations=False)
        labels = resolve_commands(base.commands, info.words)
        train_clips = sum(info.clips["training"].get(w, 0) for w in labels)
    except (KwsError, OSError, TypeError, ValueError, AttributeError, KeyError):
        train_clips = 0
    epoch_clips = sum(max(1, round(train_clips * float(f))) for f in fractions) * 2  # off and on
    return {
        "runs": 2 * len(fractions), "seconds": epoch_clips * base.epochs / speed + 2 * len(fractions) * RUN_OVERHEAD_S,
        "clips_per_s": speed, "measured": bool(speeds), "train_clips": train_clips,
        "ahead": sum(i.state in ACTIVE_STATES for i in infos),
    }  # fmt: skip


def check_room(base, runs_dir: str | os.PathLike | None = None, *, teacher: bool = False) -> None:
    """Refuse (:class:`KwsError`, one friendly line) an experiment that the class's limits would stop
    half-way: its model/dataset/epochs, or the owner's queue already full (an experiment counts once)."""
    from kwscore import classroom

    classroom.check_launch(base, runs_dir, teacher=teacher)


def launch_experiment(
    base,
    fractions: list[float],
    augment: Any,
    question: str = QUESTION,
    progress: Callable[[int, int], None] | None = None,
    *,
    runs_dir: str | os.PathLike | None = None,
    teacher: bool = False,
) -> dict:
    """Queue ``base`` (a RunConfig) once per training fraction × augmentation off/on, same seed.
    Bad fractions or settings (:func:`check_fractions`, the runs' configs) are refused before
    anything is queued.

    ``augment`` is the recipe of the "on" runs (preset name or AugmentConfig dict). Smallest
    fractions first, so that the plot fills in from the left. The record (``owner``: the base's
    owner) is saved in ``_experiments/<id>.json`` after every launched run (a failure half-way, e.g.
    the class's limit on queued runs, keeps what started and raises :class:`KwsError`).
    ``progress(done, total)`` is called after each run is queued.
    """
    from kwscore import jobs

    fractions = check_fractions(fractions)
    if augment in (None, "none"):
        raise KwsError("The runs with augmentation need a recipe (e.g. recipe, light, standard or strong), not none.")
    for fraction in fractions:  # every run's settings, before any is queued
        replace(base, fraction=fraction, augment=augment).validate(check_data=False)
    root = jobs.runs_root(runs_dir)
    grid = experiment_grid(base, fractions, augment)
    twin = pending_twin(grid, root)
    if twin:  # e.g. Enter in a field submitted the form, then the button did again
        raise KwsError(
            f"The same experiment ({twin[0]['id']}) is already queued: {twin[1]} of its runs are still waiting or "
            "training. It was not queued a second time."
        )
    experiment_id = new_experiment_id(base.model)
    base = replace(base, experiment=experiment_id)
    check_room(base, root, teacher=teacher)
    record = {
        "id": experiment_id, "created": time.time(), "question": question,
        "owner": getattr(base, "owner", "") or "",
        "model": base.model, "seed": base.seed, "epochs": base.epochs, "data": base.data,
        "fractions": fractions, "augment": augment, "grid": grid, "runs": [],
    }  # fmt: skip
    try:
        for fraction in fractions:
            for setting in ("off", "on"):
                config = replace(base, fraction=fraction, augment="none" if setting == "off" else augment)
                run_id = jobs.launch(config, root, start_worker=False, teacher=teacher)
                record["runs"].append({"run_id": run_id, "fraction": float(fraction), "augment": setting})
                save_experiment(record, root)
                if progress:
                    progress(len(record["runs"]), 2 * len(fractions))
    finally:
        if record["runs"]:
            jobs.ensure_worker(root)
    return record
