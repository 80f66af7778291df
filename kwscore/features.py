"""From waveform to dB Mel spectrogram: the front end every 2D model here looks through.

A keyword-spotting CNN does not see samples; it sees a small image, ``n_mels × frames``:

1. **Frames.** Cut the clip into overlapping windows of ``win_length`` samples, one every
   ``hop_length`` samples. Speech is *quasi-stationary* over 10–30 ms (the vocal tract cannot change
   shape faster), so a 30 ms window sees one steady sound and a 10 ms hop follows the changes.
2. **Spectrum.** Taper each window (Hann) and take an ``n_fft``-point FFT: ``n_fft // 2 + 1``
   frequency bins, ``sample_rate / n_fft`` Hz apart. ``power=2`` keeps the energy ``|X|²``.
3. **Mel.** Sum the bins into ``n_mels`` triangular bands, equally spaced on the Mel scale: narrow
   at low frequencies, wide at high ones, roughly like the cochlea.
4. **Decibels.** ``10 · log10(energy)``, floored ``top_db`` below the loudest value: loudness is
   perceived logarithmically and the network trains better on a compressed range.
5. **Normalise (optional).** Subtract the clip's mean and divide by its standard deviation, so a
   quiet and a loud "yes" give the same picture.

Everything is built from ``torchaudio.transforms`` (``MelSpectrogram``, ``Spectrogram``,
``AmplitudeToDB``, ``Resample``), and :class:`MelFrontEnd` stays TorchScript- and ONNX-friendly so
that an exported model can carry its own front end.

Shapes follow torchaudio: waveforms are ``[..., time]``, spectrograms ``[..., freq, frames]``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T
from torch import nn

from kwscore.audio import SAMPLE_RATE, resample, resampler, sinc_problems  # noqa: F401 (resample: for the pages)
from kwscore.errors import KwsError, check_known_keys

#: Window functions we offer, by name (the name is what a config stores, so it stays JSON).
WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window}

#: Why frames are about 10 ms apart (shown next to the numbers in the Spectrogram lab).
WHY_10_MS = (
    "Speech is quasi-stationary over roughly 10-30 ms: the tongue, lips and vocal folds cannot "
    "change shape faster, so a 20-30 ms window sees one steady sound, and a new frame every 10 ms "
    "is frequent enough to follow every change (a short consonant lasts 20-50 ms) without wasting "
    "compute on near-identical frames."
)


# --------------------------------------------------------------------------------------------
# The configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that defines the Mel front end. Frozen, hashable, JSON round-trippable.

    The defaults are the classic keyword-spotting front end (TensorFlow's Speech Commands tutorial,
    "Hello Edge", Google's micro_speech):

    - ``win_length=480`` (30 ms): long enough to resolve the pitch harmonics of most voices, short
      enough that the sound inside is steady.
    - ``hop_length=160`` (10 ms): 100 frames per second, 101 frames for a 1-s clip (centre padding).
    - ``n_fft=512``: the next power of two above 480 (the FFT is fastest there); the 32 extra
      samples are zeros, giving 257 bins 31.25 Hz apart.
    - ``n_mels=40``: enough to keep formants apart, small enough for a tiny CNN: input 40 × 101.
      With ``n_fft=512`` no Mel band is empty up to 126 bands.
    - ``f_min=20``, ``f_max=8000``: from the bottom of hearing to Nyquist at 16 kHz
      (``f_max=None`` also means Nyquist).
    - ``window="hann"``, ``power=2.0`` (energy), ``top_db=80`` (16-bit audio has ~96 dB of range;
      anything 80 dB below the peak is noise floor).
    - ``normalize=True``: per-utterance mean/variance normalisation, so loudness does not matter.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 480
    hop_length: int = 160
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = 8000.0
    window: str = "hann"
    power: float = 2.0
    top_db: float | None = 80.0
    normalize: bool = True

    # -- derived quantities -------------------------------------------------------------------

    @property
    def nyquist(self) -> float:
        """Highest frequency a sampled signal can hold: ``sample_rate / 2``."""
        return self.sample_rate / 2

    @property
    def f_max_hz(self) -> float:
        """``f_max`` with ``None`` resolved to Nyquist."""
        return self.nyquist if self.f_max is None else float(self.f_max)

    @property
    def n_freqs(self) -> int:
        """Number of FFT bins of a one-sided spectrum: ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def frames_for(self, n_samples: int) -> int:
        """Frames for a clip of ``n_samples`` with centre padding: ``1 + n_samples // hop``."""
        return 1 + n_samples // self.hop_length

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-serialisable) of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Inverse of :meth:`to_dict`. Missing keys take their defaults; unknown keys are an error."""
        check_known_keys(cls, data, "feature setting")
        ints = {"sample_rate", "n_fft", "win_length", "hop_length", "n_mels"}
        clean = {k: (int(v) if k in ints and v is not None else v) for k, v in data.items()}
        return cls(**clean)

    # -- validation ---------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every mistake in this config, each as a sentence that says what to change (may be []).

        Empty Mel bands are *not* a mistake (torchaudio only warns, and its own defaults — 128
        bands at n_fft 400 — leave some empty): :func:`empty_bands_lesson` explains them instead.
        """
        return _basic_problems(self)

    def validate(self) -> FeatureConfig:
        """Raise :class:`KwsError` listing every problem; return ``self`` when all is well."""
        problems = self.problems()
        if problems:
            raise KwsError(" ".join(problems))
        return self

    def at_sample_rate(self, sample_rate: int) -> FeatureConfig:
        """The same front end in *milliseconds* at another sample rate (e.g. 8 kHz, the tutorial's M5).

        Window and hop keep their duration, ``n_fft`` becomes the next power of two ≥ the window,
        ``f_max`` is clipped to the new Nyquist.
        """
        if sample_rate <= 0:
            raise KwsError(f"sample_rate must be positive, got {sample_rate}. Use e.g. 8000 or 16000.")
        scale = sample_rate / self.sample_rate
        win = max(1, round(self.win_length * scale))
        n_fft = max(_next_pow2(win), _next_pow2(round(self.n_fft * scale)))
        f_max = None if self.f_max is None else min(float(self.f_max), sample_rate / 2)
        return replace(
            self,
            sample_rate=int(sample_rate),
            win_length=win,
            hop_length=max(1, round(self.hop_length * scale)),
            n_fft=n_fft,
            f_max=f_max,
        )


def _basic_problems(c: FeatureConfig) -> list[str]:
    """Checks that need no filterbank: signs, orderings, names."""
    out: list[str] = []
    if c.sample_rate <= 0:
        out.append(f"sample_rate must be positive, got {c.sample_rate}. Speech Commands is 16000 Hz.")
        return out  # everything else is measured against the sample rate
    if c.n_fft < 2:
        out.append(f"n_fft must be at least 2, got {c.n_fft}. Use a power of two such as 512.")
    if c.win_length < 1:
        out.append(f"win_length must be at least 1 sample, got {c.win_length}. Try 480 (30 ms).")
    elif c.win_length > c.n_fft:
        out.append(
            f"win_length ({c.win_length}) is longer than n_fft ({c.n_fft}): the FFT cannot hold the "
            f"whole window. Raise n_fft to {_next_pow2(c.win_length)} or shorten the window."
        )
    if c.hop_length < 1:
        out.append(f"hop_length must be at least 1 sample, got {c.hop_length}. Try 160 (10 ms).")
    elif c.win_length >= 1 and c.hop_length > c.win_length:
        out.append(
            f"hop_length ({c.hop_length}) is longer than win_length ({c.win_length}): samples "
            "between windows would never be looked at. Use a hop at most the window length "
            "(typically a third to a half of it)."
        )
    if c.n_mels < 1:
        out.append(f"n_mels must be at least 1, got {c.n_mels}. KWS models use 40 to 64.")
    if c.f_min < 0:
        out.append(f"f_min must be 0 Hz or more, got {c.f_min}. Try 20 Hz.")
    if c.f_max is not None and c.f_max > c.nyquist:
        out.append(
            f"f_max ({c.f_max:g} Hz) is above the Nyquist frequency ({c.nyquist:g} Hz) of "
            f"{c.sample_rate} Hz audio: nothing exists up there. Set f_max to {c.nyquist:g} or lower."
        )
    if c.f_min >= c.f_max_hz:
        out.append(
            f"f_min ({c.f_min:g} Hz) must be below f_max ({c.f_max_hz:g} Hz). Lower f_min or raise f_max."
        )
    if c.window not in WINDOWS:
        out.append(f"Unknown window {c.window!r}. Choose one of {sorted(WINDOWS)}.")
    if c.power not in (1.0, 2.0):
        out.append(
            f"power must be 1 (magnitude) or 2 (energy), got {c.power}. Use 2 for a power spectrogram."
        )
    if c.top_db is not None and c.top_db <= 0:
        out.append(
            f"top_db must be positive (the dB range kept below the peak), got {c.top_db}. "
            "Use 80, or None for no floor."
        )
    return out


def empty_bands_lesson(config: FeatureConfig) -> str | None:
    """The empty-filter warning as a lesson, or None when every Mel band catches an FFT bin.

    ``"128 bands at n_fft 400 leave 3 bands empty: ..."`` — torchaudio warns about the same thing
    ("At least one mel filterbank has all zero values"); the empty rows stay at the dB floor, so
    the model gets rows that carry nothing.
    """
    c = config
    if _basic_problems(c):
        return None
    empty = empty_mel_bands(c)
    if not empty:
        return None
    advice = []
    max_mels = max_valid_n_mels(c)
    if max_mels >= 1:
        advice.append(f"n_mels ≤ {max_mels}")
    n_fft = _next_pow2(c.n_fft + 1)
    while n_fft <= 8192 and empty_mel_bands(replace(c, n_fft=n_fft)):
        n_fft *= 2
    if n_fft <= 8192:
        advice.append(f"n_fft ≥ {n_fft}")
    return (
        f"{c.n_mels} bands at n_fft {c.n_fft} leave {empty} band{'s' if empty > 1 else ''} empty: the FFT "
        f"bins are {c.sample_rate / c.n_fft:g} Hz apart, wider than the narrowest (lowest) Mel bands, so "
        f"no bin falls inside them and those rows stay at the dB floor. It still trains (torchaudio only "
        f"warns); every band catches a bin with {' or '.join(advice)}."
    )


# --------------------------------------------------------------------------------------------
# Presets: torchaudio's defaults and the classic keyword-spotting front end
# --------------------------------------------------------------------------------------------

#: Named front ends. ``torchaudio``: ``T.MelSpectrogram()`` with no arguments (n_fft 400, window
#: 400 = n_fft, hop 200 = window // 2, 128 Mel bands, 0 Hz to Nyquist), the lab's "first just use
#: the default parameters". ``classic``: :class:`FeatureConfig`'s defaults (512/480/160, 40 bands).
#: Both keep the lab's dB floor (``AmplitudeToDB(top_db=80)``) and per-clip normalisation.
FEATURE_PRESETS: dict[str, FeatureConfig] = {}
PRESET_TITLES = {
    "torchaudio": "torchaudio's defaults (n_fft 400, hop 200, 128 Mel)",
    "classic": "classic KWS, 40 bands (n_fft 512, 30 ms / 10 ms)",
}


def _preset_key(c: FeatureConfig) -> tuple:
    return (c.sample_rate, c.n_fft, c.win_length, c.hop_length, c.n_mels, float(c.f_min), c.f_max_hz,
            c.window, float(c.power), c.top_db, c.normalize)  # fmt: skip


def preset_name(config: FeatureConfig) -> str | None:
    """The preset ``config`` is (``"torchaudio"``, ``"classic"``), or None for custom settings."""
    key = _preset_key(config)
    return next((name for name, c in FEATURE_PRESETS.items() if _preset_key(c) == key), None)


def feature_preset(name: str) -> FeatureConfig:
    """A named front end (see :data:`FEATURE_PRESETS`)."""
    if name not in FEATURE_PRESETS:
        raise KwsError(f"Unknown front-end preset {name!r}. Choose one of: {', '.join(FEATURE_PRESETS)}.")
    return FEATURE_PRESETS[name]


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


# --------------------------------------------------------------------------------------------
# The Mel filterbank and its empty bands
# --------------------------------------------------------------------------------------------


def _fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    with warnings.catch_warnings():  # we count empty bands ourselves and explain them
        warnings.simplefilter("ignore", UserWarning)
        return AF.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate)


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """The triangular Mel filters, ``[n_freqs, n_mels]``: column ``m`` weights each FFT bin."""
    c = config
    return _fbanks(c.n_freqs, float(c.f_min), c.f_max_hz, c.n_mels, c.sample_rate)


def empty_mel_bands(config: FeatureConfig) -> int:
    """How many Mel bands contain no FFT bin at all (an all-zero filter: a dead input row)."""
    return int((mel_filterbank(config).sum(dim=0) == 0).sum())


def max_valid_n_mels(config: FeatureConfig, upper: int = 256) -> int:
    """Largest ``n_mels`` (≤ ``upper``) with no empty band, for this n_fft / f_min / f_max."""
    c = config
    return _max_valid_n_mels(c.n_freqs, float(c.f_min), c.f_max_hz, c.sample_rate, upper)


@lru_cache(maxsize=256)
def _max_valid_n_mels(n_freqs: int, f_min: float, f_max: float, sample_rate: int, upper: int) -> int:
    def ok(n: int) -> bool:
        return not (_fbanks(n_freqs, f_min, f_max, n, sample_rate).sum(dim=0) == 0).any()

    if ok(upper):
        return upper
    good, bad = 0, upper  # more bands -> narrower bands -> more empty ones: bisect the boundary
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    while good > 0 and not ok(good):  # guard against a non-monotonic corner case
        good -= 1
    return good


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK Mel scale (torchaudio's default): ``2595 · log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_centre_hz(config: FeatureConfig) -> np.ndarray:
    """Centre frequency (Hz) of each Mel band, ``[n_mels]`` (the y axis of a Mel plot)."""
    points = np.linspace(hz_to_mel(config.f_min), hz_to_mel(config.f_max_hz), config.n_mels + 2)
    return mel_to_hz(points[1:-1])


def fft_bin_hz(config: FeatureConfig) -> np.ndarray:
    """Frequency (Hz) of each FFT bin, ``[n_freqs]`` (the y axis of a linear spectrogram)."""
    return np.arange(config.n_freqs) * config.sample_rate / config.n_fft


def frame_times(config: FeatureConfig, n_frames: int) -> np.ndarray:
    """Centre time (s) of each frame, ``[n_frames]``: with centre padding frame ``i`` is at ``i·hop``."""
    return np.arange(n_frames) * config.hop_length / config.sample_rate


# --------------------------------------------------------------------------------------------
# The front end as a module
# --------------------------------------------------------------------------------------------


class MelFrontEnd(nn.Module):
    """Waveform -> (normalised) dB Mel spectrogram, built from torchaudio transforms.

    Shapes:
        ``[batch, 1, time]`` -> ``[batch, 1, n_mels, frames]``
        ``[1, time]``        -> ``[1, n_mels, frames]``

    with ``frames = 1 + time // hop_length``. ``top_db`` is applied per example, so a batch gives
    exactly what each clip gives alone. TorchScript (``torch.jit.script``) and tracing both work.
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        c = (config or FeatureConfig()).validate()
        self.config = c
        with warnings.catch_warnings():  # empty Mel bands are allowed: empty_bands_lesson explains them
            warnings.filterwarnings("ignore", "At least one mel filterbank", UserWarning)
            self.mel = self._mel(c)
        self.to_db = T.AmplitudeToDB(stype="power" if c.power == 2.0 else "magnitude", top_db=c.top_db)
        self.normalize = bool(c.normalize)

    @staticmethod
    def _mel(c: FeatureConfig) -> T.MelSpectrogram:
        return T.MelSpectrogram(
            sample_rate=c.sample_rate,
            n_fft=c.n_fft,
            win_length=c.win_length,
            hop_length=c.hop_length,
            f_min=float(c.f_min),
            f_max=c.f_max_hz,
            n_mels=c.n_mels,
            window_fn=WINDOWS[c.window],
            power=float(c.power),
            center=True,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = self.to_db(self.mel(waveform))
        if self.normalize:
            spec = normalize_utterance(spec)
        return spec


def normalize_utterance(spec: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance over the last two dims (freq, frames), per example. Shape kept."""
    mean = spec.mean(dim=(-2, -1), keepdim=True)
    std = spec.std(dim=(-2, -1), keepdim=True)
    return (spec - mean) / (std + eps)


@lru_cache(maxsize=16)
def front_end(config: FeatureConfig) -> MelFrontEnd:
    """A cached, eval-mode :class:`MelFrontEnd` per config (building one costs ~1 ms)."""
    return MelFrontEnd(config).eval()


# --------------------------------------------------------------------------------------------
# A model's whole input transform, from a JSON description
# --------------------------------------------------------------------------------------------


def transform_config(sample_rate: int, features: FeatureConfig | None, clip_seconds: float = 1.0) -> dict:
    """The JSON description of a front end, stored in every checkpoint as ``transform_config``.

    ``{"input_sample_rate": 16000, "sample_rate": 8000, "features": None, "clip_seconds": 1.0}``
    means: clips arrive at 16 kHz, are cut/padded to 1 s, resampled to 8 kHz and fed as waveforms.
    With ``features`` (a :class:`FeatureConfig` dict) a Mel front end follows.
    """
    return {
        "input_sample_rate": SAMPLE_RATE,
        "sample_rate": int(sample_rate),
        "features": None if features is None else features.to_dict(),
        "clip_seconds": float(clip_seconds),
    }


def build_transform(config: dict) -> nn.Module:
    """A :func:`transform_config` dict -> the module ``[batch, 1, time@16k] -> model input``.

    ``Resample`` (when the model's rate differs from 16 kHz) then ``MelFrontEnd`` (Mel models);
    in eval mode, ready for inference.
    """
    if not isinstance(config, dict):
        raise KwsError(f"This model's front end cannot be built: its settings are a {type(config).__name__}, not a dict.")
    steps: list[nn.Module] = []
    rates = config.get("input_sample_rate"), config.get("sample_rate")
    problems = sinc_problems(*rates)
    if problems:  # a damaged or foreign checkpoint: never build a gigabyte-sized sinc kernel
        raise KwsError(f"This model's front end cannot be built: {problems[0]}")
    if rates[0] != rates[1]:
        steps.append(T.Resample(int(rates[0]), int(rates[1])))
    if config.get("features") is not None:
        steps.append(MelFrontEnd(FeatureConfig.from_dict(config["features"])))
    return nn.Sequential(*steps).eval()


def _as_clip(waveform: torch.Tensor) -> torch.Tensor:
    """Accept ``[time]`` or ``[1, time]``; return ``[1, time]`` float32."""
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2 or waveform.shape[0] != 1:
        raise KwsError(
            f"Expected one mono clip shaped [time] or [1, time], got {tuple(waveform.shape)}. "
            "Average the channels first (kwscore.audio.to_mono)."
        )
    return waveform.to(torch.float32)


def mel_db(waveform: torch.Tensor, config: FeatureConfig | None = None) -> torch.Tensor:
    """dB Mel spectrogram of one clip, ``[time]`` or ``[1, time]`` -> ``[n_mels, frames]``."""
    with torch.inference_mode():
        return front_end(config or FeatureConfig())(_as_clip(waveform))[0]


@lru_cache(maxsize=16)
def _linear_front_end(config: FeatureConfig) -> nn.Module:
    c = config.validate()
    return nn.Sequential(
        T.Spectrogram(
            n_fft=c.n_fft,
            win_length=c.win_length,
            hop_length=c.hop_length,
            window_fn=WINDOWS[c.window],
            power=float(c.power),
            center=True,
        ),
        T.AmplitudeToDB(stype="power" if c.power == 2.0 else "magnitude", top_db=c.top_db),
    ).eval()


def linear_spectrogram_db(waveform: torch.Tensor, config: FeatureConfig | None = None) -> torch.Tensor:
    """dB spectrogram on the *linear* frequency axis, ``[time]``/``[1, time]`` -> ``[n_freqs, frames]``.

    Same window, hop, dB floor and normalisation as :func:`mel_db`, only without the Mel bands:
    put the two side by side to see what the Mel scale keeps and what it merges.
    """
    config = config or FeatureConfig()
    with torch.inference_mode():
        spec = _linear_front_end(config)(_as_clip(waveform))[0]
        return normalize_utterance(spec) if config.normalize else spec


# --------------------------------------------------------------------------------------------
# Resampling (the tutorial's M5 listens at 8 kHz, the tuned recipe at 16 kHz): resampler / resample live in kwscore.audio
# --------------------------------------------------------------------------------------------


def resampled_spectrogram(
    waveform: torch.Tensor,
    config: FeatureConfig | None = None,
    new_sr: int = 8000,
    kind: str = "linear",
) -> tuple[torch.Tensor, torch.Tensor, FeatureConfig]:
    """Resample a clip and show it: returns ``(waveform [1, time'], spec_db, config at new_sr)``.

    The spectrogram uses :meth:`FeatureConfig.at_sample_rate` (same window and hop in ms), so at
    8 kHz its frequency axis simply stops at 4 kHz: everything above was filtered out on purpose
    (anti-aliasing), which is the price the tutorial's M5 pays for a 2x shorter input.
    """
    config = config or FeatureConfig()
    if kind not in ("linear", "mel"):
        raise KwsError(f"kind must be 'linear' or 'mel', got {kind!r}.")
    low = resample(_as_clip(waveform), config.sample_rate, new_sr)
    new_config = config.at_sample_rate(new_sr)
    spec = linear_spectrogram_db(low, new_config) if kind == "linear" else mel_db(low, new_config)
    return low, spec, new_config


# --------------------------------------------------------------------------------------------
# Numbers that explain a config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeachingNumbers:
    """The arithmetic behind a :class:`FeatureConfig`, for the Spectrogram lab's side panel."""

    sample_rate: int
    nyquist_hz: float
    win_samples: int
    win_ms: float
    hop_samples: int
    hop_ms: float
    ten_ms_samples: float  #: 10 ms at this rate (160 at 16 kHz)
    pow2_below: int  #: largest power of two ≤ 10 ms (128 at 16 kHz)
    pow2_above: int  #: smallest power of two ≥ 10 ms (256 at 16 kHz)
    pow2_nearest: int  #: the closer of the two (128 at 16 kHz)
    pow2_nearest_ms: float
    why_10_ms: str
    win_hop_ratio: float
    overlap_pct: float
    n_fft: int
    zero_padding: int  #: n_fft - win_length zeros added before the FFT
    hz_per_bin: float
    n_freq_bins: int
    frames_per_second: float
    clip_seconds: float
    clip_samples: int
    frames_per_clip: int  #: 1 + samples // hop (centre padding)
    input_shape: tuple[int, int]  #: (n_mels, frames) the model sees for one clip
    mel_centres_hz: tuple[float, ...]
    empty_mel_bands: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def teaching_numbers(config: FeatureConfig | None = None, clip_seconds: float = 1.0) -> TeachingNumbers:
    """Work out the numbers a student should be able to compute by hand for ``config``.

    Runs on a config with empty Mel bands too (it reports how many); other mistakes raise.
    """
    c = config or FeatureConfig()
    basic = _basic_problems(c)
    if basic:
        raise KwsError(" ".join(basic))
    sr = c.sample_rate
    ten_ms = sr * 0.010
    below = 1 << max(0, math.floor(math.log2(ten_ms)))
    above = _next_pow2(math.ceil(ten_ms))
    nearest = below if ten_ms - below <= above - ten_ms else above
    samples = round(clip_seconds * sr)
    frames = c.frames_for(samples)
    return TeachingNumbers(
        sample_rate=sr,
        nyquist_hz=c.nyquist,
        win_samples=c.win_length,
        win_ms=1000.0 * c.win_length / sr,
        hop_samples=c.hop_length,
        hop_ms=1000.0 * c.hop_length / sr,
        ten_ms_samples=ten_ms,
        pow2_below=below,
        pow2_above=above,
        pow2_nearest=nearest,
        pow2_nearest_ms=1000.0 * nearest / sr,
        why_10_ms=WHY_10_MS,
        win_hop_ratio=c.win_length / c.hop_length,
        overlap_pct=100.0 * max(0, c.win_length - c.hop_length) / c.win_length,
        n_fft=c.n_fft,
        zero_padding=c.n_fft - c.win_length,
        hz_per_bin=sr / c.n_fft,
        n_freq_bins=c.n_freqs,
        frames_per_second=sr / c.hop_length,
        clip_seconds=clip_seconds,
        clip_samples=samples,
        frames_per_clip=frames,
        input_shape=(c.n_mels, frames),
        mel_centres_hz=tuple(float(f) for f in mel_centre_hz(c)),
        empty_mel_bands=empty_mel_bands(c),
    )


# --------------------------------------------------------------------------------------------
# Slider ranges for the Spectrogram lab
# --------------------------------------------------------------------------------------------

#: FFT sizes: any whole number in this range (powers of two are fastest, but not required:
#: torchaudio's default is 400).
N_FFT_RANGE: tuple[int, int] = (16, 4096)
#: Mel bands offered: beyond 128 (torchaudio's default) to see empty bands appear.
N_MELS_RANGE: tuple[int, int] = (8, 256)
#: dB floors offered.
TOP_DB_RANGE: tuple[float, float] = (20.0, 120.0)
#: Shortest window / hop we offer, in samples (2 ms / 1 ms at 16 kHz: below that a spectrogram is noise).
MIN_WIN_LENGTH = 32
MIN_HOP_LENGTH = 16
#: Highest f_min offered, and the smallest gap kept between f_min and f_max, in Hz.
MAX_F_MIN = 1000.0
MIN_F_GAP = 100.0


@dataclass(frozen=True)
class SliderRanges:
    """Mutually valid slider ranges given the *other* settings of a config (all inclusive)."""

    n_fft: tuple[int, int]  #: N_FFT_RANGE (a window longer than n_fft is shortened by the editor)
    win_length: tuple[int, int]  #: (MIN_WIN_LENGTH, n_fft), in single samples
    hop_length: tuple[int, int]  #: (MIN_HOP_LENGTH, win_length), in single samples
    n_mels: tuple[int, int]  #: N_MELS_RANGE (empty bands allowed, and explained)
    n_mels_full: int  #: the most bands with none empty at this n_fft / f_min / f_max
    f_min: tuple[float, float]  #: (0, below f_max), whole Hz
    f_max: tuple[float, float]  #: (above f_min, Nyquist), whole Hz
    top_db: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def valid_choices(config: FeatureConfig | None = None) -> SliderRanges:
    """Slider ranges that keep ``config`` valid when one setting moves and the others stay."""
    c = config or FeatureConfig()
    return SliderRanges(
        n_fft=N_FFT_RANGE,
        win_length=(MIN_WIN_LENGTH, max(MIN_WIN_LENGTH, c.n_fft)),
        hop_length=(MIN_HOP_LENGTH, max(MIN_HOP_LENGTH, c.win_length)),
        n_mels=N_MELS_RANGE,
        n_mels_full=max_valid_n_mels(c, upper=N_MELS_RANGE[1]),
        f_min=(0.0, float(max(0.0, min(MAX_F_MIN, math.floor(c.f_max_hz - MIN_F_GAP))))),
        f_max=(float(min(c.nyquist, math.ceil(float(c.f_min) + MIN_F_GAP))), c.nyquist),
        top_db=TOP_DB_RANGE,
    )


FEATURE_PRESETS.update(
    torchaudio=FeatureConfig(n_fft=400, win_length=400, hop_length=200, n_mels=128, f_min=0.0, f_max=None),
    classic=FeatureConfig(),
)
