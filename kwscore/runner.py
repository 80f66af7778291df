"""A complete training run from one config: data -> augmentation -> model -> checkpoints -> report.

:mod:`kwscore.training` has the loop; this module adds everything around it that a real run needs::

    config = default_config("m5", data="~/.kws-studio/data/synthetic")   # the tuned recipe
    result = run_training(config, "runs/my-first-run")
    print(result.report["accuracy"])

1. **Seeds, threads, device**: ``set_seed``, one PyTorch thread per core, CUDA when present.
2. **Data, fast**: every clip is decoded once into one in-memory tensor ``[N, 1, L]`` (resampled
   in big batches to the model's rate), and batches are cut from it with ``torch.randperm``
   indexing: no DataLoader, no per-item collate in the hot loop. For Mel models without waveform
   augmentation the spectrograms themselves are computed once.
3. **Augmentation on the fly** (:class:`BatchAugment`): the cheap waveform effects (time shift,
   gain, background/coloured noise) run with torch on the whole batch; stretch, pitch and
   compression run per clip (audiomentations) only when the recipe has them. SpecAugment runs on
   the spectrogram batch.
4. **A training fraction** (10/25/50/100 % of the training split, by speaker or stratified) to ask
   "can augmentation make up for less data?".
5. **Adam + a scheduler**, per-iteration and per-epoch metrics, best/last checkpoints,
   cancellation (a ``cancel`` file, checked every iteration), an optional time budget and a final
   report on the test split — all written through :class:`kwscore.runfiles.RunFiles`.

Run it as its own process with ``python -m kwscore.runner RUN_DIR`` (what the job queue does).
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kwscore import audio, augment, paths
from kwscore.augment import (
    EFFECTS,
    PRESETS,
    AugmentConfig,
    SpecAugment,
    load_noises,
    preset,
)
from kwscore.data.dataset import SAMPLE_RATE, SpeechCommands, check_layout, from_pcm16, to_pcm16
from kwscore.data.layout import dataset_folder, word_folders
from kwscore.errors import KwsError
from kwscore.evaluation import build_transform, evaluate, load_run_model, transform_config
from kwscore.features import FeatureConfig, MelFrontEnd
from kwscore.labels import keywords_of, task_dataset, with_non_keywords
from kwscore.models import MODEL_INFO, MODEL_NAMES, build_model, count_parameters
from kwscore.runfiles import FINAL_STATES, RunFiles, clock, now, process_start, this_host
from kwscore.training import (
    SCHEDULERS,
    configure_threads,
    load_checkpoint,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    pick_device,
    save_checkpoint,
    set_seed,
    shape_only_model,
    test,
    train,
)

CLIP_SECONDS = 1.0
#: At most about this many iteration lines per run in metrics.jsonl (plus one line per epoch).
MAX_ITERATION_LINES = 400
#: How often a running run rewrites its heartbeat (and progress) in status.json, in seconds.
HEARTBEAT_INTERVAL_S = 2.0

# ============================================================================================
# The configuration
# ============================================================================================

#: Augmentation used by the tuned recipes: shift ±100 ms, gain ±6 dB, quiet background noise
#: (all batched, almost free), plus SpecAugment for the Mel CNN (ignored by waveform models).
RECIPE_AUGMENT: dict[str, Any] = {
    "name": "recipe",
    "steps": [
        {"effect": "time_shift", "p": 1.0, "params": {"shift_ms": [-100.0, 100.0]}},
        {"effect": "gain", "p": 1.0, "params": {"gain_db": [-6.0, 6.0]}},
        {"effect": "reverb", "p": 0.25, "params": {"rt60": [0.1, 0.7]}},
        {"effect": "microphone", "p": 0.5, "params": {}},
        {"effect": "add_background_noise", "p": 0.8, "params": {"weight": [0.0, 0.1]}},
    ],
    "spec_augment": {"freq_mask_param": 8, "time_mask_param": 10, "n_freq_masks": 2, "n_time_masks": 2},
}

#: The tuned recipe of every model: RunConfig fields that differ from the dataclass defaults.
#: One place to update when a better recipe is found (benchmarks/RESULTS.md keeps the evidence,
#: every attempt of ``benchmarks/train_real.py``). Shared real set, 8 commands, test list = unseen
#: speakers, 2 CPU cores:
#: - cnn: 32-64-128-128 channels reached 95.4 % but needed ~6 min on busy cores; 16-32-64-128
#:   (the recipe, 60 epochs, channels-last weights): 93.1 % in 177 s on quiet cores, 252 s busy.
#:   Now 40 epochs: the embedded set grew to 1,520 training clips of the 8 commands (+ _unknown_ and
#:   _silence_), and 40 epochs of it took 304 s on busy cores (benchmarks/RESULTS.md, make_ready_model).
#: - m5: the tutorial's 8 kHz input was the limit (width 32: 80.7 %, width 48: 81.3 %, dropout +
#:   label smoothing: 81.3 %, RMS-normalised input: 68.9 %, speed perturbation: 65.2 %). Listening
#:   at 16 kHz keeps the 4-8 kHz band of "s", "t", "f": stride 32 (the same 2-ms hop) 85.9 %,
#:   width 48 86.2 %; stride 16 (a 1-ms hop, the recipe) 87.9 % in 72 s on quiet cores.
#: - threads=1: on 2 cores shared with other work, one thread trained 2-8x faster than two
#:   (two threads wait for each other whenever another process holds a core).
#: - m3, m11, m18, m34res: starting points sized for 2 CPU cores, not tuned yet.
RECIPES: dict[str, dict[str, Any]] = {
    "cnn": dict(
        model_kwargs={"channels": [16, 32, 64, 128], "dropout": 0.2},
        epochs=40, batch_size=64, lr=0.005, scheduler="onecycle", augment=RECIPE_AUGMENT, threads=1,
    ),
    "m3": dict(
        model_kwargs={"n_channel": 64, "stride": 16},
        epochs=40, batch_size=64, lr=0.01, scheduler="onecycle", augment=RECIPE_AUGMENT,
    ),
    "m5": dict(
        model_kwargs={"n_channel": 32, "stride": 16}, sample_rate=16000,
        epochs=60, batch_size=64, lr=0.01, scheduler="onecycle", augment=RECIPE_AUGMENT, threads=1,
    ),
    # M5 exactly as the PyTorch speech-command tutorial trains it (the lab's reference point).
    "m5tutorial": dict(
        model="m5", model_kwargs={"n_channel": 32, "stride": 16}, sample_rate=8000, epochs=30, batch_size=256,
        lr=0.01, weight_decay=1e-4, scheduler="step", step_size=20, gamma=0.1, augment="none",
    ),
    "m11": dict(
        model_kwargs={"n_channel": 32, "stride": 16},
        epochs=40, batch_size=64, lr=0.005, scheduler="onecycle", augment=RECIPE_AUGMENT,
    ),
    "m18": dict(
        model_kwargs={"n_channel": 16, "stride": 4},
        epochs=30, batch_size=64, lr=0.005, scheduler="onecycle", augment=RECIPE_AUGMENT,
    ),
    "m34res": dict(
        model_kwargs={"n_channel": 16, "stride": 4},
        epochs=30, batch_size=64, lr=0.005, scheduler="onecycle", augment=RECIPE_AUGMENT,
    ),
}  # fmt: skip

FRACTION_BY = ("speaker", "stratified")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run. Frozen (change it with ``dataclasses.replace``),
    JSON round-trippable with :meth:`to_dict` / :meth:`from_dict`.

    Model:
        model: ``"cnn"`` (Mel spectrograms) or ``"m3" | "m5" | "m11" | "m18" | "m34res"`` (waveforms).
        model_kwargs: constructor options, e.g. ``{"n_channel": 32, "stride": 16}`` for M5.
    Data:
        data: dataset ROOT in the SpeechCommands layout.
        mix: more dataset ROOTs whose clips join every split (e.g. your own recordings next to
            the embedded set); the words are then those of all of them together.
        commands: ``"8"``, ``"35"``, ``"all"`` or a list of words.
        features: :class:`FeatureConfig` settings for the CNN (``{}`` = the classic front end).
        sample_rate: the rate the waveform models listen at (8000 as in the paper and the
            tutorial; the M5 recipe listens at 16000: twice the bandwidth, up to 8 kHz).
        fraction, fraction_by: train on this share of the training split, keeping whole speakers
            (``"speaker"``) or the same share of every word (``"stratified"``).
        unknown: add the ``_unknown_`` (other words) and ``_silence_`` (background noise) classes
            whenever the commands are only some of the dataset's words (:mod:`kwscore.labels`).
        init, replay: fine-tuning. ``init`` is a parent run (its id in the same runs folder, or its
            folder): training starts from its best weights, on every clip of the datasets it did not
            train on (e.g. your recordings) plus ``replay`` clips per word of its own training data
            (so that the other words are not forgotten).
    Augmentation:
        augment: a preset name (``"none" | "light" | "standard" | "strong"``) or an
            :class:`AugmentConfig` dict.
    Optimisation:
        epochs, batch_size, lr, weight_decay: Adam's settings (tutorial: lr 0.01, wd 1e-4).
        label_smoothing: aim at ``1 - ε`` for the true word (and ``ε`` shared by all words) instead of
            a hard 1: a mild regulariser against over-confident models (0 = plain cross-entropy).
        scheduler: ``"step" | "onecycle" | "cosine" | "constant"``; ``step_size`` (epochs) and
            ``gamma`` are StepLR's.
    Run:
        seed, threads (``None`` = one per core), max_minutes (stop training after this long, then
        test the best model; ``None`` = no limit).
        name, notes: the student's name for the run and notes on it (labels, the Runs table).
        owner: who launched it: the student's name in a class (``""``: the operator, the command
            line, the teacher without a name). Only the owner or the teacher may cancel or delete
            it, and the class limits apply to it (:mod:`kwscore.classroom`).
        experiment: the id of the experiment the run is part of (:mod:`kwscore.experiments`; ``""``:
            none). A class's limit on queued runs counts a whole experiment once.
    """

    model: str = "m5"
    model_kwargs: dict = field(default_factory=dict)
    data: str = ""
    mix: list = field(default_factory=list)
    commands: str | list = "8"
    features: dict = field(default_factory=dict)
    sample_rate: int = 8000
    augment: str | dict = "none"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    scheduler: str = "step"
    step_size: int = 20
    gamma: float = 0.1
    fraction: float = 1.0
    fraction_by: str = "speaker"
    unknown: bool = True
    init: str = ""
    replay: int = 20
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None
    name: str = ""
    notes: str = ""
    owner: str = ""
    experiment: str = ""

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; missing keys take their defaults, unknown keys are an error."""
        if not isinstance(data, dict):
            raise KwsError(f"A run config is a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KwsError(f"Unknown run setting(s) {unknown}. Known settings: {sorted(known)}.")
        return cls(**data)

    # -- derived --------------------------------------------------------------------------------
    @property
    def data_roots(self) -> list[str]:
        """``data`` followed by the ``mix`` datasets (what :class:`SpeechCommands` reads)."""
        if not isinstance(self.mix, list | tuple) or not all(isinstance(m, str) for m in self.mix):
            raise KwsError(f"mix must be a list of dataset folders, got {self.mix!r}.")
        return [self.data, *(m for m in self.mix if m != self.data)]

    @property
    def representation(self) -> str:
        """``"mel"`` (the CNN) or ``"waveform"`` (the M-models)."""
        return MODEL_INFO[self.model]["representation"]

    @property
    def feature_config(self) -> FeatureConfig | None:
        """The Mel front end of a Mel model (``None`` for waveform models)."""
        return FeatureConfig.from_dict(self.features) if self.representation == "mel" else None

    @property
    def model_rate(self) -> int:
        """The sample rate the model listens at."""
        return self.feature_config.sample_rate if self.representation == "mel" else int(self.sample_rate)

    def augment_config(self) -> AugmentConfig:
        """The augmentation recipe as an :class:`AugmentConfig`."""
        if isinstance(self.augment, str):
            return preset(self.augment)
        if isinstance(self.augment, dict):
            return AugmentConfig.from_dict(self.augment)
        raise KwsError(f"augment must be a preset name {list(PRESETS)} or a dict, got {self.augment!r}.")

    # -- validation -----------------------------------------------------------------------------
    def problems(self, check_data: bool = True) -> list[str]:
        """Every mistake in this config, each as a sentence that says what to change."""
        out: list[str] = []
        if self.model not in MODEL_NAMES:
            return [f"Unknown model {self.model!r}. Choose one of: {', '.join(MODEL_NAMES)}."]
        out += _number_problems(self)
        if self.fraction_by not in FRACTION_BY:
            out.append(f"fraction_by must be 'speaker' or 'stratified', not {self.fraction_by!r}.")
        if self.scheduler not in SCHEDULERS:
            out.append(f"Unknown scheduler {self.scheduler!r}. Choose one of: {', '.join(SCHEDULERS)}.")
        for check in (_front_end_problems, _augment_problems, _model_problems):
            try:
                out += check(self)
            except KwsError as exc:
                out.append(str(exc))
        if check_data:
            if not str(self.data).strip():
                out.append("No dataset chosen: set data to a folder in the SpeechCommands layout.")
            else:
                try:
                    for root in self.data_roots:
                        check_layout(root)
                except KwsError as exc:
                    out.append(str(exc))
        return out

    def validate(self, check_data: bool = True) -> RunConfig:
        """Raise :class:`KwsError` listing every problem; return ``self`` when all is well."""
        problems = self.problems(check_data)
        if problems:
            raise KwsError(" ".join(problems))
        return self


def _number_problems(c: RunConfig) -> list[str]:
    out = []
    for name, low in (("epochs", 1), ("batch_size", 2), ("step_size", 1)):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            out.append(f"{name} must be a whole number ≥ {low}, got {value!r}.")
    if not (isinstance(c.lr, int | float) and c.lr > 0 and math.isfinite(c.lr)):
        out.append(f"lr must be positive, got {c.lr!r}. Adam usually works with 0.001-0.01.")
    if not (isinstance(c.weight_decay, int | float) and c.weight_decay >= 0):
        out.append(f"weight_decay must be ≥ 0, got {c.weight_decay!r}. The tutorial uses 1e-4.")
    if not (isinstance(c.label_smoothing, int | float) and 0 <= c.label_smoothing < 1):
        out.append(f"label_smoothing must be in [0, 1), got {c.label_smoothing!r}. Try 0.1.")
    if not (isinstance(c.fraction, int | float) and 0 < c.fraction <= 1):
        out.append(
            f"fraction is the share of the training split to use, in (0, 1], got {c.fraction!r}. "
            "Write 0.25 for 25 %."
        )
    if c.threads is not None and (not isinstance(c.threads, int) or c.threads < 1):
        out.append(f"threads must be ≥ 1 or None (one per core), got {c.threads!r}.")
    if c.max_minutes is not None and not (isinstance(c.max_minutes, int | float) and c.max_minutes > 0):
        out.append(f"max_minutes must be positive or None (no limit), got {c.max_minutes!r}.")
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 2**32:
        out.append(f"seed must be a whole number from 0 to {2**32 - 1}, got {c.seed!r}.")
    if not isinstance(c.unknown, bool):
        out.append(f"unknown must be true or false, got {c.unknown!r}.")
    if not isinstance(c.init, str):
        out.append(f"init must be a run id or run folder (or empty), got {c.init!r}.")
    if isinstance(c.replay, bool) or not isinstance(c.replay, int) or c.replay < 0:
        out.append(f"replay must be a whole number of clips per word ≥ 0, got {c.replay!r}.")
    if not isinstance(c.owner, str) or len(c.owner) > 1_000:
        out.append(f"owner must be a name (a short text), got {c.owner!r}.")
    if not isinstance(c.experiment, str) or len(c.experiment) > 200:
        out.append(f"experiment must be an experiment id (a short text), got {c.experiment!r}.")
    return out


def _front_end_problems(c: RunConfig) -> list[str]:
    if c.representation == "mel":
        return c.feature_config.problems() or audio.sinc_problems(SAMPLE_RATE, c.model_rate)
    if not isinstance(c.sample_rate, int) or not 1000 <= c.sample_rate <= SAMPLE_RATE:
        return [
            f"sample_rate must be between 1000 and {SAMPLE_RATE} Hz, got {c.sample_rate!r}. M5 uses 8000."
        ]
    return audio.sinc_problems(SAMPLE_RATE, c.sample_rate)  # e.g. 15999 Hz: a 1 GB sinc kernel


def _augment_problems(c: RunConfig) -> list[str]:
    aug = c.augment_config().validate()
    if c.representation == "mel" and aug.spec_augment is not None:
        fc = c.feature_config
        aug.spec_augment.check_shape(fc.n_mels, fc.frames_for(round(CLIP_SECONDS * fc.sample_rate)))
    return []


def _model_problems(c: RunConfig) -> list[str]:
    if not isinstance(c.model_kwargs, dict):
        return [f"model_kwargs must be a dict of constructor options, got {c.model_kwargs!r}."]
    model, _ = shape_only_model(c.model, 2, _model_kwargs(c))  # KwsError: a bad option, or a huge model
    needed = getattr(model, "min_samples", 0)
    if needed > CLIP_SECONDS * c.model_rate:
        return [
            f"{c.model} with these options needs at least {needed} samples but a 1-s clip at "
            f"{c.model_rate} Hz has {round(CLIP_SECONDS * c.model_rate)}. Use a smaller stride."
        ]
    return []


def _model_kwargs(c: RunConfig) -> dict[str, Any]:
    """model_kwargs plus the sample rate the waveform models are told about."""
    kwargs = dict(c.model_kwargs)
    if c.representation == "waveform":
        kwargs.setdefault("sample_rate", c.model_rate)
    return kwargs


def default_config(model: str = "m5", **overrides: Any) -> RunConfig:
    """The tuned recipe of ``model`` (see :data:`RECIPES`), with ``overrides`` on top.

    ``data`` defaults to the embedded synthetic dataset (``kwscore.paths.synth_root()``).
    """
    key = str(model).lower().replace("-", "").replace("_", "")
    if key not in RECIPES:
        raise KwsError(f"Unknown model {model!r}. Choose one of: {', '.join(RECIPES)}.")
    values = {"model": key, "data": str(paths.synth_root()), **RECIPES[key]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(values)


#: Fine-tuning a finished run on a few takes of your own (see :func:`finetune_config`).
FINETUNE: dict[str, Any] = dict(epochs=5, lr_factor=0.1, scheduler="constant", replay=20, max_minutes=1.0)


def finetune_config(parent: str | os.PathLike, recordings: str | os.PathLike, runs_root: str | os.PathLike,
                    **overrides: Any) -> RunConfig:  # fmt: skip
    """A run that fine-tunes the finished run in folder ``parent`` on the takes in ``recordings``.

    The parent's model, words and recipe; its best weights to start from (``init``, its id when it
    lives in ``runs_root``); the recordings mixed in; :data:`FINETUNE`'s few epochs at a tenth of the
    learning rate, constant, on your takes plus ``replay`` clips per word of the parent's training
    data. ``overrides`` (e.g. ``epochs``, ``lr``, ``replay``) go on top.
    """
    folder, recordings = Path(parent).expanduser(), Path(recordings).expanduser().resolve()
    ckpt = parent_checkpoint(str(folder), folder.parent)
    base = RunConfig.from_dict(RunFiles(folder).read_config())
    keywords = keywords_of(ckpt["labels"])
    mine = sorted(set(keywords) & set(word_folders(recordings)))
    if not mine:
        raise KwsError(
            f"No takes of this model's words ({', '.join(keywords)}) in {recordings}: record a few on "
            "“Your own words” first."
        )
    same_place = folder.resolve().parent == Path(runs_root).expanduser().resolve()
    values = dict(
        init=folder.name if same_place else str(folder.resolve()),
        mix=[*base.mix, str(recordings)] if recordings not in {Path(m).resolve() for m in base.mix} else base.mix,
        commands=keywords, unknown=len(keywords) < len(ckpt["labels"]), fraction=1.0,
        epochs=FINETUNE["epochs"], lr=base.lr * FINETUNE["lr_factor"], scheduler=FINETUNE["scheduler"],
        replay=FINETUNE["replay"], max_minutes=FINETUNE["max_minutes"],
    )  # fmt: skip
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(base, **values).validate()


# ============================================================================================
# Data: the splits as in-memory tensors
# ============================================================================================


def select_fraction(dataset: SpeechCommands, fraction: float, by: str, seed: int) -> list[int]:
    """Indices of the clips to train on: ``fraction`` of the split, chosen reproducibly by ``seed``.

    ``by="speaker"``: keep a random ``fraction`` of the speakers with all their clips (fewer
    voices: the hard case). ``by="stratified"``: keep ``fraction`` of the clips of every word (all
    words stay, as many voices as possible).
    """
    n = len(dataset)
    if fraction >= 1:
        return list(range(n))
    rng = random.Random(seed)
    if by == "speaker":
        speakers = dataset.speakers()
        pool = sorted(set(speakers))
        rng.shuffle(pool)
        keep = set(pool[: max(1, round(fraction * len(pool)))])
        return [i for i, s in enumerate(speakers) if s in keep]
    targets = dataset.targets().tolist()
    chosen: list[int] = []
    for label in sorted(set(targets)):
        members = [i for i, t in enumerate(targets) if t == label]
        rng.shuffle(members)
        chosen += members[: max(1, round(fraction * len(members)))]
    return sorted(chosen)


def select_replay(dataset: SpeechCommands, old_roots: Sequence[str], per_word: int, seed: int) -> list[int]:
    """Fine-tuning: indices of every clip from outside ``old_roots`` (the new data, e.g. your
    takes) and of ``per_word`` random clips of each word from inside them (the replay sample)."""
    old = {dataset_folder(root).resolve() for root in old_roots if root}
    is_old = [dataset.path(i).parent.parent.resolve() in old for i in range(len(dataset))]
    targets = dataset.targets().tolist()
    rng = random.Random(seed)
    chosen = [i for i, o in enumerate(is_old) if not o]
    for label in sorted(set(targets)):
        members = [i for i, t in enumerate(targets) if t == label and is_old[i]]
        chosen += rng.sample(members, min(per_word, len(members)))
    return sorted(chosen)


def decode_all(
    dataset: SpeechCommands,
    length: int,
    workers: int = 4,
    to_rate: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 128,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every clip once into one int16 tensor: ``(samples [N, 1, time], targets [N])``.

    Clips are cut or zero-padded to ``length`` samples (16 kHz), ``to_rate`` (e.g. a Resample to
    8 kHz) runs on each chunk of ``chunk`` clips, and the result is stored as 16-bit samples
    (:func:`~kwscore.data.dataset.to_pcm16`; :func:`~kwscore.data.dataset.from_pcm16` gives floats
    back): 2 bytes a sample, and only one chunk is ever held as float32, so the full Speech
    Commands fits in about 3.4 GB. Corrupt clips (``None``) are dropped. Decoding runs in a few
    threads (libsndfile releases the GIL while it reads); ``progress(done, total)`` after each chunk.
    """
    n = len(dataset)
    to_rate = to_rate or (lambda x: x)
    with torch.no_grad():
        shape = to_rate(torch.zeros(1, 1, length)).shape[1:]
    samples = torch.zeros(n, *shape, dtype=torch.int16)
    keep: list[int] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, n, chunk):
            clips = pool.map(dataset.waveform, range(start, min(n, start + chunk)))
            good = [(start + j, clip) for j, clip in enumerate(clips) if clip is not None]
            if good:
                with torch.no_grad():
                    batch = to_rate(torch.stack([audio.fix_length(clip, length) for _, clip in good]))
                samples[len(keep) : len(keep) + len(good)] = to_pcm16(batch)
                keep += [i for i, _ in good]
            if progress is not None:
                progress(min(n, start + chunk), n)
    return samples[: len(keep)], dataset.targets()[keep]


def in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """``fn`` applied to ``x`` ``chunk`` rows at a time, without gradients (bounded memory: the
    result is filled in place, never concatenated; int16 samples become float32 a chunk at a time)."""
    if not len(x):
        return from_pcm16(x)
    out = None
    with torch.inference_mode():
        for start in range(0, len(x), chunk):
            part = fn(from_pcm16(x[start : start + chunk]))
            if out is None:
                out = torch.empty(len(x), *part.shape[1:], dtype=part.dtype)
            out[start : start + len(part)] = part
    return out


@dataclass
class Split:
    """One split in memory: the model-rate waveforms (or precomputed features) and targets."""

    inputs: torch.Tensor  #: [N, 1, time] int16 waveforms at the model's rate, or [N, 1, n_mels, frames]
    targets: torch.Tensor  #: [N] class indices
    dataset: SpeechCommands  #: where the clips came from (ids, speakers)


def load_split(config: RunConfig, subset: str, indices_fn=None, progress=None) -> Split:
    """Decode ``subset`` at 16 kHz, keep the chosen clips, resample once to the model's rate; the
    waveforms are kept as 16-bit samples (``progress(done, total)`` while decoding)."""
    dataset = SpeechCommands(config.data_roots, subset=subset, commands=config.commands)
    if indices_fn is not None:
        dataset = dataset.select(indices_fn(dataset))
    if config.unknown:  # + _unknown_ and _silence_, when the commands are some of the dataset's words
        dataset = with_non_keywords(dataset, config.seed)
    to_rate = build_transform(transform_config(config.model_rate, None))  # Resample or identity
    samples, targets = decode_all(dataset, round(CLIP_SECONDS * SAMPLE_RATE), to_rate=to_rate, progress=progress)
    return Split(samples, targets, dataset)


class Batches:
    """Mini-batches ``(inputs [B, ...], targets [B])`` cut from in-memory tensors.

    Each pass draws a new order with ``torch.randperm`` (when ``shuffle``) and indexes the big
    tensor with it: one gather per batch, no per-item Python. ``augment`` (e.g.
    :class:`BatchAugment`) transforms each batch of waveforms. A last batch of one clip is
    dropped when training (batch-norm cannot normalise a single example).

    ``ahead``: augment the next batch in a helper thread while the model trains on this one
    (``None``: when a core is left over by PyTorch's threads, e.g. 1 thread on 2 cores).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        ahead: bool | None = None,
    ) -> None:
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator, self.augment = generator, augment
        self.ahead = torch.get_num_threads() < (os.cpu_count() or 1) if ahead is None else ahead

    def __len__(self) -> int:
        n, b = len(self.targets), self.batch_size
        full, rest = divmod(n, b)
        return full + (1 if rest > 1 or (rest == 1 and not self.shuffle) else 0)

    def __iter__(self):
        n = len(self.targets)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        indices = [order[start : start + self.batch_size] for start in range(0, len(self) * self.batch_size, self.batch_size)]
        if self.augment is None or not self.ahead:
            yield from map(self._batch, indices)
            return
        # Augment the next batch in a helper thread while the model trains on this one (torch ops
        # release the GIL, so with a spare core the augmentation costs almost no wall time). One
        # helper thread takes the batches in order: the same seed still gives the same batches.
        with ThreadPoolExecutor(1, thread_name_prefix="augment") as helper:
            ahead = helper.submit(self._batch, indices[0]) if indices else None
            for index in indices[1:]:
                batch, ahead = ahead.result(), helper.submit(self._batch, index)
                yield batch
            if ahead is not None:
                yield ahead.result()

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clips at ``index`` (float32; int16 samples are converted here), augmented:
        ``(inputs [B, ...], targets [B])``."""
        batch = from_pcm16(self.inputs[index])
        return (batch if self.augment is None else self.augment(batch)), self.targets[index]


# ============================================================================================
# On-the-fly augmentation of whole batches
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


def colored_noise_batch(colors: list[str], length: int, gen: torch.Generator) -> torch.Tensor:
    """Noise ``[B, 1, length]``, one colour per clip (:func:`kwscore.augment.shape_noise`), RMS 0.1."""
    return augment.shape_noise(torch.randn(len(colors), length, generator=gen), colors)


def mix_batch(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | None, weight: torch.Tensor | None):
    """``x + scale · noise`` per clip, the scale set by an SNR in dB or a weight. Shapes ``[B, 1, T]``.

    At an SNR, ``P_x / P_(scaled noise) = 10 ** (snr / 10)``; a silent clip (no SNR) gets weight 0.1,
    as :func:`kwscore.augment.mix` does. An SNR of ``inf`` (or a weight of 0) adds nothing.
    """
    if weight is None:
        p_x = x.pow(2).mean(dim=(1, 2))
        p_n = noise.pow(2).mean(dim=(1, 2)).clamp(min=1e-12)
        weight = torch.sqrt(p_x / (p_n * 10.0 ** (snr_db / 10.0)))
        weight = torch.where(p_x > 0, weight, torch.full_like(weight, 0.1) * torch.isfinite(snr_db))
    return torch.addcmul(x, noise, weight.view(-1, 1, 1))


class NoiseBank:
    """Background recordings at the model's rate in one flat tensor, for batched random windows."""

    def __init__(self, noises: list[torch.Tensor], sample_rate: int, length: int) -> None:
        pieces = []
        for noise in noises:  # [1, time] at 16 kHz
            noise = audio.resample(noise, SAMPLE_RATE, sample_rate)[0]
            if len(noise) < length:  # tile short recordings up to one clip
                noise = noise.repeat(-(-length // len(noise)))
            pieces.append(noise)
        self.length = length
        self.sizes = torch.tensor([len(p) for p in pieces])
        self.starts = torch.cumsum(self.sizes, 0) - self.sizes
        self.flat = torch.cat(pieces) if pieces else torch.zeros(0)

    def __len__(self) -> int:
        return len(self.sizes)

    def windows(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` random windows ``[n, 1, length]``: a random recording, a random offset in it."""
        which = torch.randint(len(self.sizes), (n,), generator=gen)
        room = (self.sizes[which] - self.length + 1).float()
        starts = self.starts[which] + (torch.rand(n, generator=gen) * room).long()
        return torch.stack([self.flat[s : s + self.length] for s in starts.tolist()]).unsqueeze(1)


class BatchAugment:
    """An :class:`AugmentConfig`'s waveform steps applied to a batch ``[B, 1, T]`` at ``sample_rate``.

    Same semantics as :meth:`AugmentConfig.apply` (steps in order, each clip flips its own coin
    with probability ``p``, parameters drawn per clip), but the cheap effects
    (:data:`BATCHED_EFFECTS`) are computed for the whole batch with torch ops, and only the clips
    whose coin came up run the per-clip effects (time stretch, pitch shift, compression; a few ms
    each). Those per-clip effects were written for 16 kHz; stretch rates and semitones are ratios,
    so they mean the same at 8 kHz (only the compressor's time constants double).
    """

    def __init__(
        self, config: AugmentConfig, sample_rate: int, noises: list[torch.Tensor] | None = None, seed: int = 0
    ) -> None:
        self.steps = config.validate().steps
        self.sample_rate = sample_rate
        self.length = round(CLIP_SECONDS * sample_rate)
        self.noises = NoiseBank(noises or [], sample_rate, self.length)
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
        db = _uniform(params.get("gain_db", (-6.0, 6.0)), len(x), self.gen) * chosen
        return x * (10.0 ** (db / 20.0)).view(-1, 1, 1)

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
        if len(self.noises):
            noise = self.noises.windows(len(x), self.gen)
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
            rirs = [augment.room_impulse_response(self.rng, params.get("rt60", (0.15, 0.8)), self.sample_rate)[0] for _ in range(N_ROOMS)]
            self.rooms = torch.zeros(N_ROOMS, 1, max(r.shape[-1] for r in rirs))
            for room, rir in zip(self.rooms, rirs, strict=True):
                room[:, : rir.shape[-1]] = rir
        which = torch.randint(N_ROOMS, (len(x),), generator=self.gen)
        return torch.where(chosen.view(-1, 1, 1), augment.reverberate_batch(x, self.rooms[which]), x)

    def _microphone(self, x: torch.Tensor, params: dict, chosen: torch.Tensor) -> torch.Tensor:
        mics = augment.draw_microphones(len(x), self.rng, **params)
        response = augment.mic_response(x.shape[-1], **mics, sample_rate=self.sample_rate)
        return torch.where(chosen.view(-1, 1, 1), augment.microphone_batch(x, response), x)

    def _per_clip(self, x: torch.Tensor, chosen: torch.Tensor, step) -> torch.Tensor:
        """Run a numpy/audiomentations effect on the chosen clips only."""
        x = x.clone()
        effect, kwargs = EFFECTS[step.effect], step.kwargs
        for i in chosen.nonzero().flatten().tolist():
            y, _record = effect(x[i], **kwargs, seed=self.rng)
            x[i] = audio.fix_length(y, x.shape[-1])
        return x


# ============================================================================================
# The run
# ============================================================================================


class RunStopped(Exception):
    """Raised inside the loop to stop training early: ``reason`` is "cancelled" or "time budget"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Callbacks:
    """Optional hooks, called in the training process.

    - ``on_start(info)``: once the data is ready: ``n_train, n_val, labels, steps_per_epoch,
      total_steps, epochs, device, threads, n_params``.
    - ``on_iteration(record)``: after every step: ``step`` (1-based), ``epoch``, ``loss``, ``lr``,
      ``elapsed``.
    - ``on_epoch(record)``: after each validation: the epoch record written to metrics.jsonl.
    - ``on_decode(subset, done, total)``: while the clips of a split are decoded (before training).
    """

    on_start: Callable[[dict], None] | None = None
    on_iteration: Callable[[dict], None] | None = None
    on_epoch: Callable[[dict], None] | None = None
    on_decode: Callable[[str, int, int], None] | None = None


@dataclass
class RunResult:
    """What :func:`run_training` returns: the final state and, when it succeeded, the report."""

    state: str  #: "succeeded" or "cancelled" (failures raise)
    run_dir: Path
    report: dict | None = None
    model: nn.Module | None = None  #: the best model, in eval mode (None when cancelled)
    transform: nn.Module | None = None  #: its front end: [B, 1, time@16k] -> model input
    labels: list[str] = field(default_factory=list)


class Heartbeat:
    """A background thread that rewrites ``heartbeat`` (and progress) in status.json every ~2 s.

    The heartbeat proves the process is alive even during long steps (decoding, evaluation): a
    run whose heartbeat stops is a dead run (:func:`kwscore.jobs.refresh_status`).
    """

    def __init__(self, files: RunFiles, progress: dict, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.files, self.progress, self.interval = files, progress, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.files.update_status(only_if=("running",), heartbeat=now(), **dict(self.progress))
            except OSError:  # a full disk must not kill training; the next beat tries again
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _start(files: RunFiles, config: RunConfig) -> bool:
    """Create the run's files if needed and mark it running. False when it was cancelled first."""
    files.dir.mkdir(parents=True, exist_ok=True)
    if not files.config_path.exists():
        files.write_config(config.to_dict())
    status = files.read_status()
    if status["state"] == "cancelled":
        return False
    if status["state"] in (*FINAL_STATES, "running"):
        raise KwsError(f"Run {files.run_id} is already {status['state']}: start a new run instead.")
    if status["state"] != "queued":  # a fresh folder (or an unreadable status): start from queued
        files.update_status(state="queued", run_id=files.run_id, created=now())
    status = files.update_status(
        only_if=("queued",), state="running", pid=os.getpid(), pid_start=process_start(os.getpid()),
        host=this_host(), started_at=now(),
        heartbeat=now(), epochs=config.epochs, epoch=0, step=0,
    )  # fmt: skip
    return status["state"] == "running"


def run_training(
    config: RunConfig, run_dir: str | os.PathLike, callbacks: Callbacks | None = None
) -> RunResult:
    """Train, validate, checkpoint and test one model, writing everything into ``run_dir``.

    The run's status goes queued -> running -> succeeded | cancelled | failed. Failures are
    recorded in status.json (with the message) and then re-raised; a :class:`KwsError` is a
    mistake the user can fix (its message says how).
    """
    files = RunFiles(run_dir)
    config = config.validate()
    if not _start(files, config):
        return RunResult("cancelled", files.dir)
    progress = {"step": 0, "epoch": 0}
    try:
        with Heartbeat(files, progress):
            return _run(config, files, callbacks or Callbacks(), progress)
    except RunStopped as stop:  # cancelled (flag file, SIGTERM or Ctrl-C): a clean stop
        files.log(f"stopped: {stop.reason}")
        files.update_status(
            state="cancelled", ended_at=now(), heartbeat=now(), message=stop.reason, **progress
        )
        return RunResult("cancelled", files.dir)
    except KeyboardInterrupt:
        files.update_status(state="cancelled", ended_at=now(), message="interrupted (Ctrl-C)", **progress)
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, KwsError) else f"{type(exc).__name__}: {exc}"
        files.log(f"failed: {message}\n{traceback.format_exc()}")
        files.update_status(state="failed", ended_at=now(), heartbeat=now(), error=message, **progress)
        raise


def _run(config: RunConfig, files: RunFiles, callbacks: Callbacks, progress: dict) -> RunResult:
    """The body of :func:`run_training`, once the run is marked running."""
    started = time.monotonic()
    threads = configure_threads(config.threads or _env_threads())
    set_seed(config.seed)
    device = pick_device()  # CUDA when present (KWS_DEVICE=cpu to keep off it), else the CPU
    files.log(f"run {files.run_id}: {config.model} on {' + '.join(config.data_roots)} ({device}, {threads} thread(s))")

    parent = parent_checkpoint(config.init, files.dir.parent) if config.init else None
    data = prepare_data(config, files, parent, on_decode=callbacks.on_decode)
    model, optimizer, scheduler = _build(config, data, device, parent)
    info = _start_info(data, model, config, device, threads)
    files.update_status(total_steps=info["total_steps"], n_train=info["n_train"], training_started_at=now())
    files.log(
        f"data: {info['n_train']} training clips, {info['n_val']} validation clips, labels {data['labels']}"
    )
    if callbacks.on_start:
        callbacks.on_start(info)

    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    scaler = make_grad_scaler(device)  # float16 loss scaling on CUDA, one per run; a no-op on the CPU
    loop = _Loop(config, files, callbacks, progress, started, info["total_steps"])
    best = {"val_accuracy": -1.0, "epoch": 0}
    stopped = None
    for epoch in range(1, config.epochs + 1):
        progress["epoch"] = epoch
        tic = time.monotonic()
        try:
            train_loss = train(
                model, data["train"], data["train_transform"], criterion, optimizer, device,
                on_iteration=loop.on_iteration, scheduler=scheduler,
                first_step=(epoch - 1) * info["steps_per_epoch"], scaler=scaler,
            )  # fmt: skip
        except RunStopped as stop:
            if stop.reason != "time budget":
                raise
            stopped, train_loss = stop.reason, loop.mean_loss()
        clips_per_s = info["n_train"] / (time.monotonic() - tic)
        _end_of_epoch(config, files, data, model, optimizer, loop, best, train_loss, clips_per_s, device)
        if stopped:
            files.log(f"time budget of {config.max_minutes} min reached during epoch {epoch}")
            break
    return _finish(config, files, data, best, info, started, stopped, device)


def parent_checkpoint(init: str, runs_root: Path) -> dict:
    """The best checkpoint of the run a fine-tuning starts from: ``init`` is its id in ``runs_root``
    or its folder."""
    folder = Path(init).expanduser()
    path = (folder if folder.is_dir() else runs_root / init) / "best.pt"
    if not path.is_file():
        raise KwsError(f"Cannot fine-tune {init}: it has no best.pt. Pick a finished run (`kwscore runs`).")
    return load_checkpoint(path)


def _build(config: RunConfig, data: dict, device: torch.device, parent: dict | None = None):
    """The model (on ``device``), Adam and the learning-rate schedule (stepped once per batch).
    When fine-tuning, the model starts from the ``parent`` checkpoint's weights.

    A Mel model's weights are stored "channels last" (``[C, H, W]`` laid out as ``[H, W, C]``),
    the layout the CPU's convolution library computes in: the CNN trained ~40 % faster on 2 cores.
    Same maths and same checkpoints (a state dict does not care about the layout).
    """
    model = build_model(config.model, len(data["labels"]), **_model_kwargs(config)).to(device)
    if parent is not None:
        if list(parent["labels"]) != data["labels"] or parent["model_name"] != config.model:
            raise KwsError(
                f"Cannot fine-tune {config.init} ({parent['model_name']}: {', '.join(parent['labels'])}) as a "
                f"{config.model} of {', '.join(data['labels'])}: keep its model and words."
            )
        try:
            model.load_state_dict(parent["state_dict"])
        except RuntimeError as exc:
            raise KwsError(f"{config.init}'s weights do not fit this model's options: keep its model_kwargs.") from exc
    if config.representation == "mel":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(
        optimizer, config.scheduler, epochs=config.epochs, steps_per_epoch=len(data["train"]),
        step_size=config.step_size, gamma=config.gamma,
    )  # fmt: skip
    return model, optimizer, scheduler


def _start_info(data: dict, model: nn.Module, config: RunConfig, device, threads: int) -> dict:
    """What :attr:`Callbacks.on_start` receives."""
    train_batches = data["train"]
    return {
        "n_train": len(train_batches.targets), "n_val": len(data["val"].targets), "labels": data["labels"],
        "steps_per_epoch": len(train_batches), "total_steps": len(train_batches) * config.epochs,
        "epochs": config.epochs, "device": str(device), "threads": threads,
        "n_params": count_parameters(model), "train_selection": data["selection"],
    }  # fmt: skip


def _end_of_epoch(config, files, data, model, optimizer, loop, best, train_loss, clips_per_s, device) -> None:
    """Validate, checkpoint (last.pt, and best.pt when better), log the epoch everywhere."""
    epoch = loop.progress["epoch"]
    val = test(model, data["val"], None, device, data["labels"])
    extra = {
        "labels": data["labels"], "feature_config": data["transform_config"]["features"],
        "transform_config": data["transform_config"], "run_config": config.to_dict(),
        "epoch": epoch, "val_accuracy": val["accuracy"],
    }  # fmt: skip
    save_checkpoint(files.last_path, model, extra)  # atomic: a crash never leaves half a file
    improved = val["accuracy"] > best["val_accuracy"]
    if config.init:  # fine-tuning: at equal validation accuracy the later, more adapted epoch wins
        improved = val["accuracy"] >= best["val_accuracy"]
    if improved:
        best.update(val_accuracy=val["accuracy"], epoch=epoch)
        save_checkpoint(files.best_path, model, extra)
    record = loop.epoch_record(train_loss, val, optimizer, clips_per_s, improved)
    files.append_metric(record)
    files.update_status(
        epoch=epoch,
        step=loop.progress["step"],
        best_val_accuracy=best["val_accuracy"],
        best_epoch=best["epoch"],
    )
    files.log(
        f"epoch {epoch}/{config.epochs}: loss {train_loss:.3f}, val accuracy {val['accuracy']:.1%}, "
        f"{clips_per_s:.0f} clips/s"
    )
    if loop.callbacks.on_epoch:
        loop.callbacks.on_epoch(record)


def _env_threads() -> int | None:
    """Threads the job worker gives each run (cores / concurrency), if it set KWS_RUN_THREADS."""
    value = os.environ.get("KWS_RUN_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class _Loop:
    """Per-iteration bookkeeping: metrics lines, callbacks, cancel flag and time budget."""

    def __init__(self, config, files, callbacks, progress, started, total_steps) -> None:
        self.config, self.files, self.callbacks, self.progress = config, files, callbacks, progress
        self.started = started
        self.log_every = max(1, -(-total_steps // MAX_ITERATION_LINES))  # ceil: ≤ ~400 lines a run
        self.window: list[float] = []  # losses since the last metrics line
        self.epoch_losses: list[float] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mean_loss(self) -> float:
        return float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan")

    def on_iteration(self, step: int, loss: float, lr: float) -> None:
        """Called by :func:`kwscore.training.train` after every step (``step`` is 0-based)."""
        step += 1
        self.progress["step"] = step
        self.window.append(loss)
        self.epoch_losses.append(loss)
        record = {"kind": "iteration", "step": step, "epoch": self.progress["epoch"], "loss": loss,
                  "lr": lr, "elapsed": round(self.elapsed(), 3)}  # fmt: skip
        if step % self.log_every == 0:  # the mean loss since the last line: a smoother curve
            self.files.append_metric({**record, "loss": float(np.mean(self.window))})
            self.window.clear()
        if self.callbacks.on_iteration:
            self.callbacks.on_iteration(record)
        if self.files.cancel_requested() or _signal_stop.is_set():
            raise RunStopped("cancelled")
        if self.config.max_minutes and self.elapsed() > 60.0 * self.config.max_minutes:
            raise RunStopped("time budget")

    def epoch_record(self, train_loss: float, val: dict, optimizer, clips_per_s: float, best: bool) -> dict:
        """The epoch line of metrics.jsonl (and resets the epoch's loss list)."""
        self.epoch_losses = []
        return {
            "kind": "epoch", "epoch": self.progress["epoch"], "step": self.progress["step"],
            "train_loss": train_loss, "val_accuracy": val["accuracy"], "val_loss": val["loss"],
            "lr": optimizer.param_groups[0]["lr"], "elapsed": round(self.elapsed(), 3),
            "samples_per_s": round(clips_per_s, 1), "best": best,
        }  # fmt: skip


def prepare_data(config: RunConfig, files: RunFiles | None = None, parent: dict | None = None,
                 on_decode: Callable[[str, int, int], None] | None = None) -> dict:
    """Load the splits into memory and build the training batches and transforms (when
    fine-tuning, the training split is the new data plus a replay sample of the ``parent``'s).

    Returns a dict: ``labels``, ``train`` (:class:`Batches`, shuffled and augmented), ``val``
    (:class:`Batches` of clean model inputs), ``train_transform`` (per-batch module or None),
    ``transform_config`` (the front end stored in checkpoints), ``selection`` (what the fraction
    kept).
    """
    say = files.log if files is not None else (lambda _msg: None)
    tic = time.monotonic()

    def pick(dataset: SpeechCommands) -> list[int]:
        if parent is not None:
            old = parent["run_config"] or {}
            return select_replay(dataset, [old.get("data", ""), *old.get("mix", [])], config.replay, config.seed)
        return select_fraction(dataset, config.fraction, config.fraction_by, config.seed)

    def progress(subset: str) -> Callable[[int, int], None]:
        logged = [0.0]

        def report(done: int, total: int) -> None:
            if on_decode is not None:
                on_decode(subset, done, total)
            if done == total or done / total >= logged[0] + 0.25:  # run.log: every quarter
                logged[0] = done / total
                say(f"decoding {subset}: {done}/{total} clips")

        return report

    fc = config.feature_config
    front_end = MelFrontEnd(fc).eval() if fc is not None else None
    # Validation first: the CNN's validation spectrograms replace their clips before the training
    # clips are decoded, so the two never sit in memory together (full Speech Commands: < 4 GB).
    val_split = load_split(config, "validation", progress=progress("validation"))
    val_inputs = val_split.inputs if front_end is None else in_chunks(front_end, val_split.inputs)
    val_split.inputs = val_inputs
    train_split = load_split(config, "training", pick, progress("training"))
    say(
        f"decoded {len(train_split.targets) + len(val_split.targets)} clips in {time.monotonic() - tic:.1f} s"
    )
    waveform_aug, spec_aug = make_augmenters(config, say)

    train_inputs, train_transform = train_split.inputs, spec_aug
    if front_end is not None:  # the CNN: spectrograms
        if waveform_aug is None:  # nothing changes the waveforms: compute the spectrograms once
            train_inputs = in_chunks(front_end, train_inputs)
        else:  # augmented waveforms -> spectrograms, batch by batch
            train_transform = nn.Sequential(front_end, spec_aug) if spec_aug is not None else front_end
    gen = torch.Generator().manual_seed(config.seed)
    return {
        "labels": train_split.dataset.labels,
        "train": Batches(train_inputs, train_split.targets, config.batch_size, True, gen, waveform_aug),
        "val": Batches(val_inputs, val_split.targets, 256),
        "train_transform": train_transform,
        "transform_config": transform_config(config.model_rate, fc, CLIP_SECONDS),
        "selection": _selection_info(config, train_split),
    }


def make_augmenters(config: RunConfig, say=print) -> tuple[BatchAugment | None, SpecAugment | None]:
    """The recipe's waveform steps as a :class:`BatchAugment`, and its :class:`SpecAugment` layer
    (only for Mel models: a waveform model has no spectrogram to mask). ``None`` when absent."""
    aug = config.augment_config()
    waveform_aug = None
    if aug.steps:
        needs_noise = any(s.effect == "add_background_noise" for s in aug.steps)
        noises = load_noises(config.data) if needs_noise else []
        waveform_aug = BatchAugment(aug, config.model_rate, noises, config.seed)
        if waveform_aug.per_clip_effects:
            say(f"per-clip (slower) effects in this recipe: {', '.join(waveform_aug.per_clip_effects)}")
    if aug.spec_augment is None:
        return waveform_aug, None
    if config.representation != "mel":
        say("SpecAugment needs a spectrogram: the waveform model skips it")
        return waveform_aug, None
    return waveform_aug, SpecAugment(aug.spec_augment)


def _selection_info(config: RunConfig, split: Split) -> dict:
    """What the training fraction kept: clips, speakers, clips per word."""
    ds = split.dataset
    counts = torch.bincount(split.targets, minlength=len(ds.labels)).tolist()
    return {
        "fraction": config.fraction,
        "by": config.fraction_by,
        "clips": len(split.targets),
        "speakers": len(set(ds.speakers()) - {""}),  # _silence_ clips have no speaker
        "per_class": dict(zip(ds.labels, counts, strict=True)),
    }


def _finish(config, files, data, best, info, started, stopped, device) -> RunResult:
    """Test the best checkpoint on the test split, write report.json, mark the run succeeded."""
    model, transform, labels, _ = load_run_model(files.dir, "best", device)
    test_set = task_dataset(config.data_roots, "testing", labels, config.seed)
    report = evaluate(model, test_set, transform, labels, device)
    _, epochs = files.read_metrics()
    report.update(
        run_id=files.run_id,
        model=config.model,
        test_accuracy=report["accuracy"],
        best_epoch=best["epoch"],
        best_val_accuracy=best["val_accuracy"],
        epochs_done=len(epochs),
        stopped=stopped,
        duration_s=round(time.monotonic() - started, 2),
        samples_per_s=round(float(np.median([e["samples_per_s"] for e in epochs])), 1) if epochs else None,
        train_selection=data["selection"],
        n_params=info["n_params"],
        device=info["device"],
        threads=info["threads"],
        checkpoint="best.pt",
    )
    files.write_report(report)
    files.update_status(
        state="succeeded", ended_at=now(), heartbeat=now(), test_accuracy=report["accuracy"],
        best_val_accuracy=best["val_accuracy"], message=stopped,
    )  # fmt: skip
    files.log(f"test accuracy {report['accuracy']:.1%} (best epoch {best['epoch']}) at {clock(now())}")
    return RunResult("succeeded", files.dir, report, model, transform, labels)


# ============================================================================================
# python -m kwscore.runner RUN_DIR
# ============================================================================================

_signal_stop = threading.Event()  # set by SIGTERM: stop at the next iteration, as if cancelled


def _on_sigterm(signum, frame) -> None:
    _signal_stop.set()


#: A background run is this much nicer (lower CPU priority) than the worker and web server that
#: started it, so pages stay responsive while it trains (``KWS_RUN_NICE`` overrides; 0 = same).
RUN_NICE = 10


def _lower_priority() -> None:
    """Lower this process's CPU priority by ``KWS_RUN_NICE`` (default :data:`RUN_NICE`)."""
    try:
        increment = int(os.environ.get("KWS_RUN_NICE", RUN_NICE))
    except ValueError:
        increment = RUN_NICE
    if increment > 0 and hasattr(os, "nice"):
        try:
            os.nice(min(increment, 39))
        except OSError:  # not allowed here: train at the same priority
            pass


def main(argv: list[str] | None = None) -> int:
    """Run the config stored in RUN_DIR/config.json. Exit 0 succeeded/cancelled, 1 failed, 2 usage."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m kwscore.runner RUN_DIR", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    _lower_priority()
    files = RunFiles(argv[0])
    try:
        config = RunConfig.from_dict(files.read_config())
    except KwsError as exc:
        files.update_status(state="failed", ended_at=now(), error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result = run_training(config, files.dir)
    except KwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    print(f"{result.state}: {files.dir}")
    return 0


__all__ = [
    "BATCHED_EFFECTS", "BatchAugment", "Batches", "Callbacks", "RECIPES", "RunConfig", "RunResult",
    "RunStopped", "default_config", "finetune_config", "prepare_data", "run_training", "select_fraction",
]  # fmt: skip

if __name__ == "__main__":
    sys.exit(main())
