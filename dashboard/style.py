"""Page style shared by every page: less blank space above titles, labels that wrap instead of being
cut ("Random sam…"), and a projector mode (larger text and plot legends, for 1920×1080 projectors).

``apply()`` runs at the top of every page (from ``dashboard/app.py``)."""

from __future__ import annotations

import streamlit as st

from dashboard import plots

#: How much larger text and figure fonts are in projector mode.
PROJECTOR_SCALE = 1.35

BASE_CSS = """
/* ~140 px of blank space above every title by default: keep a little */
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
/* labels, buttons, tabs and metric labels wrap rather than end in "…" */
[data-testid="stWidgetLabel"] p, [data-testid="stWidgetLabel"] label,
button p, [data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div,
[data-baseweb="tab"] p, [data-testid="stPageLink"] p, [data-testid="stExpander"] summary p,
[data-testid="stSidebarNavLink"] span {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: break-word;
}
[data-testid="stMetricLabel"] { overflow: visible !important; }
[data-testid="stMetricValue"] > div { white-space: normal !important; overflow: visible !important; }
button[kind] { height: auto; min-height: 2.5rem; }
/* the selected value of a select box wraps too */
[data-baseweb="select"] [data-testid="stSelectboxVirtualDropdown"], [data-baseweb="select"] div[value] {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}
"""

PROJECTOR_CSS = f"""
html {{ font-size: {round(16 * PROJECTOR_SCALE)}px; }}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{ color: #1f2937 !important; font-size: 1rem !important; }}
[data-testid="stSidebar"] {{ width: 380px !important; min-width: 380px !important; max-width: 380px !important; }}
"""


def apply() -> None:
    """The shared CSS, and the sidebar's projector toggle (it also scales every figure's fonts)."""
    with st.sidebar:
        projector = st.toggle(
            "Projector mode", key="projector",
            help="Larger text, captions and plot legends, readable on a 1920×1080 projector across a classroom.",
        )  # fmt: skip
    plots.FONT_SCALE.set(PROJECTOR_SCALE if projector else 1.0)
    st.html(f"<style>{BASE_CSS}{PROJECTOR_CSS if projector else ''}</style>")


def md_escape(text: str) -> str:
    """Plain text for st.markdown / st.error: ``<speaker>_nohash_<n>.wav`` keeps its underscores."""
    return "".join("\\" + ch if ch in "\\`*_[]#~$" else ch for ch in str(text))
