"""Home: what KWS Studio is, the dataset in use, and where to go next."""

import pandas as pd
import streamlit as st

from dashboard import code_view, datasets, feature_editor, plots, ui
from kwscore import paths, snippets
from kwscore.data.dataset import SUBSETS

st.title("🎙️ KWS Studio")
st.markdown(
    "**Keyword spotting** is how a phone wakes up on *“Hey…”*: a small neural network listens to one "
    "second of audio at a time and decides which short command, if any, was spoken. KWS Studio lets "
    "you take that apart — listen to the data, see how sound becomes a **Mel spectrogram**, hear what "
    "**augmentation** does, **train** a 2D CNN on spectrograms or the **M5** network on raw "
    "waveforms, and study its mistakes. Everything runs offline on this computer."
)

STEPS = [
    ("explore.py", "1 · Explore", "Listen to clips and look at waveforms, words and speakers."),
    ("spectrogram.py", "2 · Spectrogram lab", "Move window, hop, FFT and Mel sliders; watch the picture change."),
    ("augmentation.py", "3 · Augmentation lab", "Stretch, pitch-shift, add noise, mask: hear each effect."),
    ("train.py", "4 · Train", "Launch a CNN or M5 run in the background and watch it learn."),
    ("runs.py", "5 · Runs", "Compare curves, confusion matrices and the clips a model got wrong."),
    ("try_it.py", "6 · Try it", "Speak into your model, or upload a recording."),
    ("worksheet.py", "Lab worksheet", "Every task and question of the lab, with the live answers."),
]
available = [s for s in STEPS if (ui.PAGES_DIR / s[0]).exists()]
if available:
    st.subheader("The lab, step by step")
    cols = st.columns(3)
    for i, (file, title, text) in enumerate(available):
        with cols[i % 3].container(border=True):
            st.page_link(str(ui.PAGES_DIR / file), label=f"**{title}**")
            st.caption(text)

st.subheader("Dataset in use")
root = datasets.current()
info = datasets.load_info(root)
if info is not None:
    st.markdown(f"**{info.name}** — `{info.root}`")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Words", len(info.words))
    c2.metric("Clips", f"{info.total():,}")
    c3.metric("Speakers", sum(len(info.speakers[s]) for s in SUBSETS))
    c4.metric("Mean duration", f"{info.duration_stats()['mean']:.2f} s")
    table = pd.DataFrame(
        {
            "clips": [info.total(s) for s in SUBSETS],
            "speakers": [len(info.speakers[s]) for s in SUBSETS],
        },
        index=list(SUBSETS),
    )
    left, right = st.columns([1, 2])
    with left:
        st.dataframe(table, width="stretch")
        overlap = info.overlapping_speakers()
        if overlap:
            st.warning(f"Some speakers appear in two splits: {', '.join(overlap)}. Test accuracy will be optimistic.")
        else:
            st.success("Splits are speaker-disjoint: the test set holds only voices the model never heard.")
        st.caption(f"Background noises: {', '.join(info.noises) or 'none'}")
    with right:
        st.plotly_chart(plots.clips_per_word(info), key="home_words")

with st.expander("Where KWS Studio keeps things"):
    st.markdown(
        f"- Datasets: `{paths.data_dir()}` (set `KWS_DATA_DIR` to move them)\n"
        f"- Training runs: `{paths.runs_dir()}` (set `KWS_RUNS_DIR`)\n"
        "- Everything stays on this computer; nothing is uploaded anywhere."
    )

if info is not None:
    code_view.show(lambda: snippets.pipeline_code(info.root, feature_editor.feature_config()), key="home_code")
