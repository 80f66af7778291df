"""The dataset picker: which dataset every page works on, chosen in the sidebar, and its cached scans.

    root = datasets.current()          # the folder picked in the sidebar (None while one is typed)
    info = datasets.load_info(root)    # its summary, cached until its folders change (or None, shown why)

The scans themselves are kwscore's (:func:`kwscore.data.info.dataset_info`,
:func:`kwscore.data.clips.scan_clips`), so the CLI gives the same answers; this module adds the
sidebar widget, the first-start synthesis with a progress bar, and Streamlit caches shared by every
session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.style import md_escape
from kwscore import paths
from kwscore.data.catalog import DatasetEntry, known_datasets
from kwscore.data.clips import folder_stamp
from kwscore.data.dataset import check_layout
from kwscore.data.info import DatasetInfo, dataset_info
from kwscore.data.synth import default_params, generate, is_complete
from kwscore.errors import KwsError

#: The real recordings shared beside the repository in our workplace (never copied into it).
SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"
OTHER = "Another folder…"


def ensure_embedded() -> None:
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


def entries() -> list[DatasetEntry]:
    """The datasets on offer: the embedded one, downloads, the shared real recordings when present."""
    extra = [SHARED_REAL] if SHARED_REAL.is_dir() else []
    return known_datasets(extra)


def sidebar_picker() -> Path | None:
    """The dataset every page works on, chosen in the sidebar (kept for the whole session)."""
    found = entries()
    options = [e.label for e in found] + [OTHER]
    if st.session_state.get("dataset_label") not in options:
        st.session_state["dataset_label"] = options[0]  # first visit, or a dataset that went away
    with st.sidebar:
        st.markdown("### Dataset")
        label = st.selectbox(
            "Dataset",
            options,
            key="dataset_label",
            persist_state="session",
            label_visibility="collapsed",
            format_func=lambda o: o.split(" (")[0],  # short enough for the sidebar; the full label below
            help="Every page uses this dataset. Any folder in the Speech Commands layout works.",
        )
        if " (" in label:
            st.caption(label)
        if label == OTHER:
            folder = st.text_input(
                "Dataset folder",
                key="dataset_folder",
                persist_state="session",
                placeholder="/path/to/root (holding SpeechCommands/)",
            )
            root = Path(folder).expanduser() if folder else None
        else:
            root = next(e.root for e in found if e.label == label)
    st.session_state["dataset_root"] = str(root) if root else None
    return root


def current() -> Path | None:
    """The dataset root picked in the sidebar (None while a custom folder is being typed)."""
    root = st.session_state.get("dataset_root")
    return Path(root) if root else None


def cached_scan(root: Path | None, cached: Callable[[str, float], Any]) -> Any:
    """``cached(root, stamp)`` (recomputed when the dataset's folders change), or None with the
    reason shown: no folder typed yet, not a dataset, unreadable."""
    if root is None:
        st.info("Type the path of a dataset folder in the sidebar.")
        return None
    try:
        check_layout(root)
        return cached(str(root), folder_stamp(root))
    except (KwsError, OSError) as exc:
        st.error(md_escape(str(exc) if isinstance(exc, KwsError) else f"Cannot read {root}: {exc}"))
        return None


@st.cache_data(show_spinner="Scanning the dataset…", max_entries=16)
def _cached_info(root: str, stamp: float) -> DatasetInfo:
    return dataset_info(root)


def load_info(root: Path | None) -> DatasetInfo | None:
    """The dataset's summary (cached until its folders change), or None with an error shown."""
    return cached_scan(root, _cached_info)
