"""Data benchmarks: embedded dataset generation time and loader throughput.

    .venv/bin/python benchmarks/bench_data.py [--no-save]

Reports, in one run: the time to synthesise the default embedded dataset (40 speakers × 35 words ×
3 takes; target < 20 s on 2 cores), and the loader's clips/s over the training split for a first
epoch (file decoding) against a cached epoch (memory only), with the cache's memory use.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import append_results, machine  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from kwscore.data.dataset import SpeechCommands  # noqa: E402
from kwscore.data.synth import SynthParams, generate  # noqa: E402

SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"


def epoch_rate(ds: SpeechCommands) -> float:
    """Clips per second through a DataLoader (batch 256, collate = pad + label indices)."""
    t0 = time.perf_counter()
    n = sum(len(t) for _, t in DataLoader(ds, batch_size=256, shuffle=True, collate_fn=ds.collate_fn))
    return n / (time.perf_counter() - t0)


def loader_rows(name: str, root: Path, commands: str) -> list[str]:
    rows = []
    for sr in (16000, 8000):
        ds = SpeechCommands(root, "training", commands=commands, sample_rate=sr, cache=True)
        first, cached = epoch_rate(ds), epoch_rate(ds)
        rows.append(
            f"| {name} | {commands} | {sr} | {len(ds)} | {first:,.0f} | {cached:,.0f} | "
            f"{cached / first:.1f}× | {ds.cache_bytes() / 2**20:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    ap.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1, as in a DataLoader worker: per-clip resampling with 2 "
        "threads on a busy 2-core machine waits ~10 ms per call for the second thread)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = generate(Path(tmp) / "synthetic", SynthParams())
        gen_s = time.perf_counter() - t0
        print(f"generation: {gen_s:.1f} s", flush=True)
        rows = loader_rows("synthetic (default)", root, "35")
        if SHARED_REAL.is_dir():
            rows += loader_rows("shared real", SHARED_REAL, "8")
    body = (
        f"{machine()}.\n\n"
        f"Embedded dataset (40 speakers × 35 words × 3 takes = 4,200 clips + 4 noises): **{gen_s:.1f} s** "
        "to generate (target < 20 s).\n\n"
        "Loader throughput over the training split (DataLoader, batch 256, main process):\n\n"
        "| dataset | words | sample rate | clips | first epoch clips/s | cached epoch clips/s | "
        "speed-up | cache MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    append_results("bench_data", body, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
