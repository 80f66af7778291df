"""Training throughput: the PyTorch tutorial's loop against kwscore.runner's data path (M5, width 32).

    .venv/bin/python benchmarks/bench_runner.py [--no-save] [--reps 3]

The tutorial loop decodes every clip from disk every epoch (DataLoader + per-item collate) and
resamples each batch to 8 kHz. The runner decodes once into one tensor at 8 kHz, cuts batches with
``torch.randperm`` and augments them with batched torch ops (shift, gain, background noise). Both
train the same M5 (n_channel 32, stride 16) with Adam; epochs alternate so that both see the same
machine load. Figures are training clips per second (median over ``--reps`` epochs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torchaudio  # noqa: E402
from common import append_results, machine  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.models import build_model  # noqa: E402
from kwscore.recipes import default_config  # noqa: E402
from kwscore.training import make_optimizer, train  # noqa: E402
from kwscore.training_data import prepare_data  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"


def epoch_rate(loader, transform) -> float:
    """Clips/s of one training epoch of a fresh M5 over ``loader`` (a DataLoader or runner Batches)."""
    model = build_model("m5", 8, n_channel=32, stride=16)
    optimizer = make_optimizer(model, lr=0.01)
    n_clips = len(loader.dataset) if isinstance(loader, DataLoader) else len(loader.targets)
    t0 = time.perf_counter()
    train(model, loader, transform, nn.CrossEntropyLoss(), optimizer, "cpu")
    return n_clips / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if not SHARED_REAL.is_dir():
        sys.exit(f"needs the shared real recordings at {SHARED_REAL}")

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        tutorial_ds = SpeechCommands(SHARED_REAL, "training", commands="8")  # decoded every epoch
        tutorial = DataLoader(tutorial_ds, batch_size=256, shuffle=True, collate_fn=tutorial_ds.collate_fn)
        resample = torchaudio.transforms.Resample(16000, 8000)
        ours = {
            bs: prepare_data(default_config("m5", data=str(SHARED_REAL), batch_size=bs))["train"]
            for bs in (256, 64)
        }
        rates: dict[str, list[float]] = {"tutorial": [], "runner 256": [], "runner 64": []}
        for _ in range(args.reps):
            rates["tutorial"].append(epoch_rate(tutorial, resample))
            rates["runner 256"].append(epoch_rate(ours[256], None))
            rates["runner 64"].append(epoch_rate(ours[64], None))
        med = {k: statistics.median(v) for k, v in rates.items()}
        rows.append(
            f"| {threads} | {med['tutorial']:,.0f} | {med['runner 256']:,.0f} | {med['runner 64']:,.0f} | "
            f"{med['runner 256'] / med['tutorial']:.1f}× |"
        )
        print(rows[-1], flush=True)

    body = (
        f"{machine()}; shared real set, 8 commands, {len(tutorial_ds)} training clips; M5 n_channel 32, stride 16.\n\n"
        "| threads | tutorial loop clips/s (batch 256) | runner clips/s (batch 256, augmented) "
        "| runner clips/s (batch 64, augmented) | speed-up at batch 256 |\n|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
    )
    append_results("bench_runner", body, save=not args.no_save)


if __name__ == "__main__":
    main()
