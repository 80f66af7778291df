"""The lab worksheet: every answer checked against hand-computed values; the page links and hides them."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from kwscore.features import FEATURE_PRESETS, FeatureConfig
from kwscore.recipes import default_config
from kwscore.worksheet import front_end_numbers, nearest_powers_of_two, worksheet

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def by_number(items):
    return {i.number: i for i in items}


def test_front_end_answers_by_hand_at_16k():
    n = front_end_numbers(FeatureConfig())
    assert n["ten_ms_samples"] == 160  # 0.010 s × 16000 Hz
    assert (n["pow2_below"], n["pow2_above"], n["pow2_nearest"]) == (128, 256, 128)
    assert n["frames"] == 101  # 1 + 16000 // 160
    assert n["win_hop_ratio"] == 3 and round(n["overlap_pct"], 1) == 66.7  # 480 / 160; (480 - 160) / 480
    assert (n["n_freq_bins"], n["n_mels"], n["hz_per_bin"]) == (257, 40, 31.25)  # 512 // 2 + 1; 16000 / 512
    t = front_end_numbers(FEATURE_PRESETS["torchaudio"])
    assert (t["n_freq_bins"], t["n_mels"], t["frames"], t["win_hop_ratio"]) == (201, 128, 81, 2)  # 400 // 2 + 1
    assert t["empty_bands"] == 4 and t["preset"] == "torchaudio"
    e = front_end_numbers(FeatureConfig(sample_rate=8000, n_fft=256, win_length=240, hop_length=80, f_max=4000.0))
    assert (e["ten_ms_samples"], e["pow2_below"], e["pow2_above"], e["frames"]) == (80, 64, 128, 101)
    assert nearest_powers_of_two(128) == (128, 128) and nearest_powers_of_two(441) == (256, 512)


def run(run_id, acc, model="cnn", params=1000, **changes):
    return {"run_id": f"20260101-000000-{model}-{run_id}", "config": default_config(model, data="/d", **changes).to_dict(),
            "test_accuracy": acc, "n_params": params}  # fmt: skip


def test_answers_follow_the_settings_and_the_runs():
    items = by_number(worksheet(FeatureConfig(hop_length=160)))
    assert [i.number for i in worksheet(FeatureConfig())] == [
        "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "2.1", "2.2", "2.3", "3.1", "3.2", "3.3"]
    assert "**160 samples**" in items["1.3"].answer and "**128** and **256**" in items["1.3"].answer
    assert "**101 frames**" in items["1.5"].answer and "**257 bins**" in items["1.5"].answer
    assert "128 × 81" in items["1.2"].answer and "4 of the 128 Mel bands stay empty" in items["1.2"].answer
    assert items["2.1"].answer.startswith("**8 kHz**") and items["2.3"].answer is None  # no runs yet
    assert items["1.1"].answer is None and items["3.2"].answer is None
    hop = by_number(worksheet(FeatureConfig(hop_length=320)))
    assert "**51 frames**" in hop["1.5"].answer and "480 / 320 = **1.5**" in hop["1.4"].answer

    runs = [
        run("aaaaaa", 0.90, "cnn", 98_000, name="classic"),
        run("bbbbbb", 0.85, "cnn", 99_000, features=FEATURE_PRESETS["torchaudio"].to_dict()),
        run("cccccc", 0.80, "m5tutorial", 25_000),
        run("dddddd", 0.82, "m5", 26_000),
        run("eeeeee", 0.60, "cnn", fraction=0.25, augment="none"),
        run("ffffff", 0.82, "cnn", fraction=0.25),
        run("hhhhhh", 0.80, "cnn", augment="none"),
        run("gggggg", None, "cnn"),  # still training: not counted
    ]
    items = by_number(worksheet(FeatureConfig(), runs, {"clips": 10, "words": 2, "speakers": 3,
                                                        "sample_rate": 16000, "samples": 16000}))  # fmt: skip
    assert "`[1, 16000]` at 16,000 Hz: 1 s" in items["1.1"].answer
    assert items["1.6"].numbers == {"classic": 0.90, "torchaudio": 0.85}
    assert "90.0 % (classic, 98,000 parameters)" in items["1.7"].answer
    assert "8 kHz 80.0 %" in items["2.1"].answer and "16 kHz 82.0 %" in items["2.1"].answer
    assert "**the 2D CNN** is more accurate" in items["2.3"].answer
    # the CNN's grid (other models are not mixed in): 25 %: 60 % off / 82 % on; 100 %: 80 % off / 90 % on
    assert "cnn, 25 % of the data: 60.0 % without, 82.0 % with augmentation" in items["3.2"].answer
    assert "helped at 2 of 2 training fractions" in items["3.2"].answer
    assert "25 % of the data did as well as 100 % without" in items["3.2"].answer  # 82 % ≥ 80 %
    assert items["3.3"].answer == "1 of your 8 runs have a name."


def test_worksheet_page_links_every_item_and_hides_answers(kws_env):
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("../pages/worksheet.py").run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    for number in ("1.1", "1.3", "2.1", "3.2"):
        assert f"**{number} · " in text
    assert "**160 samples**" in text and "**101 frames**" in text
    links = [e for e in at.get("page_link")]
    assert len(links) == 13 and any("Spectrogram lab" in e.proto.label for e in links)
    at.toggle(key="ws_hide").set_value(True).run()
    text = " ".join(m.value for m in at.markdown)
    assert "**160 samples**" not in text and len([c for c in at.caption if "Answer hidden" in c.value]) == 13
