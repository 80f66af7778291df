"""The teacher's panel: the whole class's runs (owner, state, place in the queue, when it starts),
cancel / delete any of them, clear the class's runs, and the class limits (:mod:`kwscore.classroom`).

Only drawn for a session that gave the teacher key (:mod:`dashboard.identity`); every action also
passes ``teacher=True`` to :mod:`kwscore.jobs`, which checks it again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import datasets, identity, run_views, ui
from kwscore import classroom, jobs
from kwscore.errors import KwsError
from kwscore.models import MODEL_INFO
from kwscore.runfiles import ACTIVE_STATES

ss = st.session_state
SELECTED = "teacher_selected"  #: run ids ticked in the class table
MESSAGE = "teacher_message"  #: (kind, text) shown once
CONFIRM = "teacher_confirm"  #: "delete" / "clear": the dialog that is open


def class_rows(infos: list, queue: dict) -> pd.DataFrame:
    """One row per run: owner, state (with the place in the queue), when it starts, what it is."""
    rows = []
    for info in infos:
        entry = queue.get(info.run_id)
        config = info.config or {}
        rows.append({
            "owner": run_views.owner_text(info),
            "status": run_views.state_text(info, queue),
            "queue": entry.position if entry else None,
            "starts in": (run_views.fmt_duration(entry.eta_s) if entry.eta_s else "now") if entry and entry.eta_s is not None
            else "",
            "run": run_views.run_label(info),
            "epochs": f"{info.epoch or 0}/{info.epochs or '?'}",
            "test acc.": 100 * info.test_accuracy if info.test_accuracy is not None else None,
            "launched": datetime.fromtimestamp(info.created) if info.created else None,
            "model": config.get("model") or info.model or "?",
            "run id": info.run_id,
        })  # fmt: skip
    return pd.DataFrame(rows)


COLUMNS = {
    "owner": st.column_config.TextColumn("Owner", width="small"),
    "status": st.column_config.TextColumn("Status"),
    "queue": st.column_config.NumberColumn("Queue", help="Place in the queue: 1 starts next", width="small"),
    "starts in": st.column_config.TextColumn("Starts in", help="Estimated from measured epoch times", width="small"),
    "run": st.column_config.TextColumn("Run"),
    "epochs": st.column_config.TextColumn("Epochs", width="small"),
    "test acc.": st.column_config.NumberColumn("Test", format="%.1f %%", width="small"),
    "launched": st.column_config.DatetimeColumn("Launched", format="HH:mm:ss"),
    "run id": st.column_config.TextColumn("Run id"),
}


def sort_for_teacher(infos: list, queue: dict) -> list:
    """Training first, then the queue in the order it starts, then the finished ones, newest first."""

    def key(info):
        if info.state == "running":
            return (0, 0, -(info.started_at or info.created or 0.0))
        if info.state == "queued":
            entry = queue.get(info.run_id)
            return (1, entry.position if entry else 0, 0.0)
        return (2, 0, -(info.created or 0.0))

    return sorted(infos, key=key)


def _act(what: str, run_ids: list[str]) -> None:
    """Cancel or delete the runs as the teacher; one message with what happened."""
    done, problems = 0, []
    for run_id in run_ids:
        try:
            if what == "cancel":
                jobs.cancel(run_id, teacher=True)
            else:
                jobs.delete(run_id, teacher=True)
            done += 1
        except (KwsError, OSError) as exc:
            problems.append(str(exc))
    verb = "Cancelled" if what == "cancel" else "Deleted"
    text = f"{verb} {done} run(s)." + (f" Not done: {' '.join(problems)}" if problems else "")
    ss[MESSAGE] = ("warning" if problems else "success", text)
    ss[SELECTED] = []


def _close() -> None:
    ss.pop(CONFIRM, None)


@st.dialog("Delete these runs?", on_dismiss=_close)
def confirm_delete(run_ids: list[str]) -> None:
    st.markdown(f"**{len(run_ids)} run(s)** and everything in their folders — checkpoints, metrics, report, log — "
                "will be removed for good. Runs still training are cancelled first; delete them once they stopped.")  # fmt: skip
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary", icon=":material/delete:", width="stretch", key="teacher_delete_yes"):
        _act("delete", run_ids)
        _close()
        st.rerun()
    if c2.button("Keep them", width="stretch", key="teacher_delete_no"):
        _close()
        st.rerun()


@st.dialog("Clear the class's runs?", on_dismiss=_close)
def confirm_clear(infos: list) -> None:
    students = sorted({i.owner for i in infos if i.owner})
    runs = [i for i in infos if i.owner]
    if not runs:
        st.info("No student has a run: nothing to clear.")
        if st.button("Close", key="teacher_clear_close"):
            _close()
            st.rerun()
        return
    st.markdown(f"This cancels and deletes **all {len(runs)} runs of {len(students)} student(s)** "
                f"({', '.join(students[:8])}{'…' if len(students) > 8 else ''}). Runs without an owner (yours, the "
                "command line's, the ready model) stay. It cannot be undone.")  # fmt: skip
    sure = st.checkbox("Yes, remove every student's run", key="teacher_clear_sure")
    c1, c2 = st.columns(2)
    if c1.button("Clear the class's runs", type="primary", disabled=not sure, icon=":material/delete_sweep:",
                 width="stretch", key="teacher_clear_yes"):  # fmt: skip
        with st.spinner("Cancelling the running runs, then deleting…"):
            try:
                n = jobs.clear_runs()
                ss[MESSAGE] = ("success", f"Cleared {n} run(s) of the class.")
            except (KwsError, OSError) as exc:
                ss[MESSAGE] = ("error", f"Could not clear every run: {exc}")
        _close()
        st.rerun()
    if c2.button("Keep them", width="stretch", key="teacher_clear_no"):
        _close()
        st.rerun()


def class_runs(polling: bool) -> None:
    """The class's runs in one table (redrawn every 2 s while any is queued or training) and the
    actions on the ticked ones."""
    alone = ui.fragment_rerun("teacher", "runs")
    infos = run_views.all_runs()
    queue = run_views.queue_positions(infos)
    infos = sort_for_teacher(infos, queue)
    active = [i for i in infos if i.state in ACTIVE_STATES]
    owners = sorted({i.owner for i in infos if i.owner})
    m = st.columns(4)
    m[0].metric("Students with runs", len(owners))
    m[1].metric("Training now", sum(i.state == "running" for i in infos))
    m[2].metric("Waiting", sum(i.state == "queued" for i in infos))
    entries = list(queue.values())  # in the order they start
    end = entries[-1].eta_s + (entries[-1].run_s or 0.0) if entries and entries[-1].eta_s is not None else None
    m[3].metric("Queue done in", run_views.fmt_duration(end) if end is not None else "–",
                help="When the last waiting run should finish, from measured epoch times")  # fmt: skip
    if not infos:
        st.info("No runs yet. Students launch them on the Train page (or as an experiment on the Runs page).")
        return
    ids = [i.run_id for i in infos]
    key = "teacher_table_" + hashlib.sha1("|".join(ids).encode()).hexdigest()[:10]  # new runs: a new table
    remembered = [r for r in ss.get(SELECTED, []) if r in ids]
    event = st.dataframe(
        class_rows(infos, queue), key=key, on_select="rerun", selection_mode="multi-row", hide_index=True,
        column_config=COLUMNS, column_order=list(COLUMNS), height=min(38 + 35 * len(infos), 460), placeholder="–",
        selection_default={"selection": {"rows": [ids.index(r) for r in remembered]}},
    )  # fmt: skip
    chosen = [ids[i] for i in event.selection.rows if i < len(ids)]
    ss[SELECTED] = chosen
    by_id = {i.run_id: i for i in infos}
    c1, c2, c3, _ = st.columns([1, 1, 1.3, 1.2])
    to_cancel = [r for r in chosen if by_id[r].state in ACTIVE_STATES]
    c1.button(f"Cancel {len(to_cancel)} run(s)" if to_cancel else "Cancel", icon=":material/stop_circle:",
              disabled=not to_cancel, on_click=_act, args=("cancel", to_cancel), width="stretch", key="teacher_cancel",
              help="Tick runs in the table first: queued ones never start, training ones stop at their next step.")  # fmt: skip
    if c2.button(f"Delete {len(chosen)} run(s)…" if chosen else "Delete…", icon=":material/delete:",
                 disabled=not chosen, width="stretch", key="teacher_delete"):  # fmt: skip
        ss[CONFIRM] = "delete"
    if c3.button("Clear the class's runs…", icon=":material/delete_sweep:", width="stretch", key="teacher_clear"):
        ss[CONFIRM] = "clear"
    if ss.get(CONFIRM) == "delete" and chosen:
        confirm_delete(chosen)
    elif ss.get(CONFIRM) == "clear":
        confirm_clear(infos)
    st.caption("Tick rows to cancel or delete them. The queue is fair: each turn goes to the student with the "
               "fewest runs training, so one student's experiment never holds the others back.")  # fmt: skip
    if alone and polling and not active:
        st.rerun()  # the last run finished: stop polling


# -- the limits ---------------------------------------------------------------------------------------


def dataset_names() -> list[str]:
    """Dataset folder names the limits can allow (the last part of each dataset's path)."""
    return sorted({e.root.name for e in datasets.entries()})


def limits_form() -> None:
    """The class limits, saved to ``<runs folder>/class.json`` (every worker and page reads them)."""
    current = classroom.load_limits()
    models = list(MODEL_INFO)
    names = sorted(set(dataset_names()) | set(current.datasets or ()))
    with st.form("teacher_limits", border=True):
        c1, c2, c3, c4 = st.columns(4)
        queued = c1.number_input("Runs at once per student", 1, 100, current.max_queued_per_student, key="tl_queued",
                                 help="Queued plus training, per student. A whole experiment (e.g. 8 runs) counts as one: "
                                      "the fair queue keeps it from blocking the others.")  # fmt: skip
        epochs = c2.number_input("Max epochs per run (0: no limit)", 0, 10_000, current.max_epochs or 0, key="tl_epochs")
        minutes = c3.number_input("Max minutes per run (0: no limit)", 0.0, 1440.0, float(current.max_minutes or 0),
                                  step=1.0, format="%g", key="tl_minutes",
                                  help="A student's run without a time limit gets this one; longer ones are refused.")  # fmt: skip
        slots = c4.number_input("Runs training at once (0: cores − 1)", 0, 64, current.concurrency or 0, key="tl_slots",
                                help=f"Default here: {classroom.default_concurrency() if not current.concurrency else '…'}. "
                                "Each run trains at a lower CPU priority than the web pages.")  # fmt: skip
        allowed_models = st.multiselect("Models students may use", models, default=list(current.models or models),
                                        key="tl_models")  # fmt: skip
        allowed_data = st.multiselect("Datasets students may use (folder names)", names,
                                      default=list(current.datasets or names), key="tl_data")  # fmt: skip
        hide = st.toggle("Hide the worksheet's answers from students", current.hide_answers, key="tl_hide")
        saved = st.form_submit_button("Save the class limits", type="primary", icon=":material/save:", key="tl_save")
    if saved:
        limits = classroom.ClassLimits(
            max_queued_per_student=int(queued), max_epochs=int(epochs) or None, max_minutes=float(minutes) or None,
            models=None if set(allowed_models) == set(models) else tuple(allowed_models),
            datasets=None if set(allowed_data) == set(names) else tuple(allowed_data),
            concurrency=int(slots) or None, hide_answers=bool(hide),
        )  # fmt: skip
        try:
            path = classroom.save_limits(limits)
            st.success(f"Saved in {path}: students' new runs are checked against these limits.")
        except (KwsError, OSError) as exc:
            st.error(f"Could not save the limits: {exc}")


def teacher_only() -> None:
    """What a student who opens the Teacher page's address sees."""
    st.info("This page is for the teacher. If that is you, open **Teacher** in the sidebar and type the teacher "
            "key (the server prints it when it starts).", icon=":material/lock:")  # fmt: skip
    ui.page_link("runs.py", "Everyone's runs are on the Runs page", ":material/monitoring:")


def show() -> None:
    """The whole panel for the teacher; the "teacher only" note for anyone else."""
    if not identity.is_teacher():
        teacher_only()
        return
    kind, text = ss.pop(MESSAGE, (None, None))
    if kind:
        getattr(st, kind)(text)
    polling = any(i.state in ACTIVE_STATES for i in run_views.all_runs())
    st.subheader("The class's runs")
    st.fragment(class_runs, run_every=ui.LIVE_REFRESH if polling else None)(polling)
    st.subheader("Class limits")
    st.caption("Checked whenever a student launches a run (Train, experiments, fine-tuning). You are never limited.")
    limits_form()
