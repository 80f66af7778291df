"""Reading, writing and converting audio clips.

We decode with ``soundfile`` (libsndfile): since torchaudio 2.9 ``torchaudio.load`` needs torchcodec
and FFmpeg, which a fresh machine does not have. Waveforms follow torchaudio's convention:
a float32 tensor of shape ``[channels, time]`` with samples in [-1, 1].
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms as T

from kwscore.errors import KwsError
from kwscore.fileio import atomic_write


def load(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Decode an audio file. Returns (waveform [channels, time] float32, sample_rate)."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [time, channels]
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise KwsError(f"Cannot read audio file {path}: {exc}. Is it a WAV/FLAC/OGG file?") from exc
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def load_bytes(data: bytes) -> tuple[torch.Tensor, int]:
    """Decode audio from bytes (an upload or a microphone recording). Same output as :func:`load`."""
    if not data:
        raise KwsError("The audio file is empty (0 bytes). Record or upload it again.")
    try:
        arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise KwsError(
            f"This does not look like an audio file ({exc}). Use WAV, FLAC or OGG."
        ) from exc
    return torch.from_numpy(np.ascontiguousarray(arr.T)), int(sr)


def to_int16(waveform: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 numpy array (clipped), shape [time] or [time, channels]."""
    arr = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if arr.ndim == 2:  # torchaudio [channels, time] -> soundfile [time, channels]
        arr = arr.T
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(arr, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def wav_bytes(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> bytes:
    """Encode a waveform as 16-bit PCM WAV bytes (what ``st.audio`` plays without re-normalising)."""
    buf = io.BytesIO()
    sf.write(buf, to_int16(waveform), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def save_wav(path: str | os.PathLike, waveform: torch.Tensor | np.ndarray, sample_rate: int) -> Path:
    """Write a 16-bit WAV atomically: a half-written file is never left under ``path``."""
    return atomic_write(path, wav_bytes(waveform, sample_rate))


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """[channels, time] -> [1, time] by averaging channels."""
    return waveform.mean(dim=0, keepdim=True) if waveform.shape[0] > 1 else waveform


@functools.lru_cache(maxsize=16)
def resampler(orig_sr: int, new_sr: int) -> T.Resample:
    """A cached ``torchaudio.transforms.Resample`` (its sinc kernel is computed once, not per clip)."""
    if orig_sr <= 0 or new_sr <= 0:
        raise KwsError(f"Sample rates must be positive, got {orig_sr} -> {new_sr}. Use e.g. 16000 -> 8000.")
    return T.Resample(orig_sr, new_sr)


def resample(waveform: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited (sinc) resampling, ``[..., time]`` -> ``[..., time · new_sr / orig_sr]``."""
    if orig_sr == new_sr:
        return waveform
    with torch.inference_mode():
        return resampler(int(orig_sr), int(new_sr))(waveform)


def fix_length(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad or cut the last dimension to exactly ``length`` samples."""
    n = waveform.shape[-1]
    if n >= length:
        return waveform[..., :length]
    return torch.nn.functional.pad(waveform, (0, length - n))
