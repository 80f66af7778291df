"""Does the embedded (synthetic) dataset teach what real speech teaches? Train on it, test on real voices.

    .venv/bin/python benchmarks/sim_to_real.py                     # everything (about an hour on 2 cores)
    .venv/bin/python benchmarks/sim_to_real.py --only gen          # generation time of the default set
    .venv/bin/python benchmarks/sim_to_real.py --only recipes      # CNN + M5 recipes: embedded test vs real
    .venv/bin/python benchmarks/sim_to_real.py --only compare      # the lab's comparisons, embedded and real
    .venv/bin/python benchmarks/sim_to_real.py --only compare --questions 1 --set '{"epochs": 8}'  # one, shorter
    .venv/bin/python benchmarks/sim_to_real.py --only recipes --synth '{"speakers": 80}' --label "80 speakers"

Real recordings: ``../shared/data/speech-commands-real`` (CC BY 4.0; never copied into the repository).

1. **gen**: the default embedded dataset (:class:`kwscore.data.synth.SynthParams`) generated from
   scratch, wall time on this machine (the goal is ≤ 30 s on 2 cores).
2. **recipes**: ``default_config(model)`` — exactly what ``kwscore train --model M`` runs — trained on
   the embedded set *only*, then scored on its own testing split and on every real clip of the 8
   commands (no real clip is ever trained on here). Goals: CNN ≥ 85 %, M5 ≥ 75 % on real speech;
   the embedded test split within 10 points of the real figure. Models that have ``_unknown_`` and
   ``_silence_`` classes are scored on the command clips: answering "another word" to a real "yes"
   is a miss.
3. **compare**: the lab's questions answered twice, once with embedded data (train and test on the
   embedded splits) and once with real data (train on the real training list, test on its testing
   list): augmentation on/off at 100 % and 25 % of the training speakers, the default front end vs
   torchaudio's defaults, CNN vs M5. The answers (which side wins) should agree.

Every table is appended to RESULTS.md with the machine's load (timings on a shared 2-core machine are
noisy: compare figures of one run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_results, machine  # noqa: E402

from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.data.synth import SynthParams, generate, read_manifest  # noqa: E402
from kwscore.data.words import COMMANDS  # noqa: E402
from kwscore.evaluation import evaluate, load_run_model  # noqa: E402
from kwscore.labels import NON_KEYWORDS, with_non_keywords  # noqa: E402
from kwscore.recipes import default_config  # noqa: E402
from kwscore.runner import run_training  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"
GOALS = {"cnn": 0.85, "m5": 0.75}  # real accuracy, trained on the embedded data only
MAX_GAP = 0.10  # embedded test accuracy - real accuracy
#: torchaudio.transforms.MelSpectrogram's own defaults (what "first just use the defaults" means).
TORCHAUDIO_FRONT_END = {"n_fft": 400, "win_length": 400, "hop_length": 200, "n_mels": 128, "f_max": None}


def command_accuracy(run_dir: Path, root: Path, subset: str | None) -> tuple[float, dict[str, float]]:
    """Accuracy of a run's best model on the clips of the 8 commands in ``root`` (one ``subset`` or all).

    The one evaluation (:func:`kwscore.evaluation.evaluate`) on a dataset with the model's classes;
    a model with ``_unknown_``/``_silence_`` gets those test clips too, but only the command clips
    are counted here.
    """
    _model, _transform, labels, _config = load_run_model(run_dir)
    words = [w for w in labels if w not in NON_KEYWORDS]
    dataset = SpeechCommands(root, subset=subset, commands=words)
    if len(words) < len(labels):
        dataset = with_non_keywords(dataset, always=True)
    report = evaluate(run_dir, dataset)
    confusion = report["confusion"]
    index = {w: i for i, w in enumerate(report["labels"])}
    correct = sum(confusion[index[w]][index[w]] for w in COMMANDS)
    total = sum(sum(confusion[index[w]]) for w in COMMANDS)
    return correct / total, {w: report["per_class_accuracy"][w] for w in COMMANDS}


def train(model: str, data: Path, **overrides) -> tuple[Path, dict, float]:
    """``default_config(model, data=..., **overrides)`` trained in a temporary run folder (kept)."""
    config = default_config(model, data=str(data), **overrides)
    run_dir = Path(tempfile.mkdtemp(prefix=f"sim2real-{model}-"))
    t0 = time.perf_counter()
    result = run_training(config, run_dir)
    return run_dir, result.report, time.perf_counter() - t0


def embedded_set(params: SynthParams, cache: Path) -> tuple[Path, float]:
    """The embedded dataset for ``params`` under ``cache`` (generated when missing) and its generation time."""
    t0 = time.perf_counter()
    root = generate(cache / "embedded", params)
    seconds = (read_manifest(root) or {}).get("seconds", time.perf_counter() - t0)
    return root, float(seconds)


def section_gen(params: SynthParams, args) -> None:
    with tempfile.TemporaryDirectory(prefix="sim2real-gen-") as tmp:
        t0 = time.perf_counter()
        last = [0.0]

        def progress(done, total, message):
            if time.perf_counter() - last[0] > 2:
                last[0] = time.perf_counter()
                print(f"  {done}/{total} {message}", flush=True)

        root = generate(tmp, params, progress=progress)
        wall = time.perf_counter() - t0
        counts = read_manifest(root)["counts"]
    body = (
        f"{machine()}.\n\nDefault embedded set `{json.dumps(params.__dict__)}` generated from scratch "
        f"(espeak-ng in 2 processes, rooms, microphones, noise). Goal ≤ 30 s on 2 cores.\n\n"
        "| clips | words | speakers | seconds | ≤ 30 s |\n|---:|---:|---:|---:|:---:|\n"
        f"| {counts['clips']:,} | {counts['words']} | {counts['speakers']} | {wall:.1f} | {'yes' if wall <= 30 else 'no'} |"
    )
    append_results(f"sim_to_real: generation{args.title}", body, save=not args.no_save)


def section_recipes(params: SynthParams, args, overrides: dict) -> None:
    data, _ = embedded_set(params, args.cache)
    rows = []
    for model in args.models:
        run_dir, report, wall = train(model, data, **overrides)
        print(f"{model}: trained in {run_dir}", flush=True)
        real, per_word = command_accuracy(run_dir, SHARED_REAL, None)
        embedded, _ = command_accuracy(run_dir, data, "testing")
        rows.append(
            f"| {model} | {len(report['labels'])} | {report['epochs_done']} | {wall:.0f} | {report['test_accuracy']:.1%} "
            f"| {embedded:.1%} | **{real:.1%}** | {embedded - real:+.1%} "
            f"| {'yes' if real >= GOALS.get(model, GOALS['cnn']) and embedded - real <= MAX_GAP else 'no'} "
            f"| {' '.join(f'{w} {a:.0%}' for w, a in per_word.items())} |"
        )
        print(rows[-1], flush=True)
    body = (
        f"{machine()}.\n\nTrained **only** on the embedded set `{json.dumps(params.__dict__)}` with "
        f"`default_config(model{', ' + json.dumps(overrides) if overrides else ''})`; scored on its own "
        "testing split and on every real clip of the 8 commands in ../shared/data/speech-commands-real "
        f"(goals: real CNN ≥ {GOALS['cnn']:.0%}, M5 ≥ {GOALS['m5']:.0%}; gap ≤ {MAX_GAP:.0%}).\n\n"
        "| model | classes | epochs | train s | embedded test, all classes | embedded test, 8 commands | real, 8 commands "
        "| gap | goals met | real, per word |\n|---|---:|---:|---:|---:|---:|---:|---:|:---:|---|\n" + "\n".join(rows)
    )
    append_results(f"sim_to_real: recipes{args.title}", body, save=not args.no_save)


#: The lab's comparisons: (question, option A overrides, option B overrides, model).
COMPARISONS = [
    ("augmentation, 100 % of the data", {"augment": "none"}, {}, "cnn"),
    ("augmentation, 25 % of the speakers", {"augment": "none", "fraction": 0.25}, {"fraction": 0.25}, "cnn"),
    ("front end: torchaudio defaults vs the recipe's", {"features": TORCHAUDIO_FRONT_END}, {}, "cnn"),
    ("CNN (A) vs M5 (B)", {}, {}, ("cnn", "m5")),
]


def section_compare(params: SynthParams, args, overrides: dict) -> None:
    embedded, _ = embedded_set(params, args.cache)
    rows = []
    scores: dict[str, float] = {}  # the same training asked twice (the recipe is B of several questions) runs once
    for question, a, b, model in [COMPARISONS[q - 1] for q in args.questions]:
        cells = []
        for name, data in (("embedded", embedded), ("real", SHARED_REAL)):
            accs = []
            for opts, m in ((a, model[0] if isinstance(model, tuple) else model), (b, model[1] if isinstance(model, tuple) else model)):
                key = json.dumps([m, str(data), {**overrides, **opts}], sort_keys=True)
                if key not in scores:
                    run_dir, _report, _wall = train(m, data, **{**overrides, **opts})
                    scores[key] = command_accuracy(run_dir, data, "testing")[0]
                accs.append(scores[key])
            cells.append((name, accs))
        signs = [("B" if acc_b > acc_a else "A") for _, (acc_a, acc_b) in cells]
        rows.append(
            f"| {question} | " + " | ".join(f"{acc_a:.1%} → {acc_b:.1%}" for _, (acc_a, acc_b) in cells)
            + f" | {'same answer' if signs[0] == signs[1] else 'DIFFERENT'} |"
        )
        print(rows[-1], flush=True)
    body = (
        f"{machine()}.\n\nEach question answered on the embedded set (trained and tested on its splits) and "
        "on real speech (trained on the real training list, tested on its testing list); A → B is the "
        "test accuracy without → with the change (augmentation: the recipe's vs none), 8 commands"
        f"{'; overrides ' + json.dumps(overrides) if overrides else ''}.\n\n"
        "| question | embedded A → B | real A → B | agree |\n|---|---:|---:|:---:|\n" + "\n".join(rows)
    )
    append_results(f"sim_to_real: the lab's comparisons{args.title}", body, save=not args.no_save)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["gen", "recipes", "compare"], action="append")
    ap.add_argument("--models", default="cnn,m5", help="models for the recipes section")
    ap.add_argument("--questions", default="", help=f"the comparisons to run, e.g. 1,3 (default: all {len(COMPARISONS)})")
    ap.add_argument("--synth", default="{}", help="SynthParams overrides as JSON")
    ap.add_argument("--set", default="{}", help="RunConfig overrides as JSON (e.g. fewer epochs)")
    ap.add_argument("--label", default="", help="a note for the RESULTS.md titles")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kws-sim2real")
    ap.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()
    if not (SHARED_REAL / "SpeechCommands").is_dir():
        print(f"The real recordings are not at {SHARED_REAL}: nothing to compare with.")
        return 2
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.questions = [int(q) for q in args.questions.split(",") if q.strip()] or list(range(1, len(COMPARISONS) + 1))
    args.title = f" ({args.label})" if args.label else ""
    params = SynthParams(**json.loads(args.synth))
    overrides = json.loads(args.set)
    sections = args.only or ["gen", "recipes", "compare"]
    if "gen" in sections:
        section_gen(params, args)
    if "recipes" in sections:
        section_recipes(params, args, overrides)
    if "compare" in sections:
        section_compare(params, args, overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
