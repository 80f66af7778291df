"""The clip picker shared by Explore, the Spectrogram lab and the Augmentation lab, and clip audio.

    clip = clips.picker("spec")        # split / word / speaker / take + a random button
    waveform, sr = clips.load(clip)    # decoded at 16 kHz (cached), or None with the reason shown
    clips.play(waveform)               # an audio player

The picked clip is carried between pages under ``st.session_state["clip"]`` (``{"root", "clip_id"}``):
the pages show the same clip until the student picks another. The index of clips is
:func:`kwscore.data.clips.scan_clips`, cached once per dataset for every session.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from dashboard import datasets
from dashboard.style import md_escape
from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.augment import load_noises
from kwscore.data.clips import Clip, ClipIndex, scan_clips
from kwscore.data.layout import dataset_folder, noise_files
from kwscore.data.words import NOISE_FOLDER
from kwscore.errors import KwsError

CLIP_KEY = "clip"
FIELDS = ("split", "word", "speaker", "take")


@st.cache_resource(show_spinner="Listing the clips…", max_entries=8)
def _cached_index(root: str, stamp: float) -> ClipIndex:
    return scan_clips(root)


def index(root: Path | None) -> ClipIndex | None:
    """The dataset's clip index (cached until its folders change), or None with the reason shown."""
    found = datasets.cached_scan(root, _cached_index)
    if found is None:
        return None
    if not len(found):
        st.warning(f"No clips named like `<speaker>_nohash_<n>.wav` were found under {root}.")
        return None
    return found


def current(idx: ClipIndex) -> Clip:
    """The clip carried between pages, if it belongs to this dataset; else the dataset's default."""
    saved = st.session_state.get(CLIP_KEY) or {}
    clip = idx.clip(saved["clip_id"]) if saved.get("root") == idx.root and saved.get("clip_id") else None
    return clip or idx.default_clip()


def set_current(clip: Clip) -> None:
    st.session_state[CLIP_KEY] = {"root": clip.root, "clip_id": clip.clip_id}


def _random_clip(idx: ClipIndex, split: str, avoid: str) -> None:
    """Button callback: a random clip of ``split`` (never the one already shown)."""
    ids = idx.clip_ids(split)
    if len(ids) > 1:
        ids = [i for i in ids if i != avoid]
    if ids:
        set_current(idx.clip(random.choice(ids)))


def _first_or(value: Any, options: list) -> Any:
    return value if value in options else options[0]


def picker(key_prefix: str, *, random_label: str = "Random clip") -> Clip | None:
    """Split / word / speaker / take selectboxes and a random button.

    Widgets use ``<key_prefix>_split`` etc., filled from the carried clip whenever it changed
    elsewhere (another page, the random button, a row picked in a list). Options cascade: a speaker
    appears only under the words they said in that split. Returns the chosen clip, or None (with a
    message) when the dataset has none.
    """
    idx = index(datasets.current())
    if idx is None:
        return None
    chosen = current(idx)
    keys = {f: f"{key_prefix}_{f}" for f in FIELDS}
    synced_key = f"_{key_prefix}_synced"
    ss = st.session_state
    if ss.get(synced_key) != (idx.root, chosen.clip_id) or any(k not in ss for k in keys.values()):
        for field_name, key in keys.items():
            ss[key] = getattr(chosen, field_name)
    splits = list(idx.tree)
    split = ss[keys["split"]] = _first_or(ss.get(keys["split"]), splits)
    words = sorted(idx.tree[split])
    word = ss[keys["word"]] = _first_or(ss.get(keys["word"]), words)
    speakers = sorted(idx.tree[split][word])
    speaker = ss[keys["speaker"]] = _first_or(ss.get(keys["speaker"]), speakers)
    takes = sorted(idx.tree[split][word][speaker])
    ss[keys["take"]] = _first_or(ss.get(keys["take"]), takes)

    c1, c2, c3, c4, c5 = st.columns([1.1, 1.1, 1.3, 0.7, 1.0], vertical_alignment="bottom")
    c1.selectbox("Split", splits, key=keys["split"], help="Splits are by speaker: no voice is in two.")
    c2.selectbox("Word", words, key=keys["word"])
    c3.selectbox(
        "Speaker", speakers, key=keys["speaker"], help=f"{len(speakers)} speakers said this word in this split."
    )
    c4.selectbox("Take", takes, key=keys["take"], help="Each speaker said each word a few times.")
    c5.button(
        random_label,
        key=f"{key_prefix}_random",
        icon=":material/casino:",
        on_click=_random_clip,
        args=(idx, split, chosen.clip_id),
        width="stretch",
        help=f"Any clip of the {split} split.",
    )
    clip_id = f"{ss[keys['word']]}/{ss[keys['speaker']]}_nohash_{ss[keys['take']]}.wav"
    clip = idx.clip(clip_id) or chosen
    set_current(clip)
    ss[synced_key] = (idx.root, clip.clip_id)
    return clip


@st.cache_data(max_entries=128, show_spinner=False)
def _decode(path: str, mtime: float) -> tuple[np.ndarray, int]:
    waveform, sr = audio.load(path)
    mono = audio.resample(audio.to_mono(waveform), sr, SAMPLE_RATE)
    return mono[0].numpy(), sr


def load(clip: Clip) -> tuple[torch.Tensor, int] | None:
    """``(waveform [1, time] at 16 kHz, the file's own sample rate)``, cached; None if unreadable."""
    try:
        samples, sr = _decode(str(clip.path), clip.path.stat().st_mtime)
    except (KwsError, OSError) as exc:
        st.error(md_escape(f"Cannot play {clip.clip_id}: {exc}"))
        return None
    return torch.from_numpy(samples).unsqueeze(0), sr


@st.cache_resource(show_spinner="Loading background noises…", max_entries=4)
def _cached_noises(root: str, stamp: float) -> tuple[list[torch.Tensor], list[str]]:
    return load_noises(root), [p.name for p in noise_files(root)]


def background_noises(root: Path) -> tuple[list[torch.Tensor], list[str]]:
    """The dataset's ``_background_noise_`` recordings at 16 kHz and their file names (cached)."""
    folder = dataset_folder(root) / NOISE_FOLDER
    stamp = folder.stat().st_mtime if folder.is_dir() else 0.0
    return _cached_noises(str(root), stamp)


def play(waveform: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """``st.audio`` of a waveform as 16-bit WAV bytes (float arrays of silence would play NaN)."""
    st.audio(audio.wav_bytes(waveform, sample_rate), format="audio/wav")
