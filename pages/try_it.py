"""Try it: speak into a trained model, or upload a recording, and see what it hears.

A clip up to 1.5 s is classified once: its waveform, the picture the model's front end makes of it,
and the probability of every word. A longer recording (any length) is scanned with a sliding 1-s
window (streaming detection, :mod:`kwscore.streaming`). Logic lives in ``dashboard/ui_try.py``.
"""

import json

import streamlit as st

from dashboard import clips, code_view, identity, plots, run_views, ui, ui_try
from kwscore import audio, pretrained, snippets
from kwscore.audio import SAMPLE_RATE
from kwscore.errors import KwsError
from kwscore.features import FeatureConfig, linear_spectrogram_db
from kwscore.inference import CLIP_MAX_SECONDS, MAX_SECONDS
from kwscore.labels import display_label
from kwscore.streaming import StreamConfig, compose_from_dataset, match

ss = st.session_state
#: How each kind of model reads the clip (kwscore.models.MODEL_INFO's representation).
READS = {"mel": "through a Mel front end", "waveform": "(raw waveform)", "embedding": "through a pretrained speech embedding"}
SOURCES = {"upload": "Upload a file", "mic": "Record with the microphone", "test": "Test recording"}
COMPOSED = "try_composed"  #: {"run_id", "bytes", "name", "truth"}: the last test recording made
DEFAULTS = StreamConfig()

st.title("Try it")
st.caption(
    "Say a word into a model you trained, or upload a recording. A clip of up to "
    f"{CLIP_MAX_SECONDS:g} s is classified once; a longer one, of any length, is scanned "
    "one second at a time, the way a phone listens for its wake word."
)

# -- the model ------------------------------------------------------------------------------------
runs = run_views.mine_first(ui_try.finished_runs_or_stop(), identity.name())  # yours, then everyone's
by_id = {r.run_id: r for r in runs}
if ss.get("try_run") not in by_id:
    ss["try_run"] = runs[0].run_id  # your best by test accuracy (or the best)
top = st.columns([2.2, 1], vertical_alignment="bottom")
run_id = top[0].selectbox(
    "Model (a finished run; yours first, the best by test accuracy first)" if identity.name()
    else "Model (a finished run; the best by test accuracy first)",
    list(by_id),
    key="try_run",
    format_func=lambda r: f"{ui_try.run_choice_label(by_id[r])} · {run_views.owner_text(by_id[r])}",
)
info = by_id[run_id]
model = ui_try.predictor_or_stop(info)
threshold = top[1].slider(
    "Confidence threshold", 0.3, 0.95, ui_try.default_threshold(info), 0.01, key="try_threshold",
    help="Below this top-1 probability the model is 'not confident'. For long recordings it is also the "
    "probability a word needs to be detected.",
)  # fmt: skip
st.caption(
    f"{ui_try.knows_text(model.labels)}. Listens at "
    f"{model.model_rate / 1000:g} kHz {READS[model.representation]}."
)
if (ready := pretrained.about(info.path)) is not None:  # the model shipped with kwscore: say what it knows
    st.info(pretrained.ready_line(ready), icon=":material/verified:")

# -- the input ----------------------------------------------------------------------------------------


def pick_input() -> tuple[bytes | None, str | None, list | None]:
    """``(file bytes, name, placed words or None)`` from the chosen source; ``(None, None, None)`` while
    there is nothing yet."""
    data_root = (info.config or {}).get("data")
    sources = [k for k in SOURCES if k != "test" or ui_try.dataset_exists(data_root)]
    c1, c2 = st.columns([1.55, 1], vertical_alignment="bottom")
    with c1:
        source = st.segmented_control("Input", sources, format_func=SOURCES.get, key="try_source", default="upload",
                                      help="Test recording: clips of the run's test split placed at known times into "
                                      "one of the dataset's background noises.")  # fmt: skip
    with c2:
        ui.kept(st.segmented_control, "Analyse as", key="try_mode", default="auto", options=list(ui_try.MODES),
                format_func=ui_try.MODES.get,
                help="Automatic: one word when the recording is short (or its sound lasts at most 1 s once the "
                "silence is trimmed), streaming detection otherwise.")  # fmt: skip
    source = source or "upload"
    if source == "upload":
        upload = st.file_uploader(
            f"A WAV, FLAC or OGG file: any sample rate, mono or stereo, any length (up to "
            f"{ui_try.upload_limit() // 2**20} MB)", type=["wav", "flac", "ogg"], key="try_upload",
        )  # fmt: skip
        return (upload.getvalue(), upload.name, None) if upload is not None else (None, None, None)
    if source == "mic":
        recording = st.audio_input(
            "Press the microphone, say a word (or several, a second or more apart), press stop",
            sample_rate=SAMPLE_RATE, key="try_mic",
        )  # fmt: skip
        st.caption("Browsers allow the microphone only on localhost or HTTPS.")
        return (recording.getvalue(), "your recording", None) if recording is not None else (None, None, None)
    c1, c2, c3, c4 = st.columns([1, 1, 1.2, 0.8], vertical_alignment="bottom")
    seconds = c1.slider("Length (s)", 5, int(MAX_SECONDS), 20, 5, key="try_test_seconds")
    noises = ui_try.noise_names(data_root)
    noise = c2.selectbox("Background noise", noises or ["white (generated)"], key="try_test_noise_file",
                         index=noises.index("pink_noise.wav") if "pink_noise.wav" in noises else 0,
                         help="A recording from the dataset's _background_noise_ folder.")  # fmt: skip
    noise_db = c3.slider("Noise level (dB below the words)", 5, 40, 20, 5, key="try_test_noise",
                         help="How much quieter than the speech the noise is (signal-to-noise ratio).")  # fmt: skip
    if c4.button("New one", icon=":material/shuffle:", width="stretch", key="try_test_new",
                 help="Other clips, other times"):  # fmt: skip
        ss["try_test_seed"] = ss.get("try_test_seed", 0) + 1
    key = (info.run_id, seconds, noise, noise_db, ss.get("try_test_seed", 0))
    made = ss.get(COMPOSED)
    if not made or made.get("key") != key:
        try:
            with st.spinner("Placing held-out clips into noise…"):
                comp = compose_from_dataset(data_root, model.labels, seconds, noise=noise, noise_db=-noise_db,
                                            seed=key[-1])  # fmt: skip
        except KwsError as exc:
            st.error(str(exc))
            return None, None, None
        made = ss[COMPOSED] = {
            "key": key, "bytes": audio.wav_bytes(comp.waveform, SAMPLE_RATE), "name": f"test-{seconds}s.wav",
            "truth": [w.to_dict() for w in comp.words], "noise": comp.noise,
        }  # fmt: skip
    st.caption(
        f"{len(made['truth'])} clips of the **test split** (voices the model never heard) placed at known "
        f"times into `{made['noise']}`; the true words are marked under the waveform."
    )
    return made["bytes"], made["name"], made["truth"]


#: The streaming settings: widget key -> (label, options in ms or dB, default, help).
STREAM_WIDGETS = {
    "try_hop": ("Hop (ms)", [50, 100, 200, 250, 500], 100,
                "Time from one 1-s window to the next. Smaller: finer timing, more work."),
    "try_smooth": ("Smoothing (ms)", [0, 100, 200, 300, 500, 800], 300,
                   "Each class's probability is averaged over this much time (centred)."),
    "try_refractory": ("Refractory period (ms)", [0, 250, 500, 800, 1000, 1500], 800,
                       "After a detection nothing fires for this long."),
    "try_gate": ("Gate (dB above the noise floor)", [0, 6, 9, 12, 15, 20, 25], 12,
                 "A window must hold something this much louder than the recording's noise floor to fire: "
                 "pure noise never becomes a word."),
}  # fmt: skip


def stream_config() -> StreamConfig:
    """The streaming settings as last chosen (the widgets are drawn with the timeline)."""
    value = {k: ss.get(k, default) for k, (_, _, default, _) in STREAM_WIDGETS.items()}  # kept: persist_state
    return StreamConfig(hop=value["try_hop"] / 1000, smooth=value["try_smooth"] / 1000, threshold=threshold,
                        refractory=value["try_refractory"] / 1000, gate_db=float(value["try_gate"]))  # fmt: skip


def stream_settings() -> None:
    with st.expander("Streaming settings: hop, smoothing, refractory period, gate", icon=":material/tune:"):
        for column, (key, (label, options, default, help_text)) in zip(st.columns(4), STREAM_WIDGETS.items(), strict=True):
            with column:
                ui.kept(st.select_slider, label, key=key, default=default, options=options, help=help_text)


def show_clip(result) -> None:
    p = result.prediction
    kind, text = ui_try.verdict(p)
    getattr(st, kind)(text, icon=ui_try.VERDICT_ICONS[kind])
    left, right = st.columns(2, gap="medium")
    with left:
        st.plotly_chart(plots.waveform(result.clip, SAMPLE_RATE, title="The second the model hears (16 kHz)"),
                        key="try_clip_wave")  # fmt: skip
        clips.play(result.clip, SAMPLE_RATE)
        if model.model_rate != SAMPLE_RATE:
            low = result.model_input
            st.plotly_chart(plots.waveform(low, model.model_rate, title=f"Resampled to {model.model_rate / 1000:g} kHz: "
                                           f"the {low.shape[-1]:,} samples {model.model_name} reads", height=200),
                            key="try_clip_low")  # fmt: skip
            clips.play(low, model.model_rate)
    with right:
        fc = model.feature_config
        if fc is not None:
            st.plotly_chart(plots.mel_spectrogram(result.model_input[0], fc, colorbar_title="normalised" if fc.normalize
                                                  else "dB", title=f"What {model.model_name} sees: "
                                                  f"{fc.n_mels} Mel bands × {result.model_input.shape[-1]} frames"),
                            key="try_clip_spec")  # fmt: skip
        else:
            view = FeatureConfig(normalize=False).at_sample_rate(model.model_rate)
            spec = linear_spectrogram_db(result.model_input, view)
            st.plotly_chart(plots.linear_spectrogram(spec, view, y_max=SAMPLE_RATE / 2,
                                                     title=f"Spectrogram of the {model.model_rate / 1000:g} kHz input"),
                            key="try_clip_spec")  # fmt: skip
    names = [display_label(label) for label in p.labels]  # _silence_ -> "silence", _unknown_ -> "another word"
    st.plotly_chart(plots.class_probabilities(names, p.probs, threshold), key="try_probs")


def show_stream(result, cfg: StreamConfig, truth: list | None) -> None:
    sound, stream = result.sound, result.stream
    found = stream.detections
    stream_settings()
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Words detected", len(found))
    m2.metric("Duration", f"{sound.duration:.1f} s")
    m3.metric("Scan time", f"{result.seconds:.2f} s", help=f"{len(stream.times)} windows, front end included")
    m4.metric("Real-time factor", f"{result.real_time_factor:.3f}",
              help="Scan time / duration: below 1 means faster than real time.")  # fmt: skip
    if truth is not None:
        score = match(found, ui_try.placed(truth))
        st.markdown(
            f"Found **{score['hits']} of {score['words']}** placed words at the right time (±250 ms), "
            f"**{len(score['false_alarms'])}** false alarm(s)"
            + (f"; missed: {', '.join(score['missed'])}." if score["missed"] else ".")
        )
    st.plotly_chart(plots.detection_timeline(sound.waveform, SAMPLE_RATE, stream, truth=truth), key="try_timeline")
    clips.play(sound.waveform, SAMPLE_RATE)
    st.caption(
        f"Grey bands: windows the gate keeps quiet (nothing {cfg.gate_db:g} dB above the noise floor of "
        f"{stream.floor_db:.0f} dBFS, or only a blip shorter than 50 ms). A word fires where its smoothed "
        f"probability crosses {100 * cfg.threshold:.0f} %, at the best-centred window; then nothing fires for "
        f"{1000 * cfg.refractory:.0f} ms."
    )
    if not found:
        quiet = stream.smoothed.masked_fill(stream.active[:, None], 0.0)  # what the gate ignored as too quiet
        best = int(quiet.max(dim=0).values.argmax()) if quiet.numel() else 0
        if quiet.numel() and float(quiet[:, best].max()) >= cfg.threshold:
            st.info(f"“{stream.labels[best]}” reached {100 * float(quiet[:, best].max()):.0f} %, but only in windows the "
                    f"gate ignored as too quiet (the grey bands): lower the gate (now {cfg.gate_db:g} dB) or speak louder.")  # fmt: skip
        else:
            st.info(f"No word reached {100 * cfg.threshold:.0f} %. Try a lower threshold or gate, or speak louder.")
        return
    t1, t2 = st.columns([1.3, 1], gap="medium")
    t1.dataframe(ui_try.detections_table(stream), hide_index=True, width="stretch")
    with t2:
        pick = st.selectbox("Listen to a detection", range(len(found)), key="try_listen",
                            format_func=lambda i: f"{found[i].word} at {found[i].start:.2f} s")  # fmt: skip
        clips.play(ui_try.snippet(sound.waveform, found[pick].start, found[pick].end), SAMPLE_RATE)
        st.download_button("Detections as JSON", json.dumps(stream.to_list(), indent=1), "detections.json",
                           "application/json", icon=":material/download:", key="try_json")  # fmt: skip


def listen() -> None:
    data, name, truth = pick_input()
    if data is None:
        st.info("Waiting for audio: upload a file, record one, or make a test recording.")
        return
    cfg = stream_config()
    try:
        with st.spinner("Listening…"):
            result = ui_try.cached_analysis(data, name, info, model, cfg, threshold, ss.get("try_mode") or "auto")
    except KwsError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    with st.container(border=True):
        st.markdown("**What happened to your audio on its way in**")
        st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(result.steps, 1)))
        for note in result.sound.notes:
            st.warning(note, icon=":material/warning:")
    if result.kind == "clip":
        show_clip(result)
    else:
        show_stream(result, cfg, truth)
    file_name = name if "." in name[-5:] else "recording.wav"  # the microphone's take is a WAV
    code_view.show(lambda: snippets.try_it_code(info.path, file_name, result.kind, threshold, cfg.to_dict(),
                                        long=(ui_try.recording_seconds(data) or 0.0) > ui_try.LONG_S),
                   key="try_code", download=(data, file_name) if len(data) <= 20 * 2**20 else None)  # fmt: skip


listen()

# -- export -------------------------------------------------------------------------------------------
with st.expander("Export this model (TorchScript or ONNX)", icon=":material/download:"):
    ui_try.export_panel(info)
