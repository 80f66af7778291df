"""Convert Google's ``speech_embedding`` (as shipped in openWakeWord 0.4.0) into kwscore's weights file.

    pip download --no-deps openwakeword==0.4.0 -d /tmp/oww
    .venv/bin/python benchmarks/convert_speech_embedding.py /tmp/oww/openwakeword-0.4.0-py3-none-any.whl

The wheel carries ``openwakeword/resources/models/embedding_model.onnx``: the speech embedding network of
Google's TF-Hub model ``google/speech_embedding/1`` (Apache 2.0; Lin et al., "Training keyword spotters with
limited and synthesized speech data", ICASSP 2020), converted to ONNX by openWakeWord (Apache 2.0). Its 20
convolutions (batch-norm folded into them, except the first) are read in the order they run and saved as a
plain ``{name: tensor}`` file, ``kwscore/pretrained/speech-embedding/speech_embedding.pt``, which
:class:`kwscore.models.SpeechEmbedding` loads. The log-Mel front end of the same wheel
(``melspectrogram.onnx``) needs no weights: it is torchaudio's Mel spectrogram with the settings of
:class:`kwscore.models.SpeechEmbedding` (the script checks that too). Last, it checks that kwscore's module
gives the ONNX models' numbers (onnxruntime, from requirements-dev.txt) on real-looking audio.
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kwscore.models import EMBEDDING_WEIGHTS, SpeechEmbedding  # noqa: E402

MODELS = "openwakeword/resources/models/"
REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "reference"


def convert(onnx_path: Path) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    out: dict[str, torch.Tensor] = {}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    for i, node in enumerate(convs):
        out[f"conv{i}.weight"] = init[node.input[1]].float()
        if len(node.input) > 2:
            out[f"conv{i}.bias"] = init[node.input[2]].float()
    (bn,) = [n for n in graph.node if n.op_type == "BatchNormalization"]
    gamma, beta, mean, var = (init[name].float() for name in bn.input[1:5])
    eps = next(a.f for a in bn.attribute if a.name == "epsilon")
    scale = gamma / torch.sqrt(var + eps)
    out["bn0.scale"], out["bn0.shift"] = scale, beta - mean * scale
    return out


def onnx_embeddings(models: Path, audio: np.ndarray) -> np.ndarray:
    """openWakeWord's own recipe: log-Mel (x / 10 + 2), windows of 76 frames every 8, embedding of each."""
    import onnxruntime as ort

    mel = ort.InferenceSession(str(models / "melspectrogram.onnx"))
    emb = ort.InferenceSession(str(models / "embedding_model.onnx"))
    spec = mel.run(None, {"input": audio[None].astype(np.float32)})[0].squeeze() / 10 + 2
    windows = np.stack([spec[i : i + 76] for i in range(0, spec.shape[0] - 75, 8)])[..., None]
    return emb.run(None, {"input_1": windows.astype(np.float32)})[0].reshape(len(windows), 96)


def main() -> int:
    wheel = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            for name in ("melspectrogram.onnx", "embedding_model.onnx"):
                z.extract(MODELS + name, tmp)
        models = Path(tmp) / MODELS
        weights = convert(models / "embedding_model.onnx")
        EMBEDDING_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        torch.save(weights, EMBEDDING_WEIGHTS)
        print(f"wrote {EMBEDDING_WEIGHTS} ({EMBEDDING_WEIGHTS.stat().st_size:,} bytes, {len(weights)} tensors)")

        # check against the ONNX models on a voiced sweep (int16, as openWakeWord feeds it); keep both for
        # tests/test_models.py, which checks kwscore's module against them without the wheel
        t = np.arange(24000) / 16000
        rng = np.random.default_rng(0)
        wave = 8000 * np.sin(2 * np.pi * (120 + 80 * t) * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 300 * rng.standard_normal(t.size)
        audio = np.round(wave).astype(np.int16)
        ref = onnx_embeddings(models, audio.astype(np.float32))
        ours = SpeechEmbedding()(torch.tensor(audio / 32768.0, dtype=torch.float32)[None, None])[0].T.numpy()
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        print(f"embeddings {ours.shape}; largest difference from openWakeWord's ONNX models: {err:.2e} of the largest value")
        REFERENCE.mkdir(parents=True, exist_ok=True)
        sf.write(REFERENCE / "sweep.wav", audio, 16000, subtype="PCM_16")
        np.save(REFERENCE / "sweep_embedding.npy", ref.astype(np.float32))
        print(f"wrote {REFERENCE}/sweep.wav and sweep_embedding.npy (openWakeWord's numbers)")
        return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
