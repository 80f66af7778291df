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
import torch  # noqa: E402

from dashboard import ui  # noqa: E402

# Pages do per-clip work (one spectrogram, one augmentation): one thread is fastest on these 2-core
# machines, where a training job keeps the other core busy (with 2 threads every small op waits ~8 ms).
torch.set_num_threads(1)

st.set_page_config(page_title="KWS Studio", page_icon="🎙️", layout="wide")
ui.ensure_embedded_dataset()
ui.sidebar_dataset_picker()
navigation = st.navigation(ui.navigation_pages())
navigation.run()
