"""A run's data in memory: every clip decoded once, batches cut from one tensor.

::

    data = prepare_data(default_config("m5", data=ROOT))
    for waveforms, targets in data["train"]:      # [B, 1, 16000] float32, [B] (augmented)
        ...

1. **Decode once** (:func:`decode_all`): every clip of a split into one int16 tensor ``[N, 1, L]``
   at the model's rate (resampled in big chunks), in a few threads. For Mel models without waveform
   augmentation the spectrograms themselves are computed once (:func:`in_chunks`).
2. **Batches without a DataLoader** (:class:`Batches`): a ``torch.randperm`` order each pass, one
   gather per batch, no per-item collate; the recipe's waveform augmentation
   (:class:`kwscore.augment.BatchAugment`) runs on each batch, ahead in a helper thread.
3. **A training fraction** (:func:`select_fraction`: 10/25/50/100 % of the training split, by
   speaker or stratified) to ask "can augmentation make up for less data?"; when fine-tuning, the
   new clips plus a replay sample of the old ones (:func:`select_replay`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.augment import BatchAugment, SpecAugment, load_noises
from kwscore.data.dataset import SpeechCommands, from_pcm16, to_pcm16
from kwscore.data.layout import dataset_folder
from kwscore.features import MelFrontEnd, build_transform, transform_config
from kwscore.labels import with_non_keywords
from kwscore.recipes import CLIP_SECONDS, RunConfig
from kwscore.runfiles import RunFiles

# ============================================================================================
# Which clips: a training fraction, or the fine-tuning replay
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


# ============================================================================================
# The splits as in-memory tensors
# ============================================================================================


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
# Everything a run trains and validates on
# ============================================================================================


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


__all__ = [
    "Batches", "Split", "decode_all", "in_chunks", "load_split", "make_augmenters", "prepare_data", "select_fraction",
    "select_replay",
]  # fmt: skip
