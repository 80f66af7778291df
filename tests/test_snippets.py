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
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
pytestmark = pytest.mark.slow  # each snippet imports torch in a new process (a few seconds)


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


#: The "PyTorch code" expander of every page (``dashboard.code_view``): its code is built when it is open.
CODE_KEYS = ["home_code", "ws_code", "explore_code", "spec_code", "aug_code", "tr_code", "runs_code", "try_code",
             "rec_code", "live_code"]  # fmt: skip


def open_code(at: AppTest) -> AppTest:
    """Open the page's code expander (as a student clicks it) and rerun."""
    for key in CODE_KEYS:
        at.session_state[key] = True
    return at.run()


def page_code(at: AppTest) -> str:
    """The page's code, its expander opened first when it is closed."""
    found = [c.value for c in at.code if c.language == "python" and "import" in c.value]
    if not found:
        found = [c.value for c in open_code(at).code if c.language == "python" and "import" in c.value]
    (code,) = found
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
    assert not at.code  # the lab builds its code only when the expander is open
    at.session_state["spec_code"] = True
    at.button(key="spec_preset_torchaudio").click().run()
    code = page_code(at)
    assert "T.MelSpectrogram(  # = T.MelSpectrogram(): torchaudio's defaults" in code and "n_fft=400," in code
    out = run_code(code, tmp_path)
    shown = spec_z(at, "spec_main")
    assert f"-> spectrogram [{shown.shape[0]}, {shown.shape[1]}]" in out and shown.shape == (128, 81)
    low, high = map(float, re.search(r"dB range (\S+) \.\. (\S+)", out).groups())
    from tests.test_pages_sound import db_range

    shown_low, shown_high = db_range(at, "spec_main")
    assert low == pytest.approx(shown_low, abs=0.06) and high == pytest.approx(shown_high, abs=0.06)
    at.number_input(key="spec_n_fft").set_value(1000).run()  # the code follows the settings
    assert "n_fft=1000," in page_code(at)


def test_explore_code_loads_the_same_sample(kws_env, tmp_path):
    at = open_page("explore")
    assert not at.code, "the code is built when its expander is opened"
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
    for recipe in ("cnn", "m5tutorial", "embed"):
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
    assert not at.code, "the code is built when its expander is opened"
    code = next(c.value for c in open_code(at).code if "evaluate(" in c.value)
    out = run_code(code, tmp_path)
    report = json.loads((run_dir / "report.json").read_text())
    assert f"test accuracy {report['accuracy']:.4f} ({report['n_correct']}/{report['n_total']})" in out
    assert metrics(at)["Test accuracy"] == f"{100 * report['accuracy']:.1f} %"


# -- Try it, Live, Your own words: a trained run ------------------------------------------------------


@pytest.fixture
def page_run(kws_env):
    """The session's small trained CNN (tests/trained.py), in the dashboard's runs folder."""
    from tests.trained import trained_cnn_run

    return trained_cnn_run(Path(kws_env) / "synthetic", Path(os.environ["KWS_RUNS_DIR"]))


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="try_upload").set_value((name, data, "audio/wav")).run()
    assert not at.exception, at.exception
    return at


def code_and_audio(at: AppTest, key: str, data: bytes, tmp_path: Path) -> str:
    """The page's snippet, with the audio it offers for download (``data``) saved under the name it
    offers, beside the script, as a student would."""
    open_code(at)
    (button,) = [b for b in at.get("download_button") if b.proto.id.endswith(f"-{key}_audio")]
    name = re.search(r"Download (\S+) ", button.proto.label).group(1)
    (tmp_path / name).write_bytes(data)
    return page_code(at)


def test_try_it_code_hears_the_same_word(page_run, kws_env, tmp_path):
    from kwscore import audio
    from kwscore.inference import Predictor
    from tests.trained import heard_clip

    x = heard_clip(Path(kws_env) / "synthetic", "left", Predictor.from_run(page_run))
    data = audio.wav_bytes(torch.from_numpy(x).view(1, -1), 16000)
    at = upload(open_page("try_it"), "left.wav", data)
    (shown,) = [s.value for s in at.success]  # "Heard **left** (97 %)."
    out = run_code(code_and_audio(at, "try_code", data, tmp_path), tmp_path)
    word, pct = re.match(r"Heard \*\*(\w+)\*\* \((\d+) %\)", shown).groups()
    assert f"heard {word} ({pct} %), confident at 50 %" in out, out


def test_try_it_code_detects_the_same_words(page_run, kws_env, tmp_path):
    from kwscore import audio
    from kwscore.streaming import compose_from_dataset

    words = ["yes", "stop", "left", "down"]
    comp = compose_from_dataset(Path(kws_env) / "synthetic", words, 12.0, noise_db=-25, seed=4)
    data = audio.wav_bytes(comp.waveform, 16000)
    at = upload(open_page("try_it"), "long.wav", data)
    at.select_slider(key="try_smooth").set_value(200).run()  # the code follows the settings
    out = run_code(code_and_audio(at, "try_code", data, tmp_path), tmp_path)
    assert "smooth=0.2," in page_code(at)
    n = int(metrics(at)["Words detected"])
    assert n >= 3 and f"{n} words detected in 12.0 s" in out, out
    table = at.dataframe[0].value
    lines = [f"{r.word:>8} {r['start (s)']:6.2f}-{r['end (s)']:.2f} s" for _, r in table.iterrows()]
    assert all(line in out for line in lines), (lines, out)


def test_live_code_runs_the_pages_detector(page_run, kws_env, tmp_path, monkeypatch):
    """The page's detector settings reach the code. The WebRTC component needs a browser (AppTest has no
    server runtime): it is replaced by a microphone that was never started (tests/browser/test_live.py
    drives the real one)."""
    from types import SimpleNamespace

    import streamlit_webrtc

    from kwscore.streaming import compose_from_dataset

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer",
                        lambda **kw: SimpleNamespace(state=SimpleNamespace(playing=False)))  # fmt: skip
    at = open_page("live")
    at.select_slider(key="live_smooth").set_value(300).run()
    assert not at.exception, at.exception
    code = page_code(at)
    assert "smooth=0.3," in code
    out = run_code(code, tmp_path)
    detector = at.session_state["live_session"].detector  # the page's own detector, fed the same 20 s
    mic = compose_from_dataset(Path(kws_env) / "synthetic", detector.labels, 20.0, seed=0).waveform[0]
    found = [d for i in range(0, len(mic), 320) for d in detector.feed(mic[i : i + 320])]
    assert len(found) >= 5 and f"{len(found)} words detected in 20.0 s" in out, out
    assert [re.search(r"heard (\S+) ", line).group(1) for line in out.splitlines() if " heard " in line] == [
        d.word for d in found
    ]


def test_record_code_trims_and_counts_like_the_page(page_run, embedded_data_dir, tmp_path, monkeypatch):
    from kwscore import audio
    from kwscore.data.dataset import SpeechCommands
    from kwscore.recipes import FINETUNE
    from kwscore.userdata import save_take

    data = tmp_path / "data"
    data.mkdir()
    (data / "synthetic").symlink_to(embedded_data_dir / "synthetic")
    monkeypatch.setenv("KWS_DATA_DIR", str(data))
    clips = SpeechCommands(embedded_data_dir / "synthetic", subset="testing", commands=["yes"])
    for i in range(6):  # takes 0-5: training ×4, validation, testing
        save_take(data / "user", "yes", "Ada", clips.waveform(i), 16000)
    said = audio.fix_length(clips.waveform(7), 16000)
    take = audio.wav_bytes(torch.nn.functional.pad(said, (8000, 12000)), 16000)  # 2.25 s, the word inside

    at = open_page("record")
    at.text_input(key="rec_name").set_value("Ada").run()
    at.audio_input(key="rec_take_0").set_value(("take.wav", take, "audio/wav")).run()
    at.selectbox(key="rec_ft_run").set_value(page_run.name).run()
    assert not at.exception, at.exception
    out = run_code(code_and_audio(at, "rec_code", take, tmp_path), tmp_path)
    title = next(c["layout"]["title"]["text"] for c in (json.loads(e.proto.spec) for e in at.get("plotly_chart"))
                 if "Trimmed and centred" in c["layout"]["title"]["text"])  # fmt: skip
    assert re.search(r"(\d+\.\d+) s → 1 s", title).group(1) == "2.25" and "take 2.25 s -> 1 s" in out, out
    counts = at.dataframe[0].value.loc["yes"]
    for split in ("training", "validation", "testing"):
        assert f"{split} {counts[split]} clips" in out
    assert f"fine-tune: {FINETUNE['epochs']} epochs" in out and f"from {page_run.name}" in out
