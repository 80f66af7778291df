"""The logic behind the Try-it page: pick a finished run, analyse a recording, export the model.

:func:`analyse` does everything that happens after a file arrives (decode, check, convert, classify
one clip or scan a long recording) and returns an :class:`Analysis` the page only has to draw; it
raises :class:`~kwscore.errors.KwsError` with a readable message for bad input. It is a plain
function so that it can be tested and reused without a browser.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
import torch

from dashboard import run_views, ui
from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.errors import KwsError
from kwscore.inference import CONFIDENT, AudioInput, Prediction, Predictor, loudest_second, read_audio
from kwscore.labels import display_label, is_keyword
from kwscore.streaming import StreamConfig, StreamResult


def finished_runs() -> list:
    """Finished runs that have a best checkpoint, best test accuracy first (then newest)."""
    runs = [r for r in run_views.all_runs() if r.state == "succeeded" and (Path(r.path) / "best.pt").is_file()]
    return sorted(runs, key=lambda r: (-(r.test_accuracy if r.test_accuracy is not None else -1.0), -(r.created or 0.0)))


def finished_runs_or_stop() -> list:
    """:func:`finished_runs`; with none, a message and a link to Train, and the page stops there."""
    runs = finished_runs()
    if not runs:
        st.info("No finished training run yet: train a model first on the Train page (a CNN with its tuned "
                "recipe takes a few minutes; fewer epochs are quicker).")  # fmt: skip
        ui.page_link("train.py", "Go to Train", ":material/model_training:")
        st.stop()
    return runs


def predictor_or_stop(info):
    """:func:`predictor` for a run; a checkpoint that cannot be loaded shows its message and stops the page."""
    try:
        return predictor(info)
    except KwsError as exc:
        st.error(str(exc))
        st.stop()


def run_choice_label(info) -> str:
    """``cnn · 92.7 % test · synthetic · 8 commands · ae027b``."""
    acc = f"{100 * info.test_accuracy:.1f} % test" if info.test_accuracy is not None else "no test score"
    name = str((info.config or {}).get("name") or "")[:40]  # e.g. "Ready model (embedded data)"
    return (f"{name + ' · ' if name else ''}{info.model or '?'} · {acc} · {run_views.dataset_name(info.data, short=True)} · "
            f"{run_views.commands_text(info.commands)} · {run_views.short_id(info.run_id)}")  # fmt: skip


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _cached_predictor(run_path: str, mtime: float) -> Predictor:
    return Predictor.from_run(run_path)


def predictor(info) -> Predictor:
    """The run's best model with its front end (cached until best.pt changes). Raises KwsError."""
    path = Path(info.path)
    try:
        mtime = (path / "best.pt").stat().st_mtime
    except OSError as exc:
        raise KwsError(f"Run {info.run_id} has no best.pt any more ({exc.strerror}). Pick another run.") from exc
    return _cached_predictor(str(path), mtime)


@dataclass
class Analysis:
    """What the page draws for one recording."""

    sound: AudioInput
    kind: str  #: "clip" (one word, classified once) or "stream" (scanned with a sliding window)
    steps: list[str] = field(default_factory=list)  #: every conversion, in order, in words
    clip: torch.Tensor | None = None  #: [1, 16000] what the model classified (clip mode)
    clip_start: float = 0.0  #: where that second starts in the recording, s
    prediction: Prediction | None = None
    model_input: torch.Tensor | None = None  #: what the network received for the clip
    stream: StreamResult | None = None
    seconds: float = 0.0  #: time the model took (classification or the whole scan)

    @property
    def real_time_factor(self) -> float | None:
        """Processing time / audio duration for a scan (0.02 = 50× faster than real time)."""
        return self.seconds / self.sound.duration if self.kind == "stream" and self.sound.duration else None


#: The icon of each kind of :func:`verdict`.
VERDICT_ICONS = {"success": ":material/hearing:", "info": ":material/hearing_disabled:", "warning": ":material/help:"}


def verdict(p: Prediction) -> tuple[str, str]:
    """How the page announces one classified clip: ``("success" | "info" | "warning", text)``.

    A confident keyword is heard; a confident ``_silence_`` or ``_unknown_`` is a result too — *no
    keyword* — not a failure; below the threshold the model is not sure.
    """
    if p.confident:
        if is_keyword(p.word):
            return "success", f"Heard **{p.word}** ({100 * p.probability:.0f} %)."
        return "info", (f"**No keyword**: the model hears {display_label(p.word)} ({100 * p.probability:.0f} %), "
                        "none of its words.")  # fmt: skip
    runner_up = p.top[1] if len(p.top) > 1 else None
    return "warning", (
        f"**Not confident.** The best guess, *{display_label(p.word)}*, has only {100 * p.probability:.0f} % "
        f"(below {100 * p.threshold:.0f} %)"
        + (f"; next comes *{display_label(runner_up[0])}* with {100 * runner_up[1]:.0f} %." if runner_up else ".")
        + " Maybe the word is not one the model knows, or it was too quiet or noisy."
    )


def knows_text(labels: list[str]) -> str:
    """``Knows **8 words**: down, go, … and “no keyword” (another word, silence)``."""
    words = [label for label in labels if is_keyword(label)]
    others = [display_label(label) for label in labels if not is_keyword(label)]
    return f"Knows **{len(words)} words**: {', '.join(words)}" + (
        f", and *no keyword* ({', '.join(others)})" if others else "")


#: How a recording is analysed: by its length and content, or as the user says.
MODES = {"auto": "Automatic", "clip": "One word", "stream": "Streaming"}
#: "auto": a longer recording whose sound (silence trimmed) lasts at most this long is one word.
ONE_WORD_S = 1.0


def sound_seconds(waveform: torch.Tensor) -> float:
    """How long the sound in a 16 kHz recording lasts once leading/trailing silence is trimmed."""
    from kwscore.audio import trim_silence

    return trim_silence(waveform, SAMPLE_RATE, pad_ms=0.0).shape[-1] / SAMPLE_RATE


def default_threshold(info) -> float:
    """The run's stored streaming threshold (``kwscore stream-eval --store`` or the Runs page), kept
    within the slider's 0.3-0.95, else :data:`~kwscore.inference.CONFIDENT`."""
    from kwscore.streameval import stored_threshold

    stored = stored_threshold(info.path)
    return CONFIDENT if stored is None else round(min(max(stored, 0.3), 0.95), 2)


def upload_limit() -> int:
    """The largest upload in bytes: the server's ``server.maxUploadSize`` (MB), which a teacher sets
    in .streamlit/config.toml or with ``streamlit run ... --server.maxUploadSize 200``."""
    return int(st.get_option("server.maxUploadSize")) * 2**20


def recording_seconds(data: bytes) -> float | None:
    """How long a recording says it lasts (from its header; None when it has no readable header)."""
    import io

    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 and 0 < info.frames < 2**62 else None


def analyse_long(data: bytes, name: str, model: Predictor, cfg: StreamConfig | None = None,
                 progress=None) -> Analysis:  # fmt: skip
    """A recording of any length: read in blocks and scanned as it is read (:mod:`kwscore.longaudio`);
    only the 16 kHz mono audio it becomes is kept, to draw and play. ``progress(stage, done s, s)``."""
    from kwscore.longaudio import detect_recording, open_recording

    cfg = (cfg or StreamConfig()).validate()
    rec = open_recording(data, name, max_bytes=upload_limit(), progress=progress)
    kept: list[torch.Tensor] = []
    tic = time.perf_counter()
    result = detect_recording(rec, model, cfg, progress=progress, keep=kept)
    seconds = time.perf_counter() - tic
    waveform = torch.cat(kept, dim=1)
    sound = AudioInput(waveform, name, rec.format, rec.sample_rate, rec.channels, rec.duration, rec.n_bytes,
                       waveform, rec.steps, rec.notes)  # fmt: skip
    steps = [f"decoded {rec.format}: {rec.sample_rate:,} Hz, {rec.channels} channel(s), {rec.duration:.2f} s, "
             f"read {BLOCK_READ_S:g} s at a time", *rec.steps,
             f"cut into 1-s windows every {1000 * cfg.hop:.0f} ms: {len(result.times)} windows, each classified "
             "on its own, as the recording is read", *model.front_end_steps()]  # fmt: skip
    return Analysis(sound, "stream", steps, stream=result, seconds=seconds)


#: Recordings longer than this (s) are read block by block and scanned as a stream.
LONG_S = 60.0
BLOCK_READ_S = 10.0


def analyse(
    data: bytes,
    name: str,
    model: Predictor,
    cfg: StreamConfig | None = None,
    threshold: float = CONFIDENT,
    mode: str = "auto",
    progress=None,
) -> Analysis:
    """Decode ``data``, convert it to mono 16 kHz, then classify it as one word or run streaming
    detection over it. ``mode="auto"``: one word when the recording lasts at most 1.5 s, or when
    its sound (silence trimmed) lasts at most 1 s — someone said one word into the microphone;
    otherwise streaming. A recording over a minute is always streamed, read block by block
    (:func:`analyse_long`). Raises KwsError for bad input."""
    if mode not in MODES:
        raise KwsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if (recording_seconds(data) or 0.0) > LONG_S:
        return analyse_long(data, name, model, cfg, progress)
    sound = read_audio(data, name, max_seconds=LONG_S)
    steps = [f"decoded {sound.format}: {sound.sample_rate:,} Hz, "
             f"{'mono' if sound.channels == 1 else 'stereo' if sound.channels == 2 else f'{sound.channels} channels'}, "
             f"{sound.duration:.2f} s"]  # fmt: skip
    steps += sound.steps
    one_word = mode == "clip"
    if mode == "auto":
        one_word = sound.is_clip
        if not one_word:
            lasting = sound_seconds(sound.waveform)
            one_word = lasting <= ONE_WORD_S
            if one_word:
                steps.append(f"the sound lasts {lasting:.2f} s once the silence around it is trimmed: one word")
    if one_word:
        clip, start = loudest_second(sound.waveform)
        n = sound.waveform.shape[-1]
        if n < SAMPLE_RATE:
            steps.append(f"zero-padded from {n / SAMPLE_RATE:.2f} s to 1 s (the model takes exactly one second)")
        elif n > SAMPLE_RATE:
            steps.append(f"the loudest second, {start:.2f}–{start + 1:.2f} s, is cut out: the model takes exactly one second")
        steps += model.front_end_steps()
        tic = time.perf_counter()
        prediction = model.predict(clip, threshold)
        seconds = time.perf_counter() - tic
        return Analysis(sound, "clip", steps, clip, start, prediction, model.model_input(clip), seconds=seconds)
    cfg = (cfg or StreamConfig()).validate()
    steps.append(f"cut into 1-s windows every {1000 * cfg.hop:.0f} ms: {_n_windows(sound.duration, cfg)} windows, "
                 "each classified on its own")  # fmt: skip
    steps += model.front_end_steps()
    tic = time.perf_counter()
    result = model.detect(sound.waveform, cfg)
    return Analysis(sound, "stream", steps, stream=result, seconds=time.perf_counter() - tic)


def _n_windows(duration: float, cfg: StreamConfig) -> int:
    return 1 + max(0, -(-round((duration - cfg.window) * 1000) // round(cfg.hop * 1000)))


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@st.cache_resource(max_entries=8, show_spinner=False)
def _cached_analysis(key: str, _data: bytes, name: str, _model: Predictor, cfg: StreamConfig, threshold: float,
                     mode: str, _progress=None) -> Analysis:  # fmt: skip
    return analyse(_data, name, _model, cfg, threshold, mode, _progress)


def cached_analysis(data: bytes, name: str, info, model: Predictor, cfg: StreamConfig, threshold: float,
                    mode: str = "auto") -> Analysis:  # fmt: skip
    """:func:`analyse`, cached per (file content, run, settings): moving another widget is free.
    A long recording shows a progress bar while it is read and scanned."""
    key = f"{digest(data)}|{info.run_id}|{(Path(info.path) / 'best.pt').stat().st_mtime}"
    slot = st.empty()

    def progress(stage: str, done: float, total: float) -> None:
        verb = "Checking" if stage == "checking" else "Listening to"
        slot.progress(min(1.0, done / max(total, 1e-9)), text=f"{verb} the recording: {done:.0f} of {total:.0f} s")

    try:
        return _cached_analysis(key, data, name, model, cfg, threshold, mode, progress)
    finally:
        slot.empty()


def detections_table(result: StreamResult):
    import pandas as pd

    rows = [{"word": d.word, "start (s)": round(d.start, 2), "end (s)": round(d.end, 2), "score": round(d.score, 3)}
            for d in result.detections]  # fmt: skip
    return pd.DataFrame(rows, columns=["word", "start (s)", "end (s)", "score"])


def snippet(waveform: torch.Tensor, start: float, end: float, margin: float = 0.15) -> torch.Tensor:
    """The stretch ``start - margin`` to ``end + margin`` (s) of a 16 kHz waveform [1, time]."""
    a = max(0, round((start - margin) * SAMPLE_RATE))
    b = min(waveform.shape[-1], round((end + margin) * SAMPLE_RATE))
    return waveform[:, a:b]


def wav_of(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> bytes:
    return audio.wav_bytes(waveform, sample_rate)


def dataset_exists(root) -> bool:
    from kwscore.data.layout import dataset_folder, word_folders

    try:
        return bool(root) and dataset_folder(root).is_dir() and bool(word_folders(root))
    except OSError:
        return False


def noise_names(root) -> list[str]:
    """File names in the dataset's ``_background_noise_`` folder."""
    from kwscore.data.layout import noise_files

    try:
        return [p.name for p in noise_files(root)]
    except OSError:
        return []


def placed(truth: list[dict]) -> list:
    """Placed-word dicts (kept in session state) back to :class:`kwscore.streaming.Placed`."""
    from kwscore.streaming import Placed

    return [Placed(**w) for w in truth]


# -- export ------------------------------------------------------------------------------------------

EXPORT_FORMATS = {"onnx": "ONNX (runs in ONNX Runtime anywhere)", "torchscript": "TorchScript (PyTorch, LibTorch)"}


def export_panel(info) -> None:
    """Format choice, an Export button, then the parity check and a download of model + model.json."""
    from kwscore.export import existing_export, export_run

    st.markdown(
        "One file holding the **whole pipeline**: 1 s of 16 kHz mono audio `[batch, 16000]` in, class "
        "probabilities out — resampling or the Mel front end, the network and the softmax included. "
        "`model.json` beside it lists the labels and the front-end settings."
    )
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    fmt = c1.radio("Format", list(EXPORT_FORMATS), format_func=EXPORT_FORMATS.get, horizontal=True, key="try_export_fmt")
    done = existing_export(info.path, fmt)
    if c2.button("Export" if done is None else "Export again", icon=":material/build:", key="try_export",
                 width="stretch"):  # fmt: skip
        try:
            with st.spinner(f"Exporting to {fmt} and checking it against the checkpoint…"):
                done = export_run(info.path, fmt)
        except KwsError as exc:
            st.error(str(exc))
            return
    if done is None:
        st.caption("Exporting takes a few seconds (ONNX up to ~15 s on a busy machine).")
        return
    parity = done.metadata["parity"]
    st.success(
        f"`{done.path.name}` ({done.path.stat().st_size / 1024:.0f} KiB): it gives the checkpoint's probabilities "
        f"to within {parity['max_abs_diff']:.1e} on {parity['inputs']} test inputs (allowed {parity['tolerance']:g}).",
        icon=":material/verified:",
    )
    st.download_button(
        f"Download {done.path.name} + model.json (zip)", done.zip_bytes(), f"{info.run_id}-{fmt}.zip",
        "application/zip", icon=":material/download:", key="try_export_download",
    )  # fmt: skip
    st.code(done.metadata["usage"], language="python")
