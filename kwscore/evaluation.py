"""Evaluation: how good is a trained model, and where does it go wrong?

:func:`evaluate` runs a model over a dataset and returns a plain, JSON-serialisable report::

    accuracy, n_correct, n_total, loss
    labels              the class names, in the model's output order
    per_class_accuracy  {label: accuracy or None (no clip of that class)}
    per_class_total     {label: number of clips}
    confusion           [n_labels][n_labels] counts; row = true label, column = predicted label
    misclassified       [{clip_id, path, label, predicted: [{label, probability} x top_k], outcome}, ...]
                        (a ``_silence_`` clip adds ``start_s`` and ``level_dbfs``: its cut of ``path``)
    n_skipped           clips that could not be decoded
    no_keyword          for a model with ``_unknown_`` / ``_silence_`` (None without): the task seen as
                        "keyword or not" (:func:`no_keyword_summary`)

A model with the "no keyword" classes (:mod:`kwscore.labels`) is right about a clip of another word
that it hears as silence: there was no keyword. Each mistake's ``outcome`` says which kind it is.

:func:`load_run_model` rebuilds a finished run's best checkpoint *with its exact front end*: the
model, plus the transform that turns a 16 kHz clip batch ``[batch, 1, time]`` into what the model
was trained on (``Resample`` to 8 kHz for the M-models, the stored :class:`MelFrontEnd` for the
CNN). Predict, Try-it and export all go through it, so they see exactly what training saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.dataset import SpeechCommands
from kwscore.errors import KwsError
from kwscore.features import build_transform
from kwscore.labels import is_keyword, outcome
from kwscore.training import load_checkpoint, model_from_checkpoint, test


def load_run_model(
    run_dir: str | os.PathLike, which: str = "best", device: str | torch.device = "cpu"
) -> tuple[nn.Module, nn.Module, list[str], dict]:
    """Rebuild a run's checkpoint: ``(model, transform, labels, run config dict)``.

    ``which``: ``"best"`` (highest validation accuracy, the default) or ``"last"``.
    The model is in eval mode on ``device``; the transform (on ``device`` too) takes 16 kHz clips.
    """
    if which not in ("best", "last"):
        raise KwsError(f"which must be 'best' or 'last', got {which!r}.")
    run_dir = Path(run_dir)
    path = run_dir / f"{which}.pt"
    if not path.is_file():
        raise KwsError(
            f"Run {run_dir.name} has no {which}.pt yet: it has not finished an epoch. "
            "Wait for the first epoch, or pick another run."
        )
    ckpt = load_checkpoint(path, map_location="cpu")
    if ckpt["transform_config"] is None or ckpt["labels"] is None:
        raise KwsError(f"{path} was not written by a KWS Studio run (no front end or labels stored).")
    model = model_from_checkpoint(ckpt, device)
    transform = build_transform(ckpt["transform_config"]).to(device)
    return model, transform, list(ckpt["labels"]), dict(ckpt.get("run_config") or {})


# --------------------------------------------------------------------------------------------
# Evaluate
# --------------------------------------------------------------------------------------------


def _batches(dataset: SpeechCommands, length: int, batch_size: int):
    """Yield ``(dataset indices, waveforms [B, 1, length], targets [B])``, skipping corrupt clips."""
    index, waves, targets = [], [], []
    for n in range(len(dataset)):
        waveform = dataset.waveform(n)
        if waveform is None:
            continue
        label = dataset.get_metadata(n)[2]
        index.append(n)
        waves.append(audio.fix_length(waveform, length))
        targets.append(dataset.labels.index(label))
        if len(index) == batch_size:
            yield index, torch.stack(waves), torch.tensor(targets)
            index, waves, targets = [], [], []
    if index:
        yield index, torch.stack(waves), torch.tensor(targets)


def _as_model(model, device) -> tuple[nn.Module, nn.Module | None, list[str] | None]:
    """A model, a checkpoint path or a run folder -> ``(model, transform or None, labels or None)``."""
    if isinstance(model, nn.Module):
        return model, None, None
    path = Path(model)
    if path.is_dir():
        m, transform, labels, _ = load_run_model(path, device=device)
        return m, transform, labels
    ckpt = load_checkpoint(path)
    transform = build_transform(ckpt["transform_config"]) if ckpt["transform_config"] else None
    return model_from_checkpoint(ckpt, device), transform, ckpt["labels"]


def evaluate(
    model: nn.Module | str | os.PathLike,
    dataset: SpeechCommands,
    transform: nn.Module | None = None,
    labels: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    top_k: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run ``model`` over every clip of ``dataset``; return the report described in the module doc.

    The counting is the training loop's own validation (:func:`kwscore.training.test`); this adds
    the clips behind the mistakes and the "keyword or not" summary.

    Args:
        model: an ``nn.Module`` (then pass its ``transform``), a checkpoint path or a run folder
            (its best checkpoint, with the stored front end and labels).
        dataset: clips at 16 kHz; its ``labels`` must be the model's classes, in the same order
            (build it with ``commands=labels``).
        transform: ``[batch, 1, time] -> model input`` (``None``: the waveform as is).
        labels: the model's class names (default: ``dataset.labels``).
        progress: called as ``progress(clips done, clips in all)`` after every batch (a progress bar).
    """
    model, stored_transform, stored_labels = _as_model(model, device)
    transform = transform if transform is not None else stored_transform
    labels = list(labels or stored_labels or dataset.labels)
    if list(dataset.labels) != labels:
        raise KwsError(
            f"The dataset's words {dataset.labels} are not the model's classes {labels}. "
            f"Load the dataset with commands={labels}."
        )
    if dataset.sample_rate != SAMPLE_RATE:
        raise KwsError(
            f"evaluate() wants clips at {SAMPLE_RATE} Hz; this dataset gives {dataset.sample_rate} Hz."
        )
    batch_index: list[int] = []  # the dataset indices of the batch being evaluated
    misclassified: list[dict] = []

    def batches():
        done = 0
        for index, waves, targets in _batches(dataset, SAMPLE_RATE, batch_size):  # one second, as in training
            if progress is not None and done:
                progress(done, len(dataset))
            batch_index[:] = index
            done += len(index)
            yield waves, targets
        if progress is not None:
            progress(len(dataset), len(dataset))

    def note_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> None:
        if logits.shape[1] != len(labels):
            raise KwsError(f"The model has {logits.shape[1]} outputs but {len(labels)} labels were given.")
        probs, targets = torch.softmax(logits.cpu(), dim=1), targets.cpu()  # [B, n_classes], [B]
        wrong = (probs.argmax(dim=1) != targets).nonzero().flatten().tolist()
        misclassified.extend(_mistake(dataset, batch_index[i], labels, targets[i], probs[i], top_k) for i in wrong)

    try:
        result = test(model, batches(), transform, device, labels, on_batch=note_mistakes)
    except KwsError:
        if batch_index:
            raise
        raise KwsError("No clip of this dataset could be decoded: nothing to evaluate.") from None
    return _report(result, labels, misclassified, len(dataset) - result["n_total"])


def _mistake(dataset: SpeechCommands, n: int, labels: list[str], target, probs, top_k: int) -> dict:
    """One misclassified clip: where it is, what it is, what the model thought (top k)."""
    top = torch.topk(probs, min(top_k, len(labels)))
    return {
        "clip_id": dataset.clip_id(n),
        "path": str(dataset.path(n)),
        "label": labels[int(target)],
        "predicted": [
            {"label": labels[int(i)], "probability": round(float(p), 6)}
            for p, i in zip(top.values, top.indices, strict=True)
        ],
        "outcome": outcome(labels[int(target)], labels[int(top.indices[0])]),
        **(getattr(dataset, "silence_cut", lambda _n: None)(n) or {}),  # a _silence_ clip: where in its recording
    }


def no_keyword_text(summary: dict) -> str:
    """:func:`no_keyword_summary` in one sentence (the CLI and the Runs page)."""

    def pct(value) -> str:
        return "–" if value is None else f"{100 * value:.1f} %"

    return (
        f"Keyword or not: {pct(summary['detection_accuracy'])} right (another word heard as silence counts as "
        f"right). Of the {summary['keyword_clips']} keyword clips {pct(summary['missed'])} were missed (heard as no "
        f"keyword) and {pct(summary['wrong_word'])} heard as another keyword; of the {summary['no_keyword_clips']} "
        f"clips without one, {pct(summary['false_alarms'])} were false alarms."
    )


def no_keyword_summary(confusion: torch.Tensor, labels: Sequence[str]) -> dict | None:
    """The task seen as "which keyword, or none?" (``None`` for a model without "no keyword" classes).

    ``keyword_accuracy``: keyword clips heard as the right keyword; ``missed``: keyword clips heard
    as no keyword; ``wrong_word``: heard as another keyword; ``false_alarms``: clips without a
    keyword heard as one; ``detection_accuracy``: every clip right, counting the "no keyword"
    classes as one (``_unknown_`` heard as ``_silence_`` is right). Shares in [0, 1] (``None`` when
    there is no clip of that kind).
    """
    key = torch.tensor([is_keyword(label) for label in labels])
    if bool(key.all()):
        return None
    confusion = torch.as_tensor(confusion)
    kw, non = confusion[key], confusion[~key]  # rows: keyword clips, no-keyword clips
    n_kw, n_non = int(kw.sum()), int(non.sum())
    right_word = int(kw[:, key].diag().sum())
    heard_none = int(non[:, ~key].sum())

    def share(count: int, total: int) -> float | None:
        return count / total if total else None

    return {
        "labels": [label for label in labels if not is_keyword(label)],
        "keyword_clips": n_kw,
        "no_keyword_clips": n_non,
        "keyword_accuracy": share(right_word, n_kw),
        "missed": share(int(kw[:, ~key].sum()), n_kw),
        "wrong_word": share(int(kw[:, key].sum()) - right_word, n_kw),
        "false_alarms": share(n_non - heard_none, n_non),
        "detection_accuracy": share(right_word + heard_none, n_kw + n_non),
    }


def _report(result: dict, labels: list[str], misclassified: list, skipped: int) -> dict:
    """:func:`kwscore.training.test`'s counts, per label, with the mistakes and the no-keyword view."""
    return {
        "accuracy": result["accuracy"],
        "n_correct": result["n_correct"],
        "n_total": result["n_total"],
        "loss": result["loss"],
        "labels": labels,
        "per_class_accuracy": dict(zip(labels, result["per_class_accuracy"], strict=True)),
        "per_class_total": dict(zip(labels, result["per_class_total"], strict=True)),
        "confusion": result["confusion"],
        "misclassified": misclassified,
        "n_skipped": skipped,
        "no_keyword": no_keyword_summary(torch.tensor(result["confusion"]), labels),
    }
