"""The ``kwscore`` command line.

    kwscore data synth    [--root DIR] [--speakers N] [--words all|commands] [--seed S] [--force]
    kwscore data download [--root DIR] [--url URL] [--sha256 HEX]
    kwscore data info     [--root DIR]

    kwscore train   --model cnn|m5|m5-tutorial|m3|m11|m18|m34res --data ROOT [--commands 8|12|35|all] [--epochs N]
                    [--sample-rate HZ] [--n-fft N --win-length N --hop-length N --n-mels N --f-max HZ]
                    [--weight-decay WD] [--name NAME] [--notes TEXT]
                    [--augment none|light|standard|strong] [--fraction F] [--no-unknown] [--background] ...
    kwscore finetune RUN [--data ROOT] [--epochs N] [--lr LR] [--replay N] [--background]
    kwscore runs    [--runs-dir DIR]
    kwscore eval    RUN [--data ROOT] [--subset testing|validation|training|all] [--json]
    kwscore worker  [--runs-dir DIR] [--concurrency N]
    kwscore class   [--max-queued N] [--max-epochs N] [--max-minutes M] [--models m5,cnn] [--datasets NAME,...]
                    [--concurrency N] [--hide-answers | --show-answers] [--reset] [--teacher-key] [--runs-dir DIR]
    kwscore cancel  RUN [--runs-dir DIR]
    kwscore experiment launch [--model m5] [--fractions 0.1,0.25,0.5,1] [--augment recipe|light|standard|strong]
                              [--epochs N] [--seed S] [--fraction-by speaker|stratified] [--data ROOT] [--owner NAME]
                              [--dry-run]   (can augmentation make up for less data? 2 runs per fraction)
    kwscore experiment show [ID] [--json]   (test accuracy per fraction, without and with augmentation)
    kwscore experiment list
    kwscore detect  RUN FILE [--json] [--hop S] [--smooth S] [--threshold P] [--refractory S]  (any length)
    kwscore stream-eval RUN [--minutes 10] [--snr 10] [--data ROOT] [--wav F --truth T] [--target 1] [--store]
    kwscore export  RUN --format torchscript|onnx [--out DIR]
    kwscore notebook RUN -o run.ipynb [--epochs N]   (the run, step by step, as a Jupyter notebook)

Mistakes (a missing dataset, a bad parameter) are printed as one friendly line and exit code 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable

from kwscore import paths
from kwscore.errors import KwsError

Command = Callable[[argparse.Namespace], int]


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="clip", file=sys.stderr, dynamic_ncols=True)


# ---------------------------------------------------------------- data
def cmd_data_synth(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kwscore.data.synth import default_params, generate, is_complete

    defaults = default_params()
    keyword_takes = defaults.keyword_utterances if args.keyword_utterances is None else args.keyword_utterances
    params = replace(
        defaults, speakers=args.speakers or defaults.speakers, words=args.words,
        utterances=args.utterances or defaults.utterances, keyword_utterances=keyword_takes, seed=args.seed,
    )  # fmt: skip
    params.validate()
    root = args.root or paths.synth_root()
    if is_complete(root, params) and not args.force:
        print(f"A complete synthetic dataset with these settings is already at {root} (use --force to redo).")
        return 0
    bar = None

    def progress(done: int, total: int, message: str) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress_bar(total, "synthesising")
        bar.update(done - bar.n)
        bar.set_postfix_str(message)

    started = time.perf_counter()
    generate(root, params, force=args.force, progress=progress)
    if bar is not None:
        bar.close()
    print(f"Generated in {time.perf_counter() - started:.1f} s: {root}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from kwscore.data.download import REAL_URL, download

    root = args.root or paths.real_root()
    download(root, url=args.url or REAL_URL, sha256=args.sha256, progress=True)
    print(f"Speech Commands is ready at {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from kwscore.data.info import dataset_info

    info = dataset_info(args.root or paths.synth_root())
    print(info.format())
    return 1 if info.overlapping_speakers() else 0


# ---------------------------------------------------------------- training runs
#: `kwscore train` flags, derived from the fields they set: ``--<field-name>`` with the field's type,
#: default None (= the recipe's value). RunConfig fields, then the Mel front end's FeatureConfig fields.
TRAIN_RUN_FLAGS = {
    "commands": "8 (default), 12 (the standard task: 10 words + unknown + silence), 35, all, or a comma-separated "
    "list of words",
    "epochs": "epochs (default: the recipe's)",
    "augment": "recipe (the tuned augmentation), none, light, standard or strong (default: the recipe's)",
    "fraction": "share of the training split, e.g. 0.25 (default 1)",
    "fraction_by": "speaker (default) or stratified",
    "seed": "random seed (default 0)",
    "batch_size": "batch size (default: the recipe's)",
    "lr": "Adam's learning rate (default: the recipe's)",
    "weight_decay": "Adam's weight decay, e.g. 1e-4 as in the tutorial (default: the recipe's)",
    "scheduler": "step, onecycle, cosine or constant (default: the recipe's)",
    "sample_rate": "rate the model listens at, e.g. 8000 (waveform models; for the cnn, its front end's rate)",
    "threads": "PyTorch threads (default: one per core)",
    "max_minutes": "stop training after this long, then test",
    "name": "a name for the run (labels, `kwscore runs`; other commands accept it in place of the id)",
    "notes": "notes on the run",
    "owner": "the student the run is for (a class: the teacher's limits apply; only they or the teacher "
    "may cancel it)",
}
TRAIN_FEATURE_FLAGS = {
    "n_fft": "FFT size of the cnn's Mel front end, any whole number (torchaudio's default 400)",
    "win_length": "window, in samples (e.g. 400 = 25 ms at 16 kHz)",
    "hop_length": "hop, in samples (e.g. 160 = 10 ms at 16 kHz)",
    "n_mels": "Mel bands (torchaudio's default 128)",
    "f_min": "bottom of the Mel scale, Hz",
    "f_max": "top of the Mel scale, Hz",
}


def _field_type(cls, name: str):
    """The argparse type of a dataclass field: int, float or str (``float | None`` -> float)."""
    import typing

    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return next((t for t in (int, float, str) if t in args), str)


def _add_field_flags(p: argparse.ArgumentParser) -> None:
    from kwscore.features import FeatureConfig
    from kwscore.recipes import RunConfig

    for cls, flags in ((RunConfig, TRAIN_RUN_FLAGS), (FeatureConfig, TRAIN_FEATURE_FLAGS)):
        for name, help in flags.items():
            p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_field_type(cls, name), help=help)


def _config_from_args(args: argparse.Namespace):
    from kwscore.choices import augment_value
    from kwscore.recipes import default_config
    from kwscore.runfiles import parse_json

    try:
        model_kwargs = parse_json(args.model_kwargs) if args.model_kwargs else None
    except ValueError as exc:  # (deep nesting included)
        raise KwsError(f"--model-kwargs must be JSON, e.g. '{{\"n_channel\": 32}}' ({exc}).") from exc
    given = {name: getattr(args, name, None) for name in TRAIN_RUN_FLAGS}
    given = {name: value for name, value in given.items() if value is not None}
    if "augment" in given:
        given["augment"] = augment_value(given["augment"], data=str(args.data) if args.data else None)
    front = {name: getattr(args, name, None) for name in TRAIN_FEATURE_FLAGS}
    front = {name: value for name, value in front.items() if value is not None}
    base = default_config(args.model)
    if base.representation == "mel":
        features = {**base.features, **front}
        if "sample_rate" in given:
            features["sample_rate"] = given.pop("sample_rate")
        if features:
            given["features"] = features
    elif front:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in front)
        raise KwsError(f"{flags} set the Mel front end of the cnn; {base.model} reads the raw waveform "
                       "(give it --sample-rate instead).")  # fmt: skip
    config = default_config(
        args.model,
        data=str(args.data) if args.data else None,
        mix=[str(m) for m in args.mix] if args.mix else None,
        model_kwargs=model_kwargs,
        unknown=False if args.no_unknown else None,
        **given,
    )
    if config.representation == "waveform" and "stride" not in (model_kwargs or {}):
        from dataclasses import replace

        from kwscore.choices import fit_stride

        kwargs, note = fit_stride(config.model, config.model_kwargs, config.model_rate)
        if note:  # e.g. 4 kHz: the recipe's stride needs more samples than one second has
            print(f"note: {note}", file=sys.stderr)
            config = replace(config, model_kwargs=kwargs)
    return config.validate()


class _TrainProgress:
    """tqdm bar over iterations + one summary line per epoch (the Callbacks of a foreground run)."""

    def __init__(self) -> None:
        self.bar = None
        self.decoding: dict = {}  # one tqdm bar per split while its clips are decoded

    def on_decode(self, subset: str, done: int, total: int) -> None:
        bar = self.decoding.get(subset)
        if bar is None:
            bar = self.decoding[subset] = _progress_bar(total, f"decoding {subset}")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def on_start(self, info: dict) -> None:
        from tqdm import tqdm

        sel = info["train_selection"]
        print(
            f"{info['n_train']} training clips ({sel['fraction']:.0%} by {sel['by']}, {sel['speakers']} speakers), "
            f"{info['n_val']} validation clips, {len(info['labels'])} words, {info['n_params']:,} parameters, "
            f"{info['device']} x {info['threads']} thread(s)",
            flush=True,
        )
        self.bar = tqdm(total=info["total_steps"], desc="training", unit="it", file=sys.stderr, dynamic_ncols=True)

    def on_iteration(self, record: dict) -> None:
        self.bar.update(1)
        self.bar.set_postfix(epoch=record["epoch"], loss=f"{record['loss']:.3f}", refresh=False)

    def on_epoch(self, record: dict) -> None:
        line = (
            f"epoch {record['epoch']}: train loss {record['train_loss']:.3f}, val accuracy "
            f"{record['val_accuracy']:.1%}, lr {record['lr']:.2g}, {record['samples_per_s']:.0f} clips/s"
            + (" (best)" if record.get("best") else "")
        )
        self.bar.write(line, file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    return _train(_config_from_args(args), args)


def cmd_finetune(args: argparse.Namespace) -> int:
    from kwscore import jobs
    from kwscore.recipes import finetune_config

    folder = _run_folder(args.run, args.runs_dir)
    recordings = args.data or paths.user_root()
    config = finetune_config(folder, recordings, jobs.runs_root(args.runs_dir), epochs=args.epochs, lr=args.lr,
                             replay=args.replay)  # fmt: skip
    print(f"fine-tuning {folder.name} on {recordings} ({config.epochs} epochs, lr {config.lr:g}, "
          f"{config.replay} replayed clips per word)")  # fmt: skip
    return _train(config, args)


def _train(config, args: argparse.Namespace) -> int:
    """Run ``config`` in the foreground with a progress bar, or queue it (``--background``)."""
    from kwscore import jobs
    from kwscore.runner import Callbacks, run_training

    if args.background:
        run_id = jobs.launch(config, args.runs_dir)
        print(f"queued {run_id}; follow it with `kwscore runs`, stop it with `kwscore cancel {run_id}`")
        print(jobs.run_dir(run_id, args.runs_dir))
        return 0
    run_id = jobs.create_run(config, args.runs_dir, foreground=True)  # trained here: no worker takes it
    folder = jobs.run_dir(run_id, args.runs_dir)
    print(f"run {run_id}: {config.model} on {config.data}", flush=True)
    shown = _TrainProgress()
    try:
        result = run_training(config, folder, Callbacks(shown.on_start, shown.on_iteration, shown.on_epoch,
                                                        shown.on_decode))
    finally:
        shown.close()
    if result.state == "succeeded":
        r = result.report
        print(
            f"test accuracy {r['accuracy']:.1%} ({r['n_correct']}/{r['n_total']}), best epoch {r['best_epoch']} "
            f"(val {r['best_val_accuracy']:.1%}), {r['duration_s']:.0f} s"
        )
    else:
        print(f"run {result.state}")
    print(folder)
    return 0


def _fmt_pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _fmt_duration(seconds) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kwscore import jobs, pretrained

    try:  # the ready model shipped with kwscore joins the runs once (KWS_READY_MODEL=0: never)
        for run_id in pretrained.install(args.runs_dir):
            print(f"Added {run_id}. {pretrained.ready_line(pretrained.about(jobs.run_dir(run_id, args.runs_dir)))}",
                  file=sys.stderr)  # fmt: skip
    except KwsError as exc:
        print(f"warning: {exc}", file=sys.stderr)
    runs = jobs.list_runs(args.runs_dir)
    revived = jobs.revive_worker(args.runs_dir, runs)  # queued runs must not wait for a dead worker
    if revived:
        print(f"Runs were queued but no worker was alive: started one (pid {revived}).", file=sys.stderr)
    if not runs:
        print(f"No runs in {jobs.runs_root(args.runs_dir)} yet. Start one with `kwscore train --model m5`.")
        return 0
    from kwscore.runlabels import settings

    header = ("id", "name", "owner", "status", "model", "rate", "data", "epochs", "best val", "test", "duration")
    rows = []
    place = _queue_places(args.runs_dir, runs)
    for r in runs:
        data = f"{Path(r.data).name}/{r.commands}" if r.data else "-"
        name = str((r.config or {}).get("name") or "-")[:30]
        rate = settings(r.config)["rate"] if r.config else "-"
        rows.append((r.run_id, name, pretrained.owner_of(r) or "-", _state_text(r, place), r.model or "-", rate, data,
                     _epochs_text(r), _fmt_pct(r.best_val_accuracy), _fmt_pct(r.test_accuracy),
                     _fmt_duration(r.duration_s)))  # fmt: skip
    _print_table(header, rows)
    for r in runs:
        if r.error:
            print(f"{r.run_id}: {r.error}")
    return 0


def _queue_places(runs_dir, runs: list) -> dict[str, int]:
    """``{run_id: place in the queue}`` of the queued runs (1 = next to start)."""
    from kwscore import jobs

    return {e.run_id: e.position for e in jobs.queue_order(runs_dir, runs)}


def _state_text(run, place: dict[str, int]) -> str:
    """``queued #3`` (with :func:`_queue_places`), ``running on HOST``, ``succeeded``..."""
    state = f"queued #{place[run.run_id]}" if run.run_id in place else run.state
    return state + (f" on {run.host}" if run.state == "running" and run.host else "")


def _epochs_text(run) -> str:
    return f"{run.epoch or 0}/{run.epochs}" if run.epochs else "-"


def _print_table(header: tuple, rows: list[tuple]) -> None:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _run_folder(run: str, runs_dir):
    """RUN on the command line: a run folder, a run id, a unique prefix/suffix of one, or a run name."""
    from kwscore.runlabels import resolve_run

    return resolve_run(run, runs_dir)


def cmd_eval(args: argparse.Namespace) -> int:
    from kwscore.evaluation import evaluate, load_run_model, no_keyword_text
    from kwscore.labels import display_label, is_keyword, task_dataset

    folder = _run_folder(args.run, args.runs_dir)
    model, transform, labels, config = load_run_model(folder)
    data = [args.data] if args.data else [config.get("data"), *(config.get("mix") or [])]
    if not data[0]:
        raise KwsError("This run does not say which dataset it used: pass --data ROOT.")
    subset = None if args.subset == "all" else args.subset
    dataset = task_dataset(data, subset, labels, int(config.get("seed") or 0))
    report = evaluate(model, dataset, transform, labels)
    if args.json:
        keys = ("accuracy", "n_correct", "n_total", "labels", "per_class_accuracy", "per_class_total", "confusion",
                "no_keyword")
        print(json.dumps({k: report[k] for k in keys}, indent=1))
        return 0
    print(f"accuracy {report['accuracy']:.1%} ({report['n_correct']}/{report['n_total']}) on the {args.subset} clips of {' + '.join(map(str, data))}")
    for label, acc in report["per_class_accuracy"].items():
        meaning = "" if is_keyword(label) else f"  no keyword: {display_label(label)}"
        print(f"  {label:>10}  {_fmt_pct(acc):>6}  ({report['per_class_total'][label]} clips){meaning}")
    if report["no_keyword"]:
        print(no_keyword_text(report["no_keyword"]))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from kwscore import jobs

    if not jobs.run_worker(args.runs_dir, args.concurrency):
        pid = jobs.worker_pid(args.runs_dir)
        print(f"A worker (pid {pid}) already serves {jobs.runs_root(args.runs_dir)}.")
    return 0


def cmd_class(args: argparse.Namespace) -> int:
    """Show the class limits of the runs folder; change those given on the command line."""
    import dataclasses

    from kwscore import classroom, jobs

    root = jobs.runs_root(args.runs_dir)
    limits = classroom.ClassLimits() if args.reset else classroom.load_limits(root)
    changes = {
        "max_queued_per_student": args.max_queued, "max_epochs": args.max_epochs, "max_minutes": args.max_minutes,
        "models": args.models, "datasets": args.datasets, "concurrency": args.concurrency,
        "hide_answers": args.hide_answers,
    }  # fmt: skip
    changes = {k: v for k, v in changes.items() if v is not None}
    for key in ("models", "datasets"):  # "all" (or nothing) lifts the limit
        if key in changes:
            names = tuple(n.strip() for n in changes[key].split(",") if n.strip())
            changes[key] = None if names in ((), ("all",)) else names
    for key in ("max_epochs", "max_minutes", "concurrency"):  # 0 lifts the limit
        if changes.get(key) == 0:
            changes[key] = None
    if changes or args.reset:
        limits = dataclasses.replace(limits, **changes)
        classroom.save_limits(limits, root)
        print(f"saved {classroom.class_file(root)}")
    for key, value in limits.to_dict().items():
        shown = "all" if value is None and key in ("models", "datasets") else value
        shown = "no limit" if shown is None and key not in ("concurrency",) else shown
        shown = f"default ({classroom.default_concurrency(root)})" if key == "concurrency" and value is None else shown
        print(f"{key:>24}: {', '.join(shown) if isinstance(shown, list) else shown}")
    if args.teacher_key:
        print(f"{'teacher key':>24}: {classroom.teacher_key()}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from kwscore import jobs

    folder = _run_folder(args.run, args.runs_dir)
    state = jobs.cancel(folder, wait_s=jobs.CANCEL_GRACE_S)
    print(f"{folder.name}: {state}")
    return 0


# ---------------------------------------------------------------- experiments
def _fractions(text: str) -> list[float]:
    """``--fractions 0.1,0.25,50%`` -> ``[0.1, 0.25, 0.5]`` (checked by kwscore.experiments)."""
    from kwscore.experiments import check_fractions

    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(float(part[:-1]) / 100 if part.endswith("%") else float(part))
        except ValueError:
            raise KwsError(f"--fractions takes shares of the training split separated by commas, e.g. 0.1,0.25,0.5,1 "
                           f"or 10%,25%; got {part[:40]!r}.") from None  # fmt: skip
    return check_fractions(values)


def _when(timestamp) -> str:
    """``2026-12-02 07:15`` (local time), ``-`` when unknown or out of range."""
    from datetime import datetime

    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def _pct_text(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def cmd_experiment_launch(args: argparse.Namespace) -> int:
    """Queue the Runs page's experiment: the model once per training fraction × augmentation off/on."""
    from pathlib import Path

    from kwscore import experiments
    from kwscore.choices import AUGMENT_LAB, augment_value
    from kwscore.recipes import default_config
    from kwscore.runlabels import augment_text

    fractions = _fractions(args.fractions) if args.fractions is not None else list(experiments.DEFAULT_FRACTIONS)
    if args.augment == AUGMENT_LAB:
        raise KwsError("The Augmentation lab's recipe lives in the dashboard: give --augment recipe, light, standard "
                       "or strong here.")  # fmt: skip
    data = str(Path(args.data).expanduser().absolute()) if args.data else None
    augment = augment_value(args.augment, data=data)
    base = default_config(args.model, data=data, epochs=args.epochs, seed=args.seed, fraction_by=args.fraction_by,
                          owner=args.owner).validate()  # fmt: skip
    est = experiments.experiment_estimate(base, fractions, runs_dir=args.runs_dir)
    speed = (f"{est['clips_per_s']:,.0f} clips/s, measured on earlier {base.model} runs" if est["measured"]
             else f"about {est['clips_per_s']:,.0f} clips/s, a guess: no {base.model} run has finished here yet")  # fmt: skip
    ahead = f"; they start after the {est['ahead']} run(s) already queued or training" if est["ahead"] else ""
    print(f"{est['runs']} runs of {base.model}: training fractions {', '.join(map(_pct_text, fractions))} of "
          f"{est['train_clips']:,} training clips, each without augmentation and with {augment_text(augment)}; "
          f"{base.epochs} epochs each, seed {base.seed}. Roughly {_fmt_duration(est['seconds'])} of training "
          f"in all ({speed}){ahead}.")  # fmt: skip
    if args.dry_run:
        print("nothing queued (--dry-run)")
        return 0
    record = experiments.launch_experiment(base, fractions, augment, runs_dir=args.runs_dir)
    _print_table(("fraction", "augmentation", "run"),
                 [(_pct_text(r["fraction"]), r["augment"], r["run_id"]) for r in record["runs"]])  # fmt: skip
    print(f"queued experiment {record['id']}{' for ' + record['owner'] if record['owner'] else ''}; follow it with "
          f"`kwscore experiment show {record['id']}`")  # fmt: skip
    return 0


def cmd_experiment_show(args: argparse.Namespace) -> int:
    """An experiment's runs and test accuracy per training fraction, without and with augmentation."""
    from kwscore import experiments, jobs
    from kwscore.runfiles import ACTIVE_STATES
    from kwscore.runlabels import augment_text

    record = experiments.find_experiment(args.experiment, args.runs_dir)
    runs = jobs.list_runs(args.runs_dir)
    rows = experiments.experiment_results(record, runs)
    place = _queue_places(args.runs_dir, runs)
    if args.json:
        keys = ("id", "question", "owner", "created", "model", "seed", "epochs", "data", "fractions", "augment")
        out = {k: record.get(k) for k in keys}
        out["runs"] = [{"run_id": r["run_id"], "fraction": r["fraction"], "augment": r["augment"], "state": r["state"],
                        "test_accuracy": r["accuracy"]} for r in rows]  # fmt: skip
        print(json.dumps(out, indent=1))
        return 0
    print(f"experiment {record['id']}: {record.get('model', '?')}, {record.get('epochs', '?')} epochs, seed "
          f"{record.get('seed', 0)}, augmentation {augment_text(record.get('augment'))} when on; owner "
          f"{record['owner'] or '-'}")  # fmt: skip
    if record.get("question"):
        print(record["question"])
    cells: dict[float, dict[str, str]] = {}
    accuracy: dict[float, dict[str, float]] = {}
    for r in rows:
        info = r["info"]
        text = _fmt_pct(r["accuracy"]) if r["accuracy"] is not None else "deleted" if info is None else (
            f"running {_epochs_text(info)}" if info.state == "running" else _state_text(info, place))  # fmt: skip
        cells.setdefault(r["fraction"], {})[r["augment"]] = text
        if r["accuracy"] is not None:
            accuracy.setdefault(r["fraction"], {})[r["augment"]] = r["accuracy"]
    table = []
    for fraction, cell in cells.items():
        both = accuracy.get(fraction, {})
        gain = f"{100 * (both['on'] - both['off']):+.1f} points" if len(both) == 2 else "-"
        table.append((_pct_text(fraction), cell.get("off", "-"), cell.get("on", "-"), gain))
    print()
    _print_table(("train data", "augmentation off", "augmentation on", "difference"), table)
    print()
    _print_table(("fraction", "augmentation", "run", "status", "epochs", "test"),
                 [(_pct_text(r["fraction"]), r["augment"], r["run_id"], "deleted" if r["info"] is None else
                   _state_text(r["info"], place), "-" if r["info"] is None else _epochs_text(r["info"]),
                   _fmt_pct(r["accuracy"])) for r in rows])  # fmt: skip
    finished = sum(r["state"] not in ACTIVE_STATES for r in rows)
    print(f"{finished} of {len(rows)} runs finished ({sum(r['accuracy'] is not None for r in rows)} with a test accuracy)")
    return 0


def cmd_experiment_list(args: argparse.Namespace) -> int:
    from kwscore import experiments, jobs
    from kwscore.runfiles import ACTIVE_STATES

    records = experiments.list_experiments(args.runs_dir)
    if not records:
        print(f"No experiments in {jobs.runs_root(args.runs_dir)} yet. Queue one with `kwscore experiment launch`.")
        return 0
    states = {i.run_id: i.state for i in jobs.list_runs(args.runs_dir)}
    rows = []
    for e in records:
        done = sum(states.get(r["run_id"], "deleted") not in ACTIVE_STATES for r in e["runs"])
        created = _when(e["created"])
        rows.append((e["id"], e["owner"] or "-", str(e.get("model", "?")), created, f"{done}/{len(e['runs'])}",
                     ", ".join(_pct_text(r) for r in sorted({r["fraction"] for r in e["runs"]}))))  # fmt: skip
    _print_table(("id", "owner", "model", "created", "finished", "fractions"), rows)
    return 0


class _SecondsBar:
    """A tqdm bar per stage ("checking", "listening") over seconds of audio; shown after 1 s only."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, done: float, total: float) -> None:
        from tqdm import tqdm

        if stage not in self.bars:
            for bar in self.bars.values():
                bar.close()
            self.bars[stage] = tqdm(total=round(total), desc=stage, unit="s", file=sys.stderr, dynamic_ncols=True,
                                    delay=1.0)  # fmt: skip
        bar = self.bars[stage]
        bar.total = max(bar.total, round(total))
        bar.update(round(done) - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def cmd_detect(args: argparse.Namespace) -> int:
    from kwscore.inference import Predictor
    from kwscore.longaudio import detect_recording, open_recording

    folder = _run_folder(args.run, args.runs_dir)
    cfg = _stream_config(args)
    bar = _SecondsBar()
    try:
        rec = open_recording(args.file, progress=bar)  # checked before it is read: any length, constant memory
        result = detect_recording(rec, Predictor.from_run(folder), cfg, progress=bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_list()))
        return 0
    print(f"{rec.name}: {rec.duration:.2f} s, {rec.sample_rate} Hz, {rec.channels} channel(s); {rec.describe()}")
    for note in rec.notes:
        print(f"note: {note}")
    if not result.detections:
        print(f"no keyword found (threshold {cfg.threshold:g}; noise floor {result.floor_db:.0f} dBFS)")
    for d in result.detections:
        print(f"{d.start:7.2f} s - {d.end:6.2f} s  {d.word:<12} {d.score:.2f}")
    return 0


def _stream_config(args: argparse.Namespace):
    from kwscore.streaming import StreamConfig

    return StreamConfig(hop=args.hop, smooth=args.smooth, threshold=args.threshold, refractory=args.refractory,
                        gate_db=args.gate_db).validate()  # fmt: skip


def cmd_stream_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kwscore import audio, streameval
    from kwscore.inference import Predictor
    from kwscore.longaudio import detect_recording, open_recording

    folder = _run_folder(args.run, args.runs_dir)
    cfg = _stream_config(args)
    if bool(args.wav) != bool(args.truth):
        raise KwsError("--wav and --truth go together: a recording and the list of the words in it.")
    if not 0 < args.target <= 3600:
        raise KwsError(f"--target is false alarms per hour, e.g. 1; got {args.target}.")
    predictor = Predictor.from_run(folder)
    bar = _SecondsBar()
    try:
        if args.wav:
            truth = streameval.read_truth(args.truth)
            rec = open_recording(args.wav, progress=bar)
            result = detect_recording(rec, predictor, cfg, progress=bar)
            source = {"wav": str(Path(args.wav).expanduser().resolve()), "truth": str(args.truth)}
            evaluation, waveform = streameval.evaluate(result, truth, source, args.target), None
        else:
            data = args.data or predictor.config.get("data")
            if not data:
                raise KwsError("This run does not say which dataset it used: pass --data ROOT.")
            print(f"building a {args.minutes:g}-min stream from the testing split of {data} ...", file=sys.stderr, flush=True)
            comp = streameval.build_stream(data, predictor.labels, args.minutes, args.snr, others=args.others, seed=args.seed)
            source = {"data": str(data), "minutes": args.minutes, "snr_db": args.snr, "others": args.others,
                      "seed": args.seed, "noise": comp.noise, "words": len(comp.words)}  # fmt: skip
            if args.save_wav:
                wav = Path(args.save_wav).expanduser()
                audio.save_wav(wav, comp.waveform, comp.sample_rate)
                wav.with_suffix(".json").write_text(json.dumps([w.to_dict() for w in comp.words], indent=1))
            total = comp.waveform.shape[-1] / comp.sample_rate
            evaluation, _ = streameval.evaluate_stream(predictor, comp, cfg, source=source, target_fa_per_hour=args.target,
                                                       progress=lambda share: bar("listening", share * total, total))  # fmt: skip
            waveform = comp.waveform
    finally:
        bar.close()
    report = streameval.save(folder, evaluation, waveform)
    if args.store and evaluation.recommended is not None:
        streameval.store_threshold(folder, evaluation.recommended["threshold"],
                                   f"stream-eval: <= {args.target:g} false alarms per hour")  # fmt: skip
    if args.json:
        print(json.dumps(evaluation.to_json()))
        return 0
    print(_stream_eval_text(evaluation, cfg))
    if args.store:
        print("stored as the run's streaming threshold (Try it and Live start from it)" if evaluation.recommended
              else "nothing stored: no threshold meets the target")  # fmt: skip
    print(f"report: {report}")
    return 0


def _stream_eval_text(ev, cfg) -> str:
    """The figures of a streaming evaluation as a few lines and two small tables."""
    src, s = ev.source, ev.at_threshold
    if "data" in src:
        lines = [f"stream: {ev.duration / 60:.1f} min of the testing split of {src['data']}: {s['keywords']} keywords and "
                 f"{s['non_keywords']} other words ({src['others']:.0%} wanted), about 3 s apart, in {src['noise']} "
                 f"at {src['snr_db']:g} dB SNR (seed {src['seed']})"]  # fmt: skip
    else:
        lines = [f"recording: {src['wav']} ({ev.duration / 60:.1f} min), {s['keywords']} keywords and {s['non_keywords']} other words"]
    lines.append(f"detector: 1-s windows every {cfg.hop:g} s, smoothing {cfg.smooth:g} s, refractory {cfg.refractory:g} s, "
                 f"gate {cfg.gate_db:g} dB; a detection counts within ±0.5 s of a word")  # fmt: skip
    lines.append("")
    lines.append(f"at threshold {cfg.threshold:g}: recall {s['recall']:.1%} ({s['hits']}/{s['keywords']}), wrong word "
                 f"{s['wrong_rate']:.1%} ({s['wrong']}), missed {s['missed']}, false alarms {s['false_alarms']} "
                 f"({s['fa_per_hour']:.1f} per hour)")  # fmt: skip
    lines.append(f"  {'word':<10} {'said':>5} {'hits':>5} {'wrong':>6} {'recall':>7} {'false alarms':>13}")
    for word, v in s["per_word"].items():
        recall = "-" if v["recall"] is None else f"{v['recall']:.0%}"
        lines.append(f"  {word:<10} {v['said']:>5} {v['hits']:>5} {v['wrong']:>6} {recall:>7} {v['false_alarms']:>13}")
    lines.append("")
    lines.append("DET curve: miss rate against false alarms per hour, over thresholds")
    lines.append(f"  {'threshold':>9} {'recall':>7} {'miss':>6} {'false alarms':>13} {'per hour':>9}")
    curve = ev.curve
    step = max(1, len(curve) // 12)
    for p in curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else []):
        lines.append(f"  {p['threshold']:>9.3f} {p['recall']:>7.1%} {p['miss']:>6.1%} {p['false_alarms']:>13} {p['fa_per_hour']:>9.1f}")
    lines.append("")
    r = ev.recommended
    if r is None:
        lines.append(f"no threshold keeps false alarms at or below {ev.target_fa_per_hour:g} per hour on this stream")
    else:
        rs = r["score"]
        lines.append(f"recommended for <= {ev.target_fa_per_hour:g} false alarm(s) per hour: threshold {r['threshold']:.3f} "
                     f"-> recall {rs['recall']:.1%}, wrong word {rs['wrong_rate']:.1%}, {rs['false_alarms']} false alarm(s) "
                     f"({rs['fa_per_hour']:.1f} per hour)")  # fmt: skip
        if ev.hours < 1 and ev.target_fa_per_hour < 1 / ev.hours:
            lines.append(f"  (a {ev.duration / 60:.0f}-min stream can only show 0 or >= {1 / ev.hours:.0f} false alarms "
                         "per hour: use --minutes 60 or more for a finer figure)")  # fmt: skip
    return "\n".join(lines)


def cmd_notebook(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kwscore.notebook import run_notebook, write_notebook

    folder = _run_folder(args.run, args.runs_dir)
    if args.epochs is not None and args.epochs < 1:
        raise KwsError(f"--epochs must be at least 1, got {args.epochs}.")
    out = Path(args.out or f"{folder.name}.ipynb").expanduser()
    if out.suffix != ".ipynb":
        raise KwsError(f"{out} is not a notebook file name: end it with .ipynb.")
    write_notebook(run_notebook(folder, epochs=args.epochs), out)
    print(f"{out}: run {folder.name} as a notebook (open it with Jupyter, or `jupyter nbconvert --execute`)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kwscore.export import export_run

    folder = _run_folder(args.run, args.runs_dir)
    result = export_run(folder, args.format, args.out)
    meta = result.metadata
    print(f"{result.path} ({result.path.stat().st_size / 1024:.0f} KiB) and {result.metadata_path.name}")
    print(f"input: waveform float32 [batch, 16000] (1 s at 16 kHz) -> probabilities [batch, {len(meta['labels'])}]"
          f" over {', '.join(meta['labels'])}")  # fmt: skip
    print(f"checked against the checkpoint: max difference {result.max_abs_diff:.1e} "
          f"on {meta['parity']['inputs']} inputs (in {result.seconds:.1f} s)")  # fmt: skip
    return 0


# ---------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (``error: ...``, exit code 2) like every other mistake."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _detector_arguments(p: argparse.ArgumentParser) -> None:
    """The streaming detector's settings, with the defaults of kwscore.streaming.StreamConfig (not
    imported here: it would load torch for every command)."""
    p.add_argument("--hop", type=float, default=0.1, help="seconds between 1-s windows (default 0.1)")
    p.add_argument("--smooth", type=float, default=0.3, help="moving average of the probabilities, s (default 0.3)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability needed to fire (default 0.5)")
    p.add_argument("--refractory", type=float, default=0.8, help="quiet time after a detection, s (default 0.8)")
    p.add_argument("--gate-db", type=float, default=12.0, help="sound must be this far above the noise floor, dB (default 12)")


def build_parser(train_flags: bool = True) -> argparse.ArgumentParser:
    """The argument parser. ``train_flags=False`` leaves out `train`'s field flags, whose types come
    from RunConfig/FeatureConfig (importing them loads torch, which the other commands do not need)."""
    parser = _Parser(prog="kwscore", description="KWS Studio: keyword spotting, from data to model.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="create, download and inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="generate the embedded synthetic Speech Commands (espeak-ng)")
    p.add_argument("--root", help=f"dataset root (default {paths.synth_root()})")
    p.add_argument("--speakers", type=int, default=None, help="number of synthetic speakers (default 120, or KWS_SYNTH_SPEAKERS)")
    p.add_argument("--words", choices=["all", "commands"], default="all", help="all 35 words or the 8 commands")
    p.add_argument("--utterances", type=int, default=None, help="takes per speaker of each word (default 1)")
    p.add_argument("--keyword-utterances", type=int, default=None,
                   help="takes per speaker of each of the 10 keywords (default 4; 0: as --utterances)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="regenerate even if a complete dataset exists")
    p.set_defaults(func=cmd_data_synth)

    p = data.add_parser("download", help="download the real Speech Commands v0.02 (2.3 GB)")
    p.add_argument("--root", help=f"dataset root (default {paths.real_root()})")
    p.add_argument("--url", help="archive URL (default: the official one); file:// works")
    p.add_argument("--sha256", help="expected SHA-256 of the archive (default: the official one)")
    p.set_defaults(func=cmd_data_download)

    p = data.add_parser("info", help="words, clips and speakers per split, durations")
    p.add_argument("--root", help=f"dataset root (default {paths.synth_root()})")
    p.set_defaults(func=cmd_data_info)

    runs_help = f"runs folder (default {paths.runs_dir()}, or KWS_RUNS_DIR)"
    p = sub.add_parser("train", help="train a model with its tuned recipe (foreground, or --background)")
    p.add_argument("--model", default="m5", help="cnn, m5, m5-tutorial (M5 exactly as the PyTorch tutorial), embed "
                   "(a head on a pretrained speech embedding), m3, m11, m18 or m34res (default m5, the tuned recipe)")  # fmt: skip
    p.add_argument("--data", help=f"dataset root (default: the embedded set, {paths.synth_root()})")
    p.add_argument("--no-unknown", action="store_true",
                   help="no _unknown_ (other words) and _silence_ classes (added by default when the commands "
                   "are only some of the dataset's words)")
    p.add_argument("--mix", action="append", metavar="ROOT",
                   help="another dataset whose clips join every split, e.g. your recordings (repeatable)")
    if train_flags:  # --epochs, --lr, --n-fft…: one per RunConfig / FeatureConfig field (TRAIN_*_FLAGS)
        _add_field_flags(p)
    p.add_argument("--model-kwargs", help='model options as JSON, e.g. \'{"n_channel": 64}\'')
    p.add_argument("--runs-dir", help=runs_help)
    p.add_argument("--background", action="store_true", help="queue the run and return at once")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="fine-tune a finished run on your own recordings (about a minute)")
    p.add_argument("run", help="run id (see `kwscore runs`) or run folder")
    p.add_argument("--data", help=f"your recordings (default {paths.user_root()})")
    p.add_argument("--epochs", type=int, help="epochs (default 5)")
    p.add_argument("--lr", type=float, help="learning rate (default: a tenth of the run's)")
    p.add_argument("--replay", type=int, help="clips per word of the run's own training data mixed in (default 20)")
    p.add_argument("--runs-dir", help=runs_help)
    p.add_argument("--background", action="store_true", help="queue the run and return at once")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("runs", help="list the training runs")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("eval", help="evaluate a run's best checkpoint on a dataset")
    p.add_argument("run", help="run id (see `kwscore runs`) or run folder")
    p.add_argument("--data", help="dataset root (default: the one the run trained on)")
    p.add_argument("--subset", choices=["testing", "validation", "training", "all"], default="testing")
    p.add_argument("--json", action="store_true", help="print accuracy, per-class accuracy and confusion as JSON")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("worker", help="run queued trainings (the dashboard starts one by itself)")
    p.add_argument("--runs-dir", help=runs_help)
    p.add_argument("--concurrency", type=int,
                   help="runs at the same time (default: KWS_WORKERS, else the class limit, else cores - 1)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("class", help="show or set the class limits (students' runs) and the teacher key")
    p.add_argument("--max-queued", type=int, help="runs a student may have queued or training at once")
    p.add_argument("--max-epochs", type=int, help="most epochs per run (0: no limit)")
    p.add_argument("--max-minutes", type=float, help="most minutes per run (0: no limit)")
    p.add_argument("--models", help="models students may use, comma-separated (all: any)")
    p.add_argument("--datasets", help="dataset folder names students may use, comma-separated (all: any)")
    p.add_argument("--concurrency", type=int, help="runs at once per machine (0: cores - 1)")
    answers = p.add_mutually_exclusive_group()
    answers.add_argument("--hide-answers", dest="hide_answers", action="store_const", const=True,
                         help="the worksheet hides its answers")
    answers.add_argument("--show-answers", dest="hide_answers", action="store_const", const=False)
    p.add_argument("--reset", action="store_true", help="back to the default limits (then apply the flags given)")
    p.add_argument("--teacher-key", action="store_true", help="print the teacher key")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_class)

    p = sub.add_parser("cancel", help="stop a queued or running run")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_cancel)

    experiment = sub.add_parser("experiment", help="can augmentation make up for less data? queue a grid of runs, "
                                "see their results").add_subparsers(dest="experiment_command", required=True)  # fmt: skip
    p = experiment.add_parser("launch", help="queue the model once per training fraction, without and with "
                              "augmentation (same seed), as the Runs page's experiment does")  # fmt: skip
    p.add_argument("--model", default="m5", help="cnn, m5, m5-tutorial, embed, m3, m11, m18 or m34res, with its "
                   "tuned recipe (default m5)")  # fmt: skip
    p.add_argument("--fractions", help="shares of the training split, comma-separated, e.g. 0.1,0.25,0.5,1 or "
                   "10%%,50%% (default 0.1,0.25,0.5,1)")  # fmt: skip
    p.add_argument("--augment", default="recipe", help="augmentation of the runs with it: recipe (the tuned one), "
                   "light, standard or strong (default recipe); the others have none")  # fmt: skip
    p.add_argument("--epochs", type=int, help="epochs of every run (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="one seed for every run (default 0)")
    p.add_argument("--fraction-by", choices=["speaker", "stratified"], default="speaker",
                   help="smaller fractions keep whole speakers (default) or some clips of every word")
    p.add_argument("--data", help=f"dataset root (default: the embedded set, {paths.synth_root()})")
    p.add_argument("--owner", help="the student the experiment is for (a class: the teacher's limits apply; it "
                   "counts once against their queued runs)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="say what would be queued and how long it takes; queue nothing")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_experiment_launch)
    p = experiment.add_parser("show", help="an experiment's runs and test accuracy per fraction, off vs on")
    p.add_argument("experiment", nargs="?", help="experiment id, or its start or end (default: the newest)")
    p.add_argument("--json", action="store_true", help="print the experiment and its runs' results as JSON")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_experiment_show)
    p = experiment.add_parser("list", help="the experiments, newest first")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_experiment_list)

    p = sub.add_parser("detect", help="find keywords in a recording of any length with a run's model")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("file", help="WAV, FLAC or OGG file: any sample rate, mono or stereo")
    p.add_argument("--json", action="store_true", help="print the detections as JSON: word, start, end, score")
    _detector_arguments(p)
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("stream-eval", help="streaming accuracy on a long stream: recall, false alarms per hour, DET curve")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the generated stream (default 10)")
    p.add_argument("--snr", type=float, default=10.0, help="speech-to-noise ratio of the stream, dB (default 10)")
    p.add_argument("--data", help="dataset whose testing split is used (default: the run's)")
    p.add_argument("--others", type=float, default=0.25, help="share of non-keywords in the stream (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="which clips, in which order (default 0)")
    p.add_argument("--wav", help="evaluate this recording instead (any length), with --truth")
    p.add_argument("--truth", help="its words: JSON [{word, start, end}] or lines `word,start[,end]` (seconds)")
    p.add_argument("--target", type=float, default=1.0, help="false alarms per hour the recommended threshold allows (default 1)")
    p.add_argument("--store", action="store_true", help="keep the recommended threshold with the run (Try it, Live)")
    p.add_argument("--save-wav", metavar="FILE", help="also write the generated stream (FILE) and its words (FILE.json)")
    p.add_argument("--json", action="store_true", help="print the whole evaluation as JSON")
    _detector_arguments(p)
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_stream_eval)

    p = sub.add_parser("notebook", help="write a run as a Jupyter notebook that reproduces it step by step")
    p.add_argument("run", help="run id, the end of it, its name, or a run folder")
    p.add_argument("-o", "--out", help="notebook file (default RUN_ID.ipynb in this folder)")
    p.add_argument("--epochs", type=int, help="train for this many epochs instead of the run's (a quick try)")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_notebook)

    p = sub.add_parser("export", help="export a run as one TorchScript or ONNX file (front end included)")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("--format", choices=["torchscript", "onnx"], default="onnx", help="file format (default onnx)")
    p.add_argument("--out", help="folder for model.pt/model.onnx + model.json (default RUN/export/FORMAT)")
    p.add_argument("--runs-dir", help=runs_help)
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(train_flags="train" in argv).parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            # `--background` leaves the worker running on purpose: no "still running" warning for it
            warnings.filterwarnings("ignore", "subprocess .* is still running", ResourceWarning)
            return args.func(args)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kwscore runs | head`: the reader left; nothing more to say
        _quiet_stdout()
        return 0
    except OSError as exc:  # a file-system problem no command turned into a message: still one line
        where = f" ({str(exc.filename)[:200]})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
    finally:
        try:
            sys.stdout.flush()  # a pipe closed early shows up here, at the last flush
        except BrokenPipeError:
            _quiet_stdout()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush cannot raise BrokenPipeError again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # python -m kwscore.cli
    sys.exit(main())
