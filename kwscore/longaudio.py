"""Recordings of any length: checked before they are read, then read and scored block by block.

A one-hour recording at 44.1 kHz stereo is 1.3 GB of float samples: reading it whole, as
:func:`kwscore.inference.read_audio` does for short uploads, would take the machine's memory. Here a
recording is

1. **checked before any sample is read** — a regular file (not a folder, a pipe such as a FIFO or a
   device such as ``/dev/zero``, which would hang or never end), not empty, under the size limit if
   there is one, an audio format ``soundfile`` can decode, at 8 kHz or more;
2. **surveyed** in one pass of ``soundfile`` blocks: its real length (a truncated file has fewer
   samples than its header promises), its peak (silence; float files beyond full scale are scaled
   down), NaN/infinite samples (refused, with the time of the first);
3. **read again in blocks**, each converted to what every model takes in (mono at 16 kHz: the same
   :func:`kwscore.inference.to_model_input`, resampling with a little context on either side so that
   the blocks join seamlessly), and fed to the streaming detector (:func:`kwscore.streaming.detect_stream`),
   which keeps only the windows' probabilities and 10-ms levels (~10 MB for an hour).

Memory therefore stays constant whatever the length (freed block buffers are handed back to the
system after each block: :func:`release_memory`); the ``progress`` callbacks drive a progress bar.

Example::

    rec = open_recording("lecture.flac")              # raises KwsError with a sentence if unusable
    result = detect_recording(rec, Predictor.from_run(run))
    print(rec.duration, [d.word for d in result.detections])
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.errors import KwsError
from kwscore.inference import (
    MIN_SECONDS,
    SILENCE_PEAK,
    _bytes_per_sample,
    _describe_format,
    _short,
    _wav_declared_bytes,
    check_header,
    to_model_input,
)
from kwscore.streaming import StreamConfig, StreamResult, detect_stream

#: Samples read at a time (seconds of audio).
BLOCK_S = 10.0
#: Extra audio on either side of a block when it is resampled, so that blocks join seamlessly.
CONTEXT_S = 0.05
#: Bytes of the file's start searched for a WAV header's declared length.
HEADER_BYTES = 1 << 16

#: progress(stage, seconds done, seconds in all); stage is "checking" or "listening".
Progress = Callable[[str, float, float], None]


@dataclass
class Recording:
    """A recording checked and surveyed, ready to be read in blocks (no samples kept in memory)."""

    source: str | bytes  #: a path, or the bytes of an upload
    name: str
    format: str  #: e.g. "WAV (PCM_16)"
    sample_rate: int  #: the file's own rate
    channels: int
    n_bytes: int
    frames: int = 0  #: samples per channel really in the file
    peak: float = 0.0
    steps: list[str] = field(default_factory=list)  #: the conversions, in words
    notes: list[str] = field(default_factory=list)  #: warnings worth showing (truncated, clipped)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def describe(self) -> str:
        return "; ".join(self.steps) if self.steps else "already mono at 16 kHz: no conversion"

    def _open(self) -> sf.SoundFile:
        return sf.SoundFile(io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source)

    def raw_blocks(self, frames: int) -> Iterator[np.ndarray]:
        """The file's samples, ``frames`` at a time: float32 [time, channels], scaled into [-1, 1]."""
        scale = 1.0 / self.peak if self.peak > 1.0 else 1.0
        with self._open() as f:
            while True:
                block = f.read(frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block * scale if scale != 1.0 else block

    def blocks(self, seconds: float = BLOCK_S) -> Iterator[torch.Tensor]:
        """The recording as the model hears it: consecutive mono 16 kHz pieces [1, time].

        Resampling looks a little (:data:`CONTEXT_S`) past both ends of each block; blocks are cut at
        multiples of the rates' common period, so that the pieces joined equal the whole file
        resampled at once (up to float rounding).
        """
        sr = self.sample_rate
        convert = lambda x: to_model_input(torch.from_numpy(np.ascontiguousarray(x.T)), sr)[0]  # noqa: E731
        if sr == SAMPLE_RATE:
            for block in self.raw_blocks(max(1, round(seconds * sr))):
                yield convert(block)
            return
        g = math.gcd(sr, SAMPLE_RATE)
        unit_in, unit_out = sr // g, SAMPLE_RATE // g  # unit_in samples in <-> unit_out samples out
        ctx_units = max(2, math.ceil(CONTEXT_S * sr / unit_in))
        ctx, ctx_out = ctx_units * unit_in, ctx_units * unit_out
        length = max(ctx_units, round(seconds * sr / unit_in)) * unit_in  # a block is never shorter than its context
        step_out = length // unit_in * unit_out
        before = np.zeros((ctx, self.channels), dtype=np.float32)  # silence before the start, as a resampler pads
        pending = np.zeros((0, self.channels), dtype=np.float32)
        for block in self.raw_blocks(length):
            pending = np.concatenate([pending, block])
            while len(pending) >= length + ctx:
                yield convert(np.concatenate([before, pending[: length + ctx]]))[:, ctx_out : ctx_out + step_out]
                before, pending = pending[length - ctx : length], pending[length:]
        if len(pending):
            yield convert(np.concatenate([before, pending]))[:, ctx_out:]


def _libc():
    try:
        return ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    except OSError:
        return None


_LIBC = _libc()


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Every block allocates and frees buffers of a few MB; glibc keeps such freed memory in its heap,
    fragmented, so without this a one-hour file's process grew by ~230 MB although nothing was kept.
    """
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _open_checked(path: Path) -> tuple[io.BufferedReader, int]:
    """Open ``path`` for reading without blocking (a FIFO would wait for a writer for ever), then
    make sure it is a regular file. Returns (file, size in bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError as exc:
        raise KwsError(f"{path} is a folder, not an audio file. Give a WAV, FLAC or OGG file.") from exc
    except OSError as exc:
        raise KwsError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a pipe (FIFO)" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket"
                if stat.S_ISSOCK(info.st_mode) else "not a regular file")  # fmt: skip
        raise KwsError(f"{path} is {kind}, not an audio file: only WAV, FLAC or OGG files are read. "
                       "Save the audio to a file first.")  # fmt: skip
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), info.st_size


def open_recording(
    source: str | os.PathLike | bytes,
    name: str | None = None,
    *,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> Recording:
    """Check and survey a recording of any length (a file path, or the bytes of an upload).

    Raises :class:`KwsError` with one sentence for: a missing or unreadable file, a folder, a pipe or
    device, an empty file, a file over ``max_bytes`` (no limit if None), a format soundfile cannot
    decode, a rate below 8 kHz, NaN/infinite samples, silence, less than 0.1 s of audio.
    """
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name, n_bytes, head, target = name or "recording", len(data), data[:HEADER_BYTES], data
    else:
        path = Path(source).expanduser()
        name = name or path.name
        f, n_bytes = _open_checked(path)
        with f:
            head = f.read(HEADER_BYTES) if n_bytes else b""
        target = str(path)
    info = check_header(target, name, n_bytes, max_bytes)
    sr, channels = int(info.samplerate), int(info.channels)
    rec = Recording(target, name, _describe_format(info), sr, channels, n_bytes)
    _survey(rec, head, info, progress)
    return rec


def _survey(rec: Recording, head: bytes, info, progress: Progress | None) -> None:
    """One pass over the samples: length, peak, invalid samples, clipping; fills ``rec``."""
    sr = rec.sample_rate
    promised = info.frames / sr if info.frames and info.frames < 2**62 else 0.0
    frames, peak, mono_peak, clipped, bad = 0, 0.0, 0.0, 0, 0
    try:
        for block in rec.raw_blocks(max(1, round(BLOCK_S * sr))):
            frames += len(block)
            bad += audio.count_nonfinite(block)
            if bad:
                continue  # counted, then refused below
            magnitude = np.abs(block)
            peak = max(peak, float(magnitude.max()))
            mono_peak = max(mono_peak, float(np.abs(block.mean(axis=1)).max()))
            clipped += int((magnitude >= 0.999).sum())
            if progress is not None:
                progress("checking", frames / sr, max(promised, frames / sr))
    except (sf.LibsndfileError, RuntimeError) as exc:
        if frames == 0:
            raise KwsError(
                f"{rec.name} could not be decoded ({_short(exc)}): it is probably damaged or cut short."
            ) from exc
        rec.notes.append(f"The file is damaged after {frames / sr:.2f} s ({_short(exc)}). Using what is before.")
    rec.frames, rec.peak = frames, peak
    if frames == 0:
        raise KwsError(f"{rec.name} contains no samples (0 s of audio).")
    if bad:
        raise audio.nonfinite_error(rec.name, bad)
    declared = _wav_declared_bytes(head)
    expected = declared // max(1, rec.channels * _bytes_per_sample(info.subtype)) if declared else None
    if expected and frames < expected:
        rec.notes.append(
            f"The file is truncated: its header promises {expected / sr:.2f} s but only {frames / sr:.2f} s of "
            "samples are there. Using what is there."
        )
    if rec.duration < MIN_SECONDS:
        raise KwsError(f"{rec.name} lasts only {rec.duration * 1000:.0f} ms: a word needs at least {MIN_SECONDS:.1f} s.")
    if peak < SILENCE_PEAK:
        raise KwsError(
            f"{rec.name} is silent (loudest sample {20 * math.log10(max(peak, 1e-9)):.0f} dBFS): there is nothing "
            "to listen to. Check the microphone or the file."
        )
    if rec.channels > 1 and mono_peak < SILENCE_PEAK:
        raise KwsError(
            f"{rec.name} is silent once its {rec.channels} channels are mixed to mono: they cancel out (one is the "
            "other upside down, e.g. a miswired microphone). Export one channel, or record it again in mono."
        )
    if peak > 1.0:
        rec.notes.append(f"Samples reach {peak:.2f}, beyond full scale (1.0): they were scaled down to fit.")
    elif clipped / max(1, frames * rec.channels) > 0.001:
        rec.notes.append("The recording is clipped (too loud): the model may hear it distorted.")
    # the conversion of a few samples names the steps (mono, resampling) in words
    rec.steps = to_model_input(torch.zeros(rec.channels, max(1, sr // 100)), sr)[1]


def detect_recording(
    rec: Recording,
    predictor,
    cfg: StreamConfig | None = None,
    progress: Progress | None = None,
    keep: list[torch.Tensor] | None = None,
) -> StreamResult:
    """Streaming detection over a surveyed recording, block by block (constant memory).

    ``predictor``: a :class:`kwscore.inference.Predictor`. ``keep``: a list that receives every mono
    16 kHz block too (the Try-it page draws and plays what it analysed; leave it None to keep nothing).
    """

    def pieces() -> Iterator[torch.Tensor]:
        for block in rec.blocks():
            if keep is not None:
                keep.append(block)
            yield block
            release_memory()

    report = None if progress is None else (lambda done: progress("listening", min(done, rec.duration), rec.duration))
    return detect_stream(pieces(), SAMPLE_RATE, predictor.probabilities, predictor.labels, cfg, progress=report)
