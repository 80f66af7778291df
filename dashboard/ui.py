"""The app shell shared by the pages: navigation and page links, widget values kept across pages.

Pages stay thin: they call kwscore and the components in dashboard/ (``datasets`` the dataset
picker, ``clips`` the clip picker and audio, ``feature_editor`` the front-end settings), and draw
widgets and plots.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from kwscore.augment import AugmentConfig
from kwscore.augment import preset as augment_preset
from kwscore.errors import KwsError

REPO = Path(__file__).resolve().parent.parent
PAGES_DIR = REPO / "pages"

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


def teacher_pages(shown: bool) -> list:
    """The Teacher page, in the navigation of the teacher only (``shown``; a student who opens its
    address gets it too, and the page says it is for the teacher)."""
    path = PAGES_DIR / "teacher.py"
    return [st.Page(path, title="Teacher", icon=":material/school:", url_path="teacher")] if shown and path.exists() else []


def navigation_pages() -> list:
    """st.Page objects for every page file that exists, Home first."""
    pages = []
    for i, (name, title, icon) in enumerate(PAGES):
        path = PAGES_DIR / name
        if path.exists():
            pages.append(st.Page(path, title=title, icon=icon, default=i == 0, url_path=path.stem))
    return pages


# ============================================================================================
# Settings carried between pages
#
# Widgets drawn with kept() use Streamlit's own ``persist_state="session"``: their value stays in
# the session while another page is open or the widget is hidden. Settings that several pages
# read live under plain session-state keys:
#
#   "feature_config"  FeatureConfig.to_dict()   dashboard.feature_editor (Spectrogram lab, Train)
#   "augment_config"  AugmentConfig.to_dict()   chosen in the Augmentation lab
#   "clip"            {"root", "clip_id"}       dashboard.clips (Explore, the labs)
# ============================================================================================

AUGMENT_KEY = "augment_config"


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
    """Draw ``widget(label, key=key, persist_state="session", **kwargs)``, starting at ``default``.

    Streamlit keeps the value for the whole session (across pages and while hidden). It is clamped
    into the current ``min_value``/``max_value`` or ``options`` before the widget is drawn, so a
    range that moved never raises, and it is written back every run: a widget whose range or
    options moved is a new widget to Streamlit, which would otherwise start from its default.
    Returns the widget's value.
    """
    ss = st.session_state
    ss[key] = _fit(ss[key] if key in ss else default, kwargs)
    return widget(label, key=key, persist_state="session", **kwargs)


def forget(prefix: str) -> None:
    """Drop the widget values whose keys start with ``prefix`` (they start again from their defaults)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


# ============================================================================================
# Training runs: see dashboard/run_views.py (listing, owner, queue position, labels, cached
# reports) and kwscore/experiments.py (the experiment launcher, also used by the CLI).
# ============================================================================================


# -- pages and fragments -------------------------------------------------------------------------

#: How often a live view (a run's panel on Train, the runs table on Runs, an experiment, the class's
#: runs, a fine-tuning's progress) redraws itself while something trains or waits. Each redraw costs
#: the server a script run and every watching browser a redraw. Measured with one tab on Train while 2
#: runs train: at 1 s the server used 0.31 s of CPU per 20 s above an idle page and the tab 5.9 s; at
#: 2 s, 0.16 s and 4.5 s. A class of 30 watching their runs: a quarter of a server core instead of half.
LIVE_REFRESH = "2s"


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
