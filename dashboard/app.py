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

from dashboard import datasets, identity, style, ui  # noqa: E402
from kwscore import pretrained  # noqa: E402
from kwscore.errors import KwsError  # noqa: E402

# Pages do per-clip work (one spectrogram, one augmentation): one thread is fastest on these 2-core
# machines, where a training job keeps the other core busy (with 2 threads every small op waits ~8 ms).
torch.set_num_threads(1)

st.set_page_config(page_title="KWS Studio", page_icon="🎙️", layout="wide")
identity.announce_teacher_key()  # on the server's console, once per server process
identity.sync()  # ?key= (then gone from the address) and ?who=, kept on every page
datasets.ensure_embedded()
if not st.session_state.get("_ready_model_ok"):  # the shipped ready model joins the runs once: Try it works at once
    try:
        pretrained.install()
    except KwsError as exc:
        st.warning(str(exc), icon=":material/warning:")
    st.session_state["_ready_model_ok"] = True
identity.sidebar()  # the student's name (asked once) and the teacher's sign-in
datasets.sidebar_picker()
style.apply()  # shared CSS (no cut labels, less space above titles) and the projector toggle
navigation = st.navigation([*ui.navigation_pages(), st.Page(ui.PAGES_DIR / "live.py", title="Live", icon=":material/hearing:", url_path="live"),
                            *ui.teacher_pages(identity.is_teacher() or identity.requested_page() == identity.TEACHER_PAGE)])
navigation.run()
