"""KWS Studio: the Streamlit entry point.

Run from the repository root (so that .streamlit/config.toml applies):

    streamlit run dashboard/app.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # make `kwscore` and `dashboard` importable without installing
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="KWS Studio", page_icon="🎙️", layout="wide")
ui.ensure_embedded_dataset()
ui.sidebar_dataset_picker()
navigation = st.navigation(ui.navigation_pages())
navigation.run()
