"""Inference speed: one 1-s clip through a whole model (front end included), and streaming detection.

    .venv/bin/python benchmarks/bench_inference.py [--runs 200] [--threads 1] [--no-save]

1. **Single-clip latency** (target ≤ 5 ms on the CPU): waveform ``[1, 1, 16000]`` at 16 kHz ->
   probabilities, for the tuned CNN and M5 recipes (and the tutorial's 8-kHz M5, whose front end
   resamples), run three ways: eager PyTorch (:class:`kwscore.inference.Predictor`), the exported
   TorchScript file and the exported ONNX file in ONNX Runtime (:mod:`kwscore.export`).
2. **Streaming detection** over a 60-s recording (1-s windows every 100 ms = 591 windows, posterior
   handling included), as a real-time factor: processing time / 60 s.

Latency does not depend on the weights, so untrained models built from the recipes are used.
Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_results, machine, time_it  # noqa: E402

from kwscore.export import KeywordSpotter, _export_onnx, _export_torchscript, load_exported  # noqa: E402
from kwscore.features import build_transform, transform_config  # noqa: E402
from kwscore.inference import Predictor  # noqa: E402
from kwscore.models import build_model, count_parameters  # noqa: E402
from kwscore.recipes import default_config  # noqa: E402
from kwscore.streaming import StreamConfig  # noqa: E402

SR = 16000
LABELS = ["down", "go", "left", "no", "right", "stop", "up", "yes"]


def predictor(model: str, **overrides) -> tuple[Predictor, str]:
    """An untrained model of a recipe with its exact front end, and a description."""
    config = default_config(model, data="/nowhere", **overrides)
    net = build_model(config.model, len(LABELS), **{**config.model_kwargs, **(
        {"sample_rate": config.model_rate} if config.representation == "waveform" else {})}).eval()  # fmt: skip
    transform = build_transform(transform_config(config.model_rate, config.feature_config))
    kwargs = ", ".join(f"{k}={v}" for k, v in config.model_kwargs.items())
    rate = f"{config.model_rate // 1000} kHz"
    return Predictor(net, transform, LABELS, config.to_dict()), f"{model} ({kwargs}; {rate}; {count_parameters(net):,} params)"


def clip() -> torch.Tensor:
    t = np.arange(SR // 2) / SR
    x = 1e-3 * np.random.default_rng(0).standard_normal(SR)
    x[SR // 4 : 3 * SR // 4] += 0.4 * np.sin(2 * np.pi * (300 * t + 1500 * t**2)) * np.hanning(SR // 2)
    return torch.from_numpy(x.astype(np.float32)).view(1, 1, SR)


def long_recording(seconds: float = 60.0) -> torch.Tensor:
    """60 s of quiet noise with a 'word' (the clip's sweep) every 2 s."""
    x = 0.003 * torch.randn(1, round(seconds * SR), generator=torch.Generator().manual_seed(0))
    word = clip()[0, 0, SR // 4 : 3 * SR // 4]
    for start in np.arange(0.7, seconds - 1, 2.0):
        i = round(start * SR)
        x[0, i : i + word.numel()] += word
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = [predictor("cnn"), predictor("m5"), predictor("m5", sample_rate=8000,
                                                            model_kwargs={"n_channel": 32, "stride": 16})]  # fmt: skip
    x = clip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p, name in models:
            spotter = KeywordSpotter(p.model, p.transform).eval().requires_grad_(False)
            ts, ox = Path(tmp) / f"{len(rows)}.pt", Path(tmp) / f"{len(rows)}.onnx"
            _export_torchscript(spotter, x.view(1, SR).repeat(2, 1), ts)
            _export_onnx(spotter, x.view(1, SR).repeat(2, 1), ox)
            scripted, onnx = load_exported(ts), load_exported(ox)
            x_np = x.view(1, SR).numpy()
            for how, fn in [("PyTorch eager (Predictor)", lambda i, p=p: p.probabilities(x)),
                            ("TorchScript (exported)", lambda i, f=scripted, a=x_np: f(a)),
                            ("ONNX Runtime (exported)", lambda i, f=onnx, a=x_np: f(a))]:  # fmt: skip
                med, best = time_it(fn, args.runs)
                rows.append(f"| {name} | {how} | {med:.2f} | {best:.2f} | {'yes' if med <= 5 else 'no'} |")
                print(rows[-1], flush=True)

    stream_rows = []
    recording = long_recording()
    cfg = StreamConfig()
    for p, name in models:
        p.detect(recording[:, : 5 * SR], cfg)  # warm-up
        times = []
        for _ in range(3):
            tic = time.perf_counter()
            result = p.detect(recording, cfg)
            times.append(time.perf_counter() - tic)
        t = float(np.median(times))
        stream_rows.append(f"| {name} | {len(result.times)} | {t:.2f} | {t / 60:.4f} | {60 / t:.0f}× |")
        print(stream_rows[-1], flush=True)

    from kwscore.streaming import detect

    tic = time.perf_counter()
    detect(recording, SR, lambda w: torch.full((len(w), len(LABELS)), 1 / len(LABELS)), LABELS, cfg)
    alone = time.perf_counter() - tic

    body = (
        f"{machine()}.\n\n"
        f"**Single-clip latency**: one 1-s clip `[1, 16000]` at 16 kHz -> probabilities, front end (resampling "
        f"/ Mel) and softmax included; median and fastest of {args.runs} calls, {args.threads} thread(s). "
        "Target ≤ 5 ms.\n\n"
        "| model | run as | median ms | fastest ms | ≤ 5 ms |\n|---|---|---:|---:|:---:|\n" + "\n".join(rows) + "\n\n"
        f"**Streaming detection** over a 60-s recording: 1-s windows every {1000 * cfg.hop:.0f} ms, classified in "
        f"batches of 64 with the eager model, smoothing {1000 * cfg.smooth:.0f} ms, gate, threshold and refractory "
        "period included (median of 3).\n\n"
        "| model | windows | seconds | real-time factor | faster than real time |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(stream_rows)
        + f"\n\nOf that, framing + loudness gate + smoothing + peak picking alone (a classifier that costs nothing) "
        f"take {alone:.2f} s; the rest is the model."
    )
    append_results("bench_inference", body, save=not args.no_save)


if __name__ == "__main__":
    main()
