"""UI pieces shared by the pages: dataset choice, cached dataset scans, navigation.

Pages stay thin: they call these helpers and kwscore, and draw widgets and plots.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from kwscore import audio, paths
from kwscore.augment import AugmentConfig, load_noises
from kwscore.augment import preset as augment_preset
from kwscore.data.catalog import DatasetEntry, known_datasets
from kwscore.data.dataset import SAMPLE_RATE, check_layout
from kwscore.data.info import SPLITS, DatasetInfo, dataset_info
from kwscore.data.layout import FILENAME_RE, dataset_folder, noise_files, read_split_lists, word_folders
from kwscore.data.synth import default_params, generate, is_complete
from kwscore.data.words import NOISE_FOLDER
from kwscore.errors import KwsError
from kwscore.features import (
    FeatureConfig,
    SliderRanges,
    TeachingNumbers,
    teaching_numbers,
    valid_choices,
)

REPO = Path(__file__).resolve().parent.parent
PAGES_DIR = REPO / "pages"
#: The real recordings shared beside the repository in our workplace (never copied into it).
SHARED_REAL = REPO.parent / "shared" / "data" / "speech-commands-real"

#: (file in pages/, title, icon). A page appears in the navigation once its file exists.
PAGES = [
    ("home.py", "Home", ":material/home:"),
    ("worksheet.py", "Lab worksheet", ":material/assignment:"),
    ("explore.py", "Explore", ":material/library_music:"),
    ("spectrogram.py", "Spectrogram lab", ":material/graphic_eq:"),
    ("augmentation.py", "Augmentation lab", ":material/tune:"),
    ("train.py", "Train", ":material/model_training:"),
    ("runs.py", "Runs", ":material/monitoring:"),
    ("try_it.py", "Try it", ":material/mic:"),
    ("record.py", "Your own words", ":material/record_voice_over:"),
]


def navigation_pages() -> list:
    """st.Page objects for every page file that exists, Home first."""
    pages = []
    for i, (name, title, icon) in enumerate(PAGES):
        path = PAGES_DIR / name
        if path.exists():
            pages.append(st.Page(path, title=title, icon=icon, default=i == 0, url_path=path.stem))
    return pages


def ensure_embedded_dataset() -> None:
    """On first start, generate the embedded synthetic dataset with a visible progress bar."""
    if st.session_state.get("_embedded_ok"):
        return
    root = paths.synth_root()
    params = default_params()
    if not is_complete(root, params):
        box = st.empty()
        with box.container():
            st.info(
                f"First start: KWS Studio is synthesising its embedded dataset — every Speech Commands "
                f"word, spoken by {params.speakers} synthetic voices in simulated "
                "rooms and microphones. This takes about a minute and happens once."
            )
            bar = st.progress(0.0, text="Starting espeak-ng…")

            def progress(done: int, total: int, message: str) -> None:
                bar.progress(min(done / total, 1.0), text=f"{done}/{total} clips — {message}")

            try:
                generate(root, params, progress=progress)
            except KwsError as exc:
                st.error(f"Could not create the embedded dataset: {exc}")
                st.stop()
        box.empty()
    st.session_state["_embedded_ok"] = True


def dataset_entries() -> list[DatasetEntry]:
    extra = [SHARED_REAL] if SHARED_REAL.is_dir() else []
    return known_datasets(extra)


def sidebar_dataset_picker() -> Path:
    """The dataset every page works on, chosen in the sidebar and kept in session state."""
    entries = dataset_entries()
    options = [e.label for e in entries] + ["Another folder…"]
    current = st.session_state.get("dataset_label", options[0])
    with st.sidebar:
        st.markdown("### Dataset")
        label = st.selectbox(
            "Dataset",
            options,
            index=options.index(current) if current in options else 0,
            key="dataset_label",
            label_visibility="collapsed",
            format_func=lambda o: o.split(" (")[0],  # short enough for the sidebar; the full label below
            help="Every page uses this dataset. Any folder in the Speech Commands layout works.",
        )
        if " (" in label:
            st.caption(label)
        if label == "Another folder…":
            folder = st.text_input(
                "Dataset folder",
                key="dataset_folder",
                placeholder="/path/to/root (holding SpeechCommands/)",
            )
            root = Path(folder).expanduser() if folder else None
        else:
            root = next(e.root for e in entries if e.label == label)
    st.session_state["dataset_root"] = str(root) if root else None
    return root


def current_dataset() -> Path | None:
    """The dataset root picked in the sidebar (None while a custom folder is being typed)."""
    root = st.session_state.get("dataset_root")
    return Path(root) if root else None


def _folder_stamp(root: Path) -> float:
    """Latest modification time of the dataset's folders: changes when clips are added."""
    folder = dataset_folder(root)
    return max((p.stat().st_mtime for p in [folder, *folder.iterdir()] if p.is_dir()), default=0.0)


@st.cache_data(show_spinner="Scanning the dataset…", max_entries=16)
def _cached_info(root: str, stamp: float) -> DatasetInfo:
    return dataset_info(root)


def md_escape(text: str) -> str:
    """Plain text for st.markdown / st.error: ``<speaker>_nohash_<n>.wav`` keeps its underscores."""
    return "".join("\\" + ch if ch in "\\`*_[]#~$" else ch for ch in str(text))


def _scan(root: Path | None, cached: Callable[[str, float], Any]) -> Any:
    """``cached(root, stamp)`` (recomputed when the dataset's folders change), or None with the
    reason shown: no folder typed yet, not a dataset, unreadable."""
    if root is None:
        st.info("Type the path of a dataset folder in the sidebar.")
        return None
    try:
        check_layout(root)
        return cached(str(root), _folder_stamp(root))
    except (KwsError, OSError) as exc:
        st.error(md_escape(str(exc) if isinstance(exc, KwsError) else f"Cannot read {root}: {exc}"))
        return None


def load_info(root: Path | None) -> DatasetInfo | None:
    """The dataset's summary (cached until its folders change), or None with an error shown."""
    return _scan(root, _cached_info)


# ============================================================================================
# Settings carried between pages
#
# Streamlit deletes a widget's state when the widget is not drawn (another page is open), so the
# values that travel between pages live under plain session-state keys, and widgets are (re)filled
# from them before they are drawn:
#
#   "feature_config"  FeatureConfig.to_dict()   chosen in the Spectrogram lab
#   "augment_config"  AugmentConfig.to_dict()   chosen in the Augmentation lab
#   "clip"            {"root", "clip_id"}       the clip picked on Explore / the labs
#   "_kept"           {widget key: value}       last value of every widget drawn with kept()
# ============================================================================================

FEATURE_KEY = "feature_config"
AUGMENT_KEY = "augment_config"
CLIP_KEY = "clip"
KEPT_KEY = "_kept"


def feature_config() -> FeatureConfig:
    """The front end chosen in the Spectrogram lab (the default FeatureConfig until then)."""
    data = st.session_state.get(FEATURE_KEY)
    if data:
        try:
            config = FeatureConfig.from_dict(data)
        except (KwsError, TypeError):
            return FeatureConfig()  # a stale or hand-edited value: fall back to the default
        if not problems(config):
            return config
    return FeatureConfig()


def set_feature_config(config: FeatureConfig) -> None:
    st.session_state[FEATURE_KEY] = config.to_dict()


def augment_config(default: str = "standard") -> AugmentConfig:
    """The augmentation recipe chosen in the Augmentation lab (the ``default`` preset until then)."""
    data = st.session_state.get(AUGMENT_KEY)
    if data:
        try:
            return AugmentConfig.from_dict(data).validate()
        except (KwsError, TypeError):
            pass
    return augment_preset(default)


def set_augment_config(config: AugmentConfig) -> None:
    st.session_state[AUGMENT_KEY] = config.to_dict()


def _fit(value: Any, kwargs: dict[str, Any]) -> Any:
    """Bring a remembered widget value inside the widget's current range / options."""
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is not None and hi is not None and value is not None:
        kind = type(lo)

        def clamp(v: Any) -> Any:
            return kind(min(max(v, lo), hi))

        if isinstance(value, (tuple, list)):
            return tuple(clamp(v) for v in value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return clamp(value)
    options = kwargs.get("options")
    if options is not None:
        opts = list(options)
        if isinstance(value, list):  # multiselect
            return [v for v in value if v in opts]
        if isinstance(value, tuple):  # range select_slider
            return tuple(v if v in opts else opts[0] for v in value)
        if value not in opts and opts:
            return opts[0]
    return value


def kept(widget: Callable[..., Any], label: str, *, key: str, default: Any, **kwargs: Any) -> Any:
    """Draw ``widget(label, key=key, **kwargs)`` whose value survives page changes and hiding.

    The value comes from the widget's own state, else the last value it had (remembered under
    ``"_kept"``), else ``default``; it is clamped into the current ``min_value``/``max_value`` or
    ``options``, so a range that moved never raises. Returns the widget's value.
    """
    remembered = st.session_state.setdefault(KEPT_KEY, {})
    current = st.session_state[key] if key in st.session_state else remembered.get(key, default)
    # Written every run: a widget whose range or options moved is a new widget to Streamlit, and
    # would otherwise start again from its default instead of this value.
    st.session_state[key] = _fit(current, kwargs)
    value = widget(label, key=key, **kwargs)
    remembered[key] = value
    return value


def forget(prefix: str) -> None:
    """Drop the widget values (live and remembered) whose keys start with ``prefix``."""
    remembered = st.session_state.setdefault(KEPT_KEY, {})
    for key in [k for k in remembered if k.startswith(prefix)]:
        del remembered[key]
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


# ============================================================================================
# Clips: an index of the dataset, decoding, a picker shared by Explore and the two labs
# ============================================================================================


@dataclass(frozen=True)
class Clip:
    """One clip of a dataset, with what its name and the split lists say about it."""

    root: str
    clip_id: str  #: "yes/s003_nohash_1.wav", as the split lists name it
    word: str
    speaker: str
    take: int
    split: str

    @property
    def path(self) -> Path:
        return dataset_folder(self.root) / self.clip_id


@dataclass(frozen=True)
class ClipIndex:
    """Every clip of a dataset (file names only, nothing decoded), with a split/word/speaker tree."""

    root: str
    table: pd.DataFrame  #: columns clip_id, word, speaker, take, split (sorted)
    tree: dict[str, dict[str, dict[str, list[int]]]]  #: split -> word -> speaker -> takes

    def clip(self, clip_id: str) -> Clip | None:
        word, name = clip_id.split("/", 1) if "/" in clip_id else ("", clip_id)
        m = FILENAME_RE.match(name)
        if not m:
            return None
        speaker, take = m["speaker"], int(m["n"])
        for split, words in self.tree.items():
            if take in words.get(word, {}).get(speaker, ()):
                return Clip(self.root, clip_id, word, speaker, take, split)
        return None

    def default_clip(self) -> Clip | None:
        if self.table.empty:
            return None
        rows = self.table[(self.table.split == "training") & (self.table.word == "yes")]
        row = (rows if not rows.empty else self.table).iloc[0]
        return self.clip(row.clip_id)


@st.cache_resource(show_spinner="Listing the clips…", max_entries=8)
def _cached_clip_index(root: str, stamp: float) -> ClipIndex:
    folder = dataset_folder(root)
    lists = read_split_lists(root)  # checked: a non-UTF-8 or hostile line is left out, never a traceback
    val, test = set(lists.validation), set(lists.testing)
    rows = []
    tree: dict[str, dict[str, dict[str, list[int]]]] = {s: {} for s in SPLITS}
    for word in word_folders(root):
        with os.scandir(folder / word) as entries:
            names = sorted(e.name for e in entries if e.is_file())
        for name in names:
            m = FILENAME_RE.match(name)
            if not m:
                continue
            rel = f"{word}/{name}"
            split = "validation" if rel in val else "testing" if rel in test else "training"
            rows.append((rel, word, m["speaker"], int(m["n"]), split))
            tree[split].setdefault(word, {}).setdefault(m["speaker"], []).append(int(m["n"]))
    table = pd.DataFrame(rows, columns=["clip_id", "word", "speaker", "take", "split"])
    tree = {s: words for s, words in tree.items() if words}
    return ClipIndex(root, table, tree)


def clip_index(root: Path | None) -> ClipIndex | None:
    """The dataset's clip index (cached until its folders change), or None with the reason shown."""
    index = _scan(root, _cached_clip_index)
    if index is None:
        return None
    if index.table.empty:
        st.warning(f"No clips named like `<speaker>_nohash_<n>.wav` were found under {root}.")
        return None
    return index


def current_clip(index: ClipIndex) -> Clip:
    """The clip carried between pages, if it belongs to this dataset; else the dataset's default."""
    saved = st.session_state.get(CLIP_KEY) or {}
    clip = index.clip(saved["clip_id"]) if saved.get("root") == index.root and saved.get("clip_id") else None
    return clip or index.default_clip()


def set_current_clip(clip: Clip) -> None:
    st.session_state[CLIP_KEY] = {"root": clip.root, "clip_id": clip.clip_id}


def _random_clip(index: ClipIndex, split: str, avoid: str) -> None:
    """Button callback: a random clip of ``split`` (never the one already shown)."""
    table = index.table[index.table.split == split]
    if len(table) > 1:
        table = table[table.clip_id != avoid]
    if not table.empty:
        clip_id = table.clip_id.iloc[random.randrange(len(table))]
        set_current_clip(index.clip(clip_id))


def _first_or(value: Any, options: list) -> Any:
    return value if value in options else options[0]


def clip_picker(key_prefix: str, *, random_label: str = "Random clip") -> Clip | None:
    """Split / word / speaker / take selectboxes and a random button, shared by the sound pages.

    The choice is carried between pages under ``"clip"``. Widgets use ``<key_prefix>_split`` etc.,
    filled from the carried clip whenever it changed elsewhere (another page, the random button,
    a row picked in a list). Options cascade: a speaker appears only under the words they said in
    that split. Returns the chosen clip, or None (with a message) when the dataset has none.
    """
    index = clip_index(current_dataset())
    if index is None:
        return None
    chosen = current_clip(index)
    keys = {f: f"{key_prefix}_{f}" for f in ("split", "word", "speaker", "take")}
    synced_key = f"_{key_prefix}_synced"
    ss = st.session_state
    if ss.get(synced_key) != (index.root, chosen.clip_id) or any(k not in ss for k in keys.values()):
        for field_name, key in keys.items():
            ss[key] = getattr(chosen, field_name)
    splits = list(index.tree)
    split = ss[keys["split"]] = _first_or(ss.get(keys["split"]), splits)
    words = sorted(index.tree[split])
    word = ss[keys["word"]] = _first_or(ss.get(keys["word"]), words)
    speakers = sorted(index.tree[split][word])
    speaker = ss[keys["speaker"]] = _first_or(ss.get(keys["speaker"]), speakers)
    takes = sorted(index.tree[split][word][speaker])
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
        args=(index, split, chosen.clip_id),
        width="stretch",
        help=f"Any clip of the {split} split.",
    )
    clip_id = f"{ss[keys['word']]}/{ss[keys['speaker']]}_nohash_{ss[keys['take']]}.wav"
    clip = index.clip(clip_id) or chosen
    set_current_clip(clip)
    ss[synced_key] = (index.root, clip.clip_id)
    return clip


@st.cache_data(max_entries=128, show_spinner=False)
def _decode(path: str, mtime: float) -> tuple[np.ndarray, int]:
    waveform, sr = audio.load(path)
    mono = audio.resample(audio.to_mono(waveform), sr, SAMPLE_RATE)
    return mono[0].numpy(), sr


def load_clip(clip: Clip) -> tuple[torch.Tensor, int] | None:
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


# ============================================================================================
# Feature settings: cached arithmetic and a guard that keeps slider combinations valid
# ============================================================================================


@functools.lru_cache(maxsize=512)
def problems(config: FeatureConfig) -> tuple[str, ...]:
    """``config.problems()``, cached per config (it builds a Mel filterbank: ~0.5 ms each time)."""
    return tuple(config.problems())


@functools.lru_cache(maxsize=256)
def teaching(config: FeatureConfig) -> TeachingNumbers:
    """:func:`kwscore.features.teaching_numbers` for a 1-s clip, cached per config."""
    return teaching_numbers(config)


@functools.lru_cache(maxsize=256)
def slider_ranges(config: FeatureConfig) -> SliderRanges:
    """:func:`kwscore.features.valid_choices`, cached per config."""
    return valid_choices(config)


def fit_feature_config(config: FeatureConfig) -> tuple[FeatureConfig, list[str]]:
    """Make the smallest changes that turn ``config`` valid, each explained in a sentence.

    Only ``n_fft`` can break the others: a window longer than the FFT is shortened, then the hop.
    Empty Mel bands are never "repaired" (128 bands stay 128): the editor explains them instead.
    """
    notes: list[str] = []
    c = config
    if c.win_length > c.n_fft:
        notes.append(
            f"An n_fft of {c.n_fft} cannot hold a {c.win_length}-sample window: the window was "
            f"shortened to {c.n_fft} samples ({1000 * c.n_fft / c.sample_rate:g} ms)."
        )
        c = replace(c, win_length=c.n_fft)
    if c.hop_length > c.win_length:
        notes.append(f"The hop was shortened to the window, {c.win_length} samples: a longer hop would skip audio.")
        c = replace(c, hop_length=c.win_length)
    return c, notes


# ============================================================================================
# Training runs: small adapters over kwscore.jobs for the Train and Runs pages
#
# Pages only *read* run files (through kwscore.jobs) and launch/cancel/delete through it; these
# helpers add what a page needs on top: a listing that never raises, the queue position, labels,
# cached reports and parameter counts, the front end a run's model listens through, experiments.
# ============================================================================================

#: States in which a run still changes (pages poll them).
ACTIVE_STATES = ("queued", "running")
#: Colour and Material icon of each state, for badges in Markdown (``:green-badge[...]``).
STATE_STYLE = {
    "queued": ("gray", "hourglass_top"), "running": ("blue", "directions_run"),
    "succeeded": ("green", "check_circle"), "failed": ("red", "error"), "cancelled": ("orange", "stop_circle"),
    "unreadable": ("red", "warning"),
}  # fmt: skip
#: Experiments live beside the runs, in a folder whose leading "_" no run id can have.
EXPERIMENTS_FOLDER = "_experiments"


def runs_root() -> Path:
    """The runs folder (``KWS_RUNS_DIR`` or ``~/.kws-studio/runs``), created if needed."""
    from kwscore import jobs

    return jobs.runs_root()


def run_info_safe(path: Path):
    """:func:`kwscore.jobs.run_info`, but a run too damaged even for that comes back as unreadable."""
    from kwscore import jobs
    from kwscore.runfiles import UNREADABLE

    try:
        return jobs.run_info(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt run must never break a page
        return jobs.RunInfo(path.name, path, UNREADABLE, error=f"cannot read this run ({type(exc).__name__}: {exc})")


def all_runs() -> list:
    """Every run of the runs folder as :class:`kwscore.jobs.RunInfo`, newest first. Never raises."""
    from kwscore.runfiles import RUN_ID_RE

    try:
        folders = [p for p in runs_root().iterdir() if p.is_dir() and RUN_ID_RE.match(p.name)]
    except OSError as exc:
        st.error(f"Cannot read the runs folder: {exc}")
        return []
    infos = sorted((run_info_safe(p) for p in folders), key=lambda r: (r.created or 0.0, r.run_id), reverse=True)
    try:  # queued runs whose worker died (or a restarted machine): start a new worker
        from kwscore import jobs

        jobs.revive_worker(infos=infos)
    except Exception:  # noqa: BLE001 - listing the runs must work even when the queue does not
        pass
    return infos


def waiting_ahead(info, infos: list) -> int:
    """How many runs will train before this queued one (runs in progress and older queued ones)."""
    mine = (info.created or 0.0, info.run_id)
    return sum(
        1
        for other in infos
        if other.run_id != info.run_id and other.state in ACTIVE_STATES and (other.created or 0.0, other.run_id) < mine
    )


def state_text(info, infos: list | None = None) -> str:
    """``"waiting (2 ahead)"`` for a queued run (given every run), ``"starting"`` when none is ahead,
    else the state: ``"running"``…"""
    if info.state == "queued" and infos is not None:
        ahead = waiting_ahead(info, infos)
        return f"waiting ({ahead} ahead)" if ahead else "starting"
    return info.state


def state_badge(info, infos: list | None = None) -> str:
    """:func:`state_text` as a coloured Markdown badge with an icon."""
    color, icon = STATE_STYLE.get(info.state, ("gray", "help"))
    return f":{color}-badge[:material/{icon}: {state_text(info, infos)}]"


def short_id(run_id: str) -> str:
    """The random tail of a run id (``…-m5-ae027b`` -> ``ae027b``), enough to tell runs apart."""
    return run_id.rsplit("-", 1)[-1]


def augment_name(augment: Any) -> str:
    """A run config's ``augment`` in a word: ``none`` / a preset name / the recipe's name."""
    from kwscore.runlabels import augment_text

    return augment_text(augment)


def augment_on(config: dict | None) -> bool:
    return augment_name((config or {}).get("augment", "none")) != "none"


def fraction_text(config: dict | None) -> str:
    fraction = (config or {}).get("fraction", 1.0)
    try:
        return f"{100 * float(fraction):g} %"
    except (TypeError, ValueError):
        return "?"


def run_label(info) -> str:
    """One run's label: its name, else ``m5 @ 16 kHz · 25 % · aug recipe · ae027b``."""
    from kwscore.runlabels import settings

    config = info.config or {}
    if str(config.get("name") or "").strip():
        return f"{config['name'].strip()} · {short_id(info.run_id)}"
    rate = f" @ {settings(config)['rate']}" if config else ""
    return f"{info.model or '?'}{rate} · {fraction_text(config)} · aug {augment_name(config.get('augment', 'none'))} · {short_id(info.run_id)}"


def compare_labels(infos: list) -> list[str]:
    """Labels for runs shown together, from their names or the settings that differ between them."""
    from kwscore.runlabels import compare_labels as labels

    return labels([i.config for i in infos], [i.run_id for i in infos])


def fmt_duration(seconds: float | None, compact: bool = False) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min`` (``compact``: ``3m 05s``); ``–`` for None."""
    if seconds is None:
        return "–"
    s = int(round(max(0.0, float(seconds))))
    if s < 60:
        return f"{s}s" if compact else f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if compact else f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if compact else f"{s // 3600} h {s % 3600 // 60:02d} min"


def dataset_name(data: str | None, short: bool = False) -> str:
    """The sidebar's name of a dataset root (``short``: a word or the folder name)."""
    if not data:
        return "?"
    try:
        resolved = Path(data).expanduser().resolve()
        for entry in dataset_entries():
            if entry.root.resolve() == resolved:
                if short:
                    return {"synthetic": "synthetic", "real": "Speech Commands"}.get(entry.key, entry.root.name)
                return entry.label
    except OSError:
        pass
    return Path(data).name or str(data)


def data_text(config: dict | None, short: bool = True) -> str:
    """A run's data in words: its dataset, plus any mixed-in ones (``synthetic + user``)."""
    config = config or {}
    mix = config.get("mix") or []
    return " + ".join(dataset_name(d, short) for d in [config.get("data"), *mix])


def commands_text(commands: Any) -> str:
    if isinstance(commands, list):
        return f"{len(commands)} words"
    return {"8": "8 commands", "35": "35 words", "all": "all words"}.get(str(commands), str(commands))


@st.cache_resource(max_entries=64, show_spinner=False)
def _cached_report(path: str, mtime: float) -> dict | None:
    from kwscore import jobs

    report = jobs.read_report(Path(path))
    needed = ("accuracy", "labels", "confusion", "per_class_accuracy")
    return report if report and all(k in report for k in needed) else None


def run_report(info) -> dict | None:
    """The run's report.json (cached until it changes; shared, do not modify), None if absent/bad."""
    path = Path(info.path)
    mtime = _mtime(path / "report.json")
    return _cached_report(str(path), mtime) if mtime else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@st.cache_resource(max_entries=256, show_spinner=False)
def _cached_metrics(path: str, mtime: float) -> tuple[list[dict], list[dict]]:
    from kwscore import jobs

    return jobs.read_metrics(Path(path))


def run_metrics(info) -> tuple[list[dict], list[dict]]:
    """``(iteration records, epoch records)`` of a run, re-read only when metrics.jsonl changed."""
    path = Path(info.path)
    mtime = _mtime(path / "metrics.jsonl")
    return _cached_metrics(str(path), mtime) if mtime else ([], [])


@st.cache_data(max_entries=64, show_spinner="Building the model…")
def describe_model(model: str, n_classes: int, input_shape: tuple[int, ...], kwargs_json: str) -> dict:
    """:func:`kwscore.models.describe` (layers, parameters, input shape), cached per setting."""
    import json

    from kwscore.models import describe

    return describe(model, n_classes, list(input_shape), **json.loads(kwargs_json))


@st.cache_data(max_entries=256, show_spinner=False)
def _count_params(model: str, n_classes: int, kwargs_json: str) -> int | None:
    import json

    from kwscore.models import build_model, count_parameters

    try:
        with torch.device("meta"):  # shapes only: a damaged config asking for a huge model costs nothing
            return count_parameters(build_model(model, n_classes, **json.loads(kwargs_json)))
    except (KwsError, TypeError, ValueError, RuntimeError, OverflowError):
        return None


def run_n_params(info) -> int | None:
    """Trainable parameters of a run's model: from its report, else counted from its config."""
    import json

    report = run_report(info)
    if report and report.get("n_params"):
        return int(report["n_params"])
    config = info.config or {}
    if not config.get("model"):
        return None
    try:
        from kwscore.data.dataset import resolve_commands

        n_classes = len(resolve_commands(config.get("commands", "8"), word_folders(config.get("data", ""))))
        kwargs = json.dumps(config.get("model_kwargs") or {}, sort_keys=True)
    except (KwsError, OSError, TypeError, ValueError):
        return None
    return _count_params(config["model"], n_classes, kwargs)


def model_input_view(config: dict, waveform: torch.Tensor) -> tuple[torch.Tensor, FeatureConfig, str]:
    """What a run's model gets from one 16 kHz clip, as a picture: ``(spectrogram, its config, kind)``.

    The clip goes through the run's own front end (:func:`kwscore.evaluation.build_transform`, the
    one stored in its checkpoints). Mel models (``kind="mel"``): that output *is* the picture — the
    (normalised) dB Mel spectrogram. Waveform models (``"waveform"``): they get samples at their
    rate (8 kHz for the tutorial's M5, 16 kHz for the tuned recipe), shown as a linear dB
    spectrogram of that resampled clip (empty above Nyquist).
    """
    from kwscore.evaluation import build_transform, transform_config
    from kwscore.features import linear_spectrogram_db
    from kwscore.runner import RunConfig

    rc = RunConfig.from_dict(config)
    clip = audio.fix_length(waveform, SAMPLE_RATE).unsqueeze(0)  # [1, 1, 16000]
    with torch.inference_mode():
        seen = build_transform(transform_config(rc.model_rate, rc.feature_config))(clip)
    if rc.representation == "mel":
        return seen[0, 0], rc.feature_config, "mel"
    view = FeatureConfig(normalize=False).at_sample_rate(rc.model_rate)
    return linear_spectrogram_db(seen[0], view), view, "waveform"


def load_audio_file(path: str | Path) -> torch.Tensor | None:
    """A clip file as ``[1, time]`` at 16 kHz (cached), or None when it cannot be read."""
    try:
        samples, _sr = _decode(str(path), Path(path).stat().st_mtime)
    except (KwsError, OSError):
        return None
    return torch.from_numpy(samples).unsqueeze(0)


# -- experiments: a grid of runs answering one question ------------------------------------------


def experiments_dir() -> Path:
    return runs_root() / EXPERIMENTS_FOLDER


def new_experiment_id(model: str) -> str:
    import secrets
    import time

    return f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{secrets.token_hex(2)}"


def save_experiment(record: dict) -> Path:
    """Write ``_experiments/<id>.json`` (atomically) in the runs folder."""
    from kwscore.runfiles import write_json

    return write_json(experiments_dir() / f"{record['id']}.json", record)


def list_experiments() -> list[dict]:
    """Every experiment record, newest first; unreadable files are skipped."""
    from kwscore.runfiles import is_number, read_json

    out = []
    folder = experiments_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("runs"), list) and isinstance(record.get("id"), str):
            runs = [r for r in record["runs"] if isinstance(r, dict) and isinstance(r.get("run_id"), str)
                    and is_number(r.get("fraction"), 0.0, 1.0) and r.get("augment") in ("off", "on")]  # fmt: skip
            out.append({**record, "runs": runs, "created": record.get("created") if is_number(record.get("created")) else None})
    return sorted(out, key=lambda r: (r.get("created") or 0.0, r["id"]), reverse=True)


def experiment_grid(base, fractions: list[float], augment: Any) -> str:
    """A fingerprint of an experiment's grid: the same runs queued twice have the same one."""
    import hashlib
    import json

    settings = {k: v for k, v in base.to_dict().items() if k not in ("fraction", "augment")}
    text = json.dumps([settings, sorted(float(f) for f in fractions), augment], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def pending_twin(grid: str) -> tuple[dict, int] | None:
    """``(record, runs still queued or training)`` of an experiment with this grid that has not
    finished yet, or ``None``: queuing the same grid again would only double the wait."""
    for record in list_experiments():
        if record.get("grid") != grid:
            continue
        active = sum(
            run_info_safe(runs_root() / str(r.get("run_id"))).state in ACTIVE_STATES
            for r in record["runs"] if isinstance(r, dict) and (runs_root() / str(r.get("run_id"))).is_dir()
        )  # fmt: skip
        if active:
            return record, active
    return None


#: Training speed assumed for a model no run on this machine has finished yet (clips per second, 2 cores).
DEFAULT_CLIPS_PER_S = 800.0
#: Per run: start-up, decoding the clips, the test at the end (seconds, roughly).
RUN_OVERHEAD_S = 15.0


def experiment_estimate(base, fractions: list[float], infos: list | None = None) -> dict:
    """Roughly how long an experiment's runs take here: ``{"runs", "seconds", "clips_per_s",
    "measured" (from earlier runs of the model), "train_clips", "ahead" (runs queued or training)}``."""
    import statistics

    from kwscore.data.dataset import resolve_commands
    from kwscore.runfiles import is_number

    infos = all_runs() if infos is None else infos
    speeds = []
    for info in infos:
        if info.model == base.model and info.state == "succeeded":
            report = run_report(info) or {}
            if is_number(report.get("samples_per_s"), 1.0, 1e7):
                speeds.append(float(report["samples_per_s"]))
    speed = statistics.median(speeds) if speeds else DEFAULT_CLIPS_PER_S
    try:
        info = load_info(Path(base.data))
        labels = resolve_commands(base.commands, info.words)
        train_clips = sum(info.clips["training"].get(w, 0) for w in labels)
    except (KwsError, OSError, TypeError, ValueError, AttributeError, KeyError):
        train_clips = 0
    epoch_clips = sum(max(1, round(train_clips * float(f))) for f in fractions) * 2  # off and on
    return {
        "runs": 2 * len(fractions), "seconds": epoch_clips * base.epochs / speed + 2 * len(fractions) * RUN_OVERHEAD_S,
        "clips_per_s": speed, "measured": bool(speeds), "train_clips": train_clips,
        "ahead": sum(i.state in ACTIVE_STATES for i in infos),
    }  # fmt: skip


def launch_experiment(
    base, fractions: list[float], augment: Any, question: str = "", progress: Callable[[int, int], None] | None = None
) -> dict:
    """Queue ``base`` (a RunConfig) once per training fraction × augmentation off/on, same seed.

    ``augment`` is the recipe of the "on" runs (preset name or AugmentConfig dict). Smallest
    fractions first, so that the plot fills in from the left. Returns the experiment record, saved
    in ``_experiments/<id>.json`` after every launched run (a failure half-way keeps what started).
    ``progress(done, total)`` is called after each run is queued.
    """
    import time
    from dataclasses import replace as dc_replace

    from kwscore import jobs

    grid = experiment_grid(base, fractions, augment)
    twin = pending_twin(grid)
    if twin:  # e.g. Enter in a field submitted the form, then the button did again
        raise KwsError(
            f"The same experiment ({twin[0]['id']}) is already queued: {twin[1]} of its runs are still waiting or "
            "training. It was not queued a second time."
        )
    record = {
        "id": new_experiment_id(base.model), "created": time.time(), "question": question,
        "model": base.model, "seed": base.seed, "epochs": base.epochs, "data": base.data,
        "fractions": sorted(fractions), "augment": augment, "grid": grid, "runs": [],
    }  # fmt: skip
    try:
        for fraction in sorted(fractions):
            for setting in ("off", "on"):
                config = dc_replace(base, fraction=float(fraction), augment="none" if setting == "off" else augment)
                run_id = jobs.launch(config, start_worker=False)
                record["runs"].append({"run_id": run_id, "fraction": float(fraction), "augment": setting})
                save_experiment(record)
                if progress:
                    progress(len(record["runs"]), 2 * len(fractions))
    finally:
        if record["runs"]:
            jobs.ensure_worker()
    return record


# -- pages and fragments -------------------------------------------------------------------------


def page_link(file: str, label: str, icon: str | None = None) -> None:
    """``st.page_link`` to ``pages/<file>``, drawn only when that page exists."""
    path = PAGES_DIR / file
    if path.exists():
        st.page_link(str(path), label=label, icon=icon)


def count_page_run(page: str) -> None:
    """Call at the top of a page: counts the page's full script runs (see :func:`fragment_rerun`)."""
    key = f"_{page}_full_runs"
    st.session_state[key] = st.session_state.get(key, 0) + 1


def fragment_rerun(page: str, fragment: str) -> bool:
    """Inside a fragment: True when only the fragment is rerunning (a timer or one of its widgets),
    False when the whole page is running. A fragment calls ``st.rerun()`` only in the first case."""
    runs = st.session_state.get(f"_{page}_full_runs", 0)
    seen_key = f"_{page}_{fragment}_seen"
    alone = st.session_state.get(seen_key) == runs
    st.session_state[seen_key] = runs
    return alone
