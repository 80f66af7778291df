"""Train the tuned recipes on real recordings and measure how fast the runner trains.

    .venv/bin/python benchmarks/train_real.py                       # CNN + M5 recipes, throughput, 25 % study
    .venv/bin/python benchmarks/train_real.py --only m5             # one recipe
    .venv/bin/python benchmarks/train_real.py --only m5 --set '{"epochs": 80}' --label "80 epochs"
    .venv/bin/python benchmarks/train_real.py --only throughput     # tutorial loop vs runner vs bare step
    .venv/bin/python benchmarks/train_real.py --only fraction       # 25 % of the speakers, with/without aug

Data: the shared real recordings (``../shared/data/speech-commands-real`` from the repository), the
8 commands, their speaker-disjoint training / validation / testing lists. Every figure comes from
``kwscore.runner.run_training(default_config(model, data=ROOT))``, exactly what
``kwscore train --model M --data ROOT`` runs, and the accuracy is the one on the testing list.

Three things are measured:

1. **Recipes** (``cnn``, ``m5``): test accuracy, best validation accuracy, wall time of the whole
   run (decode + train + test) and median training clips/s.
2. **Throughput** (M5, the tutorial's width 32 and stride 16, batch 256): training clips/s of
   (a) a faithful re-implementation of the PyTorch tutorial's loop (the tutorial's M5 with
   log_softmax + nll_loss, a DataLoader that decodes every clip from disk every epoch with the
   tutorial's collate, ``torchaudio.transforms.Resample(16000, 8000)`` on every batch, Adam lr 0.01
   wd 1e-4, StepLR 20), (b) kwscore's runner data path (decoded once, batches cut with
   ``randperm``, batched shift/gain/noise) feeding ``kwscore.training.train``, and (c) the bare
   forward + backward + Adam step of kwscore's M5 on one pre-made batch: the ceiling. The three
   alternate epoch by epoch so that they see the same machine load.
3. **Less data**: 25 % of the training speakers, with and without the recipe's augmentation.

Each section is appended to RESULTS.md with the machine's load average (timings on a shared
2-core machine are noisy: compare only figures measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchaudio  # noqa: E402
from common import append_results, machine  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.models import build_model  # noqa: E402
from kwscore.recipes import default_config, recipe  # noqa: E402
from kwscore.runner import run_training  # noqa: E402
from kwscore.training import make_optimizer, train  # noqa: E402
from kwscore.training_data import prepare_data  # noqa: E402
from tests.tutorial import TutorialM5  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"
TARGETS = {"cnn": 0.93, "m5": 0.85}  # test accuracy, each recipe trained in at most 5 minutes
BUDGET_S = 300.0


# ============================================================================================
# 1. The recipes
# ============================================================================================


def run_recipe(model: str, overrides: dict, threads: int | None) -> dict:
    """Train ``default_config(model)`` (+ overrides) on the real set; the run's report figures."""
    config = default_config(model, data=str(SHARED_REAL), threads=threads, **overrides)
    with tempfile.TemporaryDirectory(prefix=f"train_real-{model}-") as run_dir:
        t0 = time.perf_counter()
        result = run_training(config, run_dir)
        wall = time.perf_counter() - t0
    report = result.report
    return {
        "test": report["test_accuracy"], "val": report["best_val_accuracy"], "wall_s": wall,
        "clips_per_s": report["samples_per_s"], "epochs": report["epochs_done"],
        "best_epoch": report["best_epoch"], "n_train": report["train_selection"]["clips"],
        "threads": report["threads"], "params": report["n_params"],
    }  # fmt: skip


def describe_recipe(model: str, overrides: dict) -> str:
    """The recipe in one short line: the tuned defaults, or what the overrides change."""
    if not overrides:
        return f"`{model}` RECIPES default"
    return f"`{model}` + `{json.dumps(overrides, separators=(',', ':'))}`"


def row(model: str, label: str, overrides: dict, r: dict) -> str:
    target = TARGETS.get(model)
    ok = (
        "yes" if target and r["test"] >= target and r["wall_s"] <= BUDGET_S else ("no" if target else "")
    )
    return (
        f"| {label or describe_recipe(model, overrides)} | {r['test']:.1%} | {r['val']:.1%} | "
        f"{r['wall_s']:.0f} | {r['clips_per_s']:,.0f} | {r['epochs']} (best {r['best_epoch']}) | "
        f"{r['n_train']} | {r['threads']} | {_load():.2f} | {ok} |"
    )


HEADER = (
    "| recipe | test acc | best val acc | wall s | train clips/s | epochs | train clips | threads "
    "| load avg | target met |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---|"
)


def _load() -> float:
    import os

    return os.getloadavg()[0]


def recipes_section(models: list[str], overrides: dict, label: str, threads: int | None, save: bool):
    rows = []
    for model in models:
        print(f"training {model} ({describe_recipe(model, overrides)}) ...", flush=True)
        r = run_recipe(model, overrides, threads)
        rows.append(row(model, label and f"{model}: {label}", overrides, r))
        print(rows[-1], flush=True)
    recipes = {m: recipe(m, SHARED_REAL) for m in models}  # with the settings for recorded speech
    body = (
        f"{machine()}. Shared real set, 8 commands; accuracy on the testing list (unseen speakers); wall "
        "time = the whole `run_training` (decode, train, validate every epoch, test). Targets: CNN ≥ 93 %, "
        f"M5 ≥ 85 %, each ≤ {BUDGET_S / 60:.0f} min.\n\n{HEADER}\n" + "\n".join(rows)
    )
    if not overrides:
        body += "\n\nRECIPES used: " + "; ".join(
            f"`{m}`: `{json.dumps(r, separators=(',', ':'))}`" for m, r in recipes.items()
        )
    append_results("train_real: recipes", body, save=save)


# ============================================================================================
# 2. Throughput: the tutorial's loop, the runner, the bare step
# ============================================================================================


class TutorialLoop:
    """One epoch of the tutorial's ``train(model, epoch, log_interval)``, state kept across epochs."""

    def __init__(self, dataset: SpeechCommands, n_classes: int) -> None:
        self.loader = DataLoader(
            dataset, batch_size=256, shuffle=True, collate_fn=dataset.collate_fn, num_workers=0
        )
        self.transform = torchaudio.transforms.Resample(orig_freq=16000, new_freq=8000)
        self.model = TutorialM5(n_input=1, n_output=n_classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01, weight_decay=0.0001)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=20, gamma=0.1)
        self.n_clips = len(dataset)

    def epoch(self) -> float:
        """Training clips/s of one epoch."""
        self.model.train()
        losses = []
        t0 = time.perf_counter()
        for data, target in self.loader:
            data = self.transform(data)
            output = self.model(data)
            loss = F.nll_loss(output.squeeze(), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        self.scheduler.step()
        return self.n_clips / (time.perf_counter() - t0)


class RunnerLoop:
    """One epoch of kwscore's runner data path + :func:`kwscore.training.train`, M5 width 32."""

    def __init__(self, batch_size: int) -> None:
        config = default_config(  # the tutorial's front end and model size, the recipe's augmentation
            "m5", data=str(SHARED_REAL), batch_size=batch_size, sample_rate=8000,
            model_kwargs={"n_channel": 32, "stride": 16},
        )  # fmt: skip
        self.data = prepare_data(config)
        self.model = build_model("m5", len(self.data["labels"]), n_channel=32, stride=16)
        self.optimizer = make_optimizer(self.model, lr=0.01)
        self.n_clips = len(self.data["train"].targets)

    def epoch(self) -> float:
        t0 = time.perf_counter()
        train(self.model, self.data["train"], None, nn.CrossEntropyLoss(), self.optimizer, "cpu")
        return self.n_clips / (time.perf_counter() - t0)


class BareStep:
    """Forward + backward + Adam step of kwscore's M5 (width 32) on one pre-made batch: the ceiling."""

    def __init__(self, n_clips: int, batch_size: int = 256, n_classes: int = 8, stock_pool: bool = False) -> None:
        self.model = build_model("m5", n_classes, n_channel=32, stride=16).train()
        if stock_pool:  # torch's own nn.MaxPool1d, as in the tutorial, to show what kwscore's saves
            for name in ("pool1", "pool2", "pool3", "pool4"):
                setattr(self.model, name, nn.MaxPool1d(4))
        self.optimizer = make_optimizer(self.model, lr=0.01)
        self.x, self.y = torch.randn(batch_size, 1, 8000), torch.randint(n_classes, (batch_size,))
        self.n_steps = -(-n_clips // batch_size)
        self.criterion = nn.CrossEntropyLoss()

    def epoch(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.n_steps):
            loss = self.criterion(self.model(self.x), self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss.item()
        return self.n_steps * len(self.y) / (time.perf_counter() - t0)


def throughput_section(reps: int, thread_counts: list[int], save: bool) -> None:
    rows = []
    dataset = SpeechCommands(SHARED_REAL, "training", commands="8")  # decoded every epoch
    for threads in thread_counts:
        torch.set_num_threads(threads)
        loops = {
            "tutorial": TutorialLoop(dataset, len(dataset.labels)),
            "runner 256": RunnerLoop(256),
            "runner 64": RunnerLoop(64),
            "bare 256": BareStep(len(dataset)),
            "bare stock pool": BareStep(len(dataset), stock_pool=True),
        }
        for loop in loops.values():  # warm-up (first-call allocations, file cache)
            loop.epoch()
        rates: dict[str, list[float]] = {k: [] for k in loops}
        for _ in range(reps):
            for name, loop in loops.items():
                rates[name].append(loop.epoch())
        med = {k: statistics.median(v) for k, v in rates.items()}
        rows.append(
            f"| {threads} | {med['tutorial']:,.0f} | {med['runner 256']:,.0f} | {med['runner 64']:,.0f} | "
            f"{med['bare 256']:,.0f} | **{med['runner 256'] / med['tutorial']:.2f}×** | "
            f"{med['bare 256'] / med['tutorial']:.2f}× | {med['runner 256'] / med['bare 256']:.0%} | "
            f"{med['bare stock pool']:,.0f} | {_load():.2f} |"
        )
        print(rows[-1], flush=True)
    body = (
        f"{machine()}; shared real set, 8 commands, {len(dataset)} training clips; M5 n_channel 32, "
        f"stride 16; medians of {reps} epochs per loop, loops interleaved epoch by epoch (after one "
        "warm-up epoch each). Target: runner ≥ 3× the tutorial loop.\n\n"
        "| threads | tutorial loop clips/s (batch 256) | runner clips/s (batch 256, augmented) "
        "| runner clips/s (batch 64, augmented) | bare fwd+bwd+step clips/s (batch 256) "
        "| runner / tutorial | bare / tutorial | runner / bare "
        "| bare clips/s with torch's nn.MaxPool1d (batch 256) | load avg |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )
    append_results("train_real: throughput", body, save=save)


# ============================================================================================
# 3. Less data: 25 % of the speakers, with and without augmentation
# ============================================================================================


def fraction_section(model: str, threads: int | None, save: bool) -> None:
    rows = []
    for label, overrides in (
        ("25 % of the speakers, recipe augmentation", {"fraction": 0.25}),
        ("25 % of the speakers, no augmentation", {"fraction": 0.25, "augment": "none"}),
    ):
        print(f"training {model}: {label} ...", flush=True)
        r = run_recipe(model, overrides, threads)
        rows.append(row(model, f"{model}: {label}", overrides, r))
        print(rows[-1], flush=True)
    body = (
        f"{machine()}. The `{model}` recipe on a quarter of the training speakers (fraction 0.25 by "
        f"speaker, seed 0), tested on the full testing list.\n\n{HEADER}\n" + "\n".join(rows)
    )
    append_results("train_real: 25 % of the data", body, save=save)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only", choices=["cnn", "m5", "embed", "recipes", "throughput", "fraction"], help="run one section"
    )
    parser.add_argument("--set", default="{}", help="JSON RunConfig overrides for the recipe runs")
    parser.add_argument("--label", default="", help="what this attempt changes (for the table)")
    parser.add_argument("--threads", type=int, help="PyTorch threads for the recipe runs (default: the runner's)")
    parser.add_argument("--fraction-model", default="m5", help="model of the 25 %% study (default m5)")
    parser.add_argument("--reps", type=int, default=3, help="epochs per loop in the throughput section")
    parser.add_argument("--throughput-threads", default="1,2", help="thread counts to measure, e.g. 1,2")
    parser.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    if not SHARED_REAL.is_dir():
        print(f"skipped: needs the shared real recordings at {SHARED_REAL} (not found)")
        return
    save, overrides = not args.no_save, json.loads(args.set)
    only = args.only
    if only in (None, "recipes", "cnn", "m5", "embed"):
        models = ["cnn", "m5"] if only in (None, "recipes") else [only]
        recipes_section(models, overrides, args.label, args.threads, save)
    if only in (None, "throughput"):
        counts = [int(t) for t in args.throughput_threads.split(",")]
        throughput_section(args.reps, counts, save)
    if only in (None, "fraction"):
        fraction_section(args.fraction_model, args.threads, save)


if __name__ == "__main__":
    main()
