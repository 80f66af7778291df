"""Explore: listen to the dataset's clips, look at their waveforms, count words and speakers."""

from functools import partial

import numpy as np
import streamlit as st

from dashboard import clips, code_view, datasets, plots
from kwscore import snippets
from kwscore.data.dataset import SUBSETS

st.title("Explore the dataset")
st.caption(
    "Every clip is one word, about one second long, recorded (or synthesised) at 16 kHz. Pick a split, "
    "a word and a speaker, listen, and look at the numbers a model will actually receive."
)

root = datasets.current()
info = datasets.load_info(root)
if info is None:
    st.stop()
st.markdown(f"**{info.name}** — {info.total():,} clips of {len(info.words)} words · `{info.root}`")

clip = clips.picker("explore", random_label="Random sample")
loaded = clips.load(clip) if clip else None
if loaded is None:
    st.stop()
waveform, file_sr = loaded
sr = 16000
n = waveform.shape[-1]
index = clips.index(root)


def pick_row(key: str, clip_ids: list[str]) -> None:
    """Row click in the sample list: carry that clip (the picker above follows)."""
    rows = st.session_state[key].selection.rows
    if rows:
        picked = index.clip(clip_ids[rows[0]])
        if picked:
            clips.set_current(picked)


left, right = st.columns([2.2, 1], gap="medium")
with left:
    st.plotly_chart(
        plots.waveform(
            waveform,
            sr,
            title=f"“{clip.word}” said by speaker {clip.speaker} (take {clip.take}, {clip.split} split)",
            height=260,
        ),
        key="explore_waveform",
    )
    clips.play(waveform, sr)
    peak = float(waveform.abs().max())
    rms = float(waveform.pow(2).mean().sqrt())
    m = st.columns(3)
    m[0].metric("Tensor shape", f"[{waveform.shape[0]}, {n}]", help="torchaudio's [channels, time] layout.")
    m[1].metric("Sample rate", f"{file_sr} Hz", help="Of the file. Every page works at 16 kHz.")
    m[2].metric("Duration", f"{n / sr:.3f} s", help="samples / sample rate")
    level = f"peak {20 * np.log10(peak):.1f} dBFS, RMS {20 * np.log10(rms):.1f} dBFS" if peak > 0 else "silent"
    note = (
        f"`{clip.clip_id}` · {level} · the loader gives `(waveform [1, {n}], {sr}, "
        f"'{clip.word}', '{clip.speaker}', {clip.take})`: waveform, sample rate, label, speaker id, take."
    )
    if file_sr != sr:
        note += f" The file is {file_sr:,} Hz; it was resampled to 16 kHz as the loader does."
    if n != sr:
        note += f" Models want exactly 1 s: this clip will be zero-padded or cut to {sr:,} samples."
    st.caption(note)

with right:
    rows = index.table[(index.table.split == clip.split) & (index.table.word == clip.word)]
    clip_ids = rows.clip_id.tolist()
    st.markdown(f"**All “{clip.word}” clips in {clip.split}** ({len(rows):,}) — click a row to listen")
    key = f"explore_list_{clip.clip_id}"  # a fresh list (and selection) whenever the clip changes
    current = clip_ids.index(clip.clip_id) if clip.clip_id in clip_ids else None
    st.dataframe(
        rows[["speaker", "take"]],
        hide_index=True,
        height=390,
        key=key,
        on_select=partial(pick_row, key, clip_ids),
        selection_mode="single-row",
        selection_default={"selection": {"rows": [current], "columns": []}} if current is not None else None,
    )

st.subheader("What is in the dataset")
a, b = st.columns([2.6, 1], gap="medium")
a.plotly_chart(plots.clips_per_word(info), key="explore_words")
b.plotly_chart(plots.speakers_per_split(info), key="explore_speakers")
overlap = info.overlapping_speakers()
if overlap:
    st.warning(
        "Some speakers appear in two splits: " + "; ".join(f"{k}: {len(v)}" for k, v in overlap.items())
        + ". Accuracy on the test split will be optimistic."
    )
elif info.speakers["testing"]:
    st.caption(
        f"Splits are by speaker: the {len(info.speakers['testing'])} testing voices never occur in training, "
        "so test accuracy measures how well a model copes with voices it has never heard. "
        + ", ".join(f"{s}: {info.total(s):,} clips" for s in SUBSETS)
        + "."
    )

code_view.show(lambda: snippets.explore_code(root, clip.clip_id, clip.split), key="explore_code")
