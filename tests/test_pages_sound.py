"""The sound pages (Explore, Spectrogram lab, Augmentation lab) under AppTest: real pages, no browser.

Figures are read back from the plotly spec the page sends, so the assertions are on what a student
would see (array shapes, values, masks), not on the code that made them.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.feature_editor import fit_feature_config
from dashboard.plots import SPLIT_COLORS
from kwscore.augment import AugmentConfig
from kwscore.features import FeatureConfig

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def chart(at: AppTest, key: str) -> dict:
    """The plotly spec of the chart drawn with ``key=``."""
    found = [json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    assert found, f"no chart {key!r}"
    return found[0]


def has_chart(at: AppTest, key: str) -> bool:
    """A plotly chart or a picture drawn with ``key``."""
    return any(e.proto.id.endswith(f"-{key}") for e in at.get("plotly_chart")) or picture(at, key) is not None


def array(value) -> np.ndarray:
    """A plotly array: a list, or a typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict):
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr
    return np.asarray(value, dtype=float)


def picture(at: AppTest, key: str) -> str | None:
    """The HTML of the picture (:func:`dashboard.plots.mel_picture`) drawn with ``key``, if any."""
    return next((e.proto.body for e in at.get("html") if f'data-key="{key}"' in e.proto.body), None)


def z(at: AppTest, key: str) -> np.ndarray:
    """What a spectrogram shows: the plotly chart's z, or a picture's pixels as colour levels 0..255
    (read back through the colour map), checked against the shape the picture says it has."""
    body = picture(at, key)
    if body is None:
        return array(chart(at, key)["data"][0]["z"])
    from PIL import Image

    from dashboard.plots import SPEC_LUT

    png = re.search(r'src="data:image/png;base64,([^"]+)"', body).group(1)
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))
    level = {tuple(c): i for i, c in reversed(list(enumerate(SPEC_LUT.tolist())))}
    levels = np.array([[level[tuple(c)] for c in row] for row in rgb.tolist()], dtype=float)[::-1]
    rows, frames = (int(n) for n in re.search(r'data-shape="(\d+)x(\d+)"', body).groups())
    assert levels.shape == (rows, frames), (levels.shape, rows, frames)
    return levels


def db_range(at: AppTest, key: str) -> tuple[float, float]:
    """Quietest and loudest dB value of the spectrogram drawn with ``key`` (before its colour range)."""
    body = picture(at, key)
    if body is None:
        values = z(at, key)
        return float(values.min()), float(values.max())
    lo, hi = (float(v) for v in re.search(r'data-db="([^,]+),([^"]+)"', body).groups())
    return lo, hi


def db_span(at: AppTest, key: str) -> float:
    lo, hi = db_range(at, key)
    return hi - lo


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def audio_urls(at: AppTest) -> list[str]:
    return [e.proto.url for e in at.get("audio")]


def numbers_text(at: AppTest) -> str:
    """Everything the teaching-numbers panel shows: metrics and the worked-out table."""
    return json.dumps(metrics(at)) + "".join(m.value for m in at.markdown if "worked out" in m.value)


# ------------------------------------------------------------------------------------------------
# Explore
# ------------------------------------------------------------------------------------------------


def test_explore_shows_a_clip_and_the_dataset(kws_env):
    at = open_page("explore")
    wave = chart(at, "explore_waveform")
    assert array(wave["data"][0]["y"]).shape == (16000,)
    assert wave["data"][0]["dx"] == pytest.approx(1 / 16000)
    m = metrics(at)
    assert m["Tensor shape"] == "[1, 16000]" and m["Sample rate"] == "16000 Hz" and m["Duration"] == "1.000 s"
    assert len(audio_urls(at)) == 1
    words = chart(at, "explore_words")["data"]
    assert [t["name"] for t in words] == ["training", "validation", "testing"] and len(words[0]["x"]) >= 35
    assert [t["marker"]["color"] for t in words] == [SPLIT_COLORS[s] for s in ("training", "validation", "testing")]
    assert list(array(chart(at, "explore_speakers")["data"][0]["y"])) == [32, 4, 4]
    assert at.dataframe, "the sample list"

    before = (at.session_state["clip"]["clip_id"], audio_urls(at))
    at.selectbox(key="explore_word").select("stop").run()
    assert not at.exception
    assert at.session_state["clip"]["clip_id"].startswith("stop/")
    assert "“stop”" in chart(at, "explore_waveform")["layout"]["title"]["text"]
    assert audio_urls(at) != before[1]
    speakers = at.selectbox(key="explore_speaker").options
    at.selectbox(key="explore_speaker").select(speakers[-1]).run()
    assert at.session_state["clip"]["clip_id"].startswith(f"stop/{speakers[-1]}_nohash_")

    # the random button draws another clip of the same split, and the selectboxes follow it
    at.selectbox(key="explore_split").select("testing").run()
    first = at.session_state["clip"]["clip_id"]
    at.button(key="explore_random").click().run()
    assert not at.exception
    clip = at.session_state["clip"]["clip_id"]
    assert clip != first
    word, name = clip.split("/")
    assert at.selectbox(key="explore_word").value == word
    assert name.startswith(at.selectbox(key="explore_speaker").value)
    assert at.selectbox(key="explore_split").value == "testing"


def test_the_clip_travels_between_the_sound_pages(kws_env):
    at = open_page("explore")
    at.selectbox(key="explore_word").select("left").run()
    at.selectbox(key="explore_take").select(1).run()
    chosen = at.session_state["clip"]["clip_id"]
    speaker = at.selectbox(key="explore_speaker").value
    for page, prefix in (("spectrogram", "spec"), ("augmentation", "aug"), ("explore", "explore")):
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, at.exception
        assert at.selectbox(key=f"{prefix}_word").value == "left"
        assert at.selectbox(key=f"{prefix}_speaker").value == speaker
        assert at.selectbox(key=f"{prefix}_take").value == 1
        assert at.session_state["clip"]["clip_id"] == chosen


def test_pages_work_on_the_shared_real_set(kws_env, shared_real):
    at = AppTest.from_file(APP, default_timeout=60).run()
    picker = at.sidebar.selectbox[0]
    label = next(o for o in picker.options if o.startswith("Folder:"))
    picker.select(label).run()
    at.switch_page("../pages/explore.py").run()
    assert not at.exception, at.exception
    assert at.session_state["clip"]["root"] == str(shared_real)
    assert "yes" in at.selectbox(key="explore_word").options
    assert metrics(at)["Sample rate"] == "16000 Hz"
    assert array(chart(at, "explore_waveform")["data"][0]["y"]).size > 8000
    assert sum(array(chart(at, "explore_speakers")["data"][0]["y"])) > 100  # real speakers, not 40
    for page in ("spectrogram", "augmentation"):
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, at.exception
        assert at.session_state["clip"]["root"] == str(shared_real)
        assert at.get("audio")


# ------------------------------------------------------------------------------------------------
# Spectrogram lab
# ------------------------------------------------------------------------------------------------

#: (widget kind, key, new value, what must then hold for the main spectrogram z, do the numbers change)
MOVES = [
    ("slider", "spec_hop", 320, lambda z: z.shape == (40, 51), True),
    ("slider", "spec_n_mels", 64, lambda z: z.shape == (64, 51), True),
    ("slider", "spec_win", 401, lambda z: z.shape == (64, 51), True),  # single samples
    ("number_input", "spec_n_fft", 1000, lambda z: z.shape == (64, 51), True),  # not only powers of two
    ("slider", "spec_f_max", 4000, lambda z: z.shape == (64, 51), True),
    ("slider", "spec_f_min", 0, lambda z: z.shape == (64, 51), True),
    ("slider", "spec_top_db", 40, lambda z: True, False),  # its dB span: checked after the move
    ("radio", "spec_window", "hamming", lambda z: z.shape == (64, 51), False),
]


def test_every_spectrogram_setting_changes_the_picture(kws_env):
    at = open_page("spectrogram")
    assert z(at, "spec_main").shape == (40, 101)
    assert metrics(at)["Model input"] == "40 × 101" and metrics(at)["Hz per FFT bin"] == "31.25"
    assert len(audio_urls(at)) == 1
    # "Look closer" starts closed: its worked-out numbers are neither built nor sent until it is opened
    assert not any("worked out" in md.value for md in at.markdown) and not at.code
    at.session_state["spec_look"] = True
    at.run()
    assert any("worked out" in md.value for md in at.markdown)
    for kind, key, value, holds, numbers_move in MOVES:
        before_z, before_numbers = z(at, "spec_main"), numbers_text(at)
        widget = getattr(at, kind)(key=key)
        widget.set_value(value).run()
        assert not at.exception, (key, at.exception)
        assert not at.error and not at.warning, (key, [e.value for e in at.error], [w.value for w in at.warning])
        after = z(at, "spec_main")
        assert holds(after), (key, after.shape)
        if key == "spec_top_db":
            assert db_span(at, "spec_main") <= value + 1e-3, db_span(at, "spec_main")
        assert after.shape != before_z.shape or not np.allclose(after, before_z), f"{key} did not change the picture"
        assert (numbers_text(at) != before_numbers) == numbers_move, key
        field = {"spec_win": "win_length", "spec_hop": "hop_length"}.get(key, key.replace("spec_", ""))
        assert at.session_state["feature_config"][field] == value, key
    m = metrics(at)
    assert m["Hz per FFT bin"] == "16" and m["Window (samples)"] == "401" and m["Model input"] == "64 × 51"
    worked = next(md.value for md in at.markdown if "worked out" in md.value)
    assert "(401 − 320) / 401" in worked and "16000 / 1000" in worked and "4000 Hz" in worked


def test_the_main_picture_is_light_and_hover_gives_the_interactive_chart(kws_env):
    at = open_page("spectrogram")
    body = picture(at, "spec_main")
    assert body is not None and not at.get("plotly_chart"), "a light picture, no plotly figure, at first"
    assert "40 Mel bands × 101 frames" in body and "Time (s)" in body and "Mel band (centre frequency)" in body
    shown = z(at, "spec_main")
    assert shown.shape == (40, 101) and shown.max() == 255 and shown.min() < 30  # loud and quiet cells
    at.toggle(key="spec_hover").set_value(True).run()
    assert not at.exception and picture(at, "spec_main") is None
    chart_z = array(chart(at, "spec_main")["data"][0]["z"])
    assert chart_z.shape == (40, 101)
    lo, hi = float(chart_z.max()) - 80.0, float(chart_z.max())  # the classic front end's 80-dB colour range
    levels = np.round(np.clip((chart_z - lo) / (hi - lo), 0, 1) * 255)
    assert np.abs(levels - shown).max() <= 1, "the picture shows the chart's values in the same colours"


def test_n_fft_is_sent_with_its_value_on_every_move(kws_env):
    """A number input that the browser draws afresh starts from the value sent with it, else from its
    default, the minimum 16, which it then sends back as the student's choice. That happened under
    load (bench_classroom: the lab showed n_fft 16 and an error after a hop move), so n_fft's value
    goes with every run, not only when it changed."""
    at = open_page("spectrogram")
    for key, value in (("spec_n_mels", 41), ("spec_hop", 161)):
        at.slider(key=key).set_value(value).run()
        n_fft = at.number_input(key="spec_n_fft")
        assert n_fft.proto.set_value and n_fft.proto.value == 512 and n_fft.proto.default == 16, key


def test_torchaudio_defaults_preset_and_the_empty_band_lesson(kws_env):
    at = open_page("spectrogram")
    at.button(key="spec_preset_torchaudio").click().run()
    assert not at.exception and not at.error and not at.warning
    cfg = FeatureConfig.from_dict(at.session_state["feature_config"])
    assert (cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.n_mels, cfg.f_min) == (400, 400, 200, 128, 0.0)
    assert z(at, "spec_main").shape == (128, 81)  # T.MelSpectrogram() on a 1-s clip, 128 bands kept
    assert metrics(at)["Model input"] == "128 × 81"
    lesson = " ".join(i.value for i in at.info)
    assert "128 bands at n_fft 400 leave 4 bands empty" in lesson
    assert at.button(key="spec_preset_torchaudio").disabled  # it is the current setting
    at.slider(key="spec_n_mels").set_value(200).run()  # beyond 128: more empty bands, still drawn
    assert not at.exception and z(at, "spec_main").shape == (200, 81)
    assert "200 bands at n_fft 400 leave" in " ".join(i.value for i in at.info)
    at.button(key="spec_preset_classic").click().run()
    assert z(at, "spec_main").shape == (40, 101) and not at.info


def test_invalid_combinations_are_explained_not_raised(kws_env):
    at = open_page("spectrogram")
    # guarded (default): a smaller FFT than the window shortens the window, with a warning
    at.number_input(key="spec_n_fft").set_value(128).run()
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "n_fft of 128 cannot hold a 480-sample window" in notes and "hop was shortened" in notes
    cfg = FeatureConfig.from_dict(at.session_state["feature_config"])
    assert cfg.win_length == 128 and cfg.hop_length == 128 and cfg.n_mels == 40 and not cfg.problems()
    assert z(at, "spec_main").shape == (40, 126)
    assert "40 bands at n_fft 128 leave" in " ".join(i.value for i in at.info)  # kept, and explained
    assert at.slider(key="spec_win").max == 128  # ranges follow: the window can no longer outgrow n_fft

    # free mode: the mistake is shown as an error, the picture waits, other pages keep the last valid config
    at.toggle(key="spec_free").set_value(True).run()
    at.slider(key="spec_win").set_value(1024).run()
    assert not at.exception and "longer than n_fft" in at.error[0].value
    assert not has_chart(at, "spec_main")
    assert at.session_state["feature_config"] == cfg.to_dict()
    # back to guarded: repaired automatically
    at.toggle(key="spec_free").set_value(False).run()
    assert not at.exception and not at.error and has_chart(at, "spec_main")
    assert FeatureConfig.from_dict(at.session_state["feature_config"]).win_length == 128


def test_side_views_of_the_spectrogram_lab(kws_env):
    at = open_page("spectrogram")
    at.session_state["spec_look"] = True  # the "Look closer" expander
    at.run()
    assert not has_chart(at, "spec_default")  # the numbers open first: the views' figures wait for their tab
    at.session_state["spec_view"] = "Default vs yours"
    at.run()
    # "default" is what the student chooses: torchaudio's (first), the lab's classic 40 bands, or pinned settings
    assert z(at, "spec_default").shape == (128, 81) and z(at, "spec_yours").shape == (40, 101)
    assert "torchaudio's defaults" in chart(at, "spec_default")["layout"]["title"]["text"]
    at.selectbox(key="spec_compare").select("classic").run()
    assert z(at, "spec_default").shape == z(at, "spec_yours").shape == (40, 101)
    at.slider(key="spec_hop").set_value(80).run()
    assert z(at, "spec_default").shape == (40, 101) and z(at, "spec_yours").shape == (40, 201)
    next(b for b in at.button if b.label == "Pin my settings").click().run()
    at.selectbox(key="spec_compare").select("pinned").run()
    at.slider(key="spec_hop").set_value(160).run()
    assert z(at, "spec_default").shape == (40, 201) and z(at, "spec_yours").shape == (40, 101)
    at.slider(key="spec_hop").set_value(80).run()

    at.session_state["spec_view"] = "Mel filterbank"
    at.run()
    assert not at.exception and not has_chart(at, "spec_default")  # only the open view is computed
    fb = chart(at, "spec_filterbank")
    assert "40 triangular Mel filters over 257 FFT bins" in fb["layout"]["title"]["text"]
    peaks = [y for trace in fb["data"][:2] for y in trace["y"] if y is not None]
    assert 0.5 < max(peaks) <= 1.0
    assert array(fb["data"][2]["x"]).size == 257  # one tick per FFT bin

    at.session_state["spec_view"] = "Linear STFT vs Mel"
    at.run()
    assert z(at, "spec_linear").shape == (257, 201) and z(at, "spec_mel_again").shape == (40, 201)

    at.session_state["spec_view"] = "Sample rate: what M5 hears"
    at.run()
    assert not at.exception
    assert z(at, "spec_16k").shape == (257, 201)
    low = chart(at, "spec_resampled")
    assert array(low["data"][0]["z"]).shape == (129, 201)  # 30 ms = 240 samples -> n_fft 256; hop 5 ms = 40
    assert low["layout"]["yaxis"]["range"][1] == 8000  # same axis as 16 kHz: the empty top half shows
    assert len(audio_urls(at)) == 3
    text = " ".join(m.value for m in at.markdown)
    assert "tutorial's M5 listens at **8 kHz**" in text and "tuned M5 recipe listens at 16 kHz" in text
    for rate, rows in ((4000, 65), (11025, 257), (16000, 257)):  # every rate can be heard
        at.segmented_control(key="spec_rate").set_value(rate).run()
        assert not at.exception, rate
        spec = chart(at, "spec_resampled")
        assert array(spec["data"][0]["z"]).shape[0] == rows, rate
        assert len(audio_urls(at)) == 3
    assert "only up to 2 kHz" not in " ".join(c.value for c in at.caption)  # 16 kHz keeps everything


def test_feature_config_carries_to_the_augmentation_lab_and_back(kws_env):
    at = open_page("spectrogram")
    at.slider(key="spec_n_mels").set_value(64).run()
    at.slider(key="spec_hop").set_value(320).run()
    at.switch_page("../pages/augmentation.py").run()
    assert not at.exception
    assert z(at, "aug_spec_o").shape == (64, 51)
    at.switch_page("../pages/spectrogram.py").run()  # widget state was dropped meanwhile: refilled
    assert at.slider(key="spec_hop").value == 320 and at.slider(key="spec_n_mels").value == 64
    assert z(at, "spec_main").shape == (64, 51)


def test_fit_feature_config_repairs_with_reasons():
    fixed, notes = fit_feature_config(FeatureConfig(n_fft=256, win_length=480, hop_length=320, n_mels=100))
    assert (fixed.win_length, fixed.hop_length) == (256, 256) and not fixed.problems()
    assert fixed.n_mels == 100 and len(notes) == 2  # empty bands are explained, never "repaired"
    assert fit_feature_config(FeatureConfig()) == (FeatureConfig(), [])


# ------------------------------------------------------------------------------------------------
# Augmentation lab
# ------------------------------------------------------------------------------------------------


def table(at: AppTest):
    return at.table[0].value if at.table else None


def test_augmentation_lab_effects_draws_and_masks(kws_env):
    at = open_page("augmentation")
    assert len(audio_urls(at)) == 2  # original and augmented
    rows = table(at)
    assert list(rows.index) == ["Time stretch", "Pitch shift", "Time shift", "Background noise", "SpecAugment"]
    assert AugmentConfig.from_dict(at.session_state["augment_config"]).name == "standard"
    shapes = chart(at, "aug_spec_a")["layout"].get("shapes", [])
    record = rows.loc["SpecAugment", "drawn this time"]
    assert len(shapes) == record.count("bands") + record.count("frames") >= 1  # every mask outlined
    orig_audio, aug_audio = audio_urls(at)
    assert orig_audio != aug_audio

    # switching an effect on adds its row, changes the sound and the carried recipe
    at.toggle(key="augw_gain_on").set_value(True).run()
    assert not at.exception
    rows = table(at)
    assert "Gain" in rows.index and rows.loc["Gain", "drawn this time"].startswith("gain_db = ")
    assert audio_urls(at)[1] != aug_audio and audio_urls(at)[0] == orig_audio
    recipe = AugmentConfig.from_dict(at.session_state["augment_config"])
    assert recipe.name == "custom" and "gain" in [s.effect for s in recipe.steps]
    drawn = rows["drawn this time"].tolist()

    # draw again: new random values from the same ranges
    seed = at.session_state["aug_seed"]
    at.button(key="aug_draw").click().run()
    assert not at.exception and at.session_state["aug_seed"] == seed + 1
    assert table(at)["drawn this time"].tolist() != drawn

    # the vocal-tract warp (VTLP): its factor is drawn and said, and it changes the picture
    before = chart(at, "aug_spec_a")["data"][0]["z"]
    at.slider(key="augw_spec_V").set_value(20).run()
    assert not at.exception
    said = table(at).loc["SpecAugment", "drawn this time"]
    assert "vocal tract: bands × " in said and "V ±20%" in table(at).loc["SpecAugment", "range"]
    assert 0.8 <= float(said.split("bands × ")[1].split()[0]) <= 1.2
    assert AugmentConfig.from_dict(at.session_state["augment_config"]).spec_augment.freq_warp == 0.2
    assert chart(at, "aug_spec_a")["data"][0]["z"] != before

    # a narrower range is honoured, SpecAugment off removes the masks
    at.slider(key="augw_gain_gain_db").set_value((3.0, 3.0)).run()
    assert table(at).loc["Gain", "drawn this time"] == "gain_db = 3"
    at.toggle(key="augw_spec_on").set_value(False).run()
    assert "SpecAugment" not in table(at).index and not chart(at, "aug_spec_a")["layout"].get("shapes")
    assert AugmentConfig.from_dict(at.session_state["augment_config"]).spec_augment is None

    # presets: "none" empties the recipe, "strong" switches on compression and coloured noise
    at.selectbox(key="aug_preset").select("none")
    next(b for b in at.button if b.label == "Load preset").click().run()
    assert not at.exception and table(at) is None and at.info
    assert audio_urls(at)[0] == audio_urls(at)[1]  # nothing applied: the same sound
    at.selectbox(key="aug_preset").select("strong")
    next(b for b in at.button if b.label == "Load preset").click().run()
    assert not at.exception and at.toggle(key="augw_compress_on").value
    assert AugmentConfig.from_dict(at.session_state["augment_config"]).name == "strong"
    assert "Coloured noise" in table(at).index


def test_augmentation_probability_in_preview(kws_env):
    at = open_page("augmentation")
    at.slider(key="augw_time_stretch_p").set_value(0.0).run()
    assert table(at).loc["Time stretch", "applied"] == "yes"  # the preview applies every effect that is on
    at.toggle(key="aug_honour_p").set_value(True).run()
    assert not at.exception and table(at).loc["Time stretch", "applied"].startswith("skipped")


def test_augmentation_lab_rooms_and_microphones(kws_env):
    """Students hear a room and a microphone: both change the sound and join the carried recipe."""
    at = open_page("augmentation")
    before = audio_urls(at)[1]
    at.toggle(key="augw_reverb_on").set_value(True).run()
    at.toggle(key="augw_microphone_on").set_value(True).run()
    assert not at.exception
    rows = table(at)
    assert rows.loc["Room (reverberation)", "drawn this time"].startswith("rt60_s = ")
    assert "high_hz = " in rows.loc["Microphone", "drawn this time"]
    assert audio_urls(at)[1] != before
    at.slider(key="augw_mic_high_hz").set_value((3400.0, 3400.0)).run()
    assert not at.exception and "high_hz = 3400" in table(at).loc["Microphone", "drawn this time"]
    recipe = AugmentConfig.from_dict(at.session_state["augment_config"])
    steps = {s.effect: s.kwargs for s in recipe.steps}
    assert steps["microphone"]["high_hz"] == (3400.0, 3400.0) and "rt60" in steps["reverb"]
