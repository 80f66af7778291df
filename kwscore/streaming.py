"""Streaming detection: find keywords in a long recording with a 1-s classifier.

A keyword-spotting model answers one question — *which word is in this second?* To listen to a
longer recording we slide that second along it and post-process the answers, as on-device
detectors do ("posterior handling"):

1. **Slide.** Cut 1-s windows every ``hop`` seconds and classify them all (in batches): one row of
   class probabilities per window, ``probs [windows, classes]``.
2. **Smooth.** Average each class's probability over ``smooth`` seconds of neighbouring windows,
   so that a single odd window does not fire.
3. **Gate.** A model without a "silence" class must name *some* word even for pure noise, often
   confidently. So we measure loudness in the speech band (200 Hz - 4 kHz): the recording's
   **noise floor** is the 10th percentile of its 10-ms frame levels (over the 10 s around each
   window, so that a recording whose noise changes keeps a fair floor), and a window may only fire
   when it holds a sound at least ``gate_db`` louder than that floor, lasting at least 0.05 s (a
   cheap voice-activity detector). It does not ask the sound to be whole inside the window: in real
   noise a word's loud stretch runs on into the noise, and that rule cost half the words at 10 dB
   SNR; the peak search below finds the best-centred window anyway.
4. **Threshold.** A detection starts where the best keyword's smoothed probability reaches
   ``threshold``; it is reported at the *peak* of that score (the best-centred window), looking
   at most ``window`` seconds ahead.
5. **Refractory period.** After a detection nothing fires for ``refractory`` seconds: a word is
   seen by several overlapping windows, and windows that see only half of it can look like
   another word.

The word's start and end are the loud stretch (above the gate) around the loudest 10-ms frame of
the peak window. Shapes: waveform ``[1, time]``; probabilities ``[windows, classes]``.

**Any length.** Step 1 is done by a :class:`Scanner` that takes the audio in pieces of any size
(a file read block by block: :func:`detect_stream`, used by :mod:`kwscore.longaudio`) and keeps only
the windows' probabilities and the 10-ms levels; steps 2-5 (:func:`decide`) then run on those small
arrays. :func:`detect` is the same on a waveform in memory. **Live**, :class:`LiveDetector` uses the
same scanner, gate and settings causally: the noise floor of the last 10 s, smoothing over the last
windows, firing at the first window over the threshold (no look-ahead) — for a microphone.

:func:`compose` builds a test recording — known words at known times in background noise — for
tests, benchmarks and the Try-it page.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.signal import sosfilt

from kwscore.errors import KwsError
from kwscore.labels import is_keyword  # "no keyword" classes can win a window but never fire

#: Length of the frames loudness is measured on, in seconds.
FRAME_S = 0.01
#: The noise floor is this percentile of the frame levels...
FLOOR_PERCENTILE = 10.0
#: ... over this much time around each moment (s): the noise of a long recording may change.
FLOOR_WINDOW_S = 10.0
#: Frames quieter than this (dBFS) are digital silence, whatever the floor.
ABSOLUTE_FLOOR_DB = -90.0
#: Loudness is measured in this band (Hz): speech, not rumble or hiss.
SPEECH_BAND = (200.0, 4000.0)
#: A word's loud stretch: frames at least this share of ``gate_db`` above the noise floor.
SPAN_SHARE = 1.0
#: ... and last at least this long (s): a click or a blip of babble is not a word.
MIN_WORD_S = 0.05
#: ... and within this many dB of the window's loudest frame (the quiet tail of a word is not the word).
SPAN_RANGE_DB = 30.0
#: Live, a window fires only once its loud stretch has ended this long (s) before the window's end:
#: a word still being said ("go..." of "gone") must not fire as the word it starts like.
WORD_OVER_S = 0.05
#: Windows classified together (a long recording is read and scored in pieces of this many).
BATCH = 64


@dataclass(frozen=True)
class StreamConfig:
    """Posterior-handling settings (seconds, probabilities, decibels)."""

    window: float = 1.0  #: the classifier's input length
    hop: float = 0.1  #: from one window to the next
    smooth: float = 0.3  #: moving-average length over the window probabilities (0: off)
    threshold: float = 0.5  #: smoothed probability a keyword needs to fire
    refractory: float = 0.8  #: quiet time after a detection
    gate_db: float = 12.0  #: how far above the noise floor something must be to count as sound

    def validate(self) -> StreamConfig:
        problems = []
        if not 0 < self.window <= 10:
            problems.append(f"window must be between 0 and 10 s, got {self.window} s.")
        if not 0 < self.hop <= self.window:
            problems.append(f"hop must be between 0 and the window ({self.window} s), got {self.hop} s.")
        if not 0 <= self.smooth <= 5:
            problems.append(f"smooth must be between 0 s (off) and 5 s, got {self.smooth} s.")
        if not 0 < self.threshold < 1:
            problems.append(f"threshold is a probability: between 0 and 1, got {self.threshold}.")
        if not 0 <= self.refractory <= 10:
            problems.append(f"refractory must be between 0 and 10 s, got {self.refractory} s.")
        if not 0 <= self.gate_db <= 60:
            problems.append(f"gate_db must be between 0 and 60 dB, got {self.gate_db}.")
        if problems:
            raise KwsError(" ".join(problems))
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Detection:
    word: str
    start: float  #: seconds from the start of the recording: where the word begins
    end: float  #: and ends (the loud stretch of the peak window)
    score: float  #: the smoothed probability at the peak
    window_start: float = 0.0  #: start of the peak window, s

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    def to_dict(self) -> dict:
        """``{"word", "start", "end", "score"}`` rounded for JSON (ms, 3 decimals)."""
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 3)}  # fmt: skip


@dataclass
class StreamResult:
    """Everything the timeline plot needs."""

    times: torch.Tensor  #: [windows] start time of each window, s
    probs: torch.Tensor  #: [windows, classes] raw probabilities
    smoothed: torch.Tensor  #: [windows, classes]
    active: torch.Tensor  #: [windows] bool: loud enough (above the gate) to hold a word
    labels: list[str]
    detections: list[Detection]
    config: StreamConfig
    floor_db: float  #: the recording's noise floor, dBFS
    frame_db: torch.Tensor  #: [frames] level of every 10-ms frame, dBFS
    duration: float  #: seconds
    spans: torch.Tensor | None = None  #: [windows, 2] each window's loud stretch, 10-ms frames from its start

    def at_threshold(self, threshold: float) -> list[Detection]:
        """The detections the same recording gives at another threshold (nothing is classified again)."""
        from dataclasses import replace

        cfg = replace(self.config, threshold=threshold).validate()
        return pick_detections(self.smoothed, self.times, self.active, self.labels, cfg, self.spans)

    @property
    def centres(self) -> torch.Tensor:
        """[windows] the centre time of each window, s (where its probabilities are drawn)."""
        return self.times + self.config.window / 2

    def to_list(self) -> list[dict]:
        return [d.to_dict() for d in self.detections]


# --------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------


def frame_windows(waveform: torch.Tensor, sample_rate: int, window: float, hop: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[1, time] -> (windows [n, 1, window·sr], start times [n]); the end is zero-padded.

    A view, not a copy: ``unfold`` reads the overlapping windows from the same memory.
    """
    win, step = round(window * sample_rate), max(1, round(hop * sample_rate))
    x = waveform.reshape(-1)
    n = max(1, 1 + -(-max(0, x.numel() - win) // step))
    x = torch.nn.functional.pad(x, (0, (n - 1) * step + win - x.numel()))
    windows = x.unfold(0, win, step)[:n]
    return windows.unsqueeze(1), torch.arange(n) * step / sample_rate


def moving_average(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Centred mean over ``k`` windows (edges repeated): [n, classes] -> [n, classes].

    Centred, not causal, because the whole file is known: a live detector averages the last
    ``k`` windows instead and reports each word ``k/2`` hops later.
    """
    if k <= 1 or len(probs) == 0:
        return probs
    left, right = (k - 1) // 2, k // 2
    padded = torch.cat([probs[:1].expand(left, -1), probs, probs[-1:].expand(right, -1)])
    return padded.unfold(0, k, 1).mean(dim=-1)


def _biquad_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections of the speech band: a high-pass at 200 Hz and a low-pass at 4 kHz, each
    the RBJ "audio EQ cookbook" biquad with Q = 0.707 (as ``torchaudio.functional.*pass_biquad``)."""
    rows = []
    for kind, freq in (("high", SPEECH_BAND[0]), ("low", min(SPEECH_BAND[1], 0.45 * sample_rate))):
        w0 = 2 * math.pi * freq / sample_rate
        alpha, cos = math.sin(w0) / 2 / 0.707, math.cos(w0)
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2] if kind == "high" else [(1 - cos) / 2, 1 - cos, (1 - cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
        rows.append([v / a[0] for v in (*b, *a)])
    return np.array(rows)


class FrameLevels:
    """Loudness of every 10-ms frame, measured in the speech band (200 Hz - 4 kHz, where speech has
    its energy and rumble or hiss has little: it tells words from brown noise much better).

    It keeps the filter's state and the samples of an unfinished frame between calls, so a recording
    fed in pieces of any size gives exactly the levels of the whole recording.
    """

    def __init__(self, sample_rate: int, band: bool = True):
        self.hop = max(1, round(FRAME_S * sample_rate))
        self.sos = _biquad_sos(sample_rate) if band else None
        self.state = np.zeros((2, 2)) if band else None
        self.rest = np.zeros(0)

    def feed(self, samples: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Samples [time] (or [1, time]) -> levels [frames] of the frames completed, in dBFS."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.sos is not None and x.size:
            x, self.state = sosfilt(self.sos, x, zi=self.state)
        x = np.concatenate([self.rest, x])
        whole = x.size - x.size % self.hop
        self.rest = x[whole:]
        return self._levels(x[:whole])

    def finish(self) -> torch.Tensor:
        """The level of the last, unfinished frame (zero-padded), if any."""
        x, self.rest = self.rest, np.zeros(0)
        return self._levels(np.pad(x, (0, (-x.size) % self.hop)))

    def _levels(self, x: np.ndarray) -> torch.Tensor:
        power = np.square(x.reshape(-1, self.hop)).mean(axis=1) if x.size else np.zeros(0)
        return torch.from_numpy(10 * np.log10(power + 1e-12)).float()


def frame_levels(waveform: torch.Tensor, sample_rate: int, band: bool = True) -> torch.Tensor:
    """[1, time] -> [frames] level of each 10-ms frame in dBFS (a full-scale sine is -3 dB),
    measured in the speech band (``band=True``) or over all frequencies."""
    meter = FrameLevels(sample_rate, band)
    return torch.cat([meter.feed(waveform.detach().cpu().reshape(-1).numpy()), meter.finish()])


def noise_floor(levels: torch.Tensor) -> float:
    """The recording's noise floor: the 10th percentile of its frame levels, in dBFS."""
    if levels.numel() == 0:
        return ABSOLUTE_FLOOR_DB
    return max(float(torch.quantile(levels.float(), FLOOR_PERCENTILE / 100)), ABSOLUTE_FLOOR_DB)


def window_frames(n_windows: int, cfg: StreamConfig, n_frames: int) -> torch.Tensor:
    """[n_windows, frames per window] indices of the 10-ms frames inside each window (clamped)."""
    per = max(1, round(cfg.window / FRAME_S))
    step = cfg.hop / FRAME_S
    starts = (torch.arange(n_windows) * step).round().long()
    return (starts[:, None] + torch.arange(per)[None, :]).clamp(max=max(n_frames - 1, 0))


def loud_span(levels: torch.Tensor, threshold_db: float, max_gap: int = 8) -> tuple[int, int] | None:
    """The loud stretch around the loudest frame: (first, last + 1) frame, or None.

    Frames at or above ``threshold_db`` count as loud; gaps of up to ``max_gap`` quiet frames
    (100 ms: the closure before a "t" or "k") do not end the stretch.
    """
    loud = levels >= threshold_db
    if not bool(loud.any()):
        return None
    peak = int(levels.argmax())
    start = end = peak
    gap = 0
    for i in range(peak - 1, -1, -1):
        gap = 0 if loud[i] else gap + 1
        if gap > max_gap:
            break
        if loud[i]:
            start = i
    gap = 0
    for i in range(peak + 1, len(levels)):
        gap = 0 if loud[i] else gap + 1
        if gap > max_gap:
            break
        if loud[i]:
            end = i
    return start, end + 1


def local_floor(levels: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The noise floor around each of ``frames`` [n] (frame indices): the 10th percentile of the
    levels [frames] over the :data:`FLOOR_WINDOW_S` around it (measured once per second; the whole
    recording's floor when it is shorter)."""
    per, step = round(FLOOR_WINDOW_S / FRAME_S), round(1.0 / FRAME_S)
    if len(levels) <= per:
        return torch.full((len(frames),), noise_floor(levels))
    starts = (torch.arange(0, len(levels), step) - per // 2).clamp(0, len(levels) - per)
    floors = []
    for chunk in starts.split(256):  # [256, 1000] at a time: constant memory for any length
        floors.append(torch.quantile(levels[chunk[:, None] + torch.arange(per)].float(), FLOOR_PERCENTILE / 100, dim=1))
    per_second = torch.cat(floors).clamp(min=ABSOLUTE_FLOOR_DB)
    return per_second[(frames // step).clamp(0, len(per_second) - 1)]


def window_spans(values: np.ndarray, threshold_db: float | torch.Tensor) -> torch.Tensor:
    """[windows, 2] the loud stretch of each window, in frames from the window start ((-1, -1) if none).

    ``values`` [windows, frames per window]: the levels of each window's 10-ms frames. Loud: at least
    ``threshold_db`` (one value, or one per window), and within :data:`SPAN_RANGE_DB` of the window's
    loudest frame.
    """
    spans = torch.full((len(values), 2), -1, dtype=torch.long)
    limits = torch.as_tensor(threshold_db, dtype=torch.float32).expand(len(values)).numpy()
    for w, window in enumerate(values):
        span = loud_span(window, max(float(limits[w]), float(window.max()) - SPAN_RANGE_DB))
        if span is not None:
            spans[w, 0], spans[w, 1] = span
    return spans


def gate(values: np.ndarray, floors: torch.Tensor, cfg: StreamConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 3 for windows whose 10-ms levels are ``values`` [windows, frames per window], over the
    noise floors [windows] around them: (may fire [windows] bool, loud stretch [windows, 2])."""
    values = np.asarray(values, dtype=np.float32).reshape(len(floors), -1)
    spans = window_spans(values, floors + SPAN_SHARE * cfg.gate_db)
    loudest = torch.from_numpy(values.max(axis=1)) if len(values) else torch.zeros(0)
    long_enough = (spans[:, 1] - spans[:, 0]) >= round(MIN_WORD_S / FRAME_S)
    active = (loudest >= floors + cfg.gate_db) & (loudest > ABSOLUTE_FLOOR_DB) & long_enough
    return active, spans


def pick_detections(
    smoothed: torch.Tensor,
    times: torch.Tensor,
    active: torch.Tensor,
    labels: Sequence[str],
    cfg: StreamConfig,
    spans: torch.Tensor,
) -> list[Detection]:
    """Threshold, peak and refractory period over the smoothed probabilities (see the module doc).

    ``spans`` [windows, 2]: the loud stretch of each window in 10-ms frames (:func:`window_spans`).
    """
    keyword = torch.tensor([is_keyword(label) for label in labels])
    if not bool(keyword.any()) or len(times) == 0:
        return []
    score, cls = smoothed.masked_fill(~keyword, 0.0).max(dim=1)
    score = score.masked_fill(~active, 0.0)  # windows below the gate cannot fire
    look_ahead = max(1, round(cfg.window / cfg.hop))
    detections: list[Detection] = []
    quiet_until = -math.inf
    i = 0
    while i < len(times):
        if float(times[i]) < quiet_until or score[i] < cfg.threshold:
            i += 1
            continue
        k = i  # the windows above the threshold from here (at most one window length ahead)
        while k + 1 < len(times) and k + 1 - i <= look_ahead and score[k + 1] >= cfg.threshold:
            k += 1
        run = score[i : k + 1]
        near_peak = torch.nonzero(run >= run.max() - 0.02).flatten() + i  # ties: the middle one
        j = int(near_peak[torch.argmin((near_peak.float() - (i + k) / 2).abs())])
        t = float(times[j])
        start, end = (int(v) for v in spans[j])
        start, end = (start, end) if start >= 0 else (0, round(cfg.window / FRAME_S))
        # the score is the run's highest: exactly the detections a higher threshold keeps (the DET curve)
        detection = Detection(labels[int(cls[j])], t + start * FRAME_S, t + end * FRAME_S, float(run.max()), t)
        detections.append(detection)
        # windows that start before the word ends still hear (part of) it: they must not fire again
        quiet_until = max(t + cfg.refractory, detection.end)
        i = j + 1
    return detections


class Scanner:
    """Step 1 on a recording that arrives in pieces: a file read block by block, or a microphone.

    :meth:`feed` takes the next samples (any number); every 1-s window that is now whole is
    classified — ``batch_size`` windows at a time, so the memory used does not grow with the
    recording — and every 10-ms frame's level is measured. :meth:`finish` classifies the last
    windows, zero-padded at the end. Fed in pieces of any size, a recording gives exactly the
    windows, probabilities and levels it gives whole.
    """

    def __init__(self, classify: Callable[[torch.Tensor], torch.Tensor], sample_rate: int, cfg: StreamConfig,
                 batch_size: int = BATCH, keep: bool = True):  # fmt: skip
        self.classify, self.sample_rate, self.cfg, self.batch_size = classify, sample_rate, cfg, max(1, batch_size)
        self.win, self.step = round(cfg.window * sample_rate), max(1, round(cfg.hop * sample_rate))
        self.meter = FrameLevels(sample_rate)
        self.buffer = torch.zeros(0)  #: samples from the start of window ``self.done`` on
        self.done = 0  #: windows classified so far
        self.received = 0  #: samples fed so far
        self.keep = keep  #: keep every window's probabilities and levels (False: a live stream, for hours)
        self.probs: list[torch.Tensor] = []
        self.levels: list[torch.Tensor] = []

    def feed(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples [time] or [1, time] -> (probabilities [new windows, classes], levels [new frames])."""
        x = samples.detach().reshape(-1).float().cpu()
        self.received += x.numel()
        levels = self.meter.feed(x.numpy())
        if self.keep:
            self.levels.append(levels)
        self.buffer = torch.cat([self.buffer, x])
        whole = (self.received - self.win) // self.step + 1 if self.received >= self.win else 0
        ready = whole - self.done
        return self._classify(ready - ready % self.batch_size), levels

    def finish(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Classify what is left; returns (window start times [n] s, probabilities [n, classes],
        frame levels [frames])."""
        self.levels.append(self.meter.finish())
        total = max(1, 1 + -(-max(0, self.received - self.win) // self.step))
        remaining = total - self.done
        if remaining > 0:
            self.buffer = torch.nn.functional.pad(self.buffer, (0, max(0, (remaining - 1) * self.step + self.win - self.buffer.numel())))
            self._classify(remaining)
        times = torch.arange(total) * self.step / self.sample_rate
        return times, torch.cat(self.probs), torch.cat(self.levels)

    def _classify(self, n: int) -> torch.Tensor:
        """Classify the next ``n`` windows (in batches) and drop the samples no later window needs."""
        if n <= 0:
            return torch.zeros(0, 0)
        windows = self.buffer[: (n - 1) * self.step + self.win].unfold(0, self.win, self.step).unsqueeze(1)
        parts = []
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                parts.append(self.classify(windows[i : i + self.batch_size]).float())
        self.done += n
        self.buffer = self.buffer[n * self.step :].clone()
        if self.keep:
            self.probs.extend(parts)
        return torch.cat(parts)


class LiveDetector:
    """The same detector listening live, to a microphone: audio arrives a few milliseconds at a time
    and every decision is made as soon as a window is whole, never looking ahead.

    The steps are those of :func:`detect`, with what a live listener cannot know replaced by what it
    has heard so far: the windows come from the same :class:`Scanner` (one window at a time), the
    gate (:func:`gate`) measures the noise floor over the *last* 10 s, smoothing averages the *last*
    ``smooth`` seconds of windows, and a keyword fires at the first window whose smoothed probability
    reaches the threshold once the sound has ended (:data:`WORD_OVER_S`; no peak search ahead), then
    the refractory period. :meth:`feed` returns the
    new detections; :attr:`history` keeps the last ``history_s`` seconds for a live timeline.
    """

    def __init__(self, classify: Callable[[torch.Tensor], torch.Tensor], labels: Sequence[str],
                 cfg: StreamConfig | None = None, sample_rate: int = 16000, history_s: float = 10.0):  # fmt: skip
        from collections import deque

        self.cfg = (cfg or StreamConfig()).validate()
        self.labels, self.sample_rate = list(labels), sample_rate
        self.scanner = Scanner(classify, sample_rate, self.cfg, batch_size=1, keep=False)
        self.keyword = torch.tensor([is_keyword(label) for label in self.labels])
        self.per = round(self.cfg.window / FRAME_S)  # frames per window
        self.floor_frames = round(FLOOR_WINDOW_S / FRAME_S)
        self.levels = np.zeros(0, dtype=np.float32)  # the last FLOOR_WINDOW_S + a window of frame levels
        self.first = 0  # frame index of self.levels[0]
        self.recent: deque = deque(maxlen=max(1, round(self.cfg.smooth / self.cfg.hop)))
        n = max(1, round(history_s / self.cfg.hop))
        #: (window end time s, smoothed probabilities [classes], may fire) of the last ``history_s``
        self.history: deque = deque(maxlen=n)
        self.detections: deque = deque(maxlen=200)
        self.quiet_until = -math.inf
        self.windows = 0
        self.floor: float | None = None  #: the noise floor of the last 10 s, dBFS
        self.floor_every = max(1, round(1.0 / self.cfg.hop))
        self.edge = round(WORD_OVER_S / FRAME_S)

    @property
    def now(self) -> float:
        """Seconds of audio heard so far."""
        return self.scanner.received / self.sample_rate

    def feed(self, samples: torch.Tensor | np.ndarray) -> list[Detection]:
        """The next mono samples at ``sample_rate`` (any number) -> the keywords detected in them."""
        probs, levels = self.scanner.feed(torch.as_tensor(np.asarray(samples, dtype=np.float32)))
        self.levels = np.concatenate([self.levels, levels.numpy()])
        keep = self.floor_frames + 2 * self.per
        if len(self.levels) > keep:
            self.first += len(self.levels) - keep
            self.levels = self.levels[-keep:]
        found = []
        for row in probs:
            t = self.windows * self.scanner.step / self.sample_rate  # the window's start
            self.windows += 1
            f0 = round(t / FRAME_S) - self.first
            values = self.levels[f0 : f0 + self.per]
            if self.floor is None or self.windows % self.floor_every == 1:  # the floor moves slowly: once a second
                trailing = self.levels[max(0, f0 + self.per - self.floor_frames) : f0 + self.per]
                self.floor = noise_floor(torch.from_numpy(trailing))
            active, spans = gate(values[None, :], torch.tensor([self.floor]), self.cfg)
            self.recent.append(torch.nan_to_num(row, nan=0.0, posinf=1.0, neginf=0.0))
            smoothed = torch.stack(list(self.recent)).mean(dim=0)
            self.history.append((t + self.cfg.window, smoothed, bool(active[0])))
            score, cls = smoothed.masked_fill(~self.keyword, 0.0).max(dim=0)
            over = int(spans[0, 1]) <= self.per - self.edge  # the sound has ended: not half a word
            if bool(active[0]) and over and float(score) >= self.cfg.threshold and t >= self.quiet_until:
                start, end = (int(v) for v in spans[0])
                d = Detection(self.labels[int(cls)], t + start * FRAME_S, t + end * FRAME_S, float(score), t)
                self.quiet_until = max(t + self.cfg.refractory, d.end)  # (as pick_detections)
                self.detections.append(d)
                found.append(d)
        return found


def decide(
    times: torch.Tensor,
    probs: torch.Tensor,
    levels: torch.Tensor,
    labels: Sequence[str],
    cfg: StreamConfig,
    duration: float,
) -> StreamResult:
    """Steps 2-5 (smooth, gate, threshold, refractory period) over a whole recording's window
    probabilities [windows, classes] and 10-ms frame levels [frames]: small arrays (an hour is
    36,000 windows), whatever the recording's length."""
    if probs.shape[1] != len(labels):
        raise KwsError(f"The classifier gives {probs.shape[1]} probabilities but {len(labels)} labels were given.")
    probs = torch.nan_to_num(probs, nan=0.0, posinf=1.0, neginf=0.0)  # a classifier's NaN never fires
    smoothed = moving_average(probs, max(1, round(cfg.smooth / cfg.hop)))
    floor = noise_floor(levels)
    index = window_frames(len(times), cfg, len(levels))
    floors = local_floor(levels, index[:, index.shape[1] // 2])  # around each window's centre
    active, spans = gate(levels.numpy()[index.numpy()], floors, cfg)
    detections = pick_detections(smoothed, times, active, labels, cfg, spans)
    return StreamResult(
        times=times, probs=probs, smoothed=smoothed, active=active, labels=list(labels),
        detections=detections, config=cfg, floor_db=floor, frame_db=levels, duration=duration, spans=spans,
    )  # fmt: skip


def detect_stream(
    pieces: Iterable[torch.Tensor],
    sample_rate: int,
    classify: Callable[[torch.Tensor], torch.Tensor],
    labels: Sequence[str],
    cfg: StreamConfig | None = None,
    batch_size: int = BATCH,
    progress: Callable[[float], None] | None = None,
) -> StreamResult:
    """Streaming detection over a recording given as consecutive pieces of mono audio ([1, time] or
    [time] each, at ``sample_rate``, the classifier's input rate): a file read block by block is
    scored with constant memory. ``progress(seconds done)`` is called after each piece."""
    cfg = (cfg or StreamConfig()).validate()
    scanner = Scanner(classify, sample_rate, cfg, batch_size)
    for piece in pieces:
        if piece.dim() == 2 and piece.shape[0] != 1:
            raise KwsError(f"detect() wants mono audio shaped [1, time], got {list(piece.shape)}.")
        scanner.feed(piece)
        if progress is not None:
            progress(scanner.received / sample_rate)
    times, probs, levels = scanner.finish()
    return decide(times, probs, levels, labels, cfg, scanner.received / sample_rate)


def detect(
    waveform: torch.Tensor,
    sample_rate: int,
    classify: Callable[[torch.Tensor], torch.Tensor],
    labels: Sequence[str],
    cfg: StreamConfig | None = None,
    batch_size: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> StreamResult:
    """Run a 1-s classifier over a long recording (in memory; :func:`detect_stream` for pieces).

    Args:
        waveform: mono audio [1, time] at ``sample_rate`` (the classifier's input rate).
        classify: maps windows [batch, 1, window·sr] to probabilities [batch, classes].
        labels: class names, in the classifier's order.
        progress: called as ``progress(seconds done, seconds)`` while it scans.
    """
    if waveform.dim() != 2 or waveform.shape[0] != 1:
        raise KwsError(f"detect() wants mono audio shaped [1, time], got {list(waveform.shape)}.")
    piece = 10 * sample_rate
    pieces = (waveform[:, i : i + piece] for i in range(0, waveform.shape[-1], piece))
    total = waveform.shape[-1] / sample_rate
    report = None if progress is None else (lambda done: progress(done, total))
    return detect_stream(pieces, sample_rate, classify, labels, cfg, batch_size, report)


# --------------------------------------------------------------------------------------------
# A test recording: known words at known times in background noise
# --------------------------------------------------------------------------------------------


@dataclass
class Placed:
    """One word placed into a composed recording."""

    word: str
    clip_id: str
    offset: float  #: where the 1-s clip starts, s
    start: float  #: where the spoken word starts (its loud part), s
    end: float  #: and ends, s

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Composition:
    waveform: torch.Tensor  #: [1, time] at 16 kHz
    sample_rate: int
    words: list[Placed] = field(default_factory=list)
    noise: str = ""


def word_bounds(clip: torch.Tensor, sample_rate: int, range_db: float = 30.0) -> tuple[float, float]:
    """Where the word is in a clean clip, as (start, end) in seconds: the loud stretch around its
    loudest 10-ms frame, counting frames within ``range_db`` of it and 10 dB above the clip's
    own noise floor."""
    levels = frame_levels(clip, sample_rate)
    span = loud_span(levels, max(float(levels.max()) - range_db, noise_floor(levels) + 10.0))
    start, end = span if span else (0, len(levels))
    return start * FRAME_S, end * FRAME_S


def _fade_mask(length: int, start: float, end: float, sample_rate: int, margin: float = 0.05) -> torch.Tensor:
    """[length] 1 from ``start - margin`` to ``end + margin`` (s), raised-cosine fades of ``margin`` outside."""
    t = torch.arange(length) / sample_rate
    a, b = start - margin, end + margin
    outside = torch.clamp(torch.maximum(a - t, t - b), min=0.0) / margin  # 0 inside, 1 a margin away
    return torch.where(outside < 1, 0.5 * (1 + torch.cos(torch.pi * outside.clamp(max=1))), torch.zeros(()))


def compose(
    clips: Sequence[tuple[str, str, torch.Tensor]],
    noise: torch.Tensor,
    duration: float,
    *,
    sample_rate: int = 16000,
    gap: tuple[float, float] = (1.0, 2.0),
    lead: float = 1.0,
    noise_db: float = -20.0,
    seed: int = 0,
    noise_name: str = "",
) -> Composition:
    """Place 1-s clips (``(word, clip_id, waveform [1, 16000])``) one after another into noise.

    Clips are peak-normalised to 0.5, cut down to their word (:func:`word_bounds`, faded in and
    out over 50 ms) and start ``lead`` s in, separated by a random gap (s);
    clips that would run past ``duration`` are left out. The noise is looped/cut to the length and
    scaled to ``noise_db`` relative to the speech's RMS (e.g. -20: 20 dB quieter).
    """
    rng = random.Random(seed)
    n = round(duration * sample_rate)
    out = torch.zeros(1, n)
    placed: list[Placed] = []
    t = lead
    speech_power = []
    for word, clip_id, clip in clips:
        length = clip.shape[-1]
        if round(t * sample_rate) + length > n:
            break
        clip = clip / clip.abs().max().clamp(min=1e-6) * 0.5
        a, b = word_bounds(clip, sample_rate)
        clip = clip * _fade_mask(length, a, b, sample_rate)  # the word only, not its clip's hiss
        i = round(t * sample_rate)
        out[:, i : i + length] += clip
        seg = clip[:, round(a * sample_rate) : round(b * sample_rate)]
        speech_power.append(float(seg.pow(2).mean()) if seg.numel() else 0.0)
        placed.append(Placed(word, clip_id, i / sample_rate, i / sample_rate + a, i / sample_rate + b))
        t += length / sample_rate + rng.uniform(*gap)
    if noise.numel():
        x = noise.reshape(-1)
        start = rng.randrange(max(1, x.numel() - n)) if x.numel() > n else 0
        x = x[start:].repeat(-(-n // max(1, x[start:].numel())))[:n]
        rms = float(x.pow(2).mean().sqrt()) or 1.0
        speech_rms = math.sqrt(sum(speech_power) / len(speech_power)) if speech_power else 0.05
        out += x.view(1, -1) * (speech_rms * 10 ** (noise_db / 20) / rms)
    return Composition(out.clamp(-1, 1), sample_rate, placed, noise_name)


def compose_from_dataset(
    root,
    labels: Sequence[str],
    duration: float = 20.0,
    *,
    subset: str = "testing",
    noise: str | None = None,
    noise_db: float = -20.0,
    gap: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
    others: float = 0.0,
) -> Composition:
    """A test recording from a dataset's held-out clips of ``labels``, in one of its background
    noises (``noise``: a file name in ``_background_noise_``, or ``"all"`` for all of them one
    after another; default the first; white noise when the dataset has none). Words take turns so
    every label appears. ``others``: the share of clips (e.g. 0.25) drawn instead from the
    dataset's *other* words — words the model must not report, as in TensorFlow's streaming test."""
    from kwscore import audio
    from kwscore.audio import SAMPLE_RATE
    from kwscore.data.dataset import SpeechCommands
    from kwscore.data.layout import noise_files, word_folders

    words = [w for w in labels if is_keyword(w)]
    rng = random.Random(seed)

    def shuffled_clips(dataset) -> dict[str, list[int]]:
        by_word: dict[str, list[int]] = {}
        for i in range(len(dataset)):
            by_word.setdefault(dataset.get_metadata(i)[2], []).append(i)
        for members in by_word.values():
            rng.shuffle(members)
        return by_word

    dataset = SpeechCommands(root, subset=subset, commands=words)
    by_word = shuffled_clips(dataset)
    if not by_word:
        raise KwsError(f"The {subset} split of {root} has no clip of {', '.join(words)}.")
    order = sorted(by_word)
    rng.shuffle(order)
    other_words = [w for w in word_folders(root) if is_keyword(w) and w not in labels] if others > 0 else []
    other_set = SpeechCommands(root, subset=subset, commands=other_words) if other_words else None
    other_clips = [(w, i) for w, members in sorted(shuffled_clips(other_set).items()) for i in members] if other_set else []
    rng.shuffle(other_clips)
    clips, n_keyword, n_other = [], 0, 0
    for _ in range(max(1, int(duration / (1.0 + gap[0])) + 1)):  # as many as can fit; compose() stops at the end
        if other_clips and rng.random() < others:
            word, n = other_clips[n_other % len(other_clips)]
            source, n_other = other_set, n_other + 1
        else:
            word = order[n_keyword % len(order)]
            members = by_word[word]
            n, source = members[(n_keyword // len(order)) % len(members)], dataset
            n_keyword += 1
        waveform = source.waveform(n)
        if waveform is not None:
            clips.append((word, source.clip_id(n), audio.fix_length(waveform, SAMPLE_RATE)))
    files = noise_files(root)
    chosen = files if noise == "all" else [next((f for f in files if f.name == noise), files[0])] if files else []
    if chosen:
        parts = []
        for f in chosen:
            wave, sr = audio.load(f)
            parts.append(audio.resample(audio.to_mono(wave), sr, SAMPLE_RATE))
        noise_wave, name = torch.cat(parts, dim=1), " + ".join(f.name for f in chosen)
    else:
        noise_wave, name = torch.randn(1, SAMPLE_RATE * 5, generator=torch.Generator().manual_seed(seed)), "white"
    return compose(clips, noise_wave, duration, sample_rate=SAMPLE_RATE, gap=gap, noise_db=noise_db, seed=seed,
                   noise_name=name)  # fmt: skip


def match(
    detections: Sequence[Detection], truth: Sequence[Placed], tolerance: float = 0.25
) -> dict:
    """Score detections against placed words: a hit is the right word whose start is within
    ``tolerance`` s of the true start. Returns hits, misses, false alarms and the time errors."""
    used: set[int] = set()
    hits, errors = [], []
    for w in truth:
        best = None
        for k, d in enumerate(detections):
            if k in used or d.word != w.word:
                continue
            err = abs(d.start - w.start)
            if err <= tolerance and (best is None or err < best[1]):
                best = (k, err)
        if best is not None:
            used.add(best[0])
            hits.append(w)
            errors.append(detections[best[0]].start - w.start)
    false_alarms = [d for k, d in enumerate(detections) if k not in used]
    return {
        "hits": len(hits), "words": len(truth), "missed": [w.word for w in truth if w not in hits],
        "false_alarms": [d.to_dict() for d in false_alarms], "start_errors": errors,
    }  # fmt: skip
