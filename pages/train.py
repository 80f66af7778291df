"""Train: choose a model and its recipe, check its layers, launch a background run and watch it learn.

A run is its own process (:mod:`kwscore.jobs`): closing the browser does not stop it. This page
builds a :class:`~kwscore.recipes.RunConfig` (the tuned recipe of the model unless you change it),
launches it, and then only reads the run's files, once a second.
"""

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import code_view, datasets, feature_editor, identity, plots, run_views, ui
from dashboard.feature_editor import FeatureEditor, describe, preset_title
from kwscore import choices, jobs, snippets
from kwscore.augment import AugmentConfig, preset
from kwscore.data.dataset import resolve_commands
from kwscore.errors import KwsError
from kwscore.labels import SILENCE, UNKNOWN
from kwscore.models import MODEL_INFO
from kwscore.recipes import default_config, is_synthetic
from kwscore.runfiles import ACTIVE_STATES
from kwscore.training import SCHEDULERS

ss = st.session_state
SESSION_RUNS = "train_session_runs"  #: run ids launched from this browser session, oldest first
WATCH = "train_watch"  #: the run the live panel shows
MESSAGE = "train_message"  #: a message from a button callback, shown once

CNN_WIDTHS = ["8-16-32-64", "16-32-64-128", "32-64-128-128", "32-64-128-256"]
N_CHANNELS = [4, 8, 16, 24, 32, 48, 64, 96, 128, 256]
LRS = [0.0003, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05]
BATCHES = [16, 32, 64, 128, 256]
DECAYS = [0.0, 1e-5, 1e-4, 1e-3]
FRACTIONS = [0.05, 0.1, 0.25, 0.5, 0.75, 1.0]
FRONT_END = FeatureEditor("trfe")  #: the Spectrogram lab's editor, under its own keys

PHASES = """
**Phase 1 — a 2D CNN on Mel spectrograms.** The waveform is first turned into a picture: a dB Mel
spectrogram, *n_mels bands × ~100 frames* (your Spectrogram lab settings). A small image CNN — the
Fashion-MNIST lab's, four blocks of 3×3 convolution, batch-norm, ReLU and max-pooling — classifies
the picture. The front end is designed by hand, from what we know about hearing.

**Phase 2 — CNNs on the raw waveform** (Dai et al., *Very deep CNNs for raw waveforms*, 2017). The
network reads the samples of the one-second clip directly: 8,000 of them at 8 kHz, as in the paper and
the PyTorch tutorial (*M5 · PyTorch tutorial*), or 16,000 at 16 kHz in the tuned recipe (*M5 · tuned*),
which keeps the 4–8 kHz band of “s”, “t”, “f”. Its first convolution has kernels of 80 samples (10 ms at
8 kHz, 5 ms at 16 kHz), so it *learns its own filter bank* instead of the Mel one; the layers after it
use tiny kernels of 3 and max-pooling. **M5** is the PyTorch tutorial's model (5 weight layers),
**M3** the shallow baseline, **M11** and **M18** go deeper, and **M34-res** adds residual
connections so that 34 layers still train.

**Beyond the lab — transfer learning** (*Pretrained embedding + head*; Lin et al., 2020). Google trained a
speech embedding on a large amount of real speech: it turns every 80 ms into 96 numbers that tell words
apart. Here it stays frozen and only a small head learns your words. Trained on the embedded synthetic
voices alone, it understands real people far better than the CNNs above trained from scratch: what it
learnt from real voices carries over (see for yourself: Runs → one run → *Test on another dataset*).
"""


def with_value(options: list, value) -> list:
    """``options`` plus ``value`` (a recipe may use a value the list does not offer), sorted."""
    return sorted({*options, value}, key=lambda o: (isinstance(o, str), o))


def nearest(value, options):
    return min(options, key=lambda o: abs(o - value))


def pct(x: float) -> str:
    return f"{100 * x:g} %"


def reset_recipe(key: str) -> None:
    ui.forget(f"tr_{key}_")
    ui.forget("tr_aug_")


def cancel_run(run_id: str) -> None:
    try:
        identity.cancel(run_views.run_info_safe(run_views.runs_root() / run_id))
    except KwsError as exc:
        ss[MESSAGE] = str(exc)


def recipe_text(aug: AugmentConfig, representation: str) -> str:
    """The effects of a recipe in one line (SpecAugment only where it applies)."""
    parts = [f"{s.effect.replace('_', ' ')} (p {s.p:g})" for s in aug.steps]
    if aug.spec_augment is not None:
        sa = aug.spec_augment
        text = f"SpecAugment F{sa.freq_mask_param}×{sa.n_freq_masks}, T{sa.time_mask_param}×{sa.n_time_masks}"
        if sa.freq_warp:
            text += f", vocal-tract warp ±{sa.freq_warp:.0%}"
        parts.append(text if representation == "mel" else f"~~{text}~~ (needs a spectrogram)")
    return ", ".join(parts) or "nothing"


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------

ui.count_page_run("train")
st.title("Train")
st.caption(
    "Pick a model, check what it looks like, and launch it. Training runs in the background, in its own "
    "process: you can leave this page, or close the browser, and come back to watch it."
)
root = datasets.current()
info = datasets.load_info(root)
if info is None:
    st.stop()

with st.expander("Which model? Phase 1 (2D CNN on Mel spectrograms) vs Phase 2 (raw-waveform CNNs) vs transfer learning"):
    st.markdown(PHASES)

settings, summary = st.columns([1, 1], gap="large")

# -- settings ------------------------------------------------------------------------------------
with settings:
    recipe_key = ui.kept(
        st.radio, "Model and recipe", key="tr_model", default="cnn", options=list(choices.RECIPE_KEYS),
        format_func=choices.recipe_label, horizontal=True,
        help="Defaults below are the recipe's: each model's tuned recipe, or M5 exactly as the PyTorch tutorial.",
    )  # fmt: skip
    model = choices.recipe_model(recipe_key)
    info_m = MODEL_INFO[model]
    representation = info_m["representation"]
    st.caption(f"{info_m['summary']} — {info_m['reference']}.")
    if recipe_key in choices.RECIPE_NOTES:
        st.caption(f":material/info: {choices.RECIPE_NOTES[recipe_key]}")
    # the recipe's settings for the chosen dataset: recorded speech trains longer, without simulated
    # rooms (kwscore.recipes.RECORDED), so its settings are kept apart from the embedded set's
    tuned = default_config(recipe_key, data=str(root))
    P = f"tr_{recipe_key}_" + ("" if is_synthetic(root) else "rec_")

    def kept(widget, label, name, default, **kwargs):
        return ui.kept(widget, label, key=P + name, default=default, **kwargs)

    size, data_box = st.columns(2, gap="medium")
    with size.container(border=True):
        st.markdown("**Model size and input**")
        if representation == "mel":
            widths = kept(
                st.select_slider, "Channels of the conv blocks", "channels",
                "-".join(map(str, tuned.model_kwargs["channels"])),
                options=list(dict.fromkeys([*CNN_WIDTHS, "-".join(map(str, tuned.model_kwargs["channels"]))])),
                help="One 3×3 conv block per number. Wider = more parameters, slower, usually more accurate.",
            )  # fmt: skip
            dropout = kept(st.slider, "Dropout before the classifier", "dropout",
                           tuned.model_kwargs.get("dropout", 0.2), min_value=0.0, max_value=0.5, step=0.05)  # fmt: skip
            model_kwargs = {**tuned.model_kwargs, "channels": [int(c) for c in widths.split("-")],
                            "dropout": float(dropout)}  # fmt: skip
            sample_rate = None
        elif representation == "embedding":
            st.caption(
                ":material/ac_unit: The speech embedding is frozen (pretrained on real speech, 16 kHz); you train "
                "only the head on top of it."
            )
            hidden = kept(
                st.select_slider, "Channels of the head's convolutions", "hidden", tuned.model_kwargs["hidden"],
                options=with_value([16, 32, 64, 128], tuned.model_kwargs["hidden"]),
                help="Two 1-D convolutions over the embedding's 96 numbers every 80 ms. Wider = more parameters.",
            )  # fmt: skip
            dropout = kept(st.slider, "Dropout before the classifier", "dropout",
                           tuned.model_kwargs.get("dropout", 0.3), min_value=0.0, max_value=0.5, step=0.05)  # fmt: skip
            high = kept(st.toggle, "Add what it cannot hear: 3.8–8 kHz", "high_bands",
                        bool(tuned.model_kwargs.get("high_bands", 0)),
                        help="The embedding's Mel bands stop at 3.8 kHz, where “stop” and “top” sound alike. This "
                        "adds 8 Mel bands from 3.8 to 8 kHz (the hiss of “s”) next to its 96 numbers.")  # fmt: skip
            model_kwargs = {**tuned.model_kwargs, "hidden": int(hidden), "dropout": float(dropout),
                            "high_bands": 8 if high else 0}  # fmt: skip
            sample_rate = info_m["sample_rate"]
        else:
            n_channel = kept(
                st.select_slider, "Base width (channels)", "n_channel", tuned.model_kwargs["n_channel"],
                options=with_value(N_CHANNELS, tuned.model_kwargs["n_channel"]),
                help="Channels of the first convolution; later stages multiply it.",
            )  # fmt: skip
            stride = kept(
                st.select_slider, "Stride of the first convolution", "stride", tuned.model_kwargs["stride"],
                options=with_value(list(choices.STRIDES), tuned.model_kwargs["stride"]),
                help="Hop of the 80-sample learned filter bank, in samples (16 at 8 kHz = 2 ms, the tutorial; 4 in "
                "the paper: 4× more time steps, slower and finer).",
            )  # fmt: skip
            sample_rate = kept(
                st.select_slider, "Resample the clips to", "sample_rate", tuned.sample_rate,
                options=with_value(list(choices.SAMPLE_RATES), tuned.sample_rate),
                format_func=choices.rate_label,
                help="The paper's and the tutorial's M-models listen at 8 kHz (1 s = 8,000 samples, nothing above "
                "4 kHz); 16 kHz keeps every frequency the clips have, at twice the samples. Hear each rate in the "
                "Spectrogram lab (Sample rate tab).",
            )  # fmt: skip
            model_kwargs, stride_note = choices.fit_stride(
                model, {**tuned.model_kwargs, "n_channel": int(n_channel), "stride": int(stride)}, int(sample_rate)
            )
            if stride_note:
                st.caption(f":material/build: {stride_note}")

    with data_box.container(border=True):
        st.markdown("**Data**")
        others = {str(e.root): e.label for e in datasets.entries() if e.available and e.root.resolve() != root.resolve()}
        mix = [m for m in ui.kept(
            st.multiselect, "Mix in", key="tr_mix", default=[], options=list(others), format_func=others.get,
            placeholder="nothing more",
            help="Clips of these datasets join every split: e.g. add your own recordings (Your own words) to the "
            "embedded set, then choose all words to learn a new one.",
        ) if m in others]  # fmt: skip
        mixed = [datasets.load_info(Path(m)) for m in mix]
        words = sorted(set(info.words).union(*(m.words for m in mixed if m is not None)))
        commands = ui.kept(
            st.radio, "Words", key="tr_commands", default="8", options=["8", "12", "all"], horizontal=True,
            format_func=lambda c: {"8": "the 8 commands", "12": "the standard 10"}.get(c, f"all {len(words)} words"),
            help="The standard 10 (yes, no, up, down, left, right, on, off, stop, go) with “unknown” and “silence” "
            "make the 12-class task of published results.",
        )  # fmt: skip
        unknown = ui.kept(
            st.checkbox, "“Unknown” + “silence” classes", key="tr_unknown", default=True,
            disabled=commands == "all",
            help="Two more classes, each about as big as one word: clips of the dataset's other words, and 1-s cuts "
            "of its background noise. The model learns to say “no keyword” instead of forcing every sound into a word.",
        )  # fmt: skip
        fraction = ui.kept(
            st.select_slider, "Training fraction", key="tr_fraction", default=1.0, options=FRACTIONS,
            format_func=pct, help="Train on this share of the training split (validation and test stay whole).",
        )  # fmt: skip
        fraction_by = ui.kept(
            st.radio, "Keep", key="tr_fraction_by", default="speaker", options=["speaker", "stratified"],
            horizontal=True, disabled=fraction >= 1.0,
            format_func=lambda b: "whole speakers" if b == "speaker" else "some clips of every word",
            help="Whole speakers: fewer voices (the hard case). Some clips of every word: all voices stay.",
        )  # fmt: skip

    # -- the front end ------------------------------------------------------------------------
    features = feature_editor.feature_config()
    fe_notes: list[str] = []
    fe_problems: list[str] = []
    if representation == "mel":
        fe_state = FRONT_END.read()  # before the panel: its title shows the settings of this very run
        with st.expander(f"Front end: {describe(fe_state.config)} — {preset_title(fe_state.config)}",
                         key="trfe_panel"):  # fmt: skip
            st.caption("The same settings as the Spectrogram lab: a change here shows there, and back.")
            features = FRONT_END.draw(fe_state)
            fe_notes, fe_problems = fe_state.notes, list(feature_editor.problems(features))
            for note in fe_notes:
                st.caption(f":material/build: {note}")
            if fe_state.lesson:
                st.caption(f":material/school: {fe_state.lesson}")
            ui.page_link("spectrogram.py", "See these settings in the Spectrogram lab", ":material/graphic_eq:")

    # -- augmentation -------------------------------------------------------------------------
    lab_aug = ui.augment_config() if ss.get(ui.AUGMENT_KEY) else None
    options = choices.augment_choices(lab_available=lab_aug is not None)
    with st.container(border=True):
        aug_on = kept(st.toggle, "**Augment the training clips**", "aug_on", default=tuned.augment != "none",
                      help="Random changes to every training batch, drawn anew each epoch.")  # fmt: skip
        choice = ui.kept(st.selectbox, "Recipe", key="tr_aug_recipe", default=choices.AUGMENT_RECIPE,
                         options=options, format_func=lambda o: choices.augment_choice_label(o, lab_aug.name if lab_aug else None),
                         disabled=not aug_on, label_visibility="collapsed",
                         help="The recipe made in the Augmentation lab is offered here; it is used only when you pick it.")  # fmt: skip
        aug_value = choices.augment_value(choice, lab_aug, str(root)) if aug_on else "none"
        aug_cfg = AugmentConfig.from_dict(aug_value) if isinstance(aug_value, dict) else preset(aug_value)
        if not aug_on:
            st.caption("No augmentation: the model sees each training clip exactly as recorded, every epoch.")
        else:
            st.caption(f"Each batch: {recipe_text(aug_cfg, representation)}.")
            slow = [s.effect for s in aug_cfg.steps if s.effect in ("time_stretch", "pitch_shift", "compress")]
            if slow:
                st.caption(f":material/hourglass: {', '.join(slow)} run clip by clip: training is slower.")

    # -- optimisation -------------------------------------------------------------------------
    with st.container(border=True):
        st.markdown("**Optimisation** (Adam)")
        o1, o2, o3, o4 = st.columns([1.1, 1.2, 1.2, 1])
        with o1:
            epochs = kept(st.number_input, "Epochs", "epochs", tuned.epochs, min_value=1,
                          max_value=500, step=1)  # fmt: skip
        with o2:
            lr = kept(st.select_slider, "Learning rate", "lr", nearest(tuned.lr, LRS), options=LRS,
                      format_func=lambda v: f"{v:g}")  # fmt: skip
        with o3:
            batch_size = kept(st.select_slider, "Batch size", "batch_size", tuned.batch_size,
                              options=BATCHES)  # fmt: skip
        with o4:
            seed = ui.kept(st.number_input, "Seed", key="tr_seed", default=0, min_value=0, max_value=2**31 - 1,
                           step=1, help="Same seed, same settings: the same run (weights, batches, augmentation).")  # fmt: skip
        with st.expander("More: schedule, weight decay, time limit"):
            m1, m2 = st.columns(2)
            m3 = st.container()
            with m1:
                scheduler = kept(st.selectbox, "Learning-rate schedule", "scheduler",
                                 tuned.scheduler, options=list(SCHEDULERS),
                                 help="onecycle: warm up, then anneal (the recipes). step: ×gamma every "
                                 "step_size epochs (the tutorial).")  # fmt: skip
            with m2:
                weight_decay = kept(st.select_slider, "Weight decay", "weight_decay",
                                    nearest(tuned.weight_decay, DECAYS), options=DECAYS,
                                    format_func=lambda v: f"{v:g}")  # fmt: skip
            with m3:
                minutes = kept(st.number_input, "Time limit (min, 0 = none)", "max_minutes", 0.0, min_value=0.0,
                               max_value=600.0, step=1.0,
                               help="Stop training after this long, then test the best model so far.")  # fmt: skip
        st.button("Back to the recipe", on_click=reset_recipe, args=(recipe_key,), icon=":material/restart_alt:",
                  help=f"Epochs, learning rate, batch size, model size and augmentation of “{choices.recipe_label(recipe_key)}”.")  # fmt: skip

    # -- name and notes -----------------------------------------------------------------------
    with st.container(border=True):
        st.markdown("**Name and notes** (shown on the Runs page; editable there later)")
        run_name = ui.kept(st.text_input, "Name", key="tr_name", default="", max_chars=80,
                           placeholder="e.g. m5 at 4 kHz", help="Labels and the CLI use it: `kwscore eval NAME`.")  # fmt: skip
        run_notes = ui.kept(st.text_area, "Notes", key="tr_notes", default="", height=68,
                            placeholder="What do you expect, and why?")  # fmt: skip

# -- the run config ------------------------------------------------------------------------------
overrides = dict(
    data=str(root), mix=mix, commands=commands, fraction=float(fraction), fraction_by=fraction_by, seed=int(seed),
    epochs=int(epochs), lr=float(lr), batch_size=int(batch_size), scheduler=scheduler,
    weight_decay=float(weight_decay), max_minutes=float(minutes) or None, model_kwargs=model_kwargs,
    augment=aug_value, name=run_name.strip(), notes=run_notes.strip(), unknown=bool(unknown),
)  # fmt: skip
if representation == "mel":
    overrides["features"] = features.to_dict()
else:
    overrides["sample_rate"] = int(sample_rate)
problems = list(fe_problems)
config = None
try:
    labels = resolve_commands(commands, words)
    labels += [UNKNOWN, SILENCE] if unknown and set(words) - set(labels) else []  # as kwscore.labels adds them
    config = default_config(recipe_key, **overrides)
    problems += config.problems()
except KwsError as exc:
    labels = []
    problems.append(str(exc))

# -- the model summary ---------------------------------------------------------------------------
with summary:
    st.subheader("Model summary")
    if representation == "mel":
        input_shape = (1, 1, features.n_mels, features.frames_for(features.sample_rate))
        describe_kwargs = dict(model_kwargs)
    else:
        input_shape = (1, 1, int(sample_rate))
        describe_kwargs = {**model_kwargs, "sample_rate": int(sample_rate)} if representation == "waveform" else dict(model_kwargs)
    described = None
    if labels:
        try:
            described = run_views.describe_model(model, len(labels), input_shape, json.dumps(describe_kwargs, sort_keys=True))
        except (KwsError, RuntimeError) as exc:
            st.error(f"This model cannot take a {list(input_shape)} input: {exc}")
    if described is not None:
        d = described
        m1, m4 = st.columns(2)
        m2, m3 = st.columns(2)
        m1.metric("Parameters", f"{d['n_params']:,}", help="Trainable weights and biases.")
        m4.metric("Layers", sum(r["params"] > 0 and r["type"].startswith(("Conv", "Linear")) for r in d["layers"]),
                  f"{len(d['layers'])} modules in all", delta_color="off", delta_arrow="off",
                  help="Weight layers (convolutions and the classifier), as Dai et al. count them.")  # fmt: skip
        m2.metric("Input", " × ".join(map(str, d["input_shape"][2:])),
                  "Mel bands × frames" if representation == "mel" else f"samples: 1 s at {plots.hz_label(int(sample_rate))}",
                  delta_color="off", delta_arrow="off",
                  help=f"One clip enters as a tensor shaped {d['input_shape']} (batch, channel, …).")  # fmt: skip
        m3.metric("Output", f"{d['n_classes']} scores", "one logit per word", delta_color="off", delta_arrow="off",
                  help=", ".join(labels))  # fmt: skip
        if representation == "waveform":
            st.caption(
                f"First layer: a learned filter bank of {d['config']['n_channel']} filters, each "
                f"{d['receptive_field_ms']:g} ms long, every {d['hop_ms']:g} ms. One step of the last "
                f"stage sees {d['total_receptive_field_ms']:.0f} ms of audio."
            )
        elif representation == "embedding":
            st.caption(
                f"The frozen embedding turns the clip (padded by {d['config']['pad_seconds']:g} s each side) into 96 "
                "numbers every 80 ms, each seeing 775 ms of audio; the head's layers below are all that learn."
            )
        else:
            st.caption(
                f"Each block halves both axes; the global average pool at the end makes any "
                f"{features.n_mels} × frames picture fit. The picture is normalised per clip first."
            )
        layers = pd.DataFrame(
            [
                {"layer": r["name"], "type": r["type"], "output shape": " × ".join(map(str, r["output_shape"][1:])),
                 "parameters": r["params"]}
                for r in d["layers"]
            ]
        )  # fmt: skip
        st.dataframe(
            layers, hide_index=True, height=min(36 + 35 * len(layers), 280), width="stretch",
            column_config={"layer": st.column_config.TextColumn(width=122), "type": st.column_config.TextColumn(width=88),
                           "output shape": st.column_config.TextColumn(width=88),
                           "parameters": st.column_config.NumberColumn("params", format="localized", width=66)},
        )  # fmt: skip
        n_train = sum(info.clips["training"].get(w, 0) for w in labels)
        approx = max(1, round(n_train * float(fraction))) if fraction < 1 else n_train
        steps = math.ceil(approx / int(batch_size)) * int(epochs)
        st.caption(
            f"About **{approx:,} training clips** ({pct(fraction)} of {n_train:,}) in batches of {batch_size}: "
            f"≈ {math.ceil(approx / int(batch_size))} steps per epoch, ≈ {steps:,} steps in {epochs} epochs. "
            f"Validation after every epoch; the best epoch is tested on the test split at the end."
        )

    if problems:
        st.error("**This run cannot start yet:**\n\n" + "\n".join(f"- {p}" for p in problems), icon=":material/block:")
    launch = st.button(
        f"Launch {choices.recipe_label(recipe_key).split(' · ')[0]}", type="primary",
        help=f"Queue this run on {run_views.dataset_name(str(root))}: it trains in the background.",
        icon=":material/rocket_launch:", disabled=bool(problems) or config is None, width="stretch", key="tr_launch",
    )  # fmt: skip
    if launch and config is not None:
        try:
            if blocked := identity.launch_blocked():
                raise KwsError(blocked)
            with st.spinner("Queueing the run and starting the background worker…"):
                run_id = jobs.launch(replace(config, owner=identity.owner()), teacher=identity.is_teacher())
        except (KwsError, OSError) as exc:
            st.error(f"Could not launch the run: {exc}")
        else:
            ss.setdefault(SESSION_RUNS, []).append(run_id)
            ss[WATCH] = run_id
    if config is not None and labels and described is not None:
        code_view.show(lambda: snippets.train_code(config.to_dict(), len(labels), list(described["input_shape"])), key="tr_code")

# -- the live run --------------------------------------------------------------------------------


def watchable(info) -> bool:
    """Runs the live panel offers this session: the teacher every run, a student their own (by
    name), a session without a name the runs without one."""
    return identity.is_teacher() or (info.owner or "") == identity.name()


def live_section() -> None:
    """Pick the run to watch (this session's, this owner's queued or training ones, their newest) and
    watch it. Other students' runs are not offered: they are on the Runs page."""
    st.subheader("Live run")
    if ss.get(MESSAGE):
        st.warning(ss.pop(MESSAGE))
    infos = [i for i in run_views.all_runs() if watchable(i)]
    by_id = {i.run_id: i for i in infos}
    mine = [r for r in reversed(ss.get(SESSION_RUNS, [])) if r in by_id]
    active = [i.run_id for i in infos if i.state in ACTIVE_STATES]
    candidates = list(dict.fromkeys(mine + active + [i.run_id for i in infos[:1]]))
    candidates.sort(key=lambda r: (by_id[r].created or 0.0, r), reverse=True)
    if not candidates:
        st.info("No run yet: choose your settings and press **Launch**. It will appear here, live.")
        return
    if ss.get(WATCH) not in candidates:
        ss[WATCH] = mine[0] if mine else candidates[0]
    watch = st.selectbox(
        "Run to watch", candidates, key=WATCH,
        format_func=lambda r: run_views.run_label(by_id[r]) + (" · launched here" if r in mine else ""),
        help="Model · share of the training data · augmentation · run id. Listed: your runs (launched under your "
        "name, or from this page in this browser session) still queued or training, and your newest one. A run goes "
        "on when the browser is closed: come back and pick it here. Everyone's runs are on the Runs page.",
    )  # fmt: skip
    polling = by_id[watch].state in ACTIVE_STATES
    st.fragment(live_panel, run_every=ui.LIVE_REFRESH if polling else None)(watch, polling)


def live_panel(run_id: str, polling: bool) -> None:
    """Status, progress, curves and Cancel for one run; redrawn every :data:`ui.LIVE_REFRESH` while it is active."""
    alone = ui.fragment_rerun("train", "live")
    path = run_views.runs_root() / run_id
    if not path.is_dir():
        st.warning(f"Run {run_id} was deleted.")
        return
    info = run_views.run_info_safe(path)
    status = info.status or {}
    config = info.config or {}
    state = info.state
    iterations, epochs = run_views.run_metrics(info)
    head, button = st.columns([2.6, 1], vertical_alignment="center")
    head.markdown(
        f"{run_views.state_badge(info)} **{config.get('model', '?')}** on {run_views.data_text(config)}, "
        f"{run_views.commands_text(config.get('commands'))}, {run_views.fraction_text(config)} of the training data, "
        f"augmentation {run_views.augment_name(config.get('augment', 'none'))} · :gray[{run_id}]"
    )
    cancelling = (path / "cancel").exists()
    if state in ACTIVE_STATES and identity.can_manage(info):
        button.button("Cancel run", key=f"tr_cancel_{run_id}", on_click=cancel_run, args=(run_id,),
                      icon=":material/stop_circle:", disabled=cancelling, width="stretch")  # fmt: skip
    if state == "queued":
        entry = run_views.queue_positions().get(run_id)
        st.progress(0.0, text=f"Waiting: {run_views.queue_text(entry)}. Runs start in turn, one of each student's "
                    "at a time." if entry else "Starting: a worker is picking this run up…")  # fmt: skip
    elif state == "running":
        fraction, eta = jobs.progress(path)
        if status.get("total_steps"):
            text = (f"Epoch {status.get('epoch') or 1}/{info.epochs} · step {status.get('step', 0):,}/"
                    f"{status['total_steps']:,} · {100 * fraction:.0f} % · {run_views.fmt_duration(info.duration_s)} so far · "
                    f"ETA {run_views.fmt_duration(eta) if eta is not None else 'estimating…'}")  # fmt: skip
        else:
            text = "Loading the clips into memory and building the model…"
        if cancelling:
            text = "Cancelling: the run stops at its next iteration… · " + text
        st.progress(min(max(fraction, 0.0), 1.0), text=text)
    elif state == "succeeded":
        st.progress(1.0, text=f"Finished in {run_views.fmt_duration(info.duration_s)}")
    m = st.columns(3)
    m[0].metric("Epochs done", f"{len(epochs)}/{info.epochs or '?'}")
    best = info.best_val_accuracy
    m[1].metric("Best validation", f"{100 * best:.1f} %" if best is not None and best >= 0 else "–",
                help="Accuracy on the validation split after the best epoch so far.")  # fmt: skip
    m[2].metric("Test accuracy", f"{100 * info.test_accuracy:.1f} %" if info.test_accuracy is not None else "–",
                help="On the test split (speakers never heard in training), with the best epoch's weights. "
                "Measured once, at the end.")  # fmt: skip
    run = {"label": run_views.run_label(info), "color": plots.run_color(0), "iterations": iterations, "epochs": epochs}
    if iterations:
        st.plotly_chart(plots.loss_curves([run], height=270, x_max=status.get("total_steps")), key=f"tr_loss_{run_id}")
    elif state in ACTIVE_STATES:
        st.caption("The loss curve appears after the first iterations.")
    if epochs:
        st.plotly_chart(plots.accuracy_curves([run], height=270, x_max=info.epochs), key=f"tr_acc_{run_id}")
    elif state in ACTIVE_STATES:
        st.caption("Validation accuracy appears after the first epoch.")
    if state == "succeeded":
        st.success(
            f"Test accuracy **{100 * (info.test_accuracy or 0):.1f} %** on speakers the model never heard "
            f"(best epoch {status.get('best_epoch', '?')}, validation {100 * (best or 0):.1f} %)."
        )
        ui.page_link("runs.py", "Confusion matrix, mistakes and comparisons: the Runs page", ":material/monitoring:")
    elif state == "failed":
        st.error(f"The run failed: {info.error or status.get('error') or 'see its log'}")
    elif state == "cancelled":
        why = f": {info.message}" if info.message and info.message != "cancelled" else ""
        st.info(f"Cancelled{why}. Its curves and checkpoints up to then are kept.")
    elif state == "unreadable":
        st.error(f"This run's files cannot be read: {info.error}")
    if polling and alone and state not in ACTIVE_STATES:
        st.rerun()  # it just finished: redraw the whole page once, and stop polling


with summary:
    st.divider()
    live_section()
