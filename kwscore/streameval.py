"""Streaming accuracy: how a keyword spotter does on a long recording.

A model's test accuracy is measured on 1-s clips that each hold one word. A keyword spotter that
listens all day is judged differently: of the keywords said, how many did it report at the right
time (**recall**), how many as another word (**wrong word**), and how often did it fire when no
keyword was said (**false alarms per hour**)? Like TensorFlow's ``generate_streaming_test_wav`` +
``test_streaming_accuracy``, we

1. **build a long stream** (:func:`build_stream`): held-out clips of the dataset's test split,
   about 3 s apart, about 1 in 4 a word the model must *not* report, in the dataset's background
   noises at a chosen signal-to-noise ratio — or take a recording with a truth file;
2. **run the streaming detector** over it once (:mod:`kwscore.streaming`: windows, smoothing, gate,
   threshold, refractory period), at a low threshold;
3. **count** (:func:`score`): a detection is *at* a word when it lies within ±0.5 s of it. Each word
   is matched to at most one detection and each detection to at most one word (a detection counts
   once): the right keyword is a hit, another keyword a wrong word; a detection at a non-keyword
   or in the noise — or a second one at the same word — is a false alarm;
4. **sweep the threshold** (:func:`det_curve`): keeping only detections whose score reaches each
   threshold gives the **detection-error trade-off** (DET) curve, miss rate against false alarms
   per hour, monotone by construction; :func:`recommend` picks the lowest threshold whose false
   alarms stay under a target (e.g. 1 per hour), and :func:`save` stores it with the run, where the
   Try-it and Live pages take it as their default.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from kwscore.errors import KwsError
from kwscore.labels import is_keyword
from kwscore.streaming import Composition, Detection, Placed, StreamConfig, StreamResult

#: A detection is at a word when it lies within this many seconds of it.
TOLERANCE_S = 0.5
#: The detector runs once at this threshold; the DET curve keeps the detections above each threshold.
BASE_THRESHOLD = 0.2
#: Default target for the recommended threshold: false alarms per hour.
TARGET_FA_PER_HOUR = 1.0
#: Where an evaluation and a stored threshold live inside a run folder.
FOLDER = "streaming"
REPORT = "report.json"
THRESHOLD = "threshold.json"
#: How many of the loudest false alarms are kept as short WAVs for listening.
WORST = 8


# --------------------------------------------------------------------------------------------
# 1. The stream
# --------------------------------------------------------------------------------------------


def build_stream(root, labels: Sequence[str], minutes: float = 10.0, snr_db: float = 10.0, *,
                 others: float = 0.25, seed: int = 0, subset: str = "testing") -> Composition:  # fmt: skip
    """A ``minutes``-long stream of the test split's words about 3 s apart (``others`` of them
    non-keywords) in all the dataset's background noises at ``snr_db`` dB below the speech."""
    from kwscore.streaming import compose_from_dataset

    if not 0 < minutes <= 600:
        raise KwsError(f"--minutes must be between 0 and 600, got {minutes}.")
    if not -20 <= snr_db <= 60:
        raise KwsError(f"--snr must be between -20 and 60 dB, got {snr_db}.")
    if not 0 <= others < 1:
        raise KwsError(f"The share of non-keywords must be between 0 and 1, got {others}.")
    return compose_from_dataset(root, labels, minutes * 60, subset=subset, noise="all", noise_db=-snr_db,
                                gap=(1.5, 2.5), seed=seed, others=others)  # fmt: skip


def read_truth(path: str | Path) -> list[Placed]:
    """The words of a recording: a JSON list of ``{"word", "start", "end"}`` (seconds; what
    ``kwscore stream-eval --save-wav`` writes beside its WAV), or text lines ``word,start[,end]``."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"Cannot read the truth file {path}: {getattr(exc, 'strerror', None) or exc}.") from exc
    words: list[Placed] = []
    try:
        if text.lstrip().startswith("["):
            for item in json.loads(text):
                start = float(item["start"])
                words.append(Placed(str(item["word"]), str(item.get("clip_id", "")), start, start,
                                    float(item.get("end", start + 0.5))))  # fmt: skip
        else:
            for line in text.splitlines():
                parts = [p.strip() for p in line.replace("\t", ",").split(",")]
                if not parts[0] or parts[0].startswith("#") or parts[0] == "word":
                    continue
                start = float(parts[1])
                words.append(Placed(parts[0], "", start, start, float(parts[2]) if len(parts) > 2 else start + 0.5))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise KwsError(f"{path.name}: each word needs a name and a start time in seconds, e.g. `yes,12.5,13.1` ({exc}).") from exc
    if not words:
        raise KwsError(f"{path.name} lists no words. Write one `word,start[,end]` per line (seconds).")
    return sorted(words, key=lambda w: w.start)


# --------------------------------------------------------------------------------------------
# 2-3. Counting
# --------------------------------------------------------------------------------------------


def distance(d: Detection, w: Placed) -> float:
    """How far a detection lies from a word (0 when they overlap), in seconds."""
    return max(0.0, w.start - d.end, d.start - w.end)


def score(detections: Sequence[Detection], truth: Sequence[Placed], labels: Sequence[str], hours: float,
          tolerance: float = TOLERANCE_S) -> dict:  # fmt: skip
    """Count hits, wrong words and false alarms (see the module doc). ``labels``: the model's words
    (a true word counts as a keyword when the model knows it). ``hours``: the stream's length."""
    known = {w for w in labels if is_keyword(w)}
    used: set[int] = set()
    per_word = {w: {"said": 0, "hits": 0, "wrong": 0} for w in sorted(known)}
    hits = wrong = 0
    false_alarms: list[dict] = []
    order = sorted(range(len(detections)), key=lambda k: detections[k].start)
    starts = [detections[k].start for k in order]
    longest = max((d.end - d.start for d in detections), default=0.0)
    for w in sorted(truth, key=lambda w: w.start):
        # only detections that start close enough can be near (a sorted search, not all of them)
        lo, hi = bisect.bisect_left(starts, w.start - tolerance - longest), bisect.bisect_right(starts, w.end + tolerance)
        near = [k for k in order[lo:hi] if k not in used and distance(detections[k], w) <= tolerance]
        keyword = w.word in known
        if keyword:
            per_word[w.word]["said"] += 1
        if not near:
            continue
        same = [k for k in near if detections[k].word == w.word]
        k = min(same or near, key=lambda k: distance(detections[k], w))
        used.add(k)
        if not keyword:
            false_alarms.append({**detections[k].to_dict(), "at": w.word})
        elif detections[k].word == w.word:
            hits += 1
            per_word[w.word]["hits"] += 1
        else:
            wrong += 1
            per_word[w.word]["wrong"] += 1
    false_alarms += [{**d.to_dict(), "at": None} for k, d in enumerate(detections) if k not in used]
    false_alarms.sort(key=lambda d: d["start"])
    said = sum(v["said"] for v in per_word.values())
    for word, v in per_word.items():
        v["recall"] = v["hits"] / v["said"] if v["said"] else None
        v["false_alarms"] = sum(1 for d in false_alarms if d["word"] == word)
    return {
        "keywords": said, "hits": hits, "wrong": wrong, "missed": said - hits - wrong,
        "non_keywords": sum(1 for w in truth if w.word not in known),
        "recall": hits / said if said else 0.0, "wrong_rate": wrong / said if said else 0.0,
        "false_alarms": len(false_alarms), "fa_per_hour": len(false_alarms) / hours if hours > 0 else 0.0,
        "false_alarm_list": false_alarms, "per_word": per_word,
    }  # fmt: skip


def det_curve(detections: Sequence[Detection], truth: Sequence[Placed], labels: Sequence[str], hours: float,
              tolerance: float = TOLERANCE_S) -> list[dict]:  # fmt: skip
    """The DET curve: for each threshold (every detection score, lowest first), the detections whose
    score reaches it, counted: ``{"threshold", "miss", "recall", "wrong_rate", "false_alarms",
    "fa_per_hour"}``. Raising the threshold only removes detections, so the miss rate never falls
    and the false alarms never rise along the curve."""
    thresholds = sorted({_level(d.score) for d in detections})
    curve = []
    for t in thresholds or [BASE_THRESHOLD]:
        s = score([d for d in detections if _level(d.score) >= t], truth, labels, hours, tolerance)
        curve.append({"threshold": t, "miss": 1.0 - s["recall"], "recall": s["recall"], "wrong_rate": s["wrong_rate"],
                      "false_alarms": s["false_alarms"], "fa_per_hour": s["fa_per_hour"]})  # fmt: skip
    none = score([], truth, labels, hours, tolerance)  # above every score: nothing fires
    curve.append({"threshold": 1.0, "miss": 1.0, "recall": 0.0, "wrong_rate": 0.0, "false_alarms": 0,
                  "fa_per_hour": 0.0} if none["keywords"] else {**curve[-1], "threshold": 1.0})  # fmt: skip
    return curve


def _level(p: float) -> float:
    """A score as a threshold that keeps it: rounded down to 4 decimals, below 1 (1 means "never")."""
    return min(math.floor(p * 1e4) / 1e4, 0.9999)


def recommend(curve: Sequence[dict], target_fa_per_hour: float = TARGET_FA_PER_HOUR) -> dict | None:
    """The point of the curve with the lowest threshold whose false alarms per hour are at most the
    target (the best recall that meets it); None if only "never fire" meets it."""
    meeting = [p for p in curve if p["fa_per_hour"] <= target_fa_per_hour and p["threshold"] < 1.0]
    return min(meeting, key=lambda p: p["threshold"]) if meeting else None


# --------------------------------------------------------------------------------------------
# 4. An evaluation, end to end
# --------------------------------------------------------------------------------------------


@dataclass
class StreamEval:
    """What ``kwscore stream-eval`` prints and the Runs page's Streaming tab draws."""

    source: dict  #: how the stream was made (dataset, minutes, SNR, non-keyword share, seed) or the WAV
    duration: float  #: seconds
    config: dict  #: the detector settings (StreamConfig) at the chosen threshold
    at_threshold: dict  #: :func:`score` at ``config["threshold"]``
    curve: list[dict]
    target_fa_per_hour: float
    recommended: dict | None  #: the curve point chosen for the target, with its own score
    truth: list[dict] = field(default_factory=list)
    detections: list[dict] = field(default_factory=list)  #: at the base threshold, with their scores

    @property
    def hours(self) -> float:
        return self.duration / 3600

    def to_json(self) -> dict:
        return asdict(self)


def evaluate(result: StreamResult, truth: Sequence[Placed], source: dict,
             target_fa_per_hour: float = TARGET_FA_PER_HOUR) -> StreamEval:  # fmt: skip
    """Score a detector run (made at any threshold ≤ the one in its config; :data:`BASE_THRESHOLD`
    gives the whole curve) against the truth: the figures at the config's threshold, the DET curve
    and the recommended threshold for the target, each counted on a real run of the detector."""
    hours = result.duration / 3600
    if hours <= 0:
        raise KwsError("The recording is empty: there is nothing to evaluate.")
    base = result.at_threshold(min(BASE_THRESHOLD, result.config.threshold))
    curve = det_curve(base, truth, result.labels, hours)
    chosen = score(result.at_threshold(result.config.threshold), truth, result.labels, hours)
    point = recommend(curve, target_fa_per_hour)
    if point is not None:
        point = {**point, "score": score(result.at_threshold(point["threshold"]), truth, result.labels, hours)}
    return StreamEval(source, result.duration, result.config.to_dict(), chosen, curve, target_fa_per_hour, point,
                      [w.to_dict() for w in truth], [d.to_dict() for d in base])  # fmt: skip


def evaluate_stream(predictor, comp: Composition, cfg: StreamConfig | None = None, *, source: dict | None = None,
                    target_fa_per_hour: float = TARGET_FA_PER_HOUR,
                    progress: Callable[[float], None] | None = None) -> tuple[StreamEval, StreamResult]:  # fmt: skip
    """Run ``predictor`` (a :class:`kwscore.inference.Predictor`) over a composed stream and evaluate it."""
    from kwscore.streaming import detect

    cfg = (cfg or StreamConfig()).validate()
    total = comp.waveform.shape[-1] / comp.sample_rate
    report = None if progress is None else (lambda done, _total: progress(done / total))
    result = detect(comp.waveform, comp.sample_rate, predictor.probabilities, predictor.labels, cfg, progress=report)
    return evaluate(result, comp.words, source or {}, target_fa_per_hour), result


# --------------------------------------------------------------------------------------------
# Stored with the run
# --------------------------------------------------------------------------------------------


def save(run_dir: str | Path, evaluation: StreamEval, waveform: torch.Tensor | None = None,
         sample_rate: int = 16000) -> Path:  # fmt: skip
    """Write ``RUN/streaming/report.json`` and, given the stream's audio, the worst false alarms
    (highest scores) as short WAVs beside it (``false_alarm_N.wav``) for listening."""
    from kwscore import audio
    from kwscore.fileio import atomic_write

    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("false_alarm_*.wav"):
        old.unlink(missing_ok=True)
    data = evaluation.to_json()
    worst = sorted(evaluation.at_threshold["false_alarm_list"], key=lambda d: -d["score"])[:WORST]
    if waveform is not None:
        for i, fa in enumerate(worst):
            a = max(0, round((fa["start"] - 0.5) * sample_rate))
            b = min(waveform.shape[-1], round((fa["end"] + 0.5) * sample_rate))
            fa["audio"] = f"false_alarm_{i}.wav"
            audio.save_wav(folder / fa["audio"], waveform[:, a:b], sample_rate)
    data["worst_false_alarms"] = worst
    atomic_write(folder / REPORT, json.dumps(data, indent=1))
    return folder / REPORT


def load(run_dir: str | Path) -> dict | None:
    """The run's last streaming evaluation (``RUN/streaming/report.json``), or None."""
    try:
        data = json.loads((Path(run_dir) / FOLDER / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("curve"), list) else None


def store_threshold(run_dir: str | Path, threshold: float, note: str = "") -> Path:
    """Keep ``threshold`` as the run's streaming threshold (``RUN/streaming/threshold.json``)."""
    from kwscore.fileio import atomic_write

    if not 0 < threshold < 1:
        raise KwsError(f"A threshold is a probability between 0 and 1, got {threshold}.")
    path = Path(run_dir) / FOLDER / THRESHOLD
    return atomic_write(path, json.dumps({"threshold": round(float(threshold), 4), "note": note}))


def stored_threshold(run_dir: str | Path | None) -> float | None:
    """The run's stored streaming threshold, or None (never stored, or the file is damaged)."""
    if run_dir is None:
        return None
    try:
        value = json.loads((Path(run_dir) / FOLDER / THRESHOLD).read_text(encoding="utf-8")).get("threshold")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return float(value) if isinstance(value, int | float) and 0 < value < 1 and math.isfinite(value) else None
