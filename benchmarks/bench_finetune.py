"""Your voice in a minute: does fine-tuning on 3 takes per word help a real speaker?

    .venv/bin/python benchmarks/bench_finetune.py                  # CNN and M5 parents
    .venv/bin/python benchmarks/bench_finetune.py --models m5 --parent-minutes 2
    .venv/bin/python benchmarks/bench_finetune.py --parent RUN_DIR  # reuse a finished run as the parent

1. **Parent**: ``kwscore train --model M --data <embedded set>`` (the recipe, with a time budget:
   ``--parent-minutes``) on the embedded synthetic data only, generated here with the default
   settings (or ``--synth ROOT``).
2. **Speakers**: those of the shared real set's *testing* list (``../shared/data/speech-commands-real``,
   voices no model here trained on) who have at least 4 takes of at least 3 of the parent's words.
3. For each speaker: 3 takes per word go into a fresh "My recordings" folder through
   :func:`kwscore.userdata.save_take` (trimmed and centred, exactly as the *Your own words* page
   saves them); ``kwscore finetune PARENT --data THAT_FOLDER`` runs in its own process (timed,
   start-up included); the speaker's *other* takes of those words are scored with the parent and with
   the fine-tuned run (top-1 accuracy, and the mean probability of the true word). The embedded test
   split's accuracy before/after shows whether the other voices were forgotten.

Prints a table and appends it to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_results, machine  # noqa: E402

from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.inference import Predictor  # noqa: E402
from kwscore.labels import keywords_of  # noqa: E402
from kwscore.userdata import save_take  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"
KWSCORE = [sys.executable, "-m", "kwscore.cli"]
TAKES = 3  #: takes per word the speaker "records"
MIN_TAKES = TAKES + 1  #: a word needs at least one more take to score
MIN_WORDS = 3  #: a speaker needs this many such words


def kwscore(*args, env=None) -> str:
    """Run the CLI in its own process; its stdout (raises with stderr on failure)."""
    done = subprocess.run([*KWSCORE, *map(str, args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"kwscore {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def last_line_path(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


def speakers_with_takes(words: list[str]) -> dict[str, dict[str, list[int]]]:
    """Testing-list speakers -> {word: clip indices} for words with ≥ MIN_TAKES takes (≥ MIN_WORDS words)."""
    ds = SpeechCommands(SHARED_REAL, "testing", commands=words)
    takes: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in range(len(ds)):
        _, _, word, speaker, _ = ds.get_metadata(i)
        takes[speaker][word].append(i)
    chosen = {}
    for speaker, by_word in sorted(takes.items()):
        enough = {w: sorted(ix, key=lambda i: ds.get_metadata(i)[4]) for w, ix in by_word.items() if len(ix) >= MIN_TAKES}
        if len(enough) >= MIN_WORDS:
            chosen[speaker] = enough
    return chosen, ds


def score(predictor: Predictor, ds: SpeechCommands, indices: list[int]) -> tuple[float, float]:
    """(top-1 accuracy, mean probability of the true word) over the clips at ``indices``."""
    right, prob = 0, 0.0
    for i in indices:
        word = ds.get_metadata(i)[2]
        p = predictor.predict(ds.waveform(i))
        right += p.word == word
        prob += float(p.probs[p.labels.index(word)])
    return right / len(indices), prob / len(indices)


def report_accuracy(run: Path) -> float:
    return json.loads((run / "report.json").read_text())["accuracy"]


def bench_parent(parent: Path, runs: Path, work: Path, extra: list[str]) -> tuple[list[dict], dict]:
    predictor = Predictor.from_run(parent)
    keywords = keywords_of(predictor.labels)
    speakers, ds = speakers_with_takes(keywords)
    rows = []
    for speaker, by_word in speakers.items():
        user = work / f"user-{speaker}"
        held = []
        for word, indices in by_word.items():
            for i in indices[:TAKES]:
                save_take(user, word, speaker, ds.waveform(i), 16000)
            held += indices[TAKES:]
        before = score(predictor, ds, held)
        tic = time.perf_counter()
        child = last_line_path(kwscore("finetune", parent, "--data", user, "--runs-dir", runs, *extra))
        seconds = time.perf_counter() - tic
        after = score(Predictor.from_run(child), ds, held)
        status = json.loads((child / "status.json").read_text())
        config = json.loads((child / "config.json").read_text())
        assert config["init"] in (parent.name, str(parent.resolve())), config["init"]
        rows.append({
            "speaker": speaker, "words": len(by_word), "held": len(held), "before": before, "after": after,
            "seconds": seconds, "train_s": json.loads((child / "report.json").read_text())["duration_s"],
            "embedded_after": report_accuracy(child), "state": status["state"],
        })  # fmt: skip
        print(f"{speaker}: {len(by_word)} words, {len(held)} held-out takes: {before[0]:.1%} -> {after[0]:.1%} "
              f"(p(true) {before[1]:.2f} -> {after[1]:.2f}) in {seconds:.0f} s", flush=True)  # fmt: skip
    cfg = json.loads((parent / "config.json").read_text())
    return rows, {"model": cfg["model"], "labels": predictor.labels, "embedded": report_accuracy(parent)}


def table(rows: list[dict], info: dict) -> str:
    lines = [
        f"**{info['model']}** parent ({len(info['labels'])} classes: {', '.join(info['labels'])}); "
        f"embedded test split {info['embedded']:.1%} before fine-tuning.",
        "",
        "| speaker | words | held-out takes | accuracy before | after | p(true word) before | after | "
        "embedded test after | `kwscore finetune` wall s | of which training s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['speaker']} | {r['words']} | {r['held']} | {r['before'][0]:.1%} | {r['after'][0]:.1%} | "
            f"{r['before'][1]:.3f} | {r['after'][1]:.3f} | {r['embedded_after']:.1%} | {r['seconds']:.1f} | "
            f"{r['train_s']:.1f} |"
        )
    if rows:
        n = len(rows)

        def mean(key, k=None):
            return sum(r[key][k] if k is not None else r[key] for r in rows) / n

        lines.append(
            f"| **mean of {n}** | | {mean('held'):.1f} | **{mean('before', 0):.1%}** | **{mean('after', 0):.1%}** | "
            f"{mean('before', 1):.3f} | {mean('after', 1):.3f} | {mean('embedded_after'):.1%} | "
            f"{mean('seconds'):.1f} | {mean('train_s'):.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "m5"], help="parents to train (default cnn m5)")
    parser.add_argument("--parent", type=Path, help="a finished run to fine-tune instead of training parents")
    parser.add_argument("--parent-minutes", type=float, default=3.0, help="time budget of each parent (default 3)")
    parser.add_argument("--synth", type=Path, help="the embedded set (default: generate it in a temp folder)")
    parser.add_argument("--finetune-args", default="", help="extra `kwscore finetune` options, e.g. '--epochs 8'")
    parser.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    if not (SHARED_REAL / "SpeechCommands").is_dir():
        print(f"The shared real set is not at {SHARED_REAL}: nothing to measure.")
        return 1
    extra = args.finetune_args.split()
    sections = []
    with tempfile.TemporaryDirectory(prefix="bench_finetune-") as tmp:
        work, runs = Path(tmp), Path(tmp) / "runs"
        parents = [args.parent.resolve()] if args.parent else []
        if not parents:
            synth = args.synth
            if synth is None:
                synth = work / "synthetic"
                print("generating the embedded set…", flush=True)
                kwscore("data", "synth", "--root", synth)
            for model in args.models:
                print(f"training the {model} parent ({args.parent_minutes:g} min budget)…", flush=True)
                out = kwscore("train", "--model", model, "--data", synth, "--runs-dir", runs,
                              "--max-minutes", args.parent_minutes)  # fmt: skip
                parents.append(last_line_path(out))
        for parent in parents:
            if parent.parent != runs:  # the fine-tuned runs go next to a given parent's copy
                runs.mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-r", str(parent), str(runs / parent.name)], check=True)
                parent = runs / parent.name
            rows, info = bench_parent(parent, runs, work, extra)
            sections.append(table(rows, info))
    body = (
        f"{machine()}.\n\nFine-tuning a model trained only on the embedded synthetic set with {TAKES} takes per word of "
        f"one real speaker of the shared testing list (`kwscore finetune RUN --data <their takes>`: the recipe's "
        f"defaults{', ' + args.finetune_args if args.finetune_args else ''}), then scoring that speaker's other takes. "
        f"Speakers with ≥ {MIN_TAKES} takes of ≥ {MIN_WORDS} of the model's words.\n\n" + "\n\n".join(sections)
    )
    append_results("bench_finetune", body, save=not args.no_save)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
