"""Runs: every training run in one table; overlay their curves; study one run's mistakes; run an
experiment that asks whether augmentation can make up for less training data.

Everything here reads run files through :mod:`kwscore.jobs` (and the helpers in ``dashboard.ui``);
tables and curves refresh every two seconds while a run is queued or training.
"""

import hashlib
import math
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import (
    clips,
    code_view,
    cross_eval,
    datasets,
    feature_editor,
    identity,
    plots,
    run_views,
    streaming_view,
    ui,
)
from kwscore import choices, experiments, jobs, runlabels, snippets
from kwscore.errors import KwsError
from kwscore.evaluation import no_keyword_text
from kwscore.labels import cut_at_level, display_label
from kwscore.models import representation
from kwscore.notebook import notebook_json, run_notebook
from kwscore.recipes import RunConfig, default_config
from kwscore.runfiles import ACTIVE_STATES

ss = st.session_state
#: What the picture beside a mistake shows, by what the model reads (kwscore.models.representation).
PICTURE = {
    "mel": "The picture is the model's own input: the clip's dB Mel spectrogram, normalised to zero mean and unit "
    "variance (σ).",
    "embedding": "The pretrained embedding makes its own log-Mel frames (32 bands up to 3.8 kHz) from the 16-kHz "
    "samples; the picture is the clip's linear spectrogram.",
    "waveform": "A waveform model has no spectrogram: it reads the resampled samples. The picture shows what is left "
    "of the sound at its rate (nothing above half of it).",
}
SELECTED = "runs_selected"  #: run ids ticked in the table (compared)
DETAIL = "runs_detail"  #: the run studied in detail
CONFIRM = "runs_confirm_delete"  #: the run a delete dialog is open for
MESSAGE = "runs_message"
EXPERIMENT = "runs_experiment"
PLAN = "runs_exp_plan"  #: the experiment planned in the form, waiting for "Queue these runs"
PER_PAGE = 4
#: The views of one run (tabs, key VIEW): only the open one is built.
VIEWS = ["Confusion matrix and accuracy per word", "Misclassified test clips"]
VIEW = "runs_view"


def percent(x) -> float | None:
    return None if x is None or x < 0 else 100 * float(x)


def table_rows(infos: list, queue: dict) -> pd.DataFrame:
    rows = []
    for info in infos:
        config = info.config or {}
        words = runlabels.settings(config) if config else {}
        rows.append({
            "name": str(config.get("name") or ""),
            "owner": run_views.owner_text(info) + (" (you)" if identity.name() and info.owner == identity.name() else ""),
            "status": run_views.state_text(info, queue),
            "started": datetime.fromtimestamp(info.started_at or info.created) if (info.started_at or info.created)
            else None,
            "model": info.model or "?",
            "parameters": run_views.run_n_params(info),
            "data": f"{run_views.data_text(info.config)} · {run_views.commands_text(info.commands)}" if info.data else "?",
            "rate": words.get("rate", "?"),
            "front end": words.get("front end", "?"),
            "lr": config.get("lr") if config else None,
            "augmentation": run_views.augment_name(config.get("augment", "none")) if config else "?",
            "fraction": run_views.fraction_text(config) if config else "?",
            "epochs": f"{info.epoch or 0}/{info.epochs or '?'}",
            "best val. acc.": percent(info.best_val_accuracy),
            "test acc.": percent(info.test_accuracy),
            "duration": run_views.fmt_duration(info.duration_s),
            "run id": info.run_id,
            "notes": str(config.get("notes") or ""),
            "problem": info.error or "",
        })  # fmt: skip
    return pd.DataFrame(rows)


COLUMNS = {  # in the order shown
    "name": st.column_config.TextColumn("Name", help="Give a run a name on the Train page, or below"),
    "owner": st.column_config.TextColumn("Owner", help="Who launched it (the name given in the sidebar)", width="small"),
    "status": st.column_config.TextColumn("Status", help="A waiting run: its place in the queue (fair: one run of "
                                          "each student in turn) and when it should start"),
    "model": st.column_config.TextColumn("Model", width="small"),
    "rate": st.column_config.TextColumn("Rate", help="Sample rate the model listens at", width="small"),
    "front end": st.column_config.TextColumn("Front end", help="Mel bands · n_fft/window/hop, or raw waveform"),
    "parameters": st.column_config.NumberColumn("Params", format="compact", width="small"),
    "data": st.column_config.TextColumn("Data"),
    "lr": st.column_config.NumberColumn("lr", format="%g", help="Learning rate", width="small"),
    "augmentation": st.column_config.TextColumn("Augment."),
    "fraction": st.column_config.TextColumn("Train data", help="Share of the training split used", width="small"),
    "epochs": st.column_config.TextColumn("Epochs", width="small"),
    "best val. acc.": st.column_config.NumberColumn("Best val.", format="%.1f %%", help="Best validation accuracy",
                                                    width="small"),
    "test acc.": st.column_config.NumberColumn("Test", format="%.1f %%", help="Test accuracy of the best epoch",
                                               width="small"),
    "duration": st.column_config.TextColumn("Duration", width="small"),
    "started": st.column_config.DatetimeColumn("Started", format="MMM D, HH:mm"),
    "run id": st.column_config.TextColumn("Run id"),
    "notes": st.column_config.TextColumn("Notes"),
    "problem": st.column_config.TextColumn("Problem"),
}  # fmt: skip


def runs_table(polling: bool) -> None:
    """The table of every run (tick rows to compare them) and the overlaid curves of the ticked ones."""
    alone = ui.fragment_rerun("runs", "table")
    infos = run_views.mine_first(run_views.all_runs(), identity.name())
    queue = run_views.queue_positions(infos)
    if not infos:
        st.info("No runs yet. Launch one on the Train page, or queue an experiment below.")
        ui.page_link("train.py", "Go to the Train page", ":material/model_training:")
        return
    ids = [i.run_id for i in infos]
    if SELECTED not in ss:  # first visit: the newest finished run of each model (e.g. CNN vs M5)
        newest = {}
        for i in infos:
            if i.state == "succeeded":
                newest.setdefault(i.model, i.run_id)
        ss[SELECTED] = list(newest.values())[:3]
    remembered = [r for r in ss[SELECTED] if r in ids]
    key = "runs_table_" + hashlib.sha1("|".join(ids).encode()).hexdigest()[:10]  # new runs: a new table
    event = st.dataframe(
        table_rows(infos, queue), key=key, on_select="rerun", selection_mode="multi-row", hide_index=True,
        column_config=COLUMNS, column_order=list(COLUMNS), selection_default={"selection": {"rows": [ids.index(r) for r in remembered]}},
        height=min(38 + 35 * len(infos), 400), placeholder="–",
    )  # fmt: skip
    selected = [ids[i] for i in event.selection.rows if i < len(ids)]
    added = [r for r in selected if r not in ss[SELECTED]]
    ss[SELECTED] = selected
    if added:  # a row just ticked is also the one studied below
        ss[DETAIL] = added[-1]
    bad = [i for i in infos if i.state == "unreadable"]
    if bad:
        st.caption(f":material/warning: {len(bad)} run folder(s) could not be read; they are listed with the problem. "
                   "Delete them below, or fix their files.")  # fmt: skip

    st.markdown("#### Compare runs")
    chosen = [i for i in infos if i.run_id in selected]
    if not chosen:
        st.caption("Tick runs in the table (the box at the left of each row) to overlay their curves here: "
                   "e.g. the CNN on Mel spectrograms against M5 on raw waveforms.")  # fmt: skip
    else:
        curves = []
        for n, (info, label) in enumerate(zip(chosen, run_views.compare_labels(chosen), strict=True)):
            iterations, epochs = run_views.run_metrics(info)
            curves.append({"label": label, "color": plots.run_color(n), "iterations": iterations,
                           "epochs": epochs})  # fmt: skip
        a, b = st.columns(2)
        a.plotly_chart(plots.accuracy_curves(curves, height=340), key="runs_cmp_acc")
        b.plotly_chart(plots.loss_curves(curves, height=340), key="runs_cmp_loss")
        st.caption("Same colour, same run; the labels name what differs between the runs ticked (or their names). "
                   "A star marks each run's best epoch: the weights tested at the end. "
                   "Loss is the mean over the recent batches (augmented clips, so it can sit above the validation loss).")  # fmt: skip
    if alone and (added or (polling and not any(i.state in ACTIVE_STATES for i in infos))):
        st.rerun()  # a new run to study, or every run finished: redraw the page below


# ------------------------------------------------------------------------------------------------
# One run
# ------------------------------------------------------------------------------------------------


def clear_confirm() -> None:
    ss.pop(CONFIRM, None)


@st.dialog("Delete this run?", on_dismiss=clear_confirm)
def confirm_delete(run_id: str) -> None:
    info = run_views.run_info_safe(run_views.runs_root() / run_id)
    if info.state == "running":
        st.warning(f"Run `{run_id}` is still training, so it cannot be deleted now. Cancel it first (it stops at "
                   "its next iteration), then delete it.")  # fmt: skip
        c1, c2 = st.columns(2)
        if c1.button("Cancel the run", icon=":material/stop_circle:", width="stretch"):
            try:
                identity.cancel(info)
            except KwsError as exc:
                ss[MESSAGE] = ("error", str(exc))
            clear_confirm()
            st.rerun()
        if c2.button("Close", width="stretch"):
            clear_confirm()
            st.rerun()
        return
    st.markdown(f"Run `{run_id}` ({run_views.run_label(info)}) and everything in its folder — checkpoints, metrics, "
                "report, log — will be removed for good.")  # fmt: skip
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary", icon=":material/delete:", width="stretch", key="runs_delete_yes"):
        try:
            identity.delete(info)
            ss[MESSAGE] = ("success", f"Run {run_id} was deleted.")
            ss.pop(DETAIL, None)
        except (KwsError, OSError) as exc:
            ss[MESSAGE] = ("error", f"Could not delete {run_id}: {exc}")
        clear_confirm()
        st.rerun()
    if c2.button("Keep it", width="stretch", key="runs_delete_no"):
        clear_confirm()
        st.rerun()


def mistakes(info, report: dict) -> None:
    """The misclassified test clips: listen, see what the model saw, read its top-3 guesses."""
    wrong = report.get("misclassified") or []
    st.markdown(f"#### Misclassified test clips: {len(wrong)} of {report.get('n_total', '?')}")
    if not wrong:
        st.success("Every test clip was classified correctly.")
        return
    labels = report["labels"]
    f1, f2, f3 = st.columns([1, 1, 1.4], vertical_alignment="bottom")
    true_counts = {w: sum(m["label"] == w for m in wrong) for w in labels}
    truth = f1.selectbox("True word", ["any"] + [w for w in labels if true_counts[w]], key="runs_mis_true",
                         format_func=lambda w: w if w == "any" else f"{w} ({true_counts[w]})")  # fmt: skip
    guessed = f2.selectbox("Heard as", ["any"] + labels, key="runs_mis_pred")
    shown = [m for m in wrong if (truth == "any" or m["label"] == truth)
             and (guessed == "any" or (m.get("predicted") or [{}])[0].get("label") == guessed)]  # fmt: skip
    if not shown:
        st.info("No mistake matches these filters.")
        return
    pages = math.ceil(len(shown) / PER_PAGE)
    page = f3.select_slider("Page", options=list(range(1, pages + 1)), key="runs_mis_page") if pages > 1 else 1
    page = min(page, pages)
    config = info.config or {}
    cols = st.columns(2)
    for k, m in enumerate(shown[(page - 1) * PER_PAGE : page * PER_PAGE]):
        top = (m.get("predicted") or [{"label": "?", "probability": 0}])[0]
        with cols[k % 2].container(border=True):
            st.markdown(f"“**{m['label']}**” heard as “**{top['label']}**” ({100 * float(top['probability']):.0f} %) "
                        f"· {m.get('outcome', 'mistake')} · :gray[{m.get('clip_id', '')}]")  # fmt: skip
            left, right = st.columns([1, 1.5], vertical_alignment="center")
            wave = run_views.load_audio_file(m.get("path", ""))
            if wave is not None and "start_s" in m:  # a _silence_ clip: its second of the noise recording
                wave = cut_at_level(wave, round(16000 * m["start_s"]), m["level_dbfs"])
            with left:
                if wave is not None:
                    clips.play(wave)
                st.plotly_chart(plots.top_predictions(m.get("predicted") or [], m["label"]), key=f"runs_mis_top_{k}")
            with right:
                if wave is None:
                    st.warning("This clip cannot be read any more (was the dataset moved?).")
                    continue
                try:
                    spec, fc, kind = run_views.model_input_view(config, wave)
                except (KwsError, TypeError, ValueError) as exc:
                    st.caption(f"Cannot rebuild this run's front end: {exc}")
                    continue
                if kind == "mel":
                    fig = plots.mel_spectrogram(spec, fc, title="What the CNN sees (normalised)", height=200,
                                                compact=True, colorbar=False, colorbar_title="σ")  # fmt: skip
                else:
                    fig = plots.linear_spectrogram(spec, fc, title=f"What {info.model} hears at {fc.sample_rate} Hz",
                                                   height=200)  # fmt: skip
                    fig.update_traces(showscale=False)
                st.plotly_chart(fig, key=f"runs_mis_spec_{k}")
    st.caption("Top-3 guesses with their softmax probabilities: green is the true word. "
               + PICTURE[representation(config.get("model"))])


def save_annotation(path, name_key: str, notes_key: str) -> None:
    try:
        runlabels.annotate(path, ss[name_key], ss[notes_key])
        ss[MESSAGE] = ("success", "Name and notes saved.")
    except (KwsError, OSError) as exc:
        ss[MESSAGE] = ("error", f"Could not save the name and notes: {exc}")


def annotate(info, config: dict) -> None:
    """The run's name and notes, editable (stored in its config.json)."""
    label = f"Name and notes: {config.get('name') or 'none yet'}"
    with st.expander(label, icon=":material/edit_note:", key=f"runs_note_panel_{info.run_id}"):
        with st.form(f"runs_note_form_{info.run_id}", border=False):
            name_key, notes_key = f"runs_name_{info.run_id}", f"runs_notes_{info.run_id}"
            st.text_input("Name", value=str(config.get("name") or ""), key=name_key, max_chars=80,
                          placeholder="e.g. m5 at 4 kHz", help="Shown in the table and the legends; the CLI accepts it too.")  # fmt: skip
            st.text_area("Notes", value=str(config.get("notes") or ""), key=notes_key, height=80,
                         placeholder="What did you change, what did you expect, what happened?")  # fmt: skip
            st.form_submit_button("Save name and notes", icon=":material/save:", on_click=save_annotation,
                                  args=(info.path, name_key, notes_key))  # fmt: skip
    if config.get("notes"):
        st.caption(f":material/edit_note: {config['notes']}")


def one_run(infos: list) -> None:
    st.subheader("One run in detail")
    ids = [i.run_id for i in infos]
    by_id = {i.run_id: i for i in infos}
    if ss.get(DETAIL) not in ids:
        finished = [i.run_id for i in infos if i.state == "succeeded"]
        ticked = [r for r in ss.get(SELECTED, []) if r in ids]
        ss[DETAIL] = (ticked or finished or ids)[0]
    run_id = st.selectbox("Run", ids, key=DETAIL, format_func=lambda r: f"{run_views.run_label(by_id[r])} · "
                          f"{run_views.owner_text(by_id[r])} · {r}",
                          help="Its name, or model @ sample rate · share of the training data · augmentation · run id.")  # fmt: skip
    info = by_id[run_id]
    config = info.config or {}
    st.markdown(f":material/person: {run_views.owner_text(info)} · "
                f"{run_views.state_badge(info, run_views.queue_positions(infos))}")  # fmt: skip
    if (info.error or "").startswith("damaged:") and info.state != "unreadable" and config:
        st.warning(f"Some of this run's files are damaged; what could be read is shown. {info.error}")
    if info.state == "unreadable" or not config:
        st.error(f"This run cannot be read: {info.error or 'no config.json'}. Its folder is {info.path}.")
    else:
        m = st.columns(6)
        m[0].metric("Test accuracy", f"{percent(info.test_accuracy):.1f} %" if info.test_accuracy is not None else "–")
        m[1].metric("Best validation", f"{percent(info.best_val_accuracy):.1f} %"
                    if percent(info.best_val_accuracy) is not None else "–")  # fmt: skip
        params = run_views.run_n_params(info)
        m[2].metric("Parameters", f"{params:,}" if params else "–")
        m[3].metric("Model", info.model or "?")
        m[4].metric("Training data", run_views.fraction_text(config), f"augmentation {run_views.augment_name(config.get('augment'))}",
                    delta_color="off", delta_arrow="off")  # fmt: skip
        m[5].metric("Duration", run_views.fmt_duration(info.duration_s, compact=True))
        annotate(info, config)
        if info.state == "failed":
            st.error(f"This run failed: {info.error or 'see its log below'}")
        report = run_views.run_report(info)
        if report is None:
            if info.state in ACTIVE_STATES:
                st.info("This run is still training: its confusion matrix and mistakes appear when it finishes.")
                ui.page_link("train.py", "Watch it on the Train page", ":material/model_training:")
            elif info.state == "succeeded":
                st.warning("This run has no readable report.json: its evaluation cannot be shown.")
        else:
            # Only the open view is built: the mistakes' players and pictures (about ten figures) wait
            # for their tab, so a visit to Runs stays light for a class's browsers (issue #12).
            views = st.tabs(VIEWS, key=VIEW, on_change="rerun")
            try:
                if views[0].open:
                    with views[0]:
                        a, b = st.columns([1.1, 1], gap="medium")
                        names = [display_label(label) for label in report["labels"]]  # _unknown_ -> "another word"
                        a.plotly_chart(plots.confusion_matrix(report["confusion"], names), key="runs_confusion")
                        b.plotly_chart(
                            plots.per_class_accuracy({display_label(k): v for k, v in report["per_class_accuracy"].items()},
                                                     {display_label(k): v for k, v in (report.get("per_class_total") or {}).items()},
                                                     report.get("accuracy"), height=460),
                            key="runs_per_class",
                        )  # fmt: skip
                        if report.get("no_keyword"):  # a model with _unknown_/_silence_: "no keyword" is a result
                            st.caption(no_keyword_text(report["no_keyword"]))
                if views[1].open:
                    with views[1]:
                        mistakes(info, report)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                st.error(f"This run's report.json is damaged ({type(exc).__name__}: {exc}).")
    if info.state == "succeeded":
        with st.expander("Test on another dataset: real voices too?", icon=":material/fact_check:"):
            cross_eval.show(info)
        with st.expander("Streaming: false alarms per hour, DET curve", icon=":material/graphic_eq:"):
            streaming_view.show(info)
    # Built when opened (each opening reruns the page): hidden, they would still be sent and drawn.
    with st.expander("Log", key="runs_log", on_change="rerun") as box:
        if box.open:
            text = jobs.read_log(info.path, max_chars=30_000)
            st.code(text or "(no log yet)", language="text", height=320)
    with st.expander("Configuration", key="runs_config", on_change="rerun") as box:
        if box.open:
            st.json(config or {}, expanded=1)
    if config:
        code_view.show(lambda: snippets.runs_code(info.path, config), key="runs_code")
        try:
            notebook = notebook_json(run_notebook(info.path))
        except (KwsError, OSError) as exc:
            st.caption(f"This run cannot be written as a notebook: {exc}")
        else:
            st.download_button("Download as a Jupyter notebook", notebook, file_name=f"{run_id}.ipynb",
                               mime="application/x-ipynb+json", icon=":material/download:", key="runs_notebook",
                               help="The run reproduced step by step in the lab's order: dataset, a sample, the "
                               "transform, collate, the model, train/test, the loss curve, the confusion matrix. "
                               f"Same as `kwscore notebook {run_views.short_id(run_id)} -o run.ipynb`.")  # fmt: skip
    if identity.can_manage(info):
        if st.button("Delete this run…", icon=":material/delete:", key="runs_delete"):
            ss[CONFIRM] = run_id
        if ss.get(CONFIRM) == run_id:
            confirm_delete(run_id)
    elif info.owner:
        st.caption(f":material/lock: This is {run_views.owner_text(info)}'s run: only they or the teacher can "
                   "cancel or delete it.")  # fmt: skip
    else:  # the ready model, or a run launched without a name
        st.caption(f":material/lock: This run is no student's ({run_views.owner_text(info)}): only the teacher can "
                   "cancel or delete it.")  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------------------------


def experiment_launcher() -> None:
    root = datasets.current()
    lab = ui.augment_config() if ss.get(ui.AUGMENT_KEY) else None
    recipes = choices.augment_choices(lab_available=lab is not None)

    def recipe_name(r: str) -> str:
        return choices.augment_choice_label(r, lab.name if lab else None)

    with st.form("runs_exp_form", border=True):
        c1, c2, c3, c4, c5 = st.columns([1.1, 1.9, 0.7, 1.4, 0.6])
        model = c1.selectbox("Model", list(choices.RECIPE_KEYS), key="exp_model", format_func=choices.RECIPE_SHORT.get,
                             help="\n".join(f"- **{choices.RECIPE_SHORT[k]}**: {choices.recipe_label(k)}"
                                            for k in choices.RECIPE_KEYS))  # fmt: skip
        fractions = c2.multiselect("Training fractions", experiments.FRACTIONS, default=experiments.DEFAULT_FRACTIONS,
                                   format_func=lambda f: f"{100 * f:g} %", key="exp_fractions")  # fmt: skip
        recipe_epochs = default_config(model, data=str(root) if root else None).epochs  # more for recorded speech
        epochs = c3.number_input("Epochs", 1, 500, value=int(recipe_epochs), key="exp_epochs",
                                 help="The model's tuned recipe trains for this many; fewer give a quicker answer.")  # fmt: skip
        recipe = c4.selectbox("Augmentation when on", recipes, key="exp_recipe",
                              format_func=recipe_name)  # fmt: skip
        seed = c5.number_input("Seed", 0, 2**31 - 1, 0, key="exp_seed")
        by = st.radio("Smaller fractions keep", ["speaker", "stratified"], horizontal=True, key="exp_by",
                      format_func=lambda b: "whole speakers (fewer voices)" if b == "speaker" else "some clips of every word")  # fmt: skip
        submitted = st.form_submit_button("Plan the experiment…", type="primary", icon=":material/science:",
                                          key="exp_submit")  # fmt: skip
    if submitted:  # (Enter in a field submits too: nothing is queued before the plan is confirmed)
        ss.pop(PLAN, None)
        if not fractions:
            st.error("Choose at least one training fraction.")
            return
        if root is None:
            st.error("Choose a dataset in the sidebar first.")
            return
        augment = choices.augment_value(recipe, lab, str(root))
        blocked = identity.launch_blocked()
        if blocked:
            st.error(blocked)
            return
        overrides = {"data": str(root), "epochs": int(epochs), "seed": int(seed), "fraction_by": by,
                     "owner": identity.owner()}  # fmt: skip
        if choices.recipe_model(model) == "cnn":
            overrides["features"] = feature_editor.feature_config().to_dict()
        try:
            base = default_config(model, **overrides).validate()
        except KwsError as exc:
            st.error(f"Could not plan the experiment: {exc}")
            return
        try:  # the class's limits (models, epochs, runs at once per student), before anything is planned
            experiments.check_room(base, teacher=identity.is_teacher())
        except KwsError as exc:
            st.error(str(exc))
            return
        twin = experiments.pending_twin(experiments.experiment_grid(base, fractions, augment))
        if twin:
            st.warning(f"This experiment is already queued ({twin[0]['id']}): {twin[1]} of its runs are still waiting "
                       "or training. Its results appear below; change a setting to queue a different one.")  # fmt: skip
            return
        ss[PLAN] = {"config": base.to_dict(), "fractions": sorted(fractions), "augment": augment,
                    "recipe": recipe_name(recipe)}  # fmt: skip
    if ss.get(PLAN):
        queue_planned_experiment(ss[PLAN])


def queue_planned_experiment(plan: dict) -> None:
    """Say what the experiment will queue and roughly how long it takes; queue it when confirmed."""
    base = RunConfig.from_dict(plan["config"])
    fractions = plan["fractions"]
    est = experiments.experiment_estimate(base, fractions, run_views.all_runs(), report=run_views.run_report,
                                          dataset=datasets.load_info(Path(base.data)))  # fmt: skip
    speed = (f"{est['clips_per_s']:,.0f} clips/s, measured on this computer's earlier {base.model} runs"
             if est["measured"] else f"about {est['clips_per_s']:,.0f} clips/s, a guess: no {base.model} run has "
             "finished here yet")  # fmt: skip
    ahead = f" They start after the {est['ahead']} run(s) already queued or training." if est["ahead"] else ""
    with st.container(border=True):
        st.markdown(
            f"**This queues {est['runs']} runs** of {base.model}: training fractions "
            f"{', '.join(f'{100 * f:g} %' for f in fractions)} of {est['train_clips']:,} training clips, each once "
            f"without augmentation and once with {plan['recipe']}; {base.epochs} epochs each, seed {base.seed}.\n\n"
            f"Roughly **{run_views.fmt_duration(est['seconds'])}** of training in all, one run after another ({speed}).{ahead}"
        )  # fmt: skip
        c1, c2 = st.columns(2)
        go = c1.button(f"Queue these {est['runs']} runs", type="primary", icon=":material/play_arrow:",
                       key="exp_confirm", width="stretch")  # fmt: skip
        if c2.button("Change the settings", key="exp_discard", width="stretch"):
            ss.pop(PLAN, None)
            st.rerun()
    if not go:
        return
    ss.pop(PLAN, None)
    try:
        bar = st.progress(0.0, text=f"Queueing {est['runs']} runs…")
        record = experiments.launch_experiment(
            base, fractions, plan["augment"],
            progress=lambda done, total: bar.progress(done / total, text=f"Queued {done} of {total} runs…"),
            teacher=identity.is_teacher(),
        )  # fmt: skip
    except (KwsError, OSError) as exc:
        st.error(f"Could not queue the experiment: {exc}")
        return
    ss[EXPERIMENT] = record["id"]
    ss[MESSAGE] = ("success", f"Queued {len(record['runs'])} runs as experiment {record['id']}.")
    st.rerun()


def cancel_experiment(run_ids: list[str]) -> None:
    for run_id in run_ids:
        try:
            identity.cancel(run_views.run_info_safe(run_views.runs_root() / run_id))
        except KwsError:
            pass  # deleted meanwhile


def experiment_panel(exp_id: str, polling: bool) -> None:
    """Test accuracy vs training fraction for one experiment, filling in as its runs finish."""
    alone = ui.fragment_rerun("runs", "experiment")
    record = next((e for e in experiments.list_experiments() if e["id"] == exp_id), None)
    if record is None:
        st.warning(f"Experiment {exp_id} is gone.")
        return
    infos = run_views.all_runs()
    by_id = {i.run_id: i for i in infos}
    queue = run_views.queue_positions(infos)
    points, cells, active = [], {}, []
    for row in experiments.experiment_results(record, infos):
        info, accuracy = row["info"], row["accuracy"]
        if info is None:
            text = "deleted"
        else:
            if info.state in ACTIVE_STATES:
                active.append(info.run_id)
            if accuracy is not None:
                text = f"{100 * accuracy:.1f} %"
            elif info.state == "running":
                text = f"running, epoch {info.epoch or 0}/{info.epochs or '?'}"
            else:
                text = run_views.state_text(info, queue)
        points.append({"fraction": row["fraction"], "augment": row["augment"], "accuracy": accuracy,
                       "label": row["run_id"]})  # fmt: skip
        cells.setdefault(f"{100 * row['fraction']:g} %", {})[f"augmentation {row['augment']}"] = text
    done = sum(p["accuracy"] is not None for p in points)
    finished = len(record["runs"]) - len(active)
    st.progress(finished / max(1, len(record["runs"])),
                text=f"{finished} of {len(record['runs'])} runs finished ({done} with a test accuracy)"
                + (f" · {len(active)} still queued or training" if active else ""))  # fmt: skip
    a, b = st.columns([1.6, 1], gap="medium")
    recipe = run_views.augment_name(record.get("augment"))
    a.plotly_chart(
        plots.experiment_curves(points, title=f"{record.get('model', '?')}: test accuracy vs training data "
                                f"(augmentation: {recipe}, seed {record.get('seed', 0)}, {record.get('epochs', '?')} epochs)"),
        key="runs_exp_plot",
    )  # fmt: skip
    with b:
        st.dataframe(pd.DataFrame(cells).T.rename_axis("train data"), width="stretch")
        if active and all(identity.can_manage(by_id[r]) for r in active):
            st.button(f"Cancel the {len(active)} unfinished runs", on_click=cancel_experiment, args=(active,),
                      icon=":material/stop_circle:", key="runs_exp_cancel")  # fmt: skip
        st.caption("If the orange line stays above the grey one as the data shrinks, augmentation is making up "
                   "for part of the missing data.")  # fmt: skip
    if polling and alone and not active:
        st.rerun()


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------

ui.count_page_run("runs")
st.title("Runs")
st.caption("Every training run of this computer. Tick rows to compare their curves; pick one to see its confusion "
           "matrix and the clips it got wrong.")  # fmt: skip
if ss.get(MESSAGE):
    kind, text = ss.pop(MESSAGE)
    (st.success if kind == "success" else st.error)(text)

all_infos = run_views.mine_first(run_views.all_runs(), identity.name())
polling = any(i.state in ACTIVE_STATES for i in all_infos)
st.fragment(runs_table, run_every=ui.LIVE_REFRESH if polling else None)(polling)

if all_infos:
    st.divider()
    one_run(all_infos)

st.divider()
st.subheader("Experiment: can augmentation make up for less data?")
st.caption("One click queues a grid of runs: the same model and seed trained on a share of the training split "
           "(10, 25, 50, 100 %…), each once without and once with augmentation. The plot fills in as they finish; "
           "they train one after another in the background. From a terminal: `kwscore experiment launch`, "
           "`kwscore experiment show`.")  # fmt: skip
experiment_launcher()
records = run_views.mine_first(experiments.list_experiments(), identity.name(), key=lambda e: e["owner"])
if records:
    ids = [e["id"] for e in records]
    if ss.get(EXPERIMENT) not in ids:
        ss[EXPERIMENT] = ids[0]
    exp_id = st.selectbox("Experiment", ids, key=EXPERIMENT, format_func=lambda e: next(
        f"{x['id']} · {x.get('model')} · {len(x['runs'])} runs · {x['owner'] or run_views.NO_OWNER}"
        for x in records if x["id"] == e), help="Yours first.")  # fmt: skip
    record = records[ids.index(exp_id)]
    exp_active = any(
        run_views.run_info_safe(run_views.runs_root() / r["run_id"]).state in ACTIVE_STATES
        for r in record["runs"] if (run_views.runs_root() / r["run_id"]).is_dir()
    )  # fmt: skip
    st.fragment(experiment_panel, run_every=ui.LIVE_REFRESH if exp_active else None)(exp_id, exp_active)
