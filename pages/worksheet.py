"""Lab worksheet: every Task and Question of the lab, in order, each linked to the page that answers it,
with the live answer for the current settings and your own runs (a teacher can hide the answers)."""

import os

import streamlit as st

from dashboard import clips, code_view, datasets, feature_editor, identity, run_views, ui
from kwscore import classroom, snippets
from kwscore.worksheet import worksheet

PHASES = {
    "1": "Phase 1 — the Mel spectrogram and a 2D CNN",
    "2": "Phase 2 — M5 on the raw waveform",
    "3": "Phase 3 — data augmentation against less data",
}
#: A teacher starts the dashboard with KWS_HIDE_ANSWERS=1: the answers start hidden for everyone.
HIDDEN_BY_DEFAULT = os.environ.get("KWS_HIDE_ANSWERS", "").strip().lower() in ("1", "true", "yes", "on")

st.title("Lab worksheet")
st.caption(
    "“Keyword Spotting with PyTorch”, task by task: each one links to the page (and the widget) that answers it. "
    "The answers follow your current settings and the runs on this computer."
)
if classroom.load_limits().hide_answers and not identity.is_teacher():  # set on the Teacher page
    hide = True
    st.info("Your teacher has hidden the answers for now: work them out on the linked pages.",
            icon=":material/visibility_off:")  # fmt: skip
else:
    hide = ui.kept(st.toggle, "Hide answers", key="ws_hide", default=HIDDEN_BY_DEFAULT,
                   help="For students working the questions out first. A teacher can start the dashboard with "
                   "KWS_HIDE_ANSWERS=1 so that they start hidden, or hide them for students on the Teacher page.")  # fmt: skip

root = datasets.current()
info = datasets.load_info(root)
dataset = None
if info is not None:
    index = clips.index(root)
    clip = clips.current(index) if index is not None else None
    loaded = clips.load(clip) if clip else None
    samples = int(loaded[0].shape[-1]) if loaded else 16000
    dataset = {"clips": info.total(), "words": len(info.words), "speakers": sum(len(v) for v in info.speakers.values()),
               "sample_rate": 16000, "samples": samples}  # fmt: skip

runs = [
    {"run_id": r.run_id, "config": r.config or {}, "n_params": run_views.run_n_params(r) if r.state == "succeeded" else None,
     "test_accuracy": r.test_accuracy if r.state == "succeeded" else None}
    for r in run_views.all_runs() if r.config
]  # fmt: skip
config = feature_editor.feature_config()
phase = None
for item in worksheet(config, runs, dataset):
    if item.number[0] != phase:
        phase = item.number[0]
        st.subheader(PHASES[phase])
    with st.container(border=True):
        icon = ":material/assignment:" if item.kind == "Task" else ":material/help:"
        st.markdown(f"{icon} **{item.number} · {item.kind}.** {item.text}")
        ui.page_link(item.page, item.where, ":material/arrow_forward:")
        if hide:
            st.caption(":material/visibility_off: Answer hidden.")
        elif item.answer:
            st.markdown(f":green[:material/check_circle:] {item.answer}")
        else:
            st.caption("Do it on the linked page: your result appears here.")

code_view.show(lambda: snippets.worksheet_code(config), key="ws_code")
