"""kwscore.streameval: the counting rules, the DET curve, and stream-eval end to end.

The counting rules are checked on hand-made detections; the DET curve on random ones; the whole
evaluation on a generated stream whose truth is known exactly (tones a toy classifier hears), then
`kwscore stream-eval` on the test CNN and the embedded dataset.
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from kwscore.errors import KwsError
from kwscore.streameval import det_curve, evaluate, read_truth, recommend, score, stored_threshold
from kwscore.streaming import Detection, Placed, StreamConfig, compose, detect

SR = 16000
LABELS = ["no", "yes", "_unknown_"]
HOUR = 1.0


def word(name: str, start: float, end: float | None = None) -> Placed:
    return Placed(name, "", start - 0.2, start, end if end is not None else start + 0.5)


def found(name: str, start: float, end: float | None = None, p: float = 0.9) -> Detection:
    return Detection(name, start, end if end is not None else start + 0.5, p)


# ------------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------------


def test_a_detection_counts_within_half_a_second_of_the_word():
    truth = [word("yes", 10.0, 10.5)]
    assert score([found("yes", 10.9, 11.2)], truth, LABELS, HOUR)["hits"] == 1  # 0.4 s after the word ends
    assert score([found("yes", 9.2, 9.55)], truth, LABELS, HOUR)["hits"] == 1  # ends 0.45 s before it starts
    late = score([found("yes", 11.1, 11.4)], truth, LABELS, HOUR)  # 0.6 s after: not this word
    assert (late["hits"], late["missed"], late["false_alarms"]) == (0, 1, 1)
    assert late["false_alarm_list"][0]["at"] is None


def test_a_word_is_counted_once():
    """Two detections at one word: one hit, and the second is a false alarm."""
    s = score([found("yes", 10.0), found("yes", 10.3)], [word("yes", 10.0)], LABELS, HOUR)
    assert (s["hits"], s["false_alarms"], s["recall"]) == (1, 1, 1.0)
    # one detection between two words is matched to one of them only
    s = score([found("yes", 10.7, 11.0)], [word("yes", 10.0, 10.4), word("yes", 11.3, 11.8)], LABELS, HOUR)
    assert (s["hits"], s["missed"], s["false_alarms"]) == (1, 1, 0)


def test_wrong_words_non_keywords_and_noise():
    truth = [word("yes", 1.0), word("no", 4.0), word("bed", 7.0), word("no", 10.0)]
    dets = [found("no", 1.1), found("no", 4.0), found("yes", 7.1), found("yes", 13.0)]
    s = score(dets, truth, LABELS, hours=0.5)
    assert (s["keywords"], s["non_keywords"]) == (3, 1)
    assert (s["hits"], s["wrong"], s["missed"]) == (1, 1, 1)
    assert s["recall"] == pytest.approx(1 / 3) and s["wrong_rate"] == pytest.approx(1 / 3)
    assert [fa["at"] for fa in s["false_alarm_list"]] == ["bed", None]  # on a non-keyword, in the noise
    assert s["false_alarms"] == 2 and s["fa_per_hour"] == pytest.approx(4.0)
    assert s["per_word"]["yes"] == {"said": 1, "hits": 0, "wrong": 1, "recall": 0.0, "false_alarms": 2}
    assert s["per_word"]["no"] == {"said": 2, "hits": 1, "wrong": 0, "recall": 0.5, "false_alarms": 0}
    assert "_unknown_" not in s["per_word"]


def test_the_right_word_is_preferred_among_detections_near_a_word():
    s = score([found("no", 10.0, 10.3), found("yes", 10.2, 10.6)], [word("yes", 10.0)], LABELS, HOUR)
    assert (s["hits"], s["wrong"], s["false_alarms"]) == (1, 0, 1)


def test_det_curve_is_monotone_and_recommend_meets_the_target():
    rng = random.Random(3)
    truth = [word(rng.choice(["yes", "no", "bed"]), 3.0 * i + 1) for i in range(200)]
    dets = []
    for w in truth:
        if rng.random() < 0.9:
            label = w.word if w.word != "bed" else rng.choice(["yes", "no"])
            label = label if rng.random() < 0.9 else rng.choice(["yes", "no"])
            dets.append(found(label, w.start + rng.uniform(-0.3, 0.3), p=rng.uniform(0.2, 1.0)))
    dets += [found("yes", rng.uniform(0, 600), p=rng.uniform(0.2, 0.8)) for _ in range(40)]
    hours = 600 / 3600
    curve = det_curve(dets, truth, LABELS, hours)
    thresholds = [p["threshold"] for p in curve]
    assert thresholds == sorted(thresholds) and curve[-1]["threshold"] == 1.0
    for a, b in zip(curve, curve[1:], strict=False):
        assert b["miss"] >= a["miss"] - 1e-12 and b["fa_per_hour"] <= a["fa_per_hour"] + 1e-12
    assert curve[-1]["miss"] == 1.0 and curve[-1]["false_alarms"] == 0
    assert curve[0]["recall"] > 0.6 and curve[0]["false_alarms"] > 40
    best = recommend(curve, target_fa_per_hour=60.0)  # at most 10 false alarms in the 10 minutes
    assert best is not None and best["fa_per_hour"] <= 60.0
    below = [p for p in curve if p["threshold"] < best["threshold"]]
    assert all(p["fa_per_hour"] > 60.0 for p in below)  # the lowest threshold that meets it
    assert recommend(curve, target_fa_per_hour=-1) is None


def test_truth_files(tmp_path):
    (tmp_path / "t.csv").write_text("word,start,end\nyes,1.5,2.0\n# a comment\nno, 4.25\n")
    words = read_truth(tmp_path / "t.csv")
    assert [(w.word, w.start, w.end) for w in words] == [("yes", 1.5, 2.0), ("no", 4.25, 4.75)]
    (tmp_path / "t.json").write_text(json.dumps([{"word": "up", "start": 3, "end": 3.4}]))
    assert read_truth(tmp_path / "t.json")[0].end == 3.4
    (tmp_path / "bad.csv").write_text("yes,soon\n")
    with pytest.raises(KwsError, match="start time in seconds"):
        read_truth(tmp_path / "bad.csv")
    with pytest.raises(KwsError, match="Cannot read the truth file"):
        read_truth(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------------
# a generated stream with a known truth: tones a toy classifier hears
# ------------------------------------------------------------------------------------------------

TONES = {"high": 2000.0, "low": 400.0, "other": 800.0}  # "other": a word the model must not report


def tone(freq: float) -> torch.Tensor:
    t = torch.arange(round(0.4 * SR)) / SR
    clip = torch.zeros(1, SR)
    clip[0, 3000 : 3000 + t.numel()] = 0.4 * torch.sin(2 * math.pi * freq * t) * torch.hann_window(t.numel())
    return clip


def toy_classifier(with_unknown: bool):
    """[B, 1, 16000] -> probabilities of ("high", "low"[, "_unknown_"]) from the energy in three bands."""

    def classify(windows: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(windows[:, 0]).abs().pow(2)
        low, mid, high = spec[:, 200:600].sum(1), spec[:, 650:1000].sum(1), spec[:, 1500:3000].sum(1)
        bands = [high, low + (0 if with_unknown else mid)] + ([mid] if with_unknown else [])
        return torch.softmax(torch.stack(bands, 1).clamp(min=1e-9).log() * 3, dim=1)

    return classify


def toy_stream():
    rng = random.Random(7)
    names = [rng.choice(["high", "low", "low", "other"]) for _ in range(40)]
    clips = [(n, f"c{i}", tone(TONES[n])) for i, n in enumerate(names)]
    noise = torch.randn(1, 5 * SR, generator=torch.Generator().manual_seed(0))
    return compose(clips, noise, 120.0, noise_db=-20, gap=(1.5, 2.5), seed=1)


@pytest.mark.parametrize("with_unknown", [True, False])
def test_evaluation_of_a_stream_with_known_truth(with_unknown):
    comp = toy_stream()
    labels = ["high", "low", "_unknown_"] if with_unknown else ["high", "low"]
    result = detect(comp.waveform, SR, toy_classifier(with_unknown), labels, StreamConfig(threshold=0.5))
    ev = evaluate(result, comp.words, {"toy": True}, target_fa_per_hour=1.0)
    keywords = [w for w in comp.words if w.word != "other"]
    others = len(comp.words) - len(keywords)
    s = ev.at_threshold
    assert (s["keywords"], s["non_keywords"]) == (len(keywords), others) and others >= 5
    assert s["recall"] == 1.0 and s["wrong"] == 0
    if with_unknown:  # "other" is heard as _unknown_: nothing fires on it
        assert s["false_alarms"] == 0 and ev.recommended is not None and ev.recommended["score"]["recall"] == 1.0
    else:  # the model must call it something: every "other" is a false alarm, heard as "low"
        assert s["false_alarms"] == others and {fa["at"] for fa in s["false_alarm_list"]} == {"other"}
        assert s["fa_per_hour"] == pytest.approx(others / (120 / 3600))
        assert s["per_word"]["low"]["false_alarms"] == others
    assert ev.duration == pytest.approx(120.0) and ev.curve[-1]["miss"] == 1.0
    json.dumps(ev.to_json())  # the report is plain JSON


# ------------------------------------------------------------------------------------------------
# kwscore stream-eval on the test CNN
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_run(embedded_data_dir, tmp_path_factory):
    from tests.trained import trained_cnn_run

    return trained_cnn_run(embedded_data_dir / "synthetic", tmp_path_factory.mktemp("streameval-runs"))


@pytest.mark.slow
def test_cli_stream_eval_on_a_generated_stream(cnn_run, embedded_data_dir, tmp_path, capsys):
    from kwscore import streameval
    from kwscore.cli import main

    wav = tmp_path / "stream.wav"
    root = embedded_data_dir / "synthetic"
    args = ["stream-eval", str(cnn_run), "--minutes", "1.5", "--snr", "20", "--data", str(root), "--target", "60"]
    assert main([*args, "--store", "--save-wav", str(wav)]) == 0
    out = capsys.readouterr().out
    for phrase in ("recall", "false alarms", "per hour", "DET curve", "recommended", "report:"):
        assert phrase in out, out
    report = streameval.load(cnn_run)
    assert report is not None and report["source"]["minutes"] == 1.5
    s = report["at_threshold"]
    assert s["keywords"] >= 12 and s["non_keywords"] >= 3, s  # about 1 in 4 other words
    assert s["recall"] >= 0.4, s  # a small model on unseen synthetic voices in rooms and noise
    point = report["recommended"]
    assert point is not None and stored_threshold(cnn_run) == pytest.approx(point["threshold"], abs=1e-4)
    for fa in report["worst_false_alarms"]:
        assert (cnn_run / "streaming" / fa["audio"]).is_file()
    # the same stream as a WAV + truth file gives the same figures (16-bit rounding aside)
    assert main(["stream-eval", str(cnn_run), "--wav", str(wav), "--truth", str(wav.with_suffix(".json")), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["at_threshold"]
    assert abs(again["hits"] - s["hits"]) <= 1 and abs(again["false_alarms"] - s["false_alarms"]) <= 1
    # mistakes are one line
    assert main(["stream-eval", str(cnn_run), "--wav", str(wav)]) == 2
    assert "--truth" in capsys.readouterr().err
    assert main(["stream-eval", str(cnn_run), "--minutes", "0"]) == 2
    assert "--minutes" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the Runs page's streaming view, the Live page (AppTest: real pages, no browser)
# ------------------------------------------------------------------------------------------------

APP = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def page_run(kws_env, cnn_run):
    """The test CNN in the dashboard's runs folder, with a streaming evaluation saved in it (a toy
    stream's, so that its figures are known)."""
    import os
    import shutil
    from pathlib import Path

    from kwscore import streameval

    run = Path(os.environ["KWS_RUNS_DIR"]) / cnn_run.name
    shutil.copytree(cnn_run, run, ignore=shutil.ignore_patterns("export", "streaming"))
    comp = toy_stream()
    result = detect(comp.waveform, SR, toy_classifier(False), ["high", "low"], StreamConfig(threshold=0.5))
    ev = evaluate(result, comp.words, {"data": "toy", "minutes": 2.0, "snr_db": 20.0, "others": 0.25, "seed": 0,
                                       "noise": "white"}, target_fa_per_hour=1.0)  # fmt: skip
    streameval.save(run, ev, comp.waveform)
    return run, ev


def test_runs_page_streaming_view(page_run):
    from streamlit.testing.v1 import AppTest

    run, ev = page_run
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("../pages/runs.py").run()
    at.selectbox(key="runs_detail").set_value(run.name).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["False alarms"] == str(ev.at_threshold["false_alarms"]) and "False alarms per hour" in metrics
    det = [e for e in at.get("plotly_chart") if e.proto.id.endswith("-stream_det")]
    assert det, "no DET curve"
    curve = json.loads(det[0].proto.spec)["data"][0]
    assert len(curve["x"]) == len(ev.curve)
    audio_elements = at.get("audio")
    assert len(audio_elements) >= min(8, ev.at_threshold["false_alarms"])  # the worst false alarms, to listen to
    slider = at.select_slider(key=f"stream_threshold_{run.name}")
    chosen = max(slider.options, key=float)
    slider.set_value(float(chosen)).run()
    at.button(key="stream_store").click().run()
    assert not at.exception, at.exception
    assert stored_threshold(run) == pytest.approx(float(chosen), abs=1e-3)


def test_live_page_offline_configuration():
    """No ICE (STUN/TURN) servers anywhere: streamlit-webrtc must not add its default Google STUN."""
    from streamlit_webrtc.component import (
        _resolve_server_rtc_configuration,
        enhance_frontend_rtc_configuration,
    )

    from dashboard import live_view

    assert live_view.RTC_CONFIGURATION == {"iceServers": []}
    assert enhance_frontend_rtc_configuration.__wrapped__(live_view.RTC_CONFIGURATION)["iceServers"] == []
    assert _resolve_server_rtc_configuration(live_view.RTC_CONFIGURATION).iceServers == []
    source = (__import__("pathlib").Path(APP).parent.parent / "pages" / "live.py").read_text()
    assert "rtc_configuration=live_view.RTC_CONFIGURATION" in source
