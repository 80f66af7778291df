"""Reading, writing and converting audio clips.

We decode with ``soundfile`` (libsndfile): since torchaudio 2.9 ``torchaudio.load`` needs torchcodec
and FFmpeg, which a fresh machine does not have. Waveforms follow torchaudio's convention:
a float32 tensor of shape ``[channels, time]`` with samples in [-1, 1].
"""

from __future__ import annotations

import functools
import io
import math
import os
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torchaudio.transforms as T

from kwscore.errors import KwsError
from kwscore.fileio import atomic_write

#: The sample rate of every clip in KWS Studio (Speech Commands is 16 kHz); the one definition.
SAMPLE_RATE = 16_000

#: The sample rates KWS Studio reads from files: a rate outside this range is a damaged or hostile
#: header (a 1-Hz or 999,983-Hz "recording"), never speech.
MIN_RATE = 4_000
MAX_RATE = 192_000
#: At most this many samples (all channels together) are decoded from one file: 2**25 float32
#: samples are 128 MB, 35 min of 16-kHz mono. A header may promise more; only what is there is read.
MAX_SAMPLES = 2**25
MAX_CHANNELS = 64
#: torchaudio's sinc resampler builds a kernel of (new/g) × (orig/g + 2·width) taps (g = gcd of the
#: rates): 2 taps for 16 kHz -> 8 kHz, 76,000 for 44.1 kHz -> 16 kHz, but 705 million for
#: 44,101 Hz -> 16 kHz. Pairs above this many taps (2 MB) are resampled with soxr instead.
SINC_MAX_TAPS = 2**19
#: How many sinc resamplers are kept (each at most SINC_MAX_TAPS floats: 16 MB in all).
RESAMPLER_CACHE = 8
_BLOCK = 2**20  # frames read at a time


def check_rate(sample_rate, name: str = "This audio") -> int:
    """A file's sample rate, if it is one KWS Studio reads (4 kHz to 192 kHz); else a KwsError."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or not (
        MIN_RATE <= sample_rate <= MAX_RATE
    ):
        raise KwsError(
            f"{name} says it is sampled at {sample_rate} Hz: KWS Studio reads {MIN_RATE:,} to "
            f"{MAX_RATE:,} Hz. Convert it to 16 kHz (e.g. in Audacity) and try again."
        )
    return int(sample_rate)


def count_nonfinite(samples: torch.Tensor | np.ndarray) -> int:
    """How many samples are NaN or infinite (0 for a usable recording)."""
    if isinstance(samples, torch.Tensor):
        return int((~torch.isfinite(samples)).sum())
    return int((~np.isfinite(samples)).sum())


def nonfinite_error(name, bad: int) -> KwsError:
    """The one message for a recording with NaN/infinite samples."""
    return KwsError(
        f"{name} contains {bad:,} invalid samples (NaN or infinity): the file is corrupt. "
        "Export it again from your audio editor."
    )


def decode(source, name) -> tuple[np.ndarray, int]:
    """Decode an open-able source into ``[time, channels]`` float32, reading only what is there."""
    with sf.SoundFile(source) as f:
        sr = check_rate(f.samplerate, str(name))
        if not 1 <= f.channels <= MAX_CHANNELS:
            raise KwsError(f"{name} has {f.channels} channels: KWS Studio reads 1 to {MAX_CHANNELS}.")
        blocks, total = [], 0
        while True:  # in blocks: a header that promises 2**36 frames costs nothing
            block = f.read(_BLOCK, dtype="float32", always_2d=True)
            if not len(block):
                break
            total += block.size
            if total > MAX_SAMPLES:
                raise KwsError(
                    f"{name} holds more than {MAX_SAMPLES / f.channels / sr / 60:.0f} min of audio: "
                    "too long to load at once. Cut it into shorter pieces."
                )
            blocks.append(block)
    if not blocks:
        return np.zeros((0, f.channels), np.float32), sr
    return (np.concatenate(blocks) if len(blocks) > 1 else blocks[0]), sr


def _regular_file(path: str | os.PathLike) -> None:
    """Raise KwsError unless ``path`` is a regular file (never open a FIFO: it would hang)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise KwsError(f"Audio file {path} is missing.") from exc
    except OSError as exc:
        raise KwsError(f"Cannot read audio file {path}: {exc.strerror or exc}.") from exc
    if not stat.S_ISREG(mode):
        raise KwsError(f"Cannot read audio file {path}: it is not a regular file (a folder, pipe or device).")


def header(path: str | os.PathLike) -> tuple[int, int]:
    """(frames, sample rate) from a file's header, without decoding; KwsError as :func:`load`."""
    _regular_file(path)
    try:
        meta = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise KwsError(f"Cannot read audio file {path}: {str(exc).rstrip('.')}. Is it a WAV/FLAC/OGG file?") from exc
    return int(meta.frames), check_rate(meta.samplerate, f"Audio file {path}")


def load(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Decode an audio file. Returns (waveform [channels, time] float32, sample_rate).

    Raises :class:`KwsError` for a missing file, something that is not a regular file (a FIFO,
    a device, a folder), a file that is not audio, a rate outside 4-192 kHz, more than
    :data:`MAX_SAMPLES` samples, or NaN/infinite samples.
    """
    _regular_file(path)
    try:
        data, sr = decode(str(path), f"Audio file {path}")
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError, MemoryError) as exc:
        raise KwsError(f"Cannot read audio file {path}: {str(exc).rstrip('.')}. Is it a WAV/FLAC/OGG file?") from exc
    bad = count_nonfinite(data)
    if bad:
        raise nonfinite_error(f"Audio file {path}", bad)
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def load_bytes(data: bytes) -> tuple[torch.Tensor, int]:
    """Decode audio from bytes (an upload or a microphone recording). Same output as :func:`load`."""
    if not data:
        raise KwsError("The audio file is empty (0 bytes). Record or upload it again.")
    try:
        arr, sr = decode(io.BytesIO(data), "The audio file")
    except (sf.LibsndfileError, RuntimeError, TypeError, MemoryError) as exc:
        raise KwsError(
            f"This does not look like an audio file ({exc}). Use WAV, FLAC or OGG."
        ) from exc
    bad = count_nonfinite(arr)
    if bad:
        raise nonfinite_error("The audio file", bad)
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


def sinc_taps(orig_sr: int, new_sr: int) -> int:
    """Size of torchaudio's sinc kernel for ``orig_sr -> new_sr`` (its default filter width 6,
    roll-off 0.99): what :class:`torchaudio.transforms.Resample` allocates, and computes per frame."""
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    width = math.ceil(6 * orig / (min(orig, new) * 0.99))
    return new * (orig + 2 * width)


def resampling_method(orig_sr: int, new_sr: int) -> str:
    """``"sinc"`` (torchaudio) or ``"soxr"``: what :func:`resample` uses for this pair."""
    return "sinc" if sinc_taps(orig_sr, new_sr) <= SINC_MAX_TAPS else "soxr"


def _check_pair(orig_sr, new_sr) -> tuple[int, int]:
    for rate in (orig_sr, new_sr):
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or not 0 < rate <= MAX_RATE:
            raise KwsError(
                f"Cannot resample {orig_sr} Hz -> {new_sr} Hz: rates must be whole numbers from 1 to "
                f"{MAX_RATE:,} Hz. Use e.g. 16000 -> 8000."
            )
    return int(orig_sr), int(new_sr)


@functools.lru_cache(maxsize=RESAMPLER_CACHE)
def resampler(orig_sr: int, new_sr: int) -> T.Resample:
    """A cached ``torchaudio.transforms.Resample`` (its sinc kernel is computed once, not per clip).

    Only for pairs whose kernel is small (:data:`SINC_MAX_TAPS`): 16 kHz <-> 8 kHz, 44.1 kHz -> 16 kHz,
    and the like. Raises :class:`KwsError` for other pairs (:func:`resample` uses soxr for them).
    """
    problems = sinc_problems(orig_sr, new_sr)
    if problems:
        raise KwsError(problems[0])
    return T.Resample(int(orig_sr), int(new_sr))


def sinc_problems(orig_sr, new_sr) -> list[str]:
    """Why ``T.Resample(orig_sr, new_sr)`` must not be built (a sentence), or ``[]`` when it is cheap.

    For a model's front end, which must be a torch module (exported with the model): a rate whose
    sinc kernel is too large is refused, not approximated.
    """
    try:
        orig_sr, new_sr = _check_pair(orig_sr, new_sr)
    except KwsError as exc:
        return [str(exc)]
    taps = sinc_taps(orig_sr, new_sr)
    if taps > SINC_MAX_TAPS:
        return [
            f"Resampling {orig_sr:,} Hz -> {new_sr:,} Hz with a sinc filter needs {taps:,} taps (the limit "
            f"is {SINC_MAX_TAPS:,}): the two rates share no large common factor. Use a rate like 8000, "
            "11025, 12000 or 16000 Hz."
        ]
    return []


def resample(waveform: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling, ``[..., time]`` -> ``[..., time · new_sr / orig_sr]``.

    torchaudio's sinc resampler (cached, :func:`resampler`) for pairs with a small kernel — every
    pair the models use; soxr (high quality, cost proportional to the clip) for any other pair such
    as 44,101 Hz -> 16 kHz, whose sinc kernel would take gigabytes.
    """
    orig_sr, new_sr = _check_pair(orig_sr, new_sr)
    if orig_sr == new_sr:
        return waveform
    n = waveform.shape[-1]
    if n == 0:
        return waveform
    if waveform.numel() * new_sr / orig_sr > 4 * MAX_SAMPLES:
        raise KwsError(
            f"Resampling {n:,} samples from {orig_sr:,} Hz to {new_sr:,} Hz would "
            "give too many samples. Cut the recording shorter first."
        )
    if resampling_method(orig_sr, new_sr) == "sinc":
        with torch.inference_mode():
            return resampler(orig_sr, new_sr)(waveform)
    x = waveform.detach().cpu().float()
    rows = x.reshape(-1, x.shape[-1]).numpy()  # [channels, time]
    y = soxr.resample(np.ascontiguousarray(rows.T), orig_sr, new_sr, quality="HQ")  # [time', channels]
    y = torch.from_numpy(np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, rows.shape[0]).T))
    return y.reshape(*x.shape[:-1], y.shape[-1]).to(waveform.device)


def fix_length(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad or cut the last dimension to exactly ``length`` samples."""
    n = waveform.shape[-1]
    if n >= length:
        return waveform[..., :length]
    return torch.nn.functional.pad(waveform, (0, length - n))


def trim_silence(waveform: torch.Tensor, sample_rate: int, floor_db: float = 35.0, pad_ms: float = 80.0) -> torch.Tensor:
    """Cut leading/trailing 10-ms frames quieter than ``floor_db`` below the loudest one.

    [1, time] -> [1, time'] (keeps ``pad_ms`` of margin on each side).
    """
    hop = sample_rate // 100
    n = waveform.shape[-1] // hop
    if n == 0:
        return waveform
    frames = waveform[0, : n * hop].reshape(n, hop)
    db = 10 * torch.log10(frames.pow(2).mean(dim=1) + 1e-12)
    loud = torch.nonzero(db > db.max() - floor_db).flatten()
    pad = round(pad_ms / 1000 * sample_rate)
    start = max(0, int(loud[0]) * hop - pad)
    end = min(waveform.shape[-1], (int(loud[-1]) + 1) * hop + pad)
    return waveform[:, start:end]
