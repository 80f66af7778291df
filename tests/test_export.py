"""kwscore.export: a run as one TorchScript / ONNX file that gives the checkpoint's probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kwscore.errors import KwsError
from kwscore.export import PARITY_TOLERANCE, existing_export, export_run, load_exported
from kwscore.inference import Predictor

SR = 16000


@pytest.fixture(scope="session")
def cnn_run(embedded_data_dir, tmp_path_factory):
    from tests.trained import trained_cnn_run

    return trained_cnn_run(embedded_data_dir / "synthetic", tmp_path_factory.mktemp("export-runs"))


@pytest.fixture(scope="module")
def m5_run(small_synth, tmp_path_factory):
    """A tiny M5 (8 kHz: the export must include the resampler): one epoch is enough for parity."""
    from kwscore.recipes import default_config
    from kwscore.runner import run_training

    config = default_config("m5", data=str(small_synth), epochs=1, batch_size=32, threads=1, augment="none", sample_rate=8000,
                            model_kwargs={"n_channel": 8, "stride": 16})  # fmt: skip
    run_dir = tmp_path_factory.mktemp("m5-runs") / "20260101-000000-m5-abcdef"
    assert run_training(config, run_dir).state == "succeeded"
    return run_dir


def test_clips(root, labels, n: int = 24) -> torch.Tensor:
    """[n, 16000] real test-split clips of the run's words."""
    from kwscore import audio
    from kwscore.data.dataset import SpeechCommands

    ds = SpeechCommands(root, subset="testing", commands=labels)
    return torch.stack([audio.fix_length(ds.waveform(i), SR)[0] for i in range(0, len(ds), max(1, len(ds) // n))][:n])


test_clips.__test__ = False


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_cnn_export_matches_the_checkpoint(cnn_run, embedded_data_dir, fmt, tmp_path):
    predictor = Predictor.from_run(cnn_run)
    clips = test_clips(embedded_data_dir / "synthetic", predictor.labels)
    result = export_run(cnn_run, fmt, tmp_path / fmt, check_inputs=clips)
    assert result.path.name == {"torchscript": "model.pt", "onnx": "model.onnx"}[fmt] and result.path.exists()

    # load it back independently (ONNX: in onnxruntime) and compare on real clips, several batch sizes
    run = load_exported(result.path)
    expected = predictor.probabilities(clips.unsqueeze(1)).numpy()
    for batch in (1, 5, len(clips)):
        got = run(clips[:batch].numpy())
        assert got.shape == (batch, len(predictor.labels))
        assert np.abs(got - expected[:batch]).max() <= PARITY_TOLERANCE
        assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)  # probabilities, softmax included
    assert (run(clips.numpy()).argmax(1) == expected.argmax(1)).all()
    print(f"{fmt}: max |exported - checkpoint| = {result.max_abs_diff:.2e} on {len(clips)} test clips, "
          f"export took {result.seconds:.1f} s, {result.path.stat().st_size / 1024:.0f} KiB")  # fmt: skip

    meta = json.loads(result.metadata_path.read_text())
    assert meta["labels"] == predictor.labels and meta["format"] == fmt
    assert meta["input"]["shape"] == ["batch", SR] and meta["input"]["sample_rate"] == SR
    assert meta["front_end"]["mel"]["n_mels"] == 40 and meta["front_end"]["resample"] is False
    assert meta["parity"]["max_abs_diff"] <= PARITY_TOLERANCE and meta["parity"]["inputs"] == len(clips)


def test_onnx_model_is_valid_and_runs_in_onnxruntime(cnn_run, tmp_path):
    import onnx
    import onnxruntime as ort

    result = export_run(cnn_run, "onnx", tmp_path)
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["waveform"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    assert any(node.op_type == "STFT" for node in model.graph.node)  # the Mel front end is inside
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"waveform": np.zeros((3, SR), dtype=np.float32)})[0]
    assert out.shape == (3, 8) and np.isfinite(out).all()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_m5_export_includes_the_resampler(m5_run, small_synth, fmt):
    predictor = Predictor.from_run(m5_run)
    assert predictor.model_rate == 8000
    clips = test_clips(small_synth, predictor.labels, 8)
    result = export_run(m5_run, fmt, check_inputs=clips)  # default folder: RUN/export/FORMAT
    assert result.path.parent == m5_run / "export" / fmt
    got = load_exported(result.path)(clips.numpy())
    assert np.abs(got - predictor.probabilities(clips.unsqueeze(1)).numpy()).max() <= PARITY_TOLERANCE
    assert result.metadata["front_end"]["resample"] is True and result.metadata["front_end"]["mel"] is None
    again = existing_export(m5_run, fmt)  # the page offers it without exporting again
    assert again is not None and again.path == result.path
    assert {n for n in __import__("zipfile").ZipFile(__import__("io").BytesIO(again.zip_bytes())).namelist()} == {
        result.path.name, "model.json"}  # fmt: skip


def test_cli_export(m5_run, capsys, tmp_path):
    from kwscore.cli import main

    assert main(["export", str(m5_run), "--format", "torchscript", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model.pt" in out and "max difference" in out and (tmp_path / "model.json").exists()
    assert main(["export", "20990101-000000-cnn-ffffff", "--runs-dir", str(tmp_path), "--format", "onnx"]) == 2
    assert "No run '20990101-000000-cnn-ffffff'" in capsys.readouterr().err


def test_bad_export_requests(m5_run, tmp_path):
    with pytest.raises(KwsError, match="torchscript or onnx"):
        export_run(m5_run, "tflite")
    with pytest.raises(KwsError, match="no best.pt"):
        export_run(tmp_path, "onnx")
