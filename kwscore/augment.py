"""Data augmentation: new training examples from old ones, on the waveform and on the spectrogram.

A keyword spotter must hear "yes" from any speaker, at any speed, in any kitchen. We rarely have
recordings of all of that, so we *simulate* it, drawing fresh parameters every time a clip is used:

============================  =================================================  ==================
effect                        what it simulates                                  default range
============================  =================================================  ==================
:func:`time_stretch`          slower / faster talkers (pitch kept)               rate 0.81–1.23
:func:`pitch_shift`           higher / lower voices (speed kept)                 ±2 semitones
:func:`time_shift`            the word starting earlier / later (zero fill)      ±100 ms
:func:`gain`                  near / far / quiet microphones                     ±6 dB
:func:`compress`              phone, radio and broadcast processing              named presets
:func:`add_background_noise`  kitchens, streets, fans (``_background_noise_``)   weight 0.1–0.5 or SNR
:func:`add_colored_noise`     hiss (white), rumble (brown), in between (pink)    SNR 10–30 dB
:func:`reverb`                a room's echo (simulated room impulse response)    RT60 0.15–0.8 s
:func:`microphone`            a microphone's colour: low cut, high cut, EQ       20–250 Hz, 2.8–7.5 kHz
:func:`spec_augment`          missing frequency bands / dropped moments          F, T masks, warp
============================  =================================================  ==================

Conventions (same for every effect):

- A waveform is a float32 tensor ``[1, time]`` at 16 kHz; the output has the same shape (time
  stretch fixes the length back by default, because the model wants exactly one second).
- A range argument is either a number (use exactly this) or a ``(low, high)`` pair (draw uniformly).
- ``seed`` is an ``int``, a sequence of ints such as ``(base_seed, epoch, index)``, a
  ``numpy.random.Generator``, or ``None`` (fresh entropy). Same seed, same output.
- Every effect returns ``(waveform, record)``; ``record`` is a JSON-friendly dict of what was drawn,
  so the Augmentation lab can print it and a training run can log it.

:class:`AugmentConfig` chains effects with probabilities; :data:`PRESETS` names four of them.

One implementation of each effect: time shift, gain, noise, rooms and microphones are batched
torch functions on ``[batch, 1, time]`` (:func:`shift_batch`, :func:`gain_batch`,
:func:`colored_noise_batch`, :func:`mix_batch`, :class:`NoiseBank`, :func:`reverberate_batch`,
:func:`microphone_batch`). The per-clip effects above draw their values, run the batched function
on a batch of one and record what they drew (the Augmentation lab); :class:`BatchAugment` runs the
same functions on a whole training batch, and synthesis (:mod:`kwscore.data.synth`) records its
speakers with them. Only stretch, pitch and compression run clip by clip (numpy/audiomentations, a
few ms each). SpecAugment runs on batched tensors with torch ops (:func:`spec_augment_batch`,
:class:`SpecAugment`).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.layout import noise_files
from kwscore.errors import KwsError, check_known_keys

Seed = int | Sequence[int] | np.random.Generator | None
Range = float | tuple[float, float]


# ============================================================================================
# Randomness and ranges
# ============================================================================================


def make_rng(seed: Seed = None) -> np.random.Generator:
    """A numpy Generator from any :data:`Seed` (a Generator is returned as is, so it advances)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def draw(value: Range, rng: np.random.Generator) -> float:
    """A number as is, or a uniform draw from a ``(low, high)`` pair."""
    if isinstance(value, (tuple, list)):
        low, high = value
        return float(rng.uniform(low, high)) if high > low else float(low)
    return float(value)


def pick(value: str | Sequence[str], rng: np.random.Generator) -> str:
    """A name as is, or a uniform choice from a sequence of names."""
    if isinstance(value, str):
        return value
    return str(value[int(rng.integers(len(value)))])


#: Allowed limits for every range parameter: (low, high, why). Sliders should use them too.
LIMITS: dict[str, tuple[float, float, str]] = {
    "rate": (0.81, 1.23, "beyond ±20 % a word sounds unnatural and may leave the 1-s window"),
    "semitones": (-3.5, 3.5, "beyond ±3.5 semitones voices turn cartoonish and artefacts grow"),
    "shift_ms": (-500.0, 500.0, "a shift of more than half the clip pushes the word out of it"),
    "gain_db": (-24.0, 24.0, "beyond ±24 dB a clip is either silent or clipped"),
    "snr_db": (-5.0, 40.0, "below -5 dB the word is buried; above 40 dB the noise is inaudible"),
    "weight": (0.0, 1.0, "the noise recording is added at most at its own level"),
    "rt60": (0.05, 2.0, "RT60 is how long a room rings: 0.2 s a living room, 2 s a cathedral"),
    "low_hz": (20.0, 1000.0, "a low cut above 1 kHz removes most of a voice's fundamental and vowels"),
    "high_hz": (2000.0, 8000.0, "below 2 kHz words become unintelligible; 8 kHz is Nyquist at 16 kHz"),
    "eq_db": (-12.0, 12.0, "beyond ±12 dB an EQ bump sounds like a broken speaker"),
}


def _to_clip(waveform: torch.Tensor) -> torch.Tensor:
    """``[time]`` or ``[1, time]`` -> ``[1, time]`` float32."""
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2 or waveform.shape[0] != 1:
        raise KwsError(
            f"Augmentations work on one mono clip shaped [1, time]; got {tuple(waveform.shape)}. "
            "Use kwscore.audio.to_mono first, and augment clips one at a time."
        )
    return waveform.detach().to(torch.float32)


def _numpy(waveform: torch.Tensor) -> np.ndarray:
    """``[1, time]`` tensor -> contiguous float32 ``[time]`` array (what audiomentations wants)."""
    return np.ascontiguousarray(waveform[0].cpu().numpy(), dtype=np.float32)


def _tensor(samples: np.ndarray) -> torch.Tensor:
    """``[time]`` array -> ``[1, time]`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)


def _check_range(effect: str, name: str, value: Any) -> None:
    """Teaching check of a number or (low, high) pair against :data:`LIMITS`."""
    low, high, why = LIMITS[name]
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise KwsError(f"{effect}: {name} must be a number or a (low, high) pair, got {value!r}.")
        lo, hi = value
        if lo > hi:
            raise KwsError(f"{effect}: {name} range ({lo}, {hi}) is reversed. Write it as ({hi}, {lo}).")
        values = (lo, hi)
    else:
        values = (value,)
    for v in values:
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise KwsError(f"{effect}: {name} must be a number, got {v!r}.")
        if not low <= v <= high:
            raise KwsError(
                f"{effect}: {name}={v} is outside [{low}, {high}]: {why}. "
                f"Choose a value between {low} and {high}."
            )


def _check_choice(effect: str, name: str, value: Any, allowed: Sequence[str]) -> None:
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise KwsError(f"{effect}: {name} is empty. Give at least one of {sorted(allowed)}.")
    for v in names:
        if v not in allowed:
            raise KwsError(f"{effect}: unknown {name} {v!r}. Choose from {sorted(allowed)}.")


# ============================================================================================
# Speed and pitch (audiomentations, Signalsmith Stretch: ~3-7 ms per 1-s clip)
# ============================================================================================


def _run_audiomentation(transform: Any, parameters: dict, samples: np.ndarray) -> np.ndarray:
    """Run an audiomentations transform with parameters *we* drew (its own RNG stays unused)."""
    transform.parameters = {"should_apply": True, **parameters}
    transform.freeze_parameters()
    return transform(samples, SAMPLE_RATE)


def fix_length_centred(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """Cut or zero-pad ``[..., time]`` to ``length`` *around the centre* (where the word usually is)."""
    n = waveform.shape[-1]
    if n > length:
        start = (n - length) // 2
        return waveform[..., start : start + length]
    left = (length - n) // 2
    return F.pad(waveform, (left, length - n - left))


def time_stretch(
    waveform: torch.Tensor,
    rate: Range = (0.81, 1.23),
    *,
    keep_length: bool = True,
    seed: Seed = None,
) -> tuple[torch.Tensor, dict]:
    """Speak faster (``rate > 1``) or slower (``rate < 1``) without changing the pitch.

    ``[1, time]`` -> ``[1, time]`` when ``keep_length`` (centred cut/zero-pad), otherwise
    ``[1, ≈ time / rate]``.
    """
    _check_range("time_stretch", "rate", rate)
    x = _to_clip(waveform)
    r = draw(rate, make_rng(seed))
    import audiomentations  # imported when first used: it takes seconds (scipy.signal)

    transform = audiomentations.TimeStretch(min_rate=r, max_rate=r, leave_length_unchanged=False, p=1.0)
    y = _tensor(_run_audiomentation(transform, {"rate": r}, _numpy(x)))
    record = {"effect": "time_stretch", "rate": r, "stretched_length": y.shape[-1]}
    if keep_length:
        y = fix_length_centred(y, x.shape[-1])
    return y, record


def pitch_shift(
    waveform: torch.Tensor, semitones: Range = (-2.0, 2.0), *, seed: Seed = None
) -> tuple[torch.Tensor, dict]:
    """Raise or lower the voice by ``semitones`` (12 = one octave) keeping the duration. ``[1, time]``."""
    _check_range("pitch_shift", "semitones", semitones)
    x = _to_clip(waveform)
    s = draw(semitones, make_rng(seed))
    import audiomentations

    transform = audiomentations.PitchShift(min_semitones=s, max_semitones=s, p=1.0)
    y = _tensor(_run_audiomentation(transform, {"num_semitones": s}, _numpy(x)))
    return y, {"effect": "pitch_shift", "semitones": s, "frequency_factor": 2.0 ** (s / 12.0)}


# ============================================================================================
# Position and level
# ============================================================================================


def shift_batch(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Move each clip of ``x`` ``[B, 1, T]`` right by ``shift[b]`` samples (left if < 0), zero fill.

    One slice copy per clip: 4× faster than a batched ``gather``, whose index tensor alone is as
    big as the batch (``[B, 1, T]`` int64).
    """
    t = x.shape[-1]
    out = torch.zeros_like(x)
    for b, s in enumerate(shift.clamp(-t, t).tolist()):
        if s >= 0:
            out[b, :, s:] = x[b, :, : t - s]
        else:
            out[b, :, :s] = x[b, :, -s:]
    return out


def gain_batch(x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """Multiply each clip of ``x`` ``[B, 1, T]`` by ``10 ** (gain_db[b] / 20)``."""
    return x * (10.0 ** (gain_db / 20.0)).view(-1, 1, 1)


def time_shift(
    waveform: torch.Tensor, shift_ms: Range = (-100.0, 100.0), *, seed: Seed = None
) -> tuple[torch.Tensor, dict]:
    """Move the clip later (``shift_ms > 0``) or earlier, filling the gap with zeros (no wrap-around).

    Rolling instead would paste the end of the word before its start, which no microphone hears.
    ``[1, time]`` -> ``[1, time]``.
    """
    _check_range("time_shift", "shift_ms", shift_ms)
    x = _to_clip(waveform)
    ms = draw(shift_ms, make_rng(seed))
    n = x.shape[-1]
    k = max(-n, min(n, round(ms * SAMPLE_RATE / 1000.0)))
    return shift_batch(x[None], torch.tensor([k]))[0], {"effect": "time_shift", "shift_ms": ms, "shift_samples": k}


def gain(
    waveform: torch.Tensor, gain_db: Range = (-6.0, 6.0), *, seed: Seed = None
) -> tuple[torch.Tensor, dict]:
    """Multiply by ``10 ** (gain_db / 20)``: +6 dB doubles the amplitude. ``[1, time]``.

    Samples may leave [-1, 1]; they are kept (clipping is for the WAV writer), so no information
    is lost before the spectrogram.
    """
    _check_range("gain", "gain_db", gain_db)
    x = _to_clip(waveform)
    g = draw(gain_db, make_rng(seed))
    return gain_batch(x[None], torch.tensor([g]))[0], {"effect": "gain", "gain_db": g}


# ============================================================================================
# Dynamic range compression
# ============================================================================================


@dataclass(frozen=True)
class CompressorPreset:
    """A downward compressor: above ``threshold_db`` (relative to the clip's peak) the level grows
    only ``1 / ratio`` as fast. ``attack_ms`` is how fast it clamps down on a loud onset,
    ``release_ms`` how fast it lets go. The output is brought back to the input's peak (make-up
    gain), so the audible effect is: quiet parts get louder, the clip gets denser.
    """

    threshold_db: float
    ratio: float
    attack_ms: float
    release_ms: float
    description: str = ""


#: Named compressor settings (typical starting points from mixing and broadcast practice).
COMPRESSOR_PRESETS: dict[str, CompressorPreset] = {
    "speech": CompressorPreset(-20.0, 3.0, 5.0, 60.0, "voice/podcast: evens out loud and soft syllables"),
    "radio": CompressorPreset(-30.0, 8.0, 1.0, 100.0, "broadcast: heavy, fast, loud and dense"),
    "music": CompressorPreset(-15.0, 2.0, 20.0, 200.0, "gentle glue: slow attack keeps the transients"),
    "film": CompressorPreset(-24.0, 2.0, 15.0, 300.0, "dialogue: light, slow release so nothing pumps"),
}

_BLOCK_MS = 1.0  # the gain is computed once per millisecond, then interpolated per sample


def _smooth_gain(target_db: np.ndarray, attack_ms: float, release_ms: float) -> np.ndarray:
    """One-pole attack/release smoothing of the gain reduction (dB, ≤ 0), one value per block."""
    a_att = math.exp(-_BLOCK_MS / attack_ms)
    a_rel = math.exp(-_BLOCK_MS / release_ms)
    out = np.empty_like(target_db)
    g = 0.0
    for i, t in enumerate(target_db.tolist()):  # ~1000 steps per second of audio
        a = a_att if t < g else a_rel  # more reduction needed: attack; less: release
        g = a * g + (1.0 - a) * t
        out[i] = g
    return out


def compress(
    waveform: torch.Tensor,
    preset: str | Sequence[str] = "speech",
    *,
    seed: Seed = None,
) -> tuple[torch.Tensor, dict]:
    """Dynamic range compression with a named :data:`COMPRESSOR_PRESETS` entry. ``[1, time]``.

    A list of names picks one at random. Steps: peak level per 1-ms block (dB below the clip's
    peak) -> static curve ``reduction = (threshold - level) · (1 - 1/ratio)`` above threshold ->
    attack/release smoothing -> per-sample gain -> make-up gain back to the input peak.
    """
    _check_choice("compress", "preset", preset, COMPRESSOR_PRESETS)
    name = pick(preset, make_rng(seed))
    c = COMPRESSOR_PRESETS[name]
    x = _to_clip(waveform)
    samples = x[0].double().numpy()
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    record = {
        "effect": "compress",
        "preset": name,
        "threshold_db": c.threshold_db,
        "ratio": c.ratio,
        "attack_ms": c.attack_ms,
        "release_ms": c.release_ms,
    }
    if peak == 0.0:
        return x.clone(), {**record, "max_reduction_db": 0.0, "makeup_db": 0.0}
    block = max(1, round(SAMPLE_RATE * _BLOCK_MS / 1000.0))
    n_blocks = -(-samples.size // block)
    padded = np.pad(np.abs(samples), (0, n_blocks * block - samples.size))
    level_db = 20.0 * np.log10(padded.reshape(n_blocks, block).max(axis=1) / peak + 1e-9)
    target = np.minimum(0.0, (c.threshold_db - level_db) * (1.0 - 1.0 / c.ratio))
    reduction = _smooth_gain(target, c.attack_ms, c.release_ms)
    centres = np.arange(n_blocks) * block + (block - 1) / 2.0
    gain_db = np.interp(np.arange(samples.size), centres, reduction)
    y = samples * 10.0 ** (gain_db / 20.0)
    makeup = peak / max(float(np.abs(y).max()), 1e-12)
    y = (y * makeup).astype(np.float32)
    return _tensor(y), {
        **record,
        "max_reduction_db": float(-reduction.min()),
        "makeup_db": 20.0 * math.log10(makeup),
    }


# ============================================================================================
# Noise: mixing at a weight or at an SNR
# ============================================================================================

#: Noise colours: the exponent β of the power spectrum ``1 / f**β``.
NOISE_COLORS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: RMS of generated coloured noise before mixing: about that of the Speech Commands background
#: recordings (0.09-0.12), so a *weight* means the same for both kinds of noise.
COLORED_NOISE_RMS = 0.1


def power(x: torch.Tensor) -> float:
    """Mean power ``mean(x²)`` of a signal."""
    return float(x.double().pow(2).mean())


def snr_db(signal: torch.Tensor, noise: torch.Tensor) -> float:
    """Signal-to-noise ratio ``10 · log10(P_signal / P_noise)`` in dB (powers over the whole clip)."""
    ps, pn = power(signal), power(noise)
    if pn == 0.0:
        return math.inf
    if ps == 0.0:
        return -math.inf
    return 10.0 * math.log10(ps / pn)


def mix_batch(
    x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | None = None, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``x + scale · noise`` for every clip ``[B, 1, T]``, the scale set by an SNR in dB *or* a
    weight (``[B]`` each).

    - ``snr_db``: the noise is scaled so that ``P_x / P_noise = 10 ** (snr / 10)``
      (``torchaudio.functional.add_noise``). A silent clip has no SNR: it gets weight 0.1. An SNR
      of ``inf`` adds nothing.
    - ``weight``: ``x + weight · noise``, the noise at its recorded level (0 adds nothing).
    """
    if (snr_db is None) == (weight is None):
        raise KwsError("Mix noise either at an SNR (snr_db) or at a weight, not both and not neither.")
    if weight is None:
        snr = snr_db.to(x.dtype).view(-1, 1)  # [B, 1]: add_noise's shape for [B, 1, T]
        finite = torch.isfinite(snr)
        audible = (x.pow(2).sum(dim=-1) > 0) & (noise.pow(2).sum(dim=-1) > 0) & finite
        at_snr = AF.add_noise(x, noise, torch.where(audible, snr, torch.zeros_like(snr)))
        return torch.where(audible[..., None], at_snr, x + (0.1 * finite)[..., None] * noise)
    return x + weight.to(x.dtype).view(-1, 1, 1) * noise


def mix(
    signal: torch.Tensor,
    noise: torch.Tensor,
    *,
    snr: float | None = None,
    weight: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Add ``noise`` (same shape) to one clip ``signal`` ``[1, time]`` at an SNR in dB *or* at a
    weight (:func:`mix_batch` on a batch of one). Returns ``(mixture, achieved SNR in dB)``."""
    level = [None if v is None else torch.tensor([float(v)]) for v in (snr, weight)]
    mixed = mix_batch(_to_clip(signal)[None], _to_clip(noise)[None], *level)[0]
    return mixed, snr_db(signal, mixed - signal)


def colored_noise_batch(colors: Sequence[str], length: int, seed: Seed | torch.Generator = None) -> torch.Tensor:
    """Gaussian noise with power spectrum ``∝ 1 / f**β`` (white 0, pink 1, brown 2), one colour per
    clip: ``[len(colors), 1, length]``, each clip at RMS :data:`COLORED_NOISE_RMS`.

    White noise (from ``seed``: a :data:`Seed` or a ``torch.Generator``) shaped in the frequency
    domain (amplitude ``∝ f ** (-β / 2)``), then the mean removed and each clip scaled.
    """
    if isinstance(seed, torch.Generator):
        white = torch.randn(len(colors), length, generator=seed)
    else:
        white = torch.from_numpy(make_rng(seed).standard_normal((len(colors), length))).float()
    beta = torch.tensor([NOISE_COLORS[c] for c in colors], dtype=white.dtype).view(-1, 1)
    f = torch.fft.rfftfreq(length, dtype=white.dtype)
    f[0] = f[1] if length > 1 else 1.0  # no infinite DC
    shaped = torch.fft.irfft(torch.fft.rfft(white) * f.pow(-beta / 2), n=length)
    shaped = shaped - shaped.mean(dim=1, keepdim=True)
    rms = shaped.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-8)
    return (shaped * (COLORED_NOISE_RMS / rms)).unsqueeze(1)


def colored_noise(n_samples: int, color: str = "white", *, seed: Seed = None) -> torch.Tensor:
    """One clip of :func:`colored_noise_batch`: ``[1, n_samples]``."""
    _check_choice("colored_noise", "color", color, NOISE_COLORS)
    return colored_noise_batch([color], n_samples, seed)[0]


def _check_noise_level(effect: str, snr_db: Range | None, weight: Range | None) -> None:
    if snr_db is not None and weight is not None:
        raise KwsError(
            f"{effect}: give either snr_db or weight, not both. snr_db sets the loudness relative "
            "to the word; weight scales the noise recording as it is."
        )
    if snr_db is not None:
        _check_range(effect, "snr_db", snr_db)
    if weight is not None:
        _check_range(effect, "weight", weight)


def _mix_drawn(x, noise, snr_db, weight, rng) -> tuple[torch.Tensor, dict]:
    """Draw the level (SNR or weight, exactly one is set) and mix."""
    if snr_db is not None:
        want = draw(snr_db, rng)
        y, got = mix(x, noise, snr=want)
        return y, {"snr_db": want, "achieved_snr_db": got}
    w = draw(weight, rng)
    y, got = mix(x, noise, weight=w)
    return y, {"weight": w, "achieved_snr_db": got}


def add_colored_noise(
    waveform: torch.Tensor,
    color: str | Sequence[str] = ("white", "pink", "brown"),
    *,
    snr_db: Range | None = None,
    weight: Range | None = None,
    seed: Seed = None,
) -> tuple[torch.Tensor, dict]:
    """Mix in white, pink or brown noise at ``snr_db`` (default 10–30 dB) *or* at ``weight``.

    ``[1, time]`` -> ``[1, time]``. The generated noise has RMS :data:`COLORED_NOISE_RMS`.
    """
    _check_choice("add_colored_noise", "color", color, NOISE_COLORS)
    _check_noise_level("add_colored_noise", snr_db, weight)
    if snr_db is None and weight is None:
        snr_db = (10.0, 30.0)
    x = _to_clip(waveform)
    rng = make_rng(seed)
    name = pick(color, rng)
    y, level = _mix_drawn(x, colored_noise(x.shape[-1], name, seed=rng), snr_db, weight, rng)
    return y, {"effect": "add_colored_noise", "color": name, **level}


def load_noises(root: str | os.PathLike) -> list[torch.Tensor]:
    """The dataset's ``_background_noise_/*.wav`` as 16 kHz mono ``[1, time]`` tensors ([] if none)."""
    noises = []
    for path in noise_files(root):
        wav, sr = audio.load(path)
        noises.append(audio.resample(audio.to_mono(wav), sr, SAMPLE_RATE).contiguous())
    return noises


class NoiseBank:
    """Background recordings (16 kHz ``[1, time]``) at ``sample_rate`` in one flat tensor, cut into
    windows of ``length`` samples for a whole batch at once (a recording shorter than a window is
    tiled)."""

    def __init__(self, noises: Sequence[torch.Tensor], sample_rate: int, length: int) -> None:
        pieces = []
        for noise in noises:
            noise = audio.resample(_to_clip(noise), SAMPLE_RATE, sample_rate)[0]
            if len(noise) < length:  # tile short recordings up to one clip
                noise = noise.repeat(-(-length // len(noise)))
            pieces.append(noise)
        self.length = length
        self.sizes = torch.tensor([len(p) for p in pieces], dtype=torch.long)
        self.starts = torch.cumsum(self.sizes, 0) - self.sizes
        self.flat = torch.cat(pieces) if pieces else torch.zeros(0)

    def __len__(self) -> int:
        return len(self.sizes)

    def offsets(self, which: torch.Tensor) -> torch.Tensor:
        """How many windows recordings ``which`` ``[B]`` hold (the possible offsets into each)."""
        return self.sizes[which] - self.length + 1

    def cut(self, which: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The windows of recordings ``which`` at ``offsets`` (``[B]`` each): ``[B, 1, length]``."""
        starts = self.starts[which] + offsets
        return torch.stack([self.flat[s : s + self.length] for s in starts.tolist()]).unsqueeze(1)

    def windows(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` random windows ``[n, 1, length]``: a random recording, a random offset in it."""
        which = torch.randint(len(self.sizes), (n,), generator=gen)
        return self.cut(which, (torch.rand(n, generator=gen) * self.offsets(which).float()).long())


def add_background_noise(
    waveform: torch.Tensor,
    noises: Sequence[torch.Tensor] | None = None,
    *,
    snr_db: Range | None = None,
    weight: Range | None = None,
    fallback_color: str | Sequence[str] = ("white", "pink", "brown"),
    seed: Seed = None,
) -> tuple[torch.Tensor, dict]:
    """Mix a random 1-s window of a background recording into the clip. ``[1, time]``.

    Level: ``weight`` (default 0.1–0.5: the recording as it is, times the weight) *or* ``snr_db``
    (exact SNR on the clip's power). With no recordings (``noises`` empty or ``None``; see
    :func:`load_noises`), coloured noise of ``fallback_color`` is used instead.
    """
    _check_noise_level("add_background_noise", snr_db, weight)
    if snr_db is None and weight is None:
        weight = (0.1, 0.5)
    _check_choice("add_background_noise", "fallback_color", fallback_color, NOISE_COLORS)
    x = _to_clip(waveform)
    rng = make_rng(seed)
    if noises:
        bank = NoiseBank(noises, SAMPLE_RATE, x.shape[-1])
        index = int(rng.integers(len(bank)))
        offset = int(rng.integers(int(bank.offsets(torch.tensor(index)))))
        noise = bank.cut(torch.tensor([index]), torch.tensor([offset]))[0]
        source = {"source": "recording", "noise_index": index, "offset": offset}
    else:
        name = pick(fallback_color, rng)
        noise = colored_noise(x.shape[-1], name, seed=rng)
        source = {"source": "colored", "color": name}
    y, level = _mix_drawn(x, noise, snr_db, weight, rng)
    return y, {"effect": "add_background_noise", **source, **level}


# ============================================================================================
# Rooms and microphones: reverberation and the colour of a recording chain
# ============================================================================================
#
# A real "yes" is heard through a room (the walls send the sound back a little later, again and
# again: reverberation) and through a microphone and its electronics (no deep bass, often no highs:
# a phone keeps 300-3400 Hz; bumps and dips in between). Both are *linear filters*, so both are
# one multiplication in the frequency domain, done for a whole batch ``[B, 1, time]`` at once.


def room_impulse_response(
    rng: np.random.Generator,
    rt60: Range = (0.15, 0.8),
    sample_rate: int = SAMPLE_RATE,
) -> tuple[torch.Tensor, dict]:
    """The impulse response of a random shoebox room between a talker and a microphone, ``[1, K]``.

    The early reflections come from the image-source method of pyroomacoustics (a room of random
    size, walls absorbing enough for the drawn RT60, talker and microphone at random places); the
    late, diffuse part is exponentially decaying noise with the same RT60 (-60 dB after RT60
    seconds), as in hybrid room simulators. Normalised so the direct sound has amplitude 1.
    """
    import pyroomacoustics as pra  # imported here: only rooms need it

    _check_range("reverb", "rt60", rt60)
    t60 = draw(rt60, rng)
    dims = rng.uniform([2.5, 2.5, 2.2], [9.0, 7.0, 3.5])
    while True:  # a big room cannot be as dry as a short RT60 asks: make it smaller
        try:
            absorption, max_order = pra.inverse_sabine(t60, dims)
            break
        except ValueError:
            dims = np.maximum(dims * 0.85, [1.5, 1.5, 2.0])
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(min(absorption, 0.99)), max_order=min(max_order, 6))
    margin = np.array([0.4, 0.4, 0.5])
    talker = rng.uniform(margin, dims - margin)
    mic = rng.uniform(margin, dims - margin)
    room.add_source(talker)
    room.add_microphone(mic)
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    distance = float(np.linalg.norm(talker - mic))
    direct = int(np.argmax(np.abs(early)))
    n = direct + int(t60 * sample_rate)
    tail_t = np.arange(n - direct) / sample_rate
    tail = rng.standard_normal(n - direct) * np.exp(-6.9 * tail_t / t60)  # -60 dB at t60
    mixing = direct + int(0.02 * sample_rate)  # the diffuse tail takes over after ~20 ms
    h = np.zeros(max(n, len(early)))
    h[: len(early)] = early
    energy = np.sqrt(np.mean(early[direct:mixing] ** 2)) if mixing > direct else 0.0
    fade = np.clip((np.arange(n - direct) / sample_rate - 0.02) / 0.03, 0.0, 1.0)
    h[direct:n] += tail * energy * fade
    h = h / (np.abs(h[direct]) + 1e-12)
    record = {"rt60_s": round(t60, 3), "room_m": [round(float(d), 2) for d in dims], "distance_m": round(distance, 2)}
    return torch.from_numpy(h[direct:].astype(np.float32)).unsqueeze(0), record


def reverberate_batch(x: torch.Tensor, rirs: torch.Tensor) -> torch.Tensor:
    """Convolve every clip with its room impulse response; keep the clips' length and peak.

    ``x``: ``[B, 1, time]``; ``rirs``: ``[B, 1, K]`` (or ``[1, 1, K]`` for one room). FFT
    convolution; the tail that rings past the end of the clip is cut, and each clip keeps its peak
    level so that reverberation does not also change the loudness.
    """
    n = x.shape[-1] + rirs.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(rirs, size), size)[..., : x.shape[-1]]
    peak_in = x.abs().amax(dim=-1, keepdim=True)
    peak_out = y.abs().amax(dim=-1, keepdim=True).clamp_min(1e-9)
    return y * (peak_in / peak_out)


def mic_response(
    n_samples: int,
    low_hz: torch.Tensor,
    high_hz: torch.Tensor,
    eq_hz: torch.Tensor,
    eq_db: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
) -> torch.Tensor:
    """Magnitude response of microphones ``[B, n_samples // 2 + 1]`` (for ``torch.fft.rfft``).

    A 2nd-order high-pass at ``low_hz`` (no deep bass), a 4th-order low-pass at ``high_hz`` (a
    phone or an 8-kHz recording has no highs) and bell-shaped EQ bumps (``eq_hz`` / ``eq_db``:
    ``[B, n_bumps]``, one octave wide) — each row of ``[B]`` is one microphone.
    """
    f = torch.fft.rfftfreq(n_samples, 1.0 / sample_rate).clamp_min(1.0)[None, :]  # [1, F]
    highpass = 1.0 / torch.sqrt(1.0 + (low_hz[:, None] / f) ** 4)
    lowpass = 1.0 / torch.sqrt(1.0 + (f / high_hz[:, None]) ** 8)
    octaves = torch.log2(f[:, None, :] / eq_hz[:, :, None])  # [B, bumps, F]
    eq = 10.0 ** ((eq_db[:, :, None] * torch.exp(-0.5 * (octaves / 0.5) ** 2)).sum(dim=1) / 20.0)
    return highpass * lowpass * eq


def microphone_batch(x: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """Filter every clip ``[B, 1, time]`` by its microphone's magnitude response ``[B, F]``
    (zero phase: the word does not move), keeping each clip's peak level."""
    y = torch.fft.irfft(torch.fft.rfft(x) * response[:, None, :], x.shape[-1])
    peak_in = x.abs().amax(dim=-1, keepdim=True)
    return y * (peak_in / y.abs().amax(dim=-1, keepdim=True).clamp_min(1e-9))


def draw_microphones(
    n: int,
    rng: np.random.Generator,
    low_hz: Range = (20.0, 250.0),
    high_hz: Range = (2800.0, 7500.0),
    eq_db: Range = (-6.0, 6.0),
) -> dict[str, torch.Tensor]:
    """``n`` random microphones, the arguments of :func:`mic_response`: cut-offs drawn on a log
    scale (as we hear pitch; 4 in 10 of the default high cuts are phone-like, below 4.5 kHz), two
    EQ bumps of ``eq_db`` each, centred between 200 Hz and 6 kHz."""

    def log_uniform(value: Range, shape) -> np.ndarray:
        low, high = value if isinstance(value, tuple | list) else (value, value)
        return np.exp(rng.uniform(np.log(low), np.log(high), shape))

    as_tensor = partial(torch.tensor, dtype=torch.float32)
    low, high, eq = (value if isinstance(value, tuple | list) else (value, value) for value in (low_hz, high_hz, eq_db))
    return {
        "low_hz": as_tensor(log_uniform(low, n)),
        "high_hz": as_tensor(log_uniform(high, n)),
        "eq_hz": as_tensor(log_uniform((200.0, 6000.0), (n, 2))),
        "eq_db": as_tensor(rng.uniform(eq[0], eq[1], (n, 2))),
    }


def reverb(waveform: torch.Tensor, rt60: Range = (0.15, 0.8), *, seed: Seed = None) -> tuple[torch.Tensor, dict]:
    """Play the clip in a random room (:func:`room_impulse_response`) with reverberation time
    ``rt60`` seconds (0.2 s: a small furnished room; 0.8 s: a bare classroom). ``[1, time]``."""
    x = _to_clip(waveform)
    rir, record = room_impulse_response(make_rng(seed), rt60)
    return reverberate_batch(x[None], rir[None])[0], {"effect": "reverb", **record}


def microphone(
    waveform: torch.Tensor,
    low_hz: Range = (20.0, 250.0),
    high_hz: Range = (2800.0, 7500.0),
    eq_db: Range = (-6.0, 6.0),
    *,
    seed: Seed = None,
) -> tuple[torch.Tensor, dict]:
    """Record the clip through a random microphone (:func:`mic_response`): a low cut at
    ``low_hz``, a high cut at ``high_hz`` (a phone: ~3.4 kHz) and two EQ bumps of ``eq_db``."""
    for name, value in (("low_hz", low_hz), ("high_hz", high_hz), ("eq_db", eq_db)):
        _check_range("microphone", name, value)
    x = _to_clip(waveform)
    mic = draw_microphones(1, make_rng(seed), low_hz, high_hz, eq_db)
    record = {
        "effect": "microphone", "low_hz": round(float(mic["low_hz"][0])), "high_hz": round(float(mic["high_hz"][0])),
        "eq": ", ".join(f"{float(g):+.1f} dB at {float(f):.0f} Hz" for f, g in zip(mic["eq_hz"][0], mic["eq_db"][0], strict=True)),
    }  # fmt: skip
    return microphone_batch(x[None], mic_response(x.shape[-1], **mic))[0], record


# ============================================================================================
# SpecAugment (Park et al., 2019) on dB Mel spectrograms
# ============================================================================================


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment settings, named as in the paper.

    - ``freq_mask_param`` (F): each frequency mask hides ``f ~ U{0..F}`` consecutive Mel bands.
    - ``time_mask_param`` (T): each time mask hides ``t ~ U{0..T}`` consecutive frames.
    - ``n_freq_masks`` / ``n_time_masks``: how many masks of each kind (they may overlap).
    - ``time_warp`` (W): move a random frame ``w0`` by ``d ~ U{-W..W}`` frames, stretching the
      left part and squeezing the right (0 = off). Needs more than ``2·W`` frames.
    - ``freq_warp`` (V): vocal-tract length perturbation (VTLP, Jaitly & Hinton 2013) on the Mel
      axis: band ``m`` of the output reads band ``m · α`` of the input, ``α ~ U[1 - V, 1 + V]``, so
      every formant moves up or down together, as between a longer and a shorter vocal tract
      (0 = off; 0.1 = ±10 %). A model trained with it relies less on one voice's formants.
    - ``mask_value``: ``"mean"`` (the example's own mean, default) or ``"zero"``. The mean is
      neutral for both raw dB spectrograms (where 0 dB would be the *loudest* value) and
      normalised ones (where the mean *is* 0).
    - ``p``: probability that an example is augmented at all.
    """

    freq_mask_param: int = 8
    time_mask_param: int = 10
    n_freq_masks: int = 2
    n_time_masks: int = 2
    time_warp: int = 0
    freq_warp: float = 0.0
    mask_value: str = "mean"
    p: float = 1.0

    def validate(self) -> SpecAugmentConfig:
        for name in ("freq_mask_param", "time_mask_param", "time_warp"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise KwsError(f"spec_augment: {name} must be a whole number ≥ 0, got {v!r}.")
        for name in ("n_freq_masks", "n_time_masks"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= 10:
                raise KwsError(
                    f"spec_augment: {name} must be between 0 and 10, got {v!r}. "
                    "The paper uses 1 or 2; more masks hide most of the word."
                )
        if isinstance(self.freq_warp, bool) or not isinstance(self.freq_warp, int | float) or not 0.0 <= self.freq_warp <= 0.3:
            raise KwsError(
                f"spec_augment: freq_warp (V) is a share between 0 and 0.3, got {self.freq_warp!r}. "
                "0.1 moves every formant by up to ±10 %, about the spread between adult voices."
            )
        if self.mask_value not in ("mean", "zero"):
            raise KwsError(f"spec_augment: mask_value must be 'mean' or 'zero', got {self.mask_value!r}.")
        if not 0.0 <= self.p <= 1.0:
            raise KwsError(f"spec_augment: p is a probability in [0, 1], got {self.p}.")
        return self

    def check_shape(self, n_mels: int, n_frames: int) -> None:
        """Teaching errors when the masks do not fit a ``n_mels × n_frames`` spectrogram."""
        if self.freq_mask_param > n_mels:
            raise KwsError(
                f"spec_augment: F={self.freq_mask_param} is larger than the {n_mels} Mel bands; one "
                f"mask could hide everything. Use F ≤ {max(1, n_mels // 4)} (about a quarter)."
            )
        if self.time_mask_param > n_frames:
            raise KwsError(
                f"spec_augment: T={self.time_mask_param} is longer than the {n_frames} frames. "
                f"Use T ≤ {max(1, n_frames // 5)} (about a fifth of the clip)."
            )
        if self.time_warp and n_frames <= 2 * self.time_warp:
            raise KwsError(
                f"spec_augment: time warp W={self.time_warp} needs more than {2 * self.time_warp} "
                f"frames, the spectrogram has {n_frames}. Lower W or set it to 0."
            )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpecAugmentConfig:
        return cls(**_known_keys(cls, data, "spec_augment key"))


def _torch_generator(seed: Seed | torch.Generator) -> torch.Generator | None:
    """``None`` keeps torch's global RNG (seeded by ``torch.manual_seed``); anything else is explicit."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(make_rng(seed).integers(2**62)))


def _draw_spans(
    batch: int, n: int, param: int, size: int, p_apply: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    """``[batch, n, 2]`` long (start, width): width ~ U{0..param}, start ~ U{0..size-width}."""
    u = torch.rand(batch, n, 2, generator=gen)
    widths = (u[..., 0] * (param + 1)).long().clamp(max=min(param, size))
    widths = widths * p_apply.view(batch, 1)  # examples not augmented get zero-width masks
    starts = (u[..., 1] * (size - widths + 1)).long()
    return torch.stack([starts, widths], dim=-1)


def _span_mask(spans: torch.Tensor, size: int) -> torch.Tensor:
    """``[batch, n, 2]`` spans -> ``[batch, size]`` bool, True where any span covers the index."""
    idx = torch.arange(size).view(1, 1, size)
    start, width = spans[..., :1], spans[..., 1:]
    return ((idx >= start) & (idx < start + width)).any(dim=1)


def _time_warp(specs: torch.Tensor, warp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear time warp of ``[batch, C, M, N]`` by per-example ``(w0, d)`` in ``warp``.

    Output frame ``t`` reads input position ``t · w0 / (w0 + d)`` left of ``w0 + d`` and the
    matching linear map on the right, then bilinear interpolation (``grid_sample``).
    """
    b, _, m, n = specs.shape
    w0 = warp[:, 0:1].double()
    dest = (warp[:, 0:1] + warp[:, 1:2]).double()
    t = torch.arange(n, dtype=torch.float64).view(1, n)
    left = t * w0 / dest.clamp(min=1e-6)
    right = w0 + (t - dest) * (n - 1 - w0) / (n - 1 - dest).clamp(min=1e-6)
    src = torch.where(t <= dest, left, right)  # [b, n] input frame for each output frame
    x = (2.0 * src / max(n - 1, 1) - 1.0).float().view(b, 1, n, 1).expand(b, m, n, 1)
    y = torch.linspace(-1.0, 1.0, m).view(1, m, 1, 1).expand(b, m, n, 1)
    grid = torch.cat([x, y], dim=-1).to(specs.device)
    return F.grid_sample(specs, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _freq_warp(specs: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Scale the Mel-band axis of ``[batch, C, M, N]`` by per-example ``alpha`` ``[batch]``: output
    band ``m`` reads input band ``m · alpha`` (linear interpolation; the top band repeats past the end)."""
    b, _, m, n = specs.shape
    src = torch.arange(m, dtype=torch.float32).view(1, m) * alpha.float().view(b, 1)
    y = (2.0 * src / max(m - 1, 1) - 1.0).clamp(-1.0, 1.0).view(b, m, 1, 1).expand(b, m, n, 1)
    x = torch.linspace(-1.0, 1.0, n).view(1, 1, n, 1).expand(b, m, n, 1)
    grid = torch.cat([x, y], dim=-1).to(specs.device)
    return F.grid_sample(specs, grid, mode="bilinear", padding_mode="border", align_corners=True)


def spec_augment_batch(
    specs: torch.Tensor,
    config: SpecAugmentConfig | None = None,
    seed: Seed | torch.Generator = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SpecAugment a batch with independent masks per example, no Python loop over the batch.

    ``specs``: ``[batch, 1, n_mels, frames]`` (any channel count). Returns the augmented batch (a new
    tensor) and the drawn masks: ``"freq"`` ``[batch, n_freq_masks, 2]`` and ``"time"``
    ``[batch, n_time_masks, 2]`` as (start, width), ``"warp"`` ``[batch, 2]`` as (w0, d),
    ``"alpha"`` ``[batch]`` (the Mel-axis factor of ``freq_warp``; 1 = unchanged),
    ``"applied"`` ``[batch]`` bool and ``"fill"`` ``[batch]`` (the value written into the masks).

    It does what ``torchaudio.transforms.FrequencyMasking`` / ``TimeMasking`` with
    ``iid_masks=True`` do (widths drawn from ``U{0..F}`` as in the paper), but it returns the
    positions, so the page can draw them, and it takes a seed.
    """
    c = (config or SpecAugmentConfig()).validate()
    if specs.dim() != 4:
        raise KwsError(f"spec_augment_batch wants [batch, 1, n_mels, frames], got {tuple(specs.shape)}.")
    b, _, m, n = specs.shape
    c.check_shape(m, n)
    gen = _torch_generator(seed)
    applied = torch.rand(b, generator=gen) < c.p
    warp = torch.zeros(b, 2, dtype=torch.long)
    if c.time_warp:
        u = torch.rand(b, 2, generator=gen)
        w0 = c.time_warp + (u[:, 0] * (n - 2 * c.time_warp)).long()
        d = (u[:, 1] * (2 * c.time_warp + 1)).long() - c.time_warp
        warp = torch.stack([w0, d * applied], dim=1)
        moved = (warp[:, 1] != 0).view(b, 1, 1, 1).to(specs.device)  # d = 0 is the identity: keep values exact
        specs = torch.where(moved, _time_warp(specs, warp), specs)
    alpha = torch.ones(b)
    if c.freq_warp:
        alpha = torch.where(applied, 1.0 + (torch.rand(b, generator=gen) * 2.0 - 1.0) * c.freq_warp, alpha)
        moved = (alpha != 1.0).view(b, 1, 1, 1).to(specs.device)  # examples not augmented stay exact
        specs = torch.where(moved, _freq_warp(specs, alpha), specs)
    freq = _draw_spans(b, c.n_freq_masks, c.freq_mask_param, m, applied, gen)
    time = _draw_spans(b, c.n_time_masks, c.time_mask_param, n, applied, gen)
    fill = specs.mean(dim=(-3, -2, -1), keepdim=True) if c.mask_value == "mean" else torch.zeros(())
    # drawn on the CPU (same numbers for a seed everywhere), applied where the batch lives (CUDA)
    hidden = (_span_mask(freq, m).view(b, 1, m, 1) | _span_mask(time, n).view(b, 1, 1, n)).to(specs.device)
    out = torch.where(hidden, fill.to(specs.dtype), specs)
    fills = fill.reshape(-1).to(specs.dtype).expand(b)
    return out, {"freq": freq, "time": time, "warp": warp, "alpha": alpha, "applied": applied, "fill": fills}


def spec_augment(
    spec: torch.Tensor, config: SpecAugmentConfig | None = None, seed: Seed = None
) -> tuple[torch.Tensor, dict]:
    """SpecAugment one spectrogram, ``[n_mels, frames]`` or ``[1, n_mels, frames]`` (shape kept).

    The record lists ``freq_masks`` and ``time_masks`` as ``(start, width)`` pairs (Mel bands and
    frames), ``time_warp`` as ``(w0, d)`` or ``None``, ``freq_warp`` as the Mel-axis factor α or
    ``None``, and the fill value, ready to be drawn.
    """
    c = (config or SpecAugmentConfig()).validate()
    if spec.dim() not in (2, 3):
        raise KwsError(
            f"spec_augment wants [n_mels, frames] or [1, n_mels, frames], got {tuple(spec.shape)}."
        )
    batch = spec.reshape(1, 1, *spec.shape[-2:]).float()
    out, masks = spec_augment_batch(batch, c, seed)
    record = {
        "effect": "spec_augment",
        "applied": bool(masks["applied"][0]),
        "freq_masks": [tuple(int(v) for v in s) for s in masks["freq"][0].tolist()],
        "time_masks": [tuple(int(v) for v in s) for s in masks["time"][0].tolist()],
        "time_warp": tuple(masks["warp"][0].tolist()) if c.time_warp else None,
        "freq_warp": round(float(masks["alpha"][0]), 4) if c.freq_warp else None,
        "mask_value": float(masks["fill"][0]),
    }
    return out.reshape(spec.shape), record


class SpecAugment(nn.Module):
    """SpecAugment as a layer: active in ``train()`` mode, the identity in ``eval()`` mode.

    ``[batch, 1, n_mels, frames]`` -> same shape. Uses torch's global RNG (``torch.manual_seed``).
    """

    def __init__(self, config: SpecAugmentConfig | None = None) -> None:
        super().__init__()
        self.config = (config or SpecAugmentConfig()).validate()

    def forward(self, specs: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return specs
        return spec_augment_batch(specs, self.config, None)[0]


# ============================================================================================
# Pipelines: which effects, how often, in which ranges
# ============================================================================================

#: Waveform effects a pipeline step may name.
EFFECTS: dict[str, Callable[..., tuple[torch.Tensor, dict]]] = {
    "time_stretch": time_stretch,
    "pitch_shift": pitch_shift,
    "time_shift": time_shift,
    "gain": gain,
    "compress": compress,
    "add_background_noise": add_background_noise,
    "add_colored_noise": add_colored_noise,
    "reverb": reverb,
    "microphone": microphone,
}


def _freeze(value: Any) -> Any:
    """Lists -> tuples, recursively, so that configs stay hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Tuples -> lists, recursively, for JSON."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _known_keys(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    check_known_keys(cls, data, what)
    return dict(data)


@dataclass(frozen=True)
class AugmentStep:
    """One effect of a pipeline: apply ``EFFECTS[effect](waveform, **params)`` with probability ``p``.

    ``params`` may be given as a dict; it is stored as sorted ``(name, value)`` pairs so the step
    stays hashable. Read it back with :attr:`kwargs`.
    """

    effect: str
    p: float = 1.0
    params: Any = ()

    def __post_init__(self) -> None:
        items = self.params.items() if isinstance(self.params, dict) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), _freeze(v)) for k, v in items)))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def validate(self) -> AugmentStep:
        if self.effect not in EFFECTS:
            raise KwsError(f"Unknown augmentation {self.effect!r}. Choose from {sorted(EFFECTS)}.")
        if not 0.0 <= self.p <= 1.0:
            raise KwsError(f"{self.effect}: p is a probability in [0, 1], got {self.p}.")
        allowed = set(inspect.signature(EFFECTS[self.effect]).parameters) - {"waveform", "seed", "noises"}
        unknown = sorted(set(self.kwargs) - allowed)
        if unknown:
            raise KwsError(f"{self.effect}: unknown parameter(s) {unknown}. It takes {sorted(allowed)}.")
        _check_step_params(self.effect, self.kwargs)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"effect": self.effect, "p": self.p, "params": {k: _thaw(v) for k, v in self.params}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentStep:
        return cls(**_known_keys(cls, data, "augment step key"))


def _check_step_params(effect: str, params: dict[str, Any]) -> None:
    """Validate a step's parameters without running it (same checks the effect itself makes)."""
    for name, value in params.items():
        if name in LIMITS and value is not None:
            _check_range(effect, name, value)
    if effect == "compress" and "preset" in params:
        _check_choice(effect, "preset", params["preset"], COMPRESSOR_PRESETS)
    for name in ("color", "fallback_color"):
        if name in params:
            _check_choice(effect, name, params[name], NOISE_COLORS)
    if effect in ("add_background_noise", "add_colored_noise"):
        _check_noise_level(effect, params.get("snr_db"), params.get("weight"))


@dataclass(frozen=True)
class AugmentConfig:
    """A whole augmentation recipe: waveform ``steps`` in order, then optional SpecAugment.

    Training calls :meth:`apply` per clip in the DataLoader workers (pass a per-item seed such as
    ``(run_seed, epoch, index)`` for reproducible runs) and :class:`SpecAugment` /
    :func:`spec_augment_batch` on each batch of spectrograms; the Augmentation lab calls
    :meth:`apply` and :meth:`apply_spec` to preview one clip.
    """

    steps: tuple[AugmentStep, ...] = ()
    spec_augment: SpecAugmentConfig | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        steps = tuple(s if isinstance(s, AugmentStep) else AugmentStep.from_dict(s) for s in self.steps)
        # (dicts are accepted so that from_dict(json.loads(...)) works)
        object.__setattr__(self, "steps", steps)
        if isinstance(self.spec_augment, dict):
            object.__setattr__(self, "spec_augment", SpecAugmentConfig.from_dict(self.spec_augment))

    def validate(self) -> AugmentConfig:
        for step in self.steps:
            step.validate()
        if self.spec_augment is not None:
            self.spec_augment.validate()
        return self

    def apply(
        self,
        waveform: torch.Tensor,
        seed: Seed = None,
        noises: Sequence[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[dict]]:
        """Run the waveform steps. ``[1, time]`` -> ``([1, time], one record per step)``.

        A step that is skipped (its coin came up above ``p``) records ``{"effect", "applied": False}``.
        ``noises`` feeds ``add_background_noise`` (coloured noise when empty).
        """
        rng = make_rng(seed)
        x = _to_clip(waveform)
        records = []
        for step in self.steps:
            if rng.random() >= step.p:
                records.append({"effect": step.effect, "applied": False})
                continue
            kwargs = step.kwargs
            if step.effect == "add_background_noise":
                kwargs["noises"] = noises
            x, record = EFFECTS[step.effect](x, **kwargs, seed=rng)
            records.append({**record, "applied": True})
        return x, records

    def apply_spec(self, spec: torch.Tensor, seed: Seed = None) -> tuple[torch.Tensor, dict | None]:
        """SpecAugment one spectrogram (``[n_mels, frames]``) if this recipe has it; else unchanged."""
        if self.spec_augment is None:
            return spec, None
        return spec_augment(spec, self.spec_augment, seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": [s.to_dict() for s in self.steps],
            "spec_augment": None if self.spec_augment is None else self.spec_augment.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        return cls(**_known_keys(cls, data, "augment config key"))  # __post_init__ converts the parts


#: Another name for the same thing (the Augmentation lab speaks of "pipelines").
Pipeline = AugmentConfig

_SHIFT = AugmentStep("time_shift", 1.0, {"shift_ms": (-100.0, 100.0)})

#: Named recipes, from nothing to a lot. ``standard`` is the training default.
PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(name="none"),
    "light": AugmentConfig(
        name="light",
        steps=(_SHIFT, AugmentStep("add_background_noise", 0.8, {"weight": (0.1, 0.3)})),
    ),
    "standard": AugmentConfig(
        name="standard",
        steps=(
            AugmentStep("time_stretch", 0.2, {"rate": (0.9, 1.1)}),
            AugmentStep("pitch_shift", 0.2, {"semitones": (-2.0, 2.0)}),
            _SHIFT,
            AugmentStep("add_background_noise", 0.8, {"weight": (0.1, 0.5)}),
        ),
        spec_augment=SpecAugmentConfig(freq_mask_param=8, time_mask_param=10, n_freq_masks=2, n_time_masks=2),
    ),
    "strong": AugmentConfig(
        name="strong",
        steps=(
            AugmentStep("time_stretch", 0.5, {"rate": (0.81, 1.23)}),
            AugmentStep("pitch_shift", 0.5, {"semitones": (-3.5, 3.5)}),
            AugmentStep("time_shift", 1.0, {"shift_ms": (-150.0, 150.0)}),
            AugmentStep("gain", 0.5, {"gain_db": (-6.0, 6.0)}),
            AugmentStep("compress", 0.3, {"preset": ("speech", "radio", "music", "film")}),
            AugmentStep("add_background_noise", 0.9, {"snr_db": (0.0, 20.0)}),
            AugmentStep("add_colored_noise", 0.2, {"snr_db": (10.0, 30.0)}),
        ),
        spec_augment=SpecAugmentConfig(
            freq_mask_param=10, time_mask_param=20, n_freq_masks=2, n_time_masks=2, time_warp=5
        ),
    ),
}


def preset(name: str) -> AugmentConfig:
    """A named recipe from :data:`PRESETS`."""
    if name not in PRESETS:
        raise KwsError(f"Unknown augmentation preset {name!r}. Choose one of {list(PRESETS)}.")
    return PRESETS[name]


# ============================================================================================
# Training: a recipe's waveform steps on a whole batch
# ============================================================================================

#: Effects :class:`BatchAugment` runs with torch on the whole batch; the others run per clip.
BATCHED_EFFECTS = ("time_shift", "gain", "add_background_noise", "add_colored_noise", "reverb", "microphone")
#: Rooms simulated once per run for the ``reverb`` step (each clip picks one at random).
N_ROOMS = 48


def _uniform(value: Any, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws from a range ``(low, high)``, or a number repeated: ``[n]`` float32."""
    if isinstance(value, list | tuple):
        low, high = float(value[0]), float(value[1])
        return low + (high - low) * torch.rand(n, generator=gen)
    return torch.full((n,), float(value))


def _choice(value: str | Sequence[str], n: int, gen: torch.Generator) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    return [names[i] for i in torch.randint(len(names), (n,), generator=gen).tolist()]


class BatchAugment:
    """An :class:`AugmentConfig`'s waveform steps applied to a batch ``[B, 1, T]`` at ``sample_rate``.

    Same semantics as :meth:`AugmentConfig.apply` (steps in order, each clip flips its own coin
    with probability ``p``, parameters drawn per clip) and the same batched functions as the
    per-clip effects, but the values are drawn for the whole batch at once
    (:data:`BATCHED_EFFECTS`); only the clips whose coin came up run the per-clip effects (time
    stretch, pitch shift, compression; a few ms each). Those per-clip effects were written for
    16 kHz; stretch rates and semitones are ratios, so they mean the same at 8 kHz (only the
    compressor's time constants double).
    """

    def __init__(
        self, config: AugmentConfig, sample_rate: int, noises: list[torch.Tensor] | None = None, seed: int = 0
    ) -> None:
        self.steps = config.validate().steps
        self.sample_rate = sample_rate
        self.noises = list(noises or [])  # 16 kHz recordings; a NoiseBank at the batch's length on first use
        self.bank: NoiseBank | None = None
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.rooms: torch.Tensor | None = None  # [N_ROOMS, 1, K] impulse responses, made when needed

    @property
    def per_clip_effects(self) -> list[str]:
        """The slow effects of this recipe (run clip by clip)."""
        return [s.effect for s in self.steps if s.effect not in BATCHED_EFFECTS]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T]`` -> ``[B, 1, T]`` (a new tensor; ``x`` is not modified)."""
        for step in self.steps:
            chosen = torch.rand(len(x), generator=self.gen) < step.p  # [B] coin per clip
            if not chosen.any():
                continue
            if step.effect in BATCHED_EFFECTS:
                x = getattr(self, f"_{step.effect}")(x, step.kwargs, chosen)
            else:
                x = self._per_clip(x, chosen, step)
        return x

    # -- the batched effects ----------------------------------------------------------------
    # Each takes the batch [B, 1, T], the step's parameters and the clips it applies to
    # (``chosen``, [B] bool). Clips not chosen get the neutral value (shift 0, 0 dB, no noise),
    # which leaves them exactly as they were, so no masking pass over the batch is needed.

    def _time_shift(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        ms = _uniform(params.get("shift_ms", (-100.0, 100.0)), len(x), self.gen) * chosen
        return shift_batch(x, (ms * self.sample_rate / 1000.0).round().long())

    def _gain(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        return gain_batch(x, _uniform(params.get("gain_db", (-6.0, 6.0)), len(x), self.gen) * chosen)

    def _level(self, params: dict, chosen: torch.Tensor, default_snr=None, default_weight=None):
        """(SNR in dB, None) or (None, weight) per clip; clips not chosen get SNR inf / weight 0."""
        snr, weight = params.get("snr_db"), params.get("weight")
        if snr is None and weight is None:
            snr, weight = default_snr, default_weight
        if snr is not None:
            snr = _uniform(snr, len(chosen), self.gen)
            return torch.where(chosen, snr, torch.full_like(snr, math.inf)), None
        return None, _uniform(weight, len(chosen), self.gen) * chosen

    def _add_background_noise(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        if self.noises and (self.bank is None or self.bank.length != x.shape[-1]):
            self.bank = NoiseBank(self.noises, self.sample_rate, x.shape[-1])
        if self.noises:
            noise = self.bank.windows(len(x), self.gen)
        else:  # no recordings in this dataset: coloured noise, as add_background_noise does
            colors = _choice(params.get("fallback_color", ("white", "pink", "brown")), len(x), self.gen)
            noise = colored_noise_batch(colors, x.shape[-1], self.gen)
        snr, weight = self._level(params, chosen, default_weight=(0.1, 0.5))
        return mix_batch(x, noise, snr, weight)

    def _add_colored_noise(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        colors = _choice(params.get("color", ("white", "pink", "brown")), len(x), self.gen)
        snr, weight = self._level(params, chosen, default_snr=(10.0, 30.0))
        return mix_batch(x, colored_noise_batch(colors, x.shape[-1], self.gen), snr, weight)

    def _reverb(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        if self.rooms is None:  # simulate the rooms once, on first use
            rt60 = params.get("rt60", (0.15, 0.8))
            rirs = [room_impulse_response(self.rng, rt60, self.sample_rate)[0] for _ in range(N_ROOMS)]
            self.rooms = torch.zeros(N_ROOMS, 1, max(r.shape[-1] for r in rirs))
            for room, rir in zip(self.rooms, rirs, strict=True):
                room[:, : rir.shape[-1]] = rir
        which = torch.randint(N_ROOMS, (len(x),), generator=self.gen)
        return torch.where(chosen.view(-1, 1, 1), reverberate_batch(x, self.rooms[which]), x)

    def _microphone(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        mics = draw_microphones(len(x), self.rng, **params)
        response = mic_response(x.shape[-1], **mics, sample_rate=self.sample_rate)
        return torch.where(chosen.view(-1, 1, 1), microphone_batch(x, response), x)

    def _per_clip(self, x: torch.Tensor, chosen: torch.Tensor, step: AugmentStep) -> torch.Tensor:
        """Run a numpy/audiomentations effect on the chosen clips only."""
        x = x.clone()
        effect, kwargs = EFFECTS[step.effect], step.kwargs
        for i in chosen.nonzero().flatten().tolist():
            y, _record = effect(x[i], **kwargs, seed=self.rng)
            x[i] = audio.fix_length(y, x.shape[-1])
        return x


__all__ = [
    "AugmentConfig", "AugmentStep", "BATCHED_EFFECTS", "BatchAugment", "COMPRESSOR_PRESETS", "CompressorPreset",
    "EFFECTS", "LIMITS", "NOISE_COLORS", "NoiseBank", "PRESETS", "Pipeline", "SpecAugment", "SpecAugmentConfig",
    "add_background_noise", "add_colored_noise", "colored_noise", "colored_noise_batch", "compress", "draw",
    "fix_length_centred", "gain", "gain_batch", "load_noises", "make_rng", "microphone", "mix", "mix_batch",
    "pitch_shift", "reverb", "preset", "shift_batch", "snr_db", "spec_augment", "spec_augment_batch",
    "time_shift", "time_stretch",
]  # fmt: skip
