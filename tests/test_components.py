"""The dashboard's components on their own (AppTest of a tiny script each) and the clip scan in kwscore.

Components: the dataset picker (``dashboard.datasets``), the clip picker and clip audio
(``dashboard.clips``), the front-end editor (``dashboard.feature_editor``), widget values kept across
pages with Streamlit's ``persist_state`` (``dashboard.ui.kept``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from kwscore.data.clips import folder_stamp, scan_clips
from kwscore.data.layout import dataset_folder, read_split_lists
from kwscore.features import FEATURE_PRESETS, FeatureConfig

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


# ------------------------------------------------------------------------------------------------
# kwscore: the clip scan (no streamlit)
# ------------------------------------------------------------------------------------------------


def test_scan_clips_lists_every_clip_in_its_split(small_synth):
    index = scan_clips(small_synth)
    assert len(index) == 160  # 8 commands × 10 speakers × 2 takes
    lists = read_split_lists(small_synth)
    for clip_id, word, speaker, take, split in index.rows:
        expected = "validation" if clip_id in lists.validation else "testing" if clip_id in lists.testing else "training"
        assert split == expected
        assert clip_id == f"{word}/{speaker}_nohash_{take}.wav"
        assert take in index.tree[split][word][speaker]
    clip = index.clip(index.rows[5][0])
    assert clip is not None and clip.path.is_file() and clip.split == index.rows[5][4]
    assert index.clip("yes/nobody_nohash_9.wav") is None and index.clip("../../etc/passwd") is None
    assert index.default_clip().word == "yes" and index.default_clip().split == "training"
    assert set(index.clip_ids("testing", "no")) == {r[0] for r in index.rows if r[4] == "testing" and r[1] == "no"}
    assert list(index.table.columns) == ["clip_id", "word", "speaker", "take", "split"] and len(index.table) == 160


def test_folder_stamp_moves_when_a_clip_is_added(small_synth, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_synth, root)
    before = folder_stamp(root)
    extra = dataset_folder(root) / "up" / "zz9_nohash_0.wav"
    shutil.copy(next((dataset_folder(root) / "up").iterdir()), extra)
    import os

    os.utime(extra.parent, (before + 10, before + 10))
    assert folder_stamp(root) > before
    assert scan_clips(root).clip("up/zz9_nohash_0.wav") is not None


# ------------------------------------------------------------------------------------------------
# The clip picker and clip audio
# ------------------------------------------------------------------------------------------------


def clip_app():
    import streamlit as st

    from dashboard import clips

    clip = clips.picker("t")
    if clip is not None:
        st.markdown(f"clip={clip.clip_id} split={clip.split}")
        loaded = clips.load(clip)
        if loaded is not None:
            clips.play(loaded[0])


def picker_at(root: Path) -> AppTest:
    at = AppTest.from_function(clip_app, default_timeout=60)
    at.session_state["dataset_root"] = str(root)
    return at.run()


def shown_clip(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("clip=")).split()[0][len("clip="):]


def test_clip_picker_cascades_and_plays(small_synth):
    index = scan_clips(small_synth)
    at = picker_at(small_synth)
    assert not at.exception, at.exception
    assert shown_clip(at) == index.default_clip().clip_id
    assert len(at.get("audio")) == 1
    at.selectbox(key="t_word").select("no").run()
    clip = index.clip(shown_clip(at))
    assert clip.word == "no" and clip.split == "training"
    # only the speakers who said "no" in that split are offered
    assert sorted(at.selectbox(key="t_speaker").options) == sorted(index.tree["training"]["no"])
    at.selectbox(key="t_split").select("testing").run()
    assert index.clip(shown_clip(at)).split == "testing"
    assert at.session_state["clip"] == {"root": str(small_synth), "clip_id": shown_clip(at)}


def test_random_clip_stays_in_the_split_and_changes(small_synth):
    at = picker_at(small_synth)
    seen = {shown_clip(at)}
    for _ in range(3):
        at.button(key="t_random").click().run()
        clip = scan_clips(small_synth).clip(shown_clip(at))
        assert clip.split == "training"
        assert shown_clip(at) not in seen or len(seen) > 1
        seen.add(shown_clip(at))
    assert len(seen) > 1


def test_an_unreadable_clip_is_a_message_not_a_traceback(small_synth, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(small_synth, root)
    clip = scan_clips(root).default_clip()
    clip.path.write_bytes(b"RIFF not really a wave file")
    at = picker_at(root)
    assert not at.exception
    assert any("Cannot play" in e.value for e in at.error)
    assert not at.get("audio")


def test_clip_picker_without_a_dataset_explains(tmp_path):
    at = AppTest.from_function(clip_app, default_timeout=60).run()  # no dataset picked yet
    assert not at.exception and "Type the path" in at.info[0].value
    at = picker_at(tmp_path)  # a folder that is not a dataset
    assert not at.exception and at.error


# ------------------------------------------------------------------------------------------------
# The dataset picker
# ------------------------------------------------------------------------------------------------


def dataset_app():
    import streamlit as st

    from dashboard import datasets

    root = datasets.sidebar_picker()
    info = datasets.load_info(root)
    if info is not None:
        st.markdown(f"clips={info.total()}")


def test_dataset_picker_offers_the_embedded_set_and_any_folder(kws_env, small_synth, tmp_path):
    at = AppTest.from_function(dataset_app, default_timeout=60).run()
    assert not at.exception
    picker = at.sidebar.selectbox(key="dataset_label")
    assert picker.options[-1] == "Another folder…"
    assert any(m.value.startswith("clips=") for m in at.markdown)  # the embedded set, scanned
    picker.select("Another folder…").run()
    assert "Type the path" in at.info[0].value
    at.sidebar.text_input(key="dataset_folder").input(str(tmp_path / "nowhere")).run()
    assert not at.exception and at.error  # a friendly line, no traceback
    at.sidebar.text_input(key="dataset_folder").input(str(small_synth)).run()
    assert "clips=160" in [m.value for m in at.markdown]


# ------------------------------------------------------------------------------------------------
# The front-end editor (the Spectrogram lab's and Train's)
# ------------------------------------------------------------------------------------------------


def editor_app():
    import streamlit as st

    from dashboard.feature_editor import FeatureEditor, feature_config

    editor = FeatureEditor("t")
    state = editor.read(free=False)
    for note in state.notes:
        st.warning(note)
    editor.draw(state)
    c = feature_config()
    st.markdown(f"carried={c.n_fft},{c.win_length},{c.hop_length},{c.n_mels}")


def carried(at: AppTest) -> tuple[int, ...]:
    text = next(m.value for m in at.markdown if m.value.startswith("carried="))
    return tuple(int(v) for v in text[len("carried="):].split(","))


def test_feature_editor_carries_valid_settings_and_repairs_with_a_reason():
    at = AppTest.from_function(editor_app, default_timeout=60).run()
    assert not at.exception
    d = FeatureConfig()
    assert carried(at) == (d.n_fft, d.win_length, d.hop_length, d.n_mels)
    at.slider(key="t_n_mels").set_value(64).run()
    assert carried(at)[3] == 64
    at.number_input(key="t_n_fft").set_value(256).run()  # shorter than the 400-sample window
    assert carried(at)[:2] == (256, 256)
    assert "shortened to 256 samples" in " ".join(w.value for w in at.warning)
    at.button(key="t_preset_classic").click().run()
    c = FEATURE_PRESETS["classic"]
    assert carried(at) == (c.n_fft, c.win_length, c.hop_length, c.n_mels)
    assert at.slider(key="t_n_mels").value == c.n_mels  # the widgets were refilled


# ------------------------------------------------------------------------------------------------
# Widget values across pages: Streamlit's persist_state (dashboard.ui.kept)
# ------------------------------------------------------------------------------------------------


def test_kept_widgets_survive_a_visit_to_another_page(kws_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("../pages/spectrogram.py").run()
    at.toggle(key="spec_free").set_value(True).run()
    at.switch_page("../pages/explore.py").run()
    assert not at.exception
    at.switch_page("../pages/spectrogram.py").run()
    assert not at.exception
    assert at.toggle(key="spec_free").value is True
    assert "_kept" not in at.session_state  # Streamlit keeps the value: no hand-made copy any more
