"""Resampling any accepted sample rate to 16 kHz: time and memory of one 1-s clip.

Target (issue #10, item 2): for every rate KWS Studio accepts (4 kHz to 192 kHz) a 1-s clip
resamples to 16 kHz in ≤ 50 ms and ≤ 300 MB peak. Before, torchaudio's sinc resampler built a
kernel of ~(orig/g)·(16000/g) taps (g = gcd of the two rates): 8,001 Hz took 17 s and 4.6 GB.

Each rate runs in a fresh process (``--child RATE``), so its peak RSS is its own: the process
imports torch and kwscore (the baseline), warms torch up once, then resamples the clip once at the
rate (what the first upload at that rate costs in a running dashboard, kernel construction
included: *first*, wall and CPU time) and 20 times more (*warm*). Memory is the growth
of the process's peak RSS over the baseline; the baseline (the torch import, ~0.5 GB) is shown too.

    .venv/bin/python benchmarks/bench_resample.py [--no-save]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from common import REPO, append_results, machine

RATES = [4000, 8000, 8001, 11025, 22050, 32000, 44100, 44101, 48000, 88200, 96000, 176400, 191999, 192000]
TARGET_MS = 50.0
TARGET_MB = 300.0


def child(rate: int) -> dict:
    import numpy as np
    import torch

    from kwscore import audio

    torch.set_num_threads(1)  # so that CPU time is this call's own
    t = np.arange(rate) / rate
    clip = torch.from_numpy((0.3 * np.sin(2 * np.pi * 440 * t) * np.hanning(rate)).astype(np.float32))[None]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    audio.resample(torch.zeros(1, 16000), 16000, 8000)  # torch's one-time set-up, as in a running dashboard
    wall, cpu = time.perf_counter(), time.process_time()
    out = audio.resample(clip, rate, 16000)
    first_ms, first_cpu_ms = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
    warm = []
    for _ in range(20):
        tic = time.perf_counter()
        audio.resample(clip, rate, 16000)
        warm.append((time.perf_counter() - tic) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rate": rate, "method": audio.resampling_method(rate, 16000), "taps": audio.sinc_taps(rate, 16000),
        "samples_out": int(out.shape[-1]), "first_ms": first_ms, "first_cpu_ms": first_cpu_ms,
        "warm_ms": statistics.median(warm), "base_mb": base, "peak_mb": peak, "grown_mb": peak - base,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-save", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    rows = []
    for rate in RATES:
        done = subprocess.run([sys.executable, __file__, "--child", str(rate)], capture_output=True, text=True,
                              cwd=REPO, check=True, timeout=300)  # fmt: skip
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{rate:>7} Hz: {r['method']:<4} first {r['first_ms']:6.1f} ms ({r['first_cpu_ms']:.1f} CPU), "
              f"warm {r['warm_ms']:5.2f} ms, "
              f"+{r['grown_mb']:.0f} MB", flush=True)  # fmt: skip
    lines = [
        f"{machine()}.",
        "",
        f"One 1-s mono clip at each rate -> 16 kHz with `kwscore.audio.resample`, each rate in a fresh process. "
        f"*first*: the first call at this rate (its sinc kernel built, if any; torch's one-time set-up done before, "
        f"as in a running dashboard), wall and CPU time (1 thread); *warm*: median of 20. *memory*: growth of the "
        f"process's peak RSS "
        f"over its baseline after importing torch and kwscore ({min(r['base_mb'] for r in rows):.0f}–"
        f"{max(r['base_mb'] for r in rows):.0f} MB). *sinc kernel*: what torchaudio's Resample would allocate for "
        f"this pair (float32); pairs over {2**19:,} taps (2 MB) go to soxr instead. Targets: ≤ {TARGET_MS:g} ms, "
        f"≤ {TARGET_MB:g} MB.",
        "",
        "| rate (Hz) | method | sinc kernel | first ms | first CPU ms | warm ms | memory MB | peak RSS MB | ≤ 50 ms and ≤ 300 MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        kernel = r["taps"] * 4 / 2**20
        ok = r["first_ms"] <= TARGET_MS and r["grown_mb"] <= TARGET_MB
        lines.append(
            f"| {r['rate']:,} | {r['method']} | {kernel:,.2f} MB | {r['first_ms']:.1f} | {r['first_cpu_ms']:.1f} | "
            f"{r['warm_ms']:.2f} | "
            f"{r['grown_mb']:.0f} | {r['peak_mb']:.0f} | {'yes' if ok else '**no**'} |"
        )
    worst = max(rows, key=lambda r: r["first_ms"])
    lines += ["", f"Slowest: {worst['rate']:,} Hz, {worst['first_ms']:.1f} ms on its first call; largest growth "
                  f"{max(r['grown_mb'] for r in rows):.0f} MB."]  # fmt: skip
    append_results("bench_resample", "\n".join(lines), save=not args.no_save)


if __name__ == "__main__":
    main()
