"""UI pieces shared by the pages: dataset choice, cached dataset scans, navigation.

Pages stay thin: they call these helpers and kwscore, and draw widgets and plots.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kwscore import paths
from kwscore.data.catalog import DatasetEntry, known_datasets
from kwscore.data.dataset import check_layout
from kwscore.data.info import DatasetInfo, dataset_info
from kwscore.data.layout import dataset_folder
from kwscore.data.synth import SynthParams, generate, is_complete
from kwscore.errors import KwsError

REPO = Path(__file__).resolve().parent.parent
PAGES_DIR = REPO / "pages"
#: The real recordings shared beside the repository in our workplace (never copied into it).
SHARED_REAL = REPO.parent / "shared" / "data" / "speech-commands-real"

#: (file in pages/, title, icon). A page appears in the navigation once its file exists.
PAGES = [
    ("home.py", "Home", ":material/home:"),
    ("explore.py", "Explore", ":material/library_music:"),
    ("spectrogram.py", "Spectrogram lab", ":material/graphic_eq:"),
    ("augmentation.py", "Augmentation lab", ":material/tune:"),
    ("train.py", "Train", ":material/model_training:"),
    ("runs.py", "Runs", ":material/monitoring:"),
    ("try_it.py", "Try it", ":material/mic:"),
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
    if not is_complete(root, SynthParams()):
        box = st.empty()
        with box.container():
            st.info(
                "First start: KWS Studio is synthesising its embedded dataset — every Speech Commands "
                "word spoken by 40 synthetic voices. This takes about 10 seconds and happens once."
            )
            bar = st.progress(0.0, text="Starting espeak-ng…")

            def progress(done: int, total: int, message: str) -> None:
                bar.progress(min(done / total, 1.0), text=f"{done}/{total} clips — {message}")

            try:
                generate(root, SynthParams(), progress=progress)
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
            help="Every page uses this dataset. Any folder in the Speech Commands layout works.",
        )
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


def load_info(root: Path | None) -> DatasetInfo | None:
    """The dataset's summary (cached until its folders change), or None with an error shown."""
    if root is None:
        st.info("Type the path of a dataset folder in the sidebar.")
        return None
    try:
        check_layout(root)
        return _cached_info(str(root), _folder_stamp(root))
    except (KwsError, OSError) as exc:
        st.error(str(exc) if isinstance(exc, KwsError) else f"Cannot read {root}: {exc}")
        return None
