"""The run configuration: everything that defines a training run, and the tuned recipes.

A run is one :class:`RunConfig` (frozen, JSON round-trippable, stored as the run folder's
``config.json``)::

    config = default_config("m5", data="~/.kws-studio/data/synthetic")   # the tuned recipe
    config = replace(config, epochs=10).validate()                       # every mistake, in words

:data:`RECIPES` holds the tuned settings of every model (the evidence is in benchmarks/RESULTS.md);
:func:`finetune_config` makes the run that fine-tunes a finished one on your own takes.
:mod:`kwscore.runner` trains a config; :mod:`kwscore.training_data` loads its data.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kwscore import audio, paths
from kwscore.audio import SAMPLE_RATE
from kwscore.augment import PRESETS, AugmentConfig, preset
from kwscore.data.dataset import check_layout
from kwscore.data.layout import word_folders
from kwscore.errors import KwsError, check_known_keys
from kwscore.features import FeatureConfig
from kwscore.labels import keywords_of
from kwscore.models import MODEL_INFO, MODEL_NAMES
from kwscore.runfiles import RunFiles
from kwscore.training import SCHEDULERS, load_checkpoint, shape_only_model

#: Every clip is cut or zero-padded to this many seconds (what the models listen to).
CLIP_SECONDS = 1.0

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
    "spec_augment": {"freq_mask_param": 8, "time_mask_param": 10, "n_freq_masks": 2, "n_time_masks": 2, "freq_warp": 0.12},
}

#: The recipes' augmentation for recorded speech (a real dataset, your own recordings): the same
#: without the simulated rooms, microphones and vocal-tract warp, which recorded speech already has.
RECORDED_AUGMENT: dict[str, Any] = {
    "name": "recipe (recorded speech)",
    "steps": [s for s in RECIPE_AUGMENT["steps"] if s["effect"] not in ("reverb", "microphone")],
    "spec_augment": {**RECIPE_AUGMENT["spec_augment"], "freq_warp": 0.0},
}

#: The tuned recipe of every model: RunConfig fields that differ from the dataclass defaults.
#: One place to update when a better recipe is found (benchmarks/RESULTS.md keeps the evidence,
#: every attempt of ``benchmarks/train_real.py``). Shared real set, 8 commands, test list = unseen
#: speakers, 2 CPU cores:
#: - cnn: 32-64-128-128 channels reached 95.4 % but needed ~6 min on busy cores; 16-32-64-128
#:   (the recipe, 60 epochs, channels-last weights): 93.1 % in 177 s on quiet cores, 252 s busy.
#:   Now 40 epochs: the embedded set grew to 1,520 training clips of the 8 commands (+ _unknown_ and
#:   _silence_), and 40 epochs of it took 304 s on busy cores (benchmarks/RESULTS.md, make_ready_model).
#:   Now 20 epochs with a vocal-tract warp of ±12 % (VTLP on the Mel axis): the default embedded set
#:   has 4 takes of each keyword (twice the clips per epoch), and on real speech this scored higher
#:   than 10 epochs and than the old 40 (benchmarks/RESULTS.md, "sim_to_real: levers", 2026-12-02).
#: - m5: the tutorial's 8 kHz input was the limit (width 32: 80.7 %, width 48: 81.3 %, dropout +
#:   label smoothing: 81.3 %, RMS-normalised input: 68.9 %, speed perturbation: 65.2 %). Listening
#:   at 16 kHz keeps the 4-8 kHz band of "s", "t", "f": stride 32 (the same 2-ms hop) 85.9 %,
#:   width 48 86.2 %; stride 16 (a 1-ms hop, the recipe) 87.9 % in 72 s on quiet cores.
#:   30 epochs since the embedded set has 4 takes of each keyword (twice the clips per epoch of 60).
#: - threads=1: on 2 cores shared with other work, one thread trained 2-8x faster than two
#:   (two threads wait for each other whenever another process holds a core).
#: - embed: trained on the embedded set only, 85.3 % on real speakers (the CNN 59.7 %): head 64 79.0 %,
#:   head 128 84.7 %, + 8 Mel bands 3.8-8 kHz 85.3 % (real "stop" 49 -> 62 %); 8 epochs (one ~35 s on
#:   2 busy cores: the frozen embedding runs on every augmented batch). benchmarks/RESULTS.md,
#:   "sim_to_real: transfer learning".
#: - m3, m11, m18, m34res: starting points sized for 2 CPU cores, not tuned yet.
RECIPES: dict[str, dict[str, Any]] = {
    "cnn": dict(
        model_kwargs={"channels": [16, 32, 64, 128], "dropout": 0.2},
        epochs=20, batch_size=64, lr=0.005, scheduler="onecycle", augment=RECIPE_AUGMENT, threads=1,
    ),
    "m3": dict(
        model_kwargs={"n_channel": 64, "stride": 16},
        epochs=40, batch_size=64, lr=0.01, scheduler="onecycle", augment=RECIPE_AUGMENT,
    ),
    "m5": dict(
        model_kwargs={"n_channel": 32, "stride": 16}, sample_rate=16000,
        epochs=30, batch_size=64, lr=0.01, scheduler="onecycle", augment=RECIPE_AUGMENT, threads=1,
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
    # transfer learning: Google's frozen speech embedding (16 kHz) + a small head
    "embed": dict(
        model_kwargs={"hidden": 128, "dropout": 0.3, "high_bands": 8}, sample_rate=16000,
        epochs=8, batch_size=64, lr=0.003, scheduler="onecycle", augment=RECIPE_AUGMENT, threads=1,
    ),
}  # fmt: skip

#: What changes in a recipe when its data is recorded speech rather than the embedded synthetic set
#: (:func:`is_synthetic`). The shared real training list has 1,793 clips of the 8 commands with
#: ``_unknown_`` and ``_silence_``, half the embedded set's: at the embedded set's 20 epochs the CNN
#: reached 85-86 %, at 60 epochs 92.7 % (90: 91.1 %); M5 84.5 % at 60 epochs, 87.4 / 87.9 % at 90
#: (two seeds), 84.5 % at 120 (benchmarks/RESULTS.md, "train_real: recipes for recorded speech"). The
#: pretrained embedding's head: 96.1 % at 20 epochs in 390 s on partly busy cores (best epoch 19; before
#: the high bands, 96.6 % in 298 s).
RECORDED: dict[str, dict[str, Any]] = {
    "cnn": dict(epochs=60, augment=RECORDED_AUGMENT),
    "m5": dict(epochs=90, augment=RECORDED_AUGMENT),
    "embed": dict(epochs=20, augment=RECORDED_AUGMENT),
}

FRACTION_BY = ("speaker", "stratified")


def is_synthetic(data: str | os.PathLike) -> bool:
    """Whether ``data`` is a dataset kwscore's speech synthesis wrote (it keeps a manifest there), or
    the embedded set's folder (:func:`kwscore.paths.synth_root`, generated on first use)."""
    from kwscore.data.layout import dataset_folder
    from kwscore.data.synth import MANIFEST

    if not str(data):
        return False
    folder = Path(data).expanduser()
    return (dataset_folder(folder) / MANIFEST).is_file() or folder.absolute() == paths.synth_root().absolute()


def recipe_augment(data: str | os.PathLike | None = None) -> dict[str, Any]:
    """The recipes' augmentation for ``data`` (default: the embedded set)."""
    return RECIPE_AUGMENT if data is None or is_synthetic(data) else RECORDED_AUGMENT


def recipe_key(model: str) -> str:
    """The :data:`RECIPES` key of a model or recipe name (``"M5"``, ``"m5-tutorial"`` -> ``"m5tutorial"``)."""
    key = str(model).lower().replace("-", "").replace("_", "")
    if key not in RECIPES:
        raise KwsError(f"Unknown model {model!r}. Choose one of: {', '.join(RECIPES)}.")
    return key


def recipe(model: str, data: str | os.PathLike | None = None) -> dict[str, Any]:
    """The tuned settings of ``model`` for ``data`` (default: the embedded set): :data:`RECIPES`,
    with :data:`RECORDED` on top when the data is recorded speech."""
    key = recipe_key(model)
    recorded = data is not None and not is_synthetic(data)
    return {**RECIPES[key], **(RECORDED.get(key, {}) if recorded else {})}


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
        check_known_keys(cls, data, "run setting")
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
        """``"mel"`` (the CNN), ``"waveform"`` (the M-models) or ``"embedding"`` (a pretrained speech
        embedding that reads the 16-kHz waveform itself)."""
        return MODEL_INFO[self.model]["representation"]

    @property
    def feature_config(self) -> FeatureConfig | None:
        """The Mel front end of a Mel model (``None`` for waveform models)."""
        return FeatureConfig.from_dict(self.features) if self.representation == "mel" else None

    @property
    def model_rate(self) -> int:
        """The sample rate the model listens at."""
        return self.feature_config.sample_rate if self.representation == "mel" else int(self.sample_rate)

    @property
    def model_options(self) -> dict[str, Any]:
        """``model_kwargs`` plus the sample rate the waveform models are told about
        (``build_model(config.model, n_classes, **config.model_options)``)."""
        kwargs = dict(self.model_kwargs)
        if self.representation == "waveform":
            kwargs.setdefault("sample_rate", self.model_rate)
        return kwargs

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
    rate = MODEL_INFO[c.model]["sample_rate"]
    if c.representation == "embedding" and c.sample_rate != rate:
        return [f"{c.model} listens at {rate} Hz (its pretrained embedding was trained so), got sample_rate {c.sample_rate!r}."]
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
    model, _ = shape_only_model(c.model, 2, c.model_options)  # KwsError: a bad option, or a huge model
    needed = getattr(model, "min_samples", 0)
    if needed > CLIP_SECONDS * c.model_rate:
        return [
            f"{c.model} with these options needs at least {needed} samples but a 1-s clip at "
            f"{c.model_rate} Hz has {round(CLIP_SECONDS * c.model_rate)}. Use a smaller stride."
        ]
    return []


def default_config(model: str = "m5", **overrides: Any) -> RunConfig:
    """The tuned recipe of ``model`` (see :data:`RECIPES`), with ``overrides`` on top.

    ``data`` defaults to the embedded synthetic dataset (``kwscore.paths.synth_root()``); on
    recorded speech the recipe is :func:`recipe`'s for it (more epochs, no simulated rooms).
    """
    data = overrides.get("data") or str(paths.synth_root())
    values = {"model": recipe_key(model), "data": str(data), **recipe(model, data)}
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


def parent_checkpoint(init: str, runs_root: Path) -> dict:
    """The best checkpoint of the run a fine-tuning starts from: ``init`` is its id in ``runs_root``
    or its folder."""
    folder = Path(init).expanduser()
    path = (folder if folder.is_dir() else runs_root / init) / "best.pt"
    if not path.is_file():
        raise KwsError(f"Cannot fine-tune {init}: it has no best.pt. Pick a finished run (`kwscore runs`).")
    return load_checkpoint(path)


__all__ = [
    "CLIP_SECONDS", "FINETUNE", "FRACTION_BY", "RECIPES", "RECIPE_AUGMENT", "RunConfig", "default_config",
    "finetune_config", "parent_checkpoint",
]  # fmt: skip
