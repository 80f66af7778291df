"""Using a trained model: read any recording, convert it the way the model needs, classify it.

Two steps, each explainable on the Try-it page:

1. :func:`read_audio` decodes a file (WAV, FLAC or OGG; any sample rate, mono or stereo), refuses
   what cannot be used with a sentence that says why (not audio, empty, truncated, silent,
   NaN/inf samples, an odd sample rate, too big or too long), and converts the rest to what every
   KWS Studio model takes in: **mono at 16 kHz**. It returns an :class:`AudioInput` that records each conversion.
2. :class:`Predictor` wraps a run's best checkpoint with its exact front end
   (:func:`kwscore.evaluation.load_run_model`): ``Resample`` to 8 kHz for the M-models, the stored
   :class:`~kwscore.features.MelFrontEnd` for the CNN. It classifies one clip
   (:meth:`Predictor.predict`) or a long recording (:meth:`Predictor.detect`, via
   :mod:`kwscore.streaming`).

Example::

    sound = read_audio(Path("hello.flac").read_bytes(), "hello.flac")
    print(sound.describe())          # "stereo -> mono, 44100 Hz -> 16000 Hz"
    predictor = Predictor.from_run("~/.kws-studio/runs/20261123-210930-cnn-a1b2c3")
    print(predictor.predict(sound.waveform).top)
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.errors import KwsError
from kwscore.features import FeatureConfig
from kwscore.streaming import StreamConfig, StreamResult, detect
from kwscore.training import probabilities

#: What a recording may be (the dashboard's upload limit is the same 25 MB).
MAX_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 60.0
MIN_SECONDS = 0.1
MIN_SAMPLE_RATE = 8000
#: Up to this long, a recording is one clip (classified once); longer ones are scanned.
CLIP_MAX_SECONDS = 1.5
#: A peak below this (about -66 dBFS) is silence.
SILENCE_PEAK = 5e-4
#: Below this top-1 probability the page says "not confident".
CONFIDENT = 0.5
FORMATS = ("wav", "flac", "ogg")


@dataclass
class AudioInput:
    """A decoded recording, converted to mono 16 kHz, and what was done to it."""

    waveform: torch.Tensor  #: [1, time] float32 at 16 kHz, mono
    name: str
    format: str  #: e.g. "WAV (PCM_16)"
    sample_rate: int  #: the file's own rate
    channels: int
    duration: float  #: seconds
    n_bytes: int
    original: torch.Tensor  #: [channels, time] as decoded, before any conversion
    steps: list[str] = field(default_factory=list)  #: the conversions, in words
    notes: list[str] = field(default_factory=list)  #: warnings worth showing (truncated, clipped)

    @property
    def is_clip(self) -> bool:
        """Short enough to be classified as one clip (else: streaming detection)."""
        return self.duration <= CLIP_MAX_SECONDS

    def describe(self) -> str:
        return "; ".join(self.steps) if self.steps else "already mono at 16 kHz: no conversion"


def _wav_declared_bytes(data: bytes) -> int | None:
    """The size the WAV header promises for its samples (RIFF ``data`` chunk), or None."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    i = 12
    while i + 8 <= len(data):
        chunk, size = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
        if chunk == b"data":
            return size if size not in (0, 0xFFFFFFFF) else None  # streamed WAVs leave it unset
        i += 8 + size + (size & 1)
    return None


def _describe_format(info) -> str:
    return f"{info.format} ({info.subtype})" if info.subtype else str(info.format)


def read_audio(
    data: bytes,
    name: str = "recording",
    *,
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
) -> AudioInput:
    """Decode and check an uploaded/recorded file, then convert it to mono 16 kHz.

    Raises :class:`KwsError` with a sentence a student can act on for: an empty file, a file over
    ``max_bytes`` or ``max_seconds``, something that is not WAV/FLAC/OGG audio, a damaged or
    truncated file with nothing readable, NaN/inf samples, silence (also stereo whose channels
    cancel out), a rate below 8 kHz or above 192 kHz, or a clip shorter than 0.1 s. A truncated
    file that still holds audio is used, with a note.
    """
    n_bytes = len(data) if data is not None else 0
    info = check_header(data, name, n_bytes, max_bytes)
    sr, channels = int(info.samplerate), int(info.channels)
    if info.frames and info.frames / sr > max_seconds + 0.05:
        raise KwsError(
            f"{name} lasts {info.frames / sr:.1f} s: the limit is {max_seconds:.0f} s. "
            "Cut it into shorter pieces."
        )
    try:
        arr, _ = audio.decode(io.BytesIO(data), name)  # [time, channels], only what is there
    except (sf.LibsndfileError, RuntimeError, TypeError, MemoryError) as exc:
        raise KwsError(
            f"{name} could not be decoded ({_short(exc)}): it is probably damaged or cut short. "
            "Record or export it again."
        ) from exc
    notes = []
    declared = _wav_declared_bytes(data)
    expected = declared // max(1, (info.channels * _bytes_per_sample(info.subtype))) if declared else None
    if expected and arr.shape[0] < expected:
        notes.append(
            f"The file is truncated: its header promises {expected / sr:.2f} s but only "
            f"{arr.shape[0] / sr:.2f} s of samples are there. Using what is there."
        )
    if arr.shape[0] == 0:
        raise KwsError(f"{name} contains no samples (0 s of audio). Record again, or upload another file.")
    bad = audio.count_nonfinite(arr)
    if bad:
        raise audio.nonfinite_error(name, bad)
    duration = arr.shape[0] / sr
    if duration < MIN_SECONDS:
        raise KwsError(f"{name} lasts only {duration * 1000:.0f} ms: a word needs at least {MIN_SECONDS:.1f} s.")
    if duration > max_seconds + 0.05:
        raise KwsError(f"{name} lasts {duration:.1f} s: the limit is {max_seconds:.0f} s. Cut it into shorter pieces.")
    peak = float(np.abs(arr).max())
    if peak < SILENCE_PEAK:
        raise KwsError(
            f"{name} is silent (loudest sample {20 * math.log10(max(peak, 1e-9)):.0f} dBFS). Check the "
            "microphone, speak louder, or upload another file."
        )
    if channels > 1 and float(np.abs(arr.mean(axis=1)).max()) < SILENCE_PEAK:
        raise KwsError(
            f"{name} is silent once its {channels} channels are mixed to mono: they cancel out (one is the "
            "other upside down, e.g. a miswired microphone). Record it again in mono, or export one channel."
        )
    if peak > 1.0:  # float files may exceed full scale
        notes.append(f"Samples reach {peak:.2f}, beyond full scale (1.0): they were scaled down to fit.")
        arr = arr / peak
    elif float((np.abs(arr) >= 0.999).mean()) > 0.001:
        notes.append("The recording is clipped (too loud): the model may hear it distorted.")
    original = torch.from_numpy(np.ascontiguousarray(arr.T))  # [channels, time]
    waveform, steps = to_model_input(original, sr)
    return AudioInput(waveform, name, _describe_format(info), sr, channels, duration, n_bytes, original, steps, notes)


def check_header(source, name: str, n_bytes: int, max_bytes: int | None = None):
    """Check what a file's header promises, before any sample is decoded; returns soundfile's info.

    ``source``: the file's bytes or its path. Raises :class:`KwsError` with one sentence a student can act
    on for: an empty file, a file over ``max_bytes`` (no limit if None), something that is not WAV/FLAC/OGG
    audio, a rate below 8 kHz or above 192 kHz, too many channels. The one header check of uploads,
    recordings and recordings of any length (:func:`kwscore.longaudio.open_recording`).
    """
    if n_bytes == 0:
        raise KwsError(f"{name} is empty (0 bytes): there is no audio in it. Record again, or use another file.")
    if max_bytes is not None and n_bytes > max_bytes:
        raise KwsError(f"{name} is {_size(n_bytes)}: the limit is {_size(max_bytes)}. Cut it shorter first.")
    try:
        info = sf.info(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise KwsError(
            f"{name} is not an audio file KWS Studio can read ({_short(exc)}). "
            "Use WAV, FLAC or OGG (MP3 and M4A are not supported)."
        ) from exc
    sr, channels = int(info.samplerate), int(info.channels)
    if sr < MIN_SAMPLE_RATE:
        raise KwsError(
            f"{name} is sampled at {sr} Hz: too low for speech (at {MIN_SAMPLE_RATE} Hz and above "
            "it keeps frequencies up to 4 kHz). Record it again at 16 kHz or more."
        )
    audio.check_rate(sr, name)  # and not above 192 kHz
    if not 1 <= channels <= audio.MAX_CHANNELS:
        raise KwsError(f"{name} has {channels} channels: KWS Studio reads 1 to {audio.MAX_CHANNELS}.")
    return info


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def _short(exc: Exception) -> str:
    text = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
    return text.strip().rstrip(".")[:120]


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 2)  # fmt: skip


def to_model_input(waveform: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, list[str]]:
    """[channels, time] at any rate -> ([1, time'] mono at 16 kHz, the conversions in words)."""
    steps = []
    if waveform.shape[0] > 1:
        kind = "stereo" if waveform.shape[0] == 2 else f"{waveform.shape[0]} channels"
        steps.append(f"{kind} → mono (the average of the {waveform.shape[0]} channels)")
        waveform = audio.to_mono(waveform)
    if sample_rate != SAMPLE_RATE:
        steps.append(
            f"{sample_rate:,} Hz → {SAMPLE_RATE:,} Hz (band-limited {audio.resampling_method(sample_rate, SAMPLE_RATE)} "
            "resampling, "
            f"{'low-pass filtered first: nothing above 8 kHz is kept' if sample_rate > SAMPLE_RATE else 'no new high frequencies appear'})"
        )
        waveform = audio.resample(waveform.contiguous(), sample_rate, SAMPLE_RATE)
    return waveform.contiguous(), steps


def loudest_second(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE, seconds: float = 1.0) -> tuple[torch.Tensor, float]:
    """The ``seconds``-long stretch of ``waveform`` [1, time] with the most energy, and its start (s).

    When several stretches hold (almost) all of it — a word shorter than the window — the middle
    one is taken, which centres the word. Shorter recordings are zero-padded at the end (start 0).
    This is how a 1.3-s recording becomes the 1-s clip a model takes.
    """
    n = round(seconds * sample_rate)
    if waveform.shape[-1] <= n:
        return audio.fix_length(waveform, n), 0.0
    energy = torch.nn.functional.pad(waveform[0].double().pow(2).cumsum(0), (1, 0))
    sums = (energy[n:] - energy[:-n])[:: sample_rate // 100]  # every 10 ms
    near_best = torch.nonzero(sums >= 0.99 * sums.max()).flatten()
    best = int(near_best[len(near_best) // 2]) * (sample_rate // 100)
    return waveform[:, best : best + n], best / sample_rate


# --------------------------------------------------------------------------------------------
# A run, ready to predict
# --------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """One clip's answer: probabilities of every class, best first in :attr:`top`."""

    labels: list[str]
    probs: torch.Tensor  #: [classes]
    threshold: float = CONFIDENT

    @property
    def top(self) -> list[tuple[str, float]]:
        order = torch.argsort(self.probs, descending=True).tolist()
        return [(self.labels[i], float(self.probs[i])) for i in order]

    @property
    def word(self) -> str:
        return self.top[0][0]

    @property
    def probability(self) -> float:
        return self.top[0][1]

    @property
    def confident(self) -> bool:
        return self.probability >= self.threshold


class Predictor:
    """A run's best model with its own front end: 16 kHz clips in, class probabilities out."""

    def __init__(self, model: nn.Module, transform: nn.Module, labels: list[str], config: dict, run_dir: Path | None = None):
        self.model, self.transform, self.labels, self.config = model.eval(), transform.eval(), labels, config
        self.run_dir = run_dir

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, which: str = "best") -> Predictor:
        from kwscore.evaluation import load_run_model

        run_dir = Path(run_dir).expanduser()
        model, transform, labels, config = load_run_model(run_dir, which)
        return cls(model, transform, labels, config, run_dir)

    # -- what the model listens at ------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return str(self.config.get("model", getattr(self.model, "name", "?")))

    @property
    def representation(self) -> str:
        """What the network reads: ``"mel"``, ``"waveform"`` or ``"embedding"`` (:data:`kwscore.models.MODEL_INFO`)."""
        from kwscore.models import representation

        return representation(self.model_name)

    @property
    def feature_config(self) -> FeatureConfig | None:
        """The Mel front end of a Mel model (None for waveform models)."""
        mel = [m for m in self.transform.modules() if hasattr(m, "config") and isinstance(m.config, FeatureConfig)]
        return mel[0].config if mel else None

    @property
    def model_rate(self) -> int:
        """The rate the network itself listens at (8000 for M5 with its recipe)."""
        for m in self.transform.modules():
            if hasattr(m, "new_freq"):
                return int(m.new_freq)
        fc = self.feature_config
        return fc.sample_rate if fc else SAMPLE_RATE

    def front_end_steps(self) -> list[str]:
        """What happens inside the model's front end, in words."""
        steps = []
        if self.model_rate != SAMPLE_RATE:
            steps.append(f"{SAMPLE_RATE:,} Hz → {self.model_rate:,} Hz inside the front end ({self.model_name} listens at "
                         f"{self.model_rate / 1000:g} kHz: nothing above {self.model_rate / 2000:g} kHz reaches it)")  # fmt: skip
        fc = self.feature_config
        if fc is not None:
            frames = fc.frames_for(round(fc.sample_rate))
            steps.append(f"dB Mel spectrogram: {fc.n_mels} Mel bands × {frames} frames "
                         f"({1000 * fc.win_length / fc.sample_rate:g} ms window, {1000 * fc.hop_length / fc.sample_rate:g} ms hop"
                         f"{', normalised' if fc.normalize else ''})")  # fmt: skip
        if self.representation == "embedding":  # kwscore.models.EmbeddingKWS: the front end is inside the model
            high = getattr(self.model, "high_band", None)
            steps.append("inside the model: the pretrained speech embedding's own log-Mel frames (32 bands up to "
                         "3.8 kHz, 10-ms hop) → 96 numbers every 80 ms"
                         + (f", next to {high.mel.n_mels} Mel bands from 3.8 to 8 kHz" if high is not None else ""))  # fmt: skip
        return steps

    # -- classify -----------------------------------------------------------------------------
    def probabilities(self, windows: torch.Tensor) -> torch.Tensor:
        """[batch, 1, 16000] 16 kHz clips -> [batch, classes] probabilities (softmax)."""
        return probabilities(self.model, windows, self.transform)

    def model_input(self, clip: torch.Tensor) -> torch.Tensor:
        """What the network receives for a 1-s clip [1, 16000]: ``[1, time@model rate]`` for the
        M-models, ``[1, n_mels, frames]`` (the dB Mel spectrogram) for the CNN."""
        with torch.inference_mode():
            return self.transform(audio.fix_length(clip, SAMPLE_RATE).unsqueeze(0))[0]

    def predict(self, clip: torch.Tensor, threshold: float = CONFIDENT) -> Prediction:
        """Classify one clip [1, time] at 16 kHz (cut or zero-padded to 1 s)."""
        x = audio.fix_length(clip, SAMPLE_RATE).unsqueeze(0)
        return Prediction(list(self.labels), self.probabilities(x)[0], threshold)

    def detect(self, waveform: torch.Tensor, cfg: StreamConfig | None = None, progress=None) -> StreamResult:
        """Streaming detection over a long recording [1, time] at 16 kHz."""
        return detect(waveform, SAMPLE_RATE, self.probabilities, self.labels, cfg, progress=progress)


def run_test_accuracy(run_dir: Path) -> float | None:
    """The run's test accuracy from report.json (None when it has none)."""
    from kwscore import jobs

    report = jobs.read_report(run_dir) or {}
    value = report.get("test_accuracy", report.get("accuracy"))
    return float(value) if isinstance(value, int | float) else None


def finished_runs(runs_dir=None) -> list:
    """Runs with a best checkpoint, best test accuracy first (then newest); :class:`RunInfo` list."""
    from kwscore import jobs

    infos = [r for r in jobs.list_runs(runs_dir) if r.state == "succeeded" and (Path(r.path) / "best.pt").is_file()]
    return sorted(infos, key=lambda r: (-(r.test_accuracy if r.test_accuracy is not None else -1.0), -(r.created or 0.0)))
