"""Each page's "PyTorch code" runs in a fresh interpreter and reproduces the numbers the page shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
pytestmark = pytest.mark.slow  # each snippet imports torch in a new process (a few seconds)


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def page_code(at: AppTest) -> str:
    (code,) = [c.value for c in at.code if c.language == "python" and "import" in c.value]
    return code


def run_code(code: str, tmp_path: Path) -> str:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def spec_z(at: AppTest, key: str) -> np.ndarray:
    from tests.test_pages_sound import z

    return z(at, key)


def test_spectrogram_lab_code_reproduces_the_picture(kws_env, tmp_path):
    at = open_page("spectrogram")
    at.button(key="spec_preset_torchaudio").click().run()
    code = page_code(at)
    assert "T.MelSpectrogram(  # = T.MelSpectrogram(): torchaudio's defaults" in code and "n_fft=400," in code
    out = run_code(code, tmp_path)
    shown = spec_z(at, "spec_main")
    assert f"-> spectrogram [{shown.shape[0]}, {shown.shape[1]}]" in out and shown.shape == (128, 81)
    low, high = map(float, re.search(r"dB range (\S+) \.\. (\S+)", out).groups())
    assert low == pytest.approx(float(shown.min()), abs=0.06) and high == pytest.approx(float(shown.max()), abs=0.06)
    at.number_input(key="spec_n_fft").set_value(1000).run()  # the code follows the settings
    assert "n_fft=1000," in page_code(at)


def test_explore_code_loads_the_same_sample(kws_env, tmp_path):
    at = open_page("explore")
    out = run_code(page_code(at), tmp_path)
    m = metrics(at)
    clip = at.session_state["clip"]["clip_id"]
    word = clip.split("/")[0]
    assert f"shape [{m['Tensor shape'].strip('[]').replace(' ', ' ')}]" in out.replace("[1, ", "[1, ")
    assert f"sample rate 16000 label {word}" in out and f"duration {m['Duration']}" in out


def test_augmentation_lab_code_draws_the_same_values(kws_env, tmp_path):
    at = open_page("augmentation")
    out = run_code(page_code(at), tmp_path)
    shown = next(c.value for c in at.caption if c.value.startswith("RMS "))
    before, after = re.match(r"RMS (\S+) → (\S+) dBFS", shown).groups()
    assert f"RMS {before} -> {after} dBFS" in out
    rows, frames = spec_z(at, "aug_spec_a").shape
    assert f"spectrogram [{rows}, {frames}]" in out


def test_train_code_builds_the_model_on_the_page(kws_env, tmp_path):
    at = open_page("train")
    for recipe in ("cnn", "m5tutorial"):
        at.radio(key="tr_model").set_value(recipe).run()
        m = metrics(at)
        out = run_code(page_code(at), tmp_path)
        assert f"{m['Parameters']} parameters" in out, (recipe, out[-500:])
        shape = [int(x) for x in m["Input"].replace("×", " ").split()]
        assert f"input [1, 1, {', '.join(map(str, shape))}]" in out, (recipe, out[-300:])
        assert f"output [1, {m['Output'].split()[0]}]" in out


def test_home_and_worksheet_code_run(kws_env, tmp_path):
    out = run_code(page_code(open_page("home")), tmp_path)
    assert "-> [1, 40, 101] ->" in out
    ws = open_page("worksheet")
    out = run_code(page_code(ws), tmp_path)
    assert "10 ms = 160.0 samples; powers of two around it: 128 256" in out
    assert "frames per 1-s clip: 101" in out and "FFT bins: 257 ; Mel bands: 40" in out


def test_runs_code_recomputes_the_test_accuracy(kws_env, tmp_path, monkeypatch):
    from tests.trained import trained_cnn_run

    runs = Path(os.environ["KWS_RUNS_DIR"])
    run_dir = trained_cnn_run(Path(kws_env) / "synthetic", runs)
    at = open_page("runs")
    at.selectbox(key="runs_detail").set_value(run_dir.name).run()
    code = next(c.value for c in at.code if "evaluate(" in c.value)
    out = run_code(code, tmp_path)
    report = json.loads((run_dir / "report.json").read_text())
    assert f"test accuracy {report['accuracy']:.4f} ({report['n_correct']}/{report['n_total']})" in out
    assert metrics(at)["Test accuracy"] == f"{100 * report['accuracy']:.1f} %"
