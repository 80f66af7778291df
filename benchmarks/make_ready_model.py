"""Make the ready model shipped in kwscore/pretrained/ready-<model>/ (what "Try it" offers before anyone trains).

    .venv/bin/python benchmarks/make_ready_model.py                      # kwscore train --model embed, then package it
    .venv/bin/python benchmarks/make_ready_model.py --model cnn --no-unknown   # another recipe, the 8 commands only
    .venv/bin/python benchmarks/make_ready_model.py --from-run RUN_DIR   # package a run trained already
    .venv/bin/python benchmarks/make_ready_model.py --epochs 3           # a quick one, to try the mechanism

1. **Train**: ``kwscore train --model embed`` (exactly the recipe a student gets, ``default_config("embed")``:
   the 8 commands with ``_unknown_`` and ``_silence_``, so that Live and streaming can answer "no keyword")
   on the default embedded dataset (:class:`kwscore.data.synth.SynthParams`, generated first when
   missing under ``KWS_DATA_DIR``), in a temporary runs folder. Or take ``--from-run``: a finished run
   trained on that same default embedded set, nothing else mixed in.
2. **Score on real voices**: every clip of the 8 commands in ``../shared/data/speech-commands-real``
   (never trained on), with ``command_accuracy`` of benchmarks/sim_to_real.py; per word too.
3. **Package**: ``config.json`` (named "Ready model (embedded data)", with notes on its real-speech
   accuracy), ``status.json`` (succeeded; no pid or host), ``metrics.jsonl``, ``report.json``,
   ``best.pt`` and ``about.json`` into ``kwscore/pretrained/ready-<model>/``. The embedded dataset's
   path is written as ``${EMBEDDED}``: :func:`kwscore.pretrained.install` puts the local one there.
   The run id is ``ready-<model>-<first 6 hex of the checkpoint's SHA-256>``, so a new model is a new run.
4. Print a table and append it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_results, machine  # noqa: E402
from sim_to_real import SHARED_REAL, command_accuracy  # noqa: E402

from kwscore import paths, pretrained  # noqa: E402
from kwscore.cli import main as kwscore  # noqa: E402
from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.data.synth import GENERATOR_VERSION, SynthParams, generate, read_manifest  # noqa: E402
from kwscore.data.words import COMMANDS  # noqa: E402
from kwscore.errors import KwsError  # noqa: E402
from kwscore.recipes import default_config  # noqa: E402
from kwscore.runfiles import RunFiles, write_json  # noqa: E402

COMMAND = "python benchmarks/make_ready_model.py"
TITLE = "Ready model (embedded data)"
#: status.json fields worth shipping (no pid, host or heartbeat of the machine that trained it).
STATUS_KEYS = ("state", "created", "started_at", "training_started_at", "ended_at", "epochs", "epoch", "step",
               "total_steps", "n_train", "best_val_accuracy", "best_epoch", "test_accuracy", "message")  # fmt: skip
MAX_CHECKPOINT_BYTES = 1_000_000


def train(model: str, epochs: int | None, runs: Path, no_unknown: bool = False) -> Path:
    """``kwscore train --model MODEL [--no-unknown]`` on the default embedded set (generated when missing); its
    run folder."""
    print(f"embedded dataset: {paths.synth_root()} (generating it when missing…)", flush=True)
    generate(paths.synth_root(), SynthParams())
    args = ["train", "--model", model] + (["--epochs", str(epochs)] if epochs else []) + (["--no-unknown"] if no_unknown else [])
    if kwscore([*args, "--runs-dir", str(runs)]) != 0:
        raise KwsError("kwscore train failed (see above).")
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


def train_command(config: dict) -> str:
    """The ``kwscore train`` command line that trains ``config`` (its settings that differ from the recipe)."""
    recipe = default_config(config["model"]).to_dict()
    differ = {
        k: v for k, v in config.items() if k not in ("data", "mix", "name", "notes") and recipe.get(k) != v
    }
    flags = [
        (f"--{k.replace('_', '-')}" if v else f"--no-{k.replace('_', '-')}") if isinstance(v, bool)
        else f"--{k.replace('_', '-')} {v}"
        for k, v in differ.items() if isinstance(v, int | float | str)
    ]  # fmt: skip
    other = {k: v for k, v in differ.items() if not isinstance(v, int | float | str)}
    return " ".join(["kwscore train --model", config["model"], *flags]) + (
        f" (and {json.dumps(other)})" if other else ""
    )


def check_run(run: Path) -> tuple[dict, dict]:
    """The run's config and the manifest of its embedded dataset; KwsError unless it is a finished run
    trained on the default embedded set only."""
    files = RunFiles(run)
    config = files.read_config()
    if files.read_status().get("state") != "succeeded" or not files.best_path.is_file():
        raise KwsError(f"{run} is not a finished run with a best.pt.")
    if config.get("mix") or config.get("init"):
        raise KwsError(
            f"{run} mixed in other data or fine-tuned another run: a ready model learns from the embedded set only."
        )
    manifest = read_manifest(config["data"]) or {}
    if manifest.get("generator_version") != GENERATOR_VERSION or manifest.get("params") != asdict(
        SynthParams()
    ):
        raise KwsError(
            f"{run} was trained on {config['data']}, not on the default embedded dataset (SynthParams() of "
            f"generator version {GENERATOR_VERSION}), which is what an installed ready model points at."
        )
    return config, manifest


def placeholder(value, data_root: str):
    """JSON ``value`` with every path inside ``data_root`` written as ``${EMBEDDED}/...``."""
    root = data_root.rstrip("/")

    def change(s: str) -> str:
        return pretrained.EMBEDDED + s[len(root) :] if s == root or s.startswith(root + "/") else s

    return pretrained.map_strings(value, change)


def real_clips(root: Path) -> tuple[int, int]:
    """How many real clips of the 8 commands there are, and how many speakers said them."""
    ds = SpeechCommands(root, subset=None, commands=list(COMMANDS))
    return len(ds), len(set(ds.speakers()))


def package(run: Path, out: Path, real_root: Path) -> dict:
    """Score ``run`` on the real recordings and write it, with its about.json, into ``out``."""
    import torch

    config, manifest = check_run(run)
    command = train_command(config)
    files = RunFiles(run)
    report = files.read_report()
    print("scoring on the real recordings…", flush=True)
    accuracy, per_word = command_accuracy(run, real_root, None)
    n_real, n_real_speakers = real_clips(real_root)
    selection = report.get("train_selection") or {}
    model = config["model"]
    data_root = str(Path(config["data"]))
    per_word_text = ", ".join(f"{w} {100 * a:.0f} %" for w, a in per_word.items())
    config.update(
        name=TITLE,
        notes=(
            f"Shipped with KWS Studio: `{command}` on the embedded synthetic speech "
            f"({selection.get('clips', 0):,} training clips, {selection.get('speakers', 0):,} voices), remade by "
            f"`{COMMAND}`. On real voices ({n_real:,} clips of the 8 commands by {n_real_speakers:,} speakers) it gets "
            f"{100 * accuracy:.1f} % ({per_word_text}); its test accuracy here is on synthetic voices."
        ),
    )

    ckpt = torch.load(files.best_path, map_location="cpu", weights_only=True)
    ckpt["run_config"] = placeholder({**(ckpt.get("run_config") or {}), "name": config["name"],
                                      "notes": config["notes"]}, data_root)  # fmt: skip
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    weights = buffer.getvalue()
    if len(weights) > MAX_CHECKPOINT_BYTES:
        raise KwsError(
            f"best.pt is {len(weights):,} bytes: a shipped model must stay under {MAX_CHECKPOINT_BYTES:,}."
        )
    run_id = f"ready-{model}-{hashlib.sha256(weights).hexdigest()[:6]}"

    status = {k: v for k, v in files.read_status().items() if k in STATUS_KEYS}
    about = {
        "run_id": run_id,
        "title": TITLE,
        "model": model,
        "n_params": report.get("n_params"),
        "command": COMMAND,
        "train_command": command,
        "trained_on": {
            "dataset": "the embedded synthetic speech (espeak-ng), kwscore.data.synth",
            "generator_version": manifest["generator_version"],
            "params": manifest["params"],
            "dataset_clips": manifest["counts"]["clips"],
            "clips": selection.get("clips"),
            "speakers": selection.get("speakers"),
            "per_class": selection.get("per_class"),
        },
        "embedded_test_accuracy": report["accuracy"],
        "real": {
            "dataset": "../shared/data/speech-commands-real (CC BY 4.0)",
            "subset": "every clip of the 8 commands",
            "clips": n_real,
            "speakers": n_real_speakers,
            "commands": len(COMMANDS),
            "accuracy": accuracy,
            "per_word": per_word,
        },
    }
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "best.pt").write_bytes(weights)
    shutil.copyfile(files.metrics_path, out / "metrics.jsonl")
    write_json(out / "config.json", placeholder(config, data_root))
    write_json(out / "status.json", {"run_id": run_id, **status})
    write_json(out / "report.json", placeholder({**report, "run_id": run_id}, data_root))
    write_json(out / pretrained.ABOUT, about)
    for path in out.iterdir():  # package data: readable by everyone who installs it
        path.chmod(0o644)
    return about


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-run", type=Path, help="a finished run folder to package instead of training one")
    ap.add_argument("--model", default="embed", help="the recipe to train (default embed: the pretrained speech embedding)")
    ap.add_argument(
        "--epochs", type=int, help="fewer epochs than the recipe's (to try the mechanism quickly)"
    )
    ap.add_argument("--no-unknown", action="store_true", help="the 8 commands only (no _unknown_ / _silence_ classes)")
    ap.add_argument("--real", type=Path, default=SHARED_REAL, help="the real recordings to score on")
    ap.add_argument("--out", type=Path, help="where to write (default kwscore/pretrained/ready-<model>)")
    ap.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()
    if not (args.real / "SpeechCommands").is_dir():
        print(
            f"The real recordings are not at {args.real}: the ready model's real-speech accuracy cannot be measured."
        )
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="ready-model-") as tmp:
            run = (
                args.from_run.expanduser().resolve()
                if args.from_run
                else train(args.model, args.epochs, Path(tmp), no_unknown=args.no_unknown)
            )
            out = args.out or pretrained.HERE / f"ready-{RunFiles(run).read_config()['model']}"
            about = package(run, out, args.real)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    real = about["real"]
    size = (out / "best.pt").stat().st_size
    body = (
        f"{machine()}.\n\n`{about['train_command']}` on the embedded set `{json.dumps(about['trained_on']['params'])}` "
        f"({about['trained_on']['clips']:,} training clips, {about['trained_on']['speakers']} voices), scored on "
        f"{real['clips']:,} real clips of the 8 commands ({real['speakers']} speakers); shipped as "
        f"`{out.relative_to(pretrained.HERE.parent.parent) if out.is_relative_to(pretrained.HERE.parent.parent) else out}` "
        f"(run id `{about['run_id']}`, best.pt {size / 1000:.0f} kB).\n\n"
        "| model | params | embedded test | real | real, per word |\n|---|---:|---:|---:|---|\n"
        f"| {about['model']} | {about['n_params'] or 0:,} | {about['embedded_test_accuracy']:.1%} | **{real['accuracy']:.1%}** "
        f"| {' '.join(f'{w} {a:.0%}' for w, a in real['per_word'].items())} |"
    )
    append_results("make_ready_model: the shipped ready model", body, save=not args.no_save)
    print(pretrained.ready_line(about))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
