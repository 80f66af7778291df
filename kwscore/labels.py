"""Keywords, and the two classes that mean "no keyword": ``_unknown_`` and ``_silence_``.

A keyword spotter does not only answer *which of my words was that?* Most of what a microphone
hears is no keyword at all: other words, or just the room. The standard Speech Commands task (the one
every published result uses) therefore has two more classes next to the keywords::

    _unknown_   one of the dataset's *other* words ("bed", "marvin", "tree"... for the 10 commands)
    _silence_   no speech: 1-s cuts of the dataset's _background_noise_ recordings, from
                near-silence (-70 dBFS, a quiet room) to a noisy one (-20 dBFS)

:func:`with_non_keywords` adds them to one split of a keyword dataset, each about as big as one
keyword class. Both are drawn from that split only — ``_unknown_`` from the split's clips (splits are
by speaker, so no speaker crosses over), ``_silence_`` from its own stretch of every noise recording
(the first 80 % for training, the next 10 % for validation, the last 10 % for testing) — and
deterministically from the seed, so the test clips are the same every time a model is tested.

Everywhere a prediction is shown, :func:`is_keyword` tells keywords from "no keyword": a model
answering ``_silence_`` to a quiet room is right, not failing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.dataset import SUBSETS, SpeechCommands
from kwscore.data.layout import noise_files, word_folders
from kwscore.data.words import NOISE_FOLDER
from kwscore.errors import KwsError

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
#: Labels that mean "no keyword" (``_background_noise_`` too, for models trained on that folder).
NON_KEYWORDS: tuple[str, ...] = (UNKNOWN, SILENCE, NOISE_FOLDER)
#: How the page and the CLI name them.
DISPLAY = {UNKNOWN: "another word", SILENCE: "silence", NOISE_FOLDER: "background noise"}
#: ``_unknown_``'s size, in keyword classes (the average keyword's number of clips in the split).
UNKNOWN_SHARE = 1.0
#: ``_silence_`` clips are scaled to an RMS level drawn uniformly from this range, in dBFS.
SILENCE_DBFS = (-70.0, -20.0)
#: The stretch of every noise recording each split cuts its ``_silence_`` clips from (shares of its length).
NOISE_SPANS = {"training": (0.0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0), None: (0.0, 1.0)}
#: Coloured noise stands in for a dataset without ``_background_noise_`` recordings (seconds of each).
FALLBACK_NOISE_S = 30


def is_keyword(label: str) -> bool:
    """``True`` for a keyword; ``False`` for ``_unknown_``, ``_silence_``, ``_background_noise_`` — any
    label starting with ``_``, as no word folder can (:func:`kwscore.data.layout.word_folders`)."""
    return not label.startswith("_")


def display_label(label: str) -> str:
    """``"yes"`` -> ``"yes"``, ``"_unknown_"`` -> ``"another word"``, ``"_silence_"`` -> ``"silence"``."""
    return DISPLAY.get(label, label)


def outcome(true: str, predicted: str) -> str:
    """What answering ``predicted`` to a clip of ``true`` was: ``"correct"``, ``"wrong word"`` (another
    keyword), ``"missed"`` (a keyword heard as no keyword), ``"false alarm"`` (no keyword heard as
    one) or ``"no keyword"`` (e.g. another word heard as silence: right that there is no keyword)."""
    if true == predicted:
        return "correct"
    if is_keyword(true):
        return "wrong word" if is_keyword(predicted) else "missed"
    return "false alarm" if is_keyword(predicted) else "no keyword"


def cut_at_level(noise: torch.Tensor, start: int, level_db: float) -> torch.Tensor:
    """One ``_silence_`` clip: 1 s of ``noise`` ``[1, time]`` (16 kHz) from sample ``start``, scaled to an
    RMS of ``level_db`` dBFS (zero-padded if the recording ends first). ``[1, 16000]``."""
    cut = audio.fix_length(noise[:, start : start + SAMPLE_RATE], SAMPLE_RATE)
    return cut * (10.0 ** (level_db / 20.0) / cut.pow(2).mean().sqrt().clamp(min=1e-8))


def keywords_of(labels: Sequence[str]) -> list[str]:
    """The keywords among ``labels``, in their order."""
    return [label for label in labels if is_keyword(label)]


def other_words(dataset: SpeechCommands) -> list[str]:
    """The dataset's words that are not among its labels: the ``_unknown_`` pool."""
    every = set().union(*(word_folders(root) for root in dataset.roots))
    return sorted(every - set(dataset.labels))


class KeywordTask(SpeechCommands):
    """One split of a keyword task: a keyword dataset plus ``_unknown_`` and ``_silence_`` clips.

    Made by :func:`with_non_keywords`. An ``_unknown_`` clip is a real file (its clip id still says
    which word it is); a ``_silence_`` clip is cut from a noise recording when it is decoded.
    """

    noises: list[torch.Tensor]  #: the split's stretch of every noise recording, [1, time] at 16 kHz
    offsets: list[int]  #: where each stretch starts in its recording (samples)
    cuts: list[tuple[int, int, float]]  #: per _silence_ clip: (noise index, start in the stretch, level dBFS)

    def decode(self, n: int) -> torch.Tensor | None:
        path, _, label, _, k = self._meta[n]
        if label != SILENCE:
            return super().decode(n)
        source, start, level_db = self.cuts[k]
        return audio.resample(cut_at_level(self.noises[source], start, level_db), SAMPLE_RATE, self.sample_rate)

    def silence_cut(self, n: int) -> dict | None:
        """Where a ``_silence_`` clip comes from: ``{"start_s", "level_dbfs"}`` in its recording
        (:func:`cut_at_level` remakes it from the file); ``None`` for other clips."""
        _, _, label, _, k = self._meta[n]
        if label != SILENCE:
            return None
        source, start, level_db = self.cuts[k]
        return {"start_s": (self.offsets[source] + start) / SAMPLE_RATE, "level_dbfs": round(level_db, 3)}

    def clip_id(self, n: int) -> str:
        path, _, label, _, k = self._meta[n]
        if label != SILENCE:
            return super().clip_id(n)
        source, start, _ = self.cuts[k]
        return f"{SILENCE}/{Path(path).stem}@{(self.offsets[source] + start) / SAMPLE_RATE:.2f}s"


def with_non_keywords(dataset: SpeechCommands, seed: int = 0, *, always: bool = False) -> SpeechCommands:
    """``dataset`` (one split of keyword clips) plus ``_unknown_`` and ``_silence_`` clips.

    Each extra class gets about as many clips as one keyword has on average in ``dataset``.
    Returns ``dataset`` unchanged when it already has them, or when the dataset has no other words
    (the task is then all its words) unless ``always`` (evaluating a model that has the classes).
    """
    if not set(NON_KEYWORDS).isdisjoint(dataset.labels):
        return dataset
    others = other_words(dataset)
    if not others and not always:
        return dataset
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1 + (SUBSETS.index(dataset.subset) if dataset.subset else -1)])
    size = round(len(dataset) / len(dataset.labels))
    n_unknown = round(size * UNKNOWN_SHARE)
    pool = [m for m in SpeechCommands(dataset.roots, dataset.subset, commands="all")._meta if m[2] in others] if others else []
    chosen = sorted(rng.choice(len(pool), size=min(n_unknown, len(pool)), replace=False).tolist())
    unknown = [(path, sr, UNKNOWN, speaker, utt) for path, sr, _, speaker, utt in (pool[i] for i in chosen)]

    names, noises = _noise_sources(dataset.root, rng)
    low, high = NOISE_SPANS[dataset.subset]
    offsets = [int(low * noise.shape[-1]) for noise in noises]
    noises = [noise[:, int(low * noise.shape[-1]) : int(high * noise.shape[-1])] for noise in noises]
    noises = [noise.repeat(1, -(-SAMPLE_RATE // noise.shape[-1])) for noise in noises]  # at least 1 s each
    cuts = []
    for _ in range(size):
        source = int(rng.integers(len(noises)))
        start = int(rng.integers(noises[source].shape[-1] - SAMPLE_RATE + 1))
        cuts.append((source, start, float(rng.uniform(*SILENCE_DBFS))))
    silence = [(names[source], SAMPLE_RATE, SILENCE, "", k) for k, (source, _, _) in enumerate(cuts)]

    task = object.__new__(KeywordTask)
    task.__dict__.update(dataset.__dict__)
    task.labels = [*dataset.labels, UNKNOWN, SILENCE]
    task._meta = [*dataset._meta, *unknown, *silence]
    task._cache = None if dataset._cache is None else {}
    task.noises, task.offsets, task.cuts = noises, offsets, cuts
    return task


def _noise_sources(root: str | os.PathLike, rng: np.random.Generator) -> tuple[list[str], list[torch.Tensor]]:
    """The dataset's noise recordings (paths, 16 kHz ``[1, time]``); coloured noise when it has none."""
    from kwscore.augment import colored_noise, load_noises

    files = noise_files(root)
    if files:
        return [str(p) for p in files], load_noises(root)
    colors = ("white", "pink", "brown")
    n = FALLBACK_NOISE_S * SAMPLE_RATE
    return [f"{c}_noise (generated)" for c in colors], [colored_noise(n, c, seed=rng) for c in colors]


def task_dataset(
    roots: str | os.PathLike | Sequence[str | os.PathLike], subset: str | None, labels: Sequence[str], seed: int = 0
) -> SpeechCommands:
    """The clips of ``subset`` for a model whose classes are ``labels``: its keywords, plus
    ``_unknown_`` and ``_silence_`` (made as in training, from the run's ``seed``) when it has them.
    What evaluation reads."""
    keywords = keywords_of(labels)
    if not keywords:
        raise KwsError(f"The classes {list(labels)} hold no keyword: nothing to evaluate.")
    dataset = SpeechCommands(roots, subset=subset, commands=keywords)
    if len(keywords) < len(labels):
        dataset = with_non_keywords(dataset, seed, always=True)
    if list(dataset.labels) != list(labels):
        raise KwsError(
            f"The model's classes {list(labels)} are not a keyword task this dataset can make "
            f"(it gives {dataset.labels})."
        )
    return dataset


__all__ = [
    "DISPLAY", "KeywordTask", "NON_KEYWORDS", "SILENCE", "UNKNOWN", "display_label", "is_keyword",
    "cut_at_level", "keywords_of", "other_words", "outcome", "task_dataset", "with_non_keywords",
]  # fmt: skip
