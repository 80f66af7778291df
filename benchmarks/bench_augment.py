"""Time every augmentation and the Mel front end on a 1-s clip.

    .venv/bin/python benchmarks/bench_augment.py [--runs 50] [--threads 1] [--noise-root ROOT]
                                                 [--with-torchaudio-pitch]

Prints a markdown table (median and fastest of ``--runs`` calls) and appends it, under a dated
heading, to ``benchmarks/RESULTS.md`` (created if missing, never overwritten).

``--threads`` sets torch's intra-op threads (default 1: what a DataLoader worker uses, and what
per-clip work wants on a 2-core machine shared with a training job). ``--with-torchaudio-pitch``
also times ONE call of ``torchaudio.functional.pitch_shift`` (~20 s) against the audiomentations
pitch shift we use.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_results, machine, time_it  # noqa: E402

from kwscore import augment as A  # noqa: E402
from kwscore.features import FeatureConfig, front_end, linear_spectrogram_db, mel_db, resample  # noqa: E402

SR = 16000


def test_clip() -> torch.Tensor:
    """A 1-s 'word': a 0.5-s sine sweep with a Hann envelope, centred, plus faint noise."""
    t = np.arange(SR // 2) / SR
    burst = np.sin(2 * np.pi * (300 * t + 1500 * t**2)) * np.hanning(SR // 2)
    x = 1e-3 * np.random.default_rng(0).standard_normal(SR)
    x[SR // 4 : SR // 4 + SR // 2] += 0.4 * burst
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(0)


def cases(x: torch.Tensor, noises: list[torch.Tensor]) -> list[tuple[str, Callable[[int], object]]]:
    cfg = FeatureConfig()
    spec = mel_db(x, cfg)
    batch_wave = x.expand(256, -1).unsqueeze(1).contiguous()  # [256, 1, 16000]
    batch_spec = spec.expand(256, 1, -1, -1).contiguous()  # [256, 1, 40, 101]
    fe = front_end(cfg)
    spec_cfg = A.SpecAugmentConfig(time_warp=0)
    warp_cfg = A.SpecAugmentConfig(time_warp=5)
    out: list[tuple[str, Callable[[int], object]]] = [
        ("time_stretch (0.81-1.23, fixed back to 1 s)", lambda s: A.time_stretch(x, seed=s)),
        ("pitch_shift (±3.5 semitones)", lambda s: A.pitch_shift(x, (-3.5, 3.5), seed=s)),
        ("time_shift (±100 ms, zero fill)", lambda s: A.time_shift(x, seed=s)),
        ("gain (±6 dB)", lambda s: A.gain(x, seed=s)),
        ("add_background_noise (weight 0.1-0.5)", lambda s: A.add_background_noise(x, noises, seed=s)),
        (
            "add_background_noise (SNR 0-20 dB)",
            lambda s: A.add_background_noise(x, noises, snr_db=(0, 20), seed=s),
        ),
        ("add_colored_noise (white/pink/brown)", lambda s: A.add_colored_noise(x, seed=s)),
    ]
    out += [(f"compress ({name})", lambda s, n=name: A.compress(x, n)) for name in A.COMPRESSOR_PRESETS]
    out += [
        ("spec_augment, 1 spectrogram (2F + 2T masks)", lambda s: A.spec_augment(spec, spec_cfg, seed=s)),
        ("spec_augment, 1 spectrogram (+ time warp 5)", lambda s: A.spec_augment(spec, warp_cfg, seed=s)),
        ("spec_augment_batch, 256 x 40 x 101", lambda s: A.spec_augment_batch(batch_spec, spec_cfg, seed=s)),
        (
            "spec_augment_batch + warp, 256 x 40 x 101",
            lambda s: A.spec_augment_batch(batch_spec, warp_cfg, seed=s),
        ),
    ]
    out += [
        (f"pipeline preset '{n}' (waveform steps)", lambda s, n=n: A.PRESETS[n].apply(x, s, noises))
        for n in A.PRESETS
    ]
    out += [
        ("mel_db, 1 clip (40 x 101)", lambda s: mel_db(x, cfg)),
        ("linear_spectrogram_db, 1 clip (257 x 101)", lambda s: linear_spectrogram_db(x, cfg)),
        ("MelFrontEnd, batch 256", lambda s: torch.inference_mode()(fe)(batch_wave)),
        ("resample 16 kHz -> 8 kHz, 1 clip", lambda s: resample(x, SR, 8000)),
    ]
    return out


def load_or_make_noises(root: str | None) -> tuple[list[torch.Tensor], str]:
    if root:
        noises = A.load_noises(root)
        if noises:
            return noises, f"{len(noises)} recordings from {root}"
    rng = np.random.default_rng(1)
    return [torch.from_numpy((0.1 * rng.standard_normal(60 * SR)).astype(np.float32)).unsqueeze(0)], (
        "one synthetic 60-s Gaussian noise recording"
    )


def torchaudio_pitch_row(x: torch.Tensor, ours_ms: float) -> str:
    import torchaudio.functional as AF

    t0 = time.perf_counter()
    AF.pitch_shift(x, SR, 2)
    theirs = (time.perf_counter() - t0) * 1000.0
    return (
        f"| torchaudio.functional.pitch_shift (+2 semitones, 1 call) | {theirs:.1f} | {theirs:.1f} | 1 |\n\n"
        f"torchaudio's pitch_shift is **{theirs / ours_ms:,.0f}x** slower than the audiomentations one "
        f"({theirs / 1000:.1f} s vs {ours_ms:.2f} ms).\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50, help="calls per operation (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--noise-root", default=None, help="a dataset root with _background_noise_/*.wav")
    ap.add_argument(
        "--with-torchaudio-pitch", action="store_true", help="also time torchaudio's pitch_shift once (~20 s)"
    )
    ap.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    x = test_clip()
    noises, noise_desc = load_or_make_noises(args.noise_root)

    rows = []
    pitch_ms = None
    for name, fn in cases(x, noises):
        median, fastest = time_it(fn, args.runs)
        if name.startswith("pitch_shift"):
            pitch_ms = median
        rows.append(f"| {name} | {median:.2f} | {fastest:.2f} | {args.runs} |")
        print(rows[-1], flush=True)

    text = (
        f"1-s clip at 16 kHz; {machine()}; noise: {noise_desc}.\n\n"
        "| operation | median ms | fastest ms | runs |\n|---|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    if args.with_torchaudio_pitch and pitch_ms:
        text += torchaudio_pitch_row(x, pitch_ms)
    append_results("bench_augment", text, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
