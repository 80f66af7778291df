"""Export a trained run as one self-contained model file: waveform in, probabilities out.

The exported model is :class:`KeywordSpotter`: the run's **front end** (``Resample`` to 8 kHz for
the M-models, the stored :class:`~kwscore.features.MelFrontEnd` for the CNN), the **network**, and
a **softmax**. Whoever uses it needs no kwscore, no torchaudio and no knowledge of Mel settings:

    input   "waveform"       float32 [batch, 16000]  1 s of mono audio at 16 kHz, samples in [-1, 1]
    output  "probabilities"  float32 [batch, n_classes]  (rows sum to 1; order = "labels" below)

Two formats:

- ``torchscript`` (``model.pt``): ``torch.jit.load("model.pt")(waveform)``, from Python or C++
  (LibTorch). Made with ``torch.jit.trace`` (torch 2.11 marks TorchScript as deprecated in favour
  of ``torch.export``, but it still loads everywhere LibTorch runs; ONNX is the portable choice).
- ``onnx`` (``model.onnx``): runs anywhere ONNX Runtime runs (phones, browsers, microcontrollers
  with a port). Made with ``torch.onnx.export(dynamo=True)`` (opset 18): the legacy TorchScript-based
  exporter cannot translate the STFT inside the Mel front end ("STFT does not currently support
  complex types"); the dynamo exporter lowers it to ONNX's own ``STFT`` operator.

Next to the model goes ``model.json``: labels, input/output description, front-end settings, the
run it came from and a **parity** check: the largest difference between the exported model's
probabilities and the checkpoint's (run through :class:`kwscore.inference.Predictor`) on a few
test inputs, measured right after export.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import time
import warnings
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kwscore import __version__
from kwscore.audio import SAMPLE_RATE
from kwscore.errors import KwsError
from kwscore.inference import Predictor

FORMATS = {"torchscript": "model.pt", "onnx": "model.onnx"}
ONNX_OPSET = 18
#: Parity must hold to this (probabilities): the issue's "same probabilities within 1e-4".
PARITY_TOLERANCE = 1e-4


class KeywordSpotter(nn.Module):
    """Front end + network + softmax: ``[batch, 16000]`` waveform -> ``[batch, n_classes]`` probabilities."""

    def __init__(self, model: nn.Module, front_end: nn.Module) -> None:
        super().__init__()
        self.front_end = front_end
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.unsqueeze(1)  # [batch, 1, time]: the channel axis every kwscore model expects
        return torch.softmax(self.model(self.front_end(x)), dim=-1)


@dataclass
class ExportResult:
    path: Path  #: the model file
    metadata_path: Path  #: model.json beside it
    metadata: dict
    seconds: float  #: time the export took

    @property
    def max_abs_diff(self) -> float:
        return float(self.metadata["parity"]["max_abs_diff"])

    def zip_bytes(self) -> bytes:
        """The model file and model.json in one zip (for a download button)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(self.path, self.path.name)
            z.write(self.metadata_path, self.metadata_path.name)
        return buf.getvalue()


def spotter(predictor: Predictor) -> KeywordSpotter:
    """The :class:`KeywordSpotter` of a loaded run: a copy, on the CPU, in eval mode, no gradients
    (so that training-only code paths, such as the M-models' fast max-pool backward, stay out)."""
    module = KeywordSpotter(copy.deepcopy(predictor.model).cpu(), copy.deepcopy(predictor.transform).cpu())
    return module.eval().requires_grad_(False)


def parity_inputs(n: int = 6, seed: int = 0) -> torch.Tensor:
    """``[n, 16000]`` deterministic test waveforms: tone sweeps and noise bursts at several levels
    (anything works for parity: both sides must compute the same function)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    rows = []
    for i in range(n):
        f0 = 150.0 + 120.0 * i
        sweep = torch.sin(2 * torch.pi * (f0 * t + 400.0 * t**2))
        envelope = torch.exp(-(((t - 0.3 - 0.07 * i) / 0.15) ** 2))
        noise = 0.05 * torch.randn(SAMPLE_RATE, generator=gen)
        rows.append((0.5 * sweep * envelope + noise) * 10 ** (-i / 10))
    return torch.stack(rows)


def _export_torchscript(module: KeywordSpotter, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings (the models' shape checks), jit deprecation
        traced = torch.jit.trace(module, example, check_trace=False)
        traced = torch.jit.freeze(traced.eval())
    traced.save(str(path))


def _export_onnx(module: KeywordSpotter, example: torch.Tensor, path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise KwsError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from exc
    batch = torch.export.Dim("batch", min=1, max=1024)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    sink = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, (example,), dynamo=True, input_names=["waveform"], output_names=["probabilities"],
            dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET, verbose=False, optimize=True,
        )  # fmt: skip
        program.save(str(path), external_data=False)


def load_exported(path: str | os.PathLike):
    """A callable ``[batch, 16000] float32 numpy -> [batch, n_classes] numpy`` for an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise KwsError("Running an ONNX model needs onnxruntime: pip install onnxruntime") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.11 deprecates TorchScript; it still works
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x):
        with torch.inference_mode():
            return module(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return run


def export_run(
    run_dir: str | os.PathLike,
    fmt: str = "onnx",
    out_dir: str | os.PathLike | None = None,
    check_inputs: torch.Tensor | None = None,
) -> ExportResult:
    """Export a run's best checkpoint as ``fmt`` into ``out_dir`` (default ``<run>/export/<fmt>/``).

    Writes the model file and ``model.json``, loads the file back, and checks that it gives the
    checkpoint's probabilities on ``check_inputs`` ``[n, 16000]`` (default :func:`parity_inputs`);
    raises :class:`KwsError` if they differ by more than :data:`PARITY_TOLERANCE`.
    """
    if fmt not in FORMATS:
        raise KwsError(f"Unknown export format {fmt!r}. Choose torchscript or onnx.")
    run_dir = Path(run_dir).expanduser()
    started = time.perf_counter()
    predictor = Predictor.from_run(run_dir)
    module = spotter(predictor)
    out = Path(out_dir) if out_dir else run_dir / "export" / fmt
    out.mkdir(parents=True, exist_ok=True)
    path = out / FORMATS[fmt]
    tmp = out / f".tmp-{os.getpid()}-{FORMATS[fmt]}"
    example = parity_inputs(2)
    try:
        (_export_onnx if fmt == "onnx" else _export_torchscript)(module, example, tmp)
        os.replace(tmp, path)
    except KwsError:
        raise
    except Exception as exc:  # an exporter failure is reported in one line, not a traceback
        raise KwsError(f"Exporting {run_dir.name} to {fmt} failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    finally:
        tmp.unlink(missing_ok=True)

    inputs = parity_inputs() if check_inputs is None else check_inputs.reshape(len(check_inputs), -1)
    expected = predictor.probabilities(inputs.unsqueeze(1)).numpy()
    got = load_exported(path)(inputs.numpy())
    diff = float(np.abs(got - expected).max())
    metadata = _metadata(predictor, run_dir, fmt, path, diff, len(inputs))
    metadata_path = out / "model.json"
    metadata_path.write_text(json.dumps(metadata, indent=1))
    if not diff <= PARITY_TOLERANCE:
        raise KwsError(
            f"The exported {fmt} model differs from the checkpoint by {diff:.2g} (allowed "
            f"{PARITY_TOLERANCE:g}): do not use {path}."
        )
    return ExportResult(path, metadata_path, metadata, time.perf_counter() - started)


def _metadata(predictor: Predictor, run_dir: Path, fmt: str, path: Path, diff: float, n: int) -> dict:
    from kwscore.inference import run_test_accuracy

    labels = list(predictor.labels)
    fc = predictor.feature_config
    usage = {
        "onnx": "import onnxruntime as ort; s = ort.InferenceSession('model.onnx'); "
        "probs = s.run(None, {'waveform': x})[0]  # x: float32 [batch, 16000]",
        "torchscript": "import torch; m = torch.jit.load('model.pt'); probs = m(x)  # x: float32 [batch, 16000]",
    }[fmt]
    return {
        "format": fmt,
        "file": path.name,
        "labels": labels,
        "input": {"name": "waveform", "shape": ["batch", SAMPLE_RATE], "dtype": "float32", "sample_rate": SAMPLE_RATE,
                  "channels": 1, "seconds": 1.0, "range": [-1.0, 1.0],
                  "note": "mono, 16 kHz, exactly 1 s (zero-pad or cut); any batch size"},
        "output": {"name": "probabilities", "shape": ["batch", len(labels)], "dtype": "float32",
                   "note": "softmax over the labels, in this order"},
        "front_end": {
            "model_sample_rate": predictor.model_rate,
            "resample": predictor.model_rate != SAMPLE_RATE,
            "mel": fc.to_dict() if fc else None,
            "steps": predictor.front_end_steps(),
        },
        "model": {"name": predictor.model_name, "kwargs": predictor.config.get("model_kwargs", {}),
                  "parameters": sum(p.numel() for p in predictor.model.parameters())},
        "run": {"run_id": run_dir.name, "test_accuracy": run_test_accuracy(run_dir), "data": predictor.config.get("data"),
                "commands": predictor.config.get("commands")},
        "parity": {"max_abs_diff": diff, "inputs": n, "tolerance": PARITY_TOLERANCE,
                   "against": "the run's best.pt through kwscore.inference.Predictor"},
        "exported_with": {"kwscore": __version__, "torch": torch.__version__,
                          "opset": ONNX_OPSET if fmt == "onnx" else None,
                          "at": time.strftime("%Y-%m-%d %H:%M:%S")},
        "usage": usage,
    }  # fmt: skip


def existing_export(run_dir: str | os.PathLike, fmt: str) -> ExportResult | None:
    """A previous export of this run in ``<run>/export/<fmt>/`` that is newer than its best.pt."""
    out = Path(run_dir) / "export" / fmt
    path, meta = out / FORMATS.get(fmt, "?"), out / "model.json"
    try:
        if path.stat().st_mtime < (Path(run_dir) / "best.pt").stat().st_mtime:
            return None
        metadata = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if metadata.get("format") != fmt or not metadata.get("parity"):
        return None
    return ExportResult(path, meta, metadata, 0.0)
