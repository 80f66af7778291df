"""Training, testing and predicting: one readable loop, no hidden magic.

The recipe, as in the PyTorch speech-command tutorial::

    set_seed(0)
    device = pick_device()
    model = build_model("m5", n_classes=len(labels)).to(device)
    transform = torchaudio.transforms.Resample(16000, 8000)   # or MelFrontEnd(...) for the CNN
    criterion = nn.CrossEntropyLoss()                          # the models return logits
    optimizer = make_optimizer(model, lr=0.01)
    scheduler = make_scheduler(optimizer, "step", epochs=epochs, steps_per_epoch=len(train_loader))
    step = 0
    for epoch in range(1, epochs + 1):
        loss = train(model, train_loader, transform, criterion, optimizer, device,
                     scheduler=scheduler, first_step=step)
        step += len(train_loader)
        result = test(model, val_loader, transform, device)
        print(f"epoch {epoch}: loss {loss:.3f}, val accuracy {result['accuracy']:.1%}")
    save_checkpoint("model.pt", model, {"labels": labels, "epoch": epochs,
                                        "val_accuracy": result["accuracy"]})

Conventions used everywhere here:

- A loader yields ``(waveforms, targets)``: waveforms ``[batch, 1, time]`` float32 (16 kHz),
  targets ``[batch]`` int64 class indices.
- A *transform* turns a waveform batch into the model's input, on the device: ``Resample`` for
  the M-models (``[B, 1, 16000] -> [B, 1, 8000]``), a Mel front end for the CNN
  (``[B, 1, 16000] -> [B, 1, n_mels, frames]``), maybe followed by SpecAugment when training.
  Any ``nn.Module`` or callable on batched tensors works; ``None`` means "feed the waveform as is".
  An ``nn.Module`` transform is moved to the device and put in ``train()`` mode by :func:`train`,
  in ``eval()`` mode by :func:`test` and :func:`predict`. So one transform can serve both when its
  random parts switch off in eval mode (``kwscore.augment.SpecAugment`` does); a plain callable
  with random parts must not be passed to :func:`test`.
- Every scheduler made by :func:`make_scheduler` is stepped **once per batch** (inside
  :func:`train`), so epoch-based and batch-based schedules are driven the same way.
- :func:`train` is one epoch of :func:`train_steps`, which yields after every optimizer step: a
  loop of your own (:mod:`kwscore.runner`'s) iterates it to log each step and ``break`` to stop.
- Where a run trains is chosen in one place, :func:`pick_device` (CUDA when a GPU is present,
  else the CPU; ``KWS_DEVICE=cpu`` keeps a run off the GPU). On CUDA the model computes in mixed
  precision (:func:`autocast`: float16 with float32 weights, a :func:`make_grad_scaler` against
  underflow); on the CPU everything stays float32, exactly as before.
"""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kwscore import __version__
from kwscore.errors import KwsError
from kwscore.fileio import atomic_write
from kwscore.models import build_model, n_outputs

Transform = Callable[[torch.Tensor], torch.Tensor]

# --------------------------------------------------------------------------------------------
# Set-up helpers
# --------------------------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


DEVICES = ("auto", "cpu", "cuda")


def pick_device(choice: str | None = None) -> torch.device:
    """Where a run trains: the one place the device is chosen.

    ``choice`` (default: the ``KWS_DEVICE`` environment variable, else ``"auto"``): ``"auto"`` is
    CUDA when a GPU is present, else the CPU; ``"cpu"`` always the CPU; ``"cuda"`` the GPU, or a
    :class:`KwsError` when there is none.
    """
    choice = (choice or os.environ.get("KWS_DEVICE") or "auto").strip().lower()
    if choice not in DEVICES:
        raise KwsError(f"Unknown device {choice!r} (KWS_DEVICE): use one of {', '.join(DEVICES)}.")
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        raise KwsError("KWS_DEVICE=cuda but PyTorch finds no CUDA GPU here: unset it to train on the CPU.")
    return torch.device("cpu")


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision type the model computes in on ``device``: float16 on CUDA (tensor cores),
    ``None`` (plain float32) on the CPU, where it would only be slower."""
    return torch.float16 if torch.device(device).type == "cuda" else None


def autocast(device: torch.device | str) -> torch.autocast:
    """``with autocast(device): logits = model(inputs)``: mixed precision on CUDA, a no-op on the CPU.
    Front ends (STFT, Mel) stay outside it: a power spectrum overflows float16."""
    device = torch.device(device)
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def make_grad_scaler(device: torch.device | str) -> torch.amp.GradScaler:
    """A loss scaler for float16 training on CUDA (keep one per run: it learns its scale); disabled
    (a no-op) elsewhere."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)


def configure_threads(n_threads: int | None = None) -> int:
    """Use one PyTorch thread per CPU core this process may run on (or ``n_threads``).

    In containers ``os.cpu_count()`` can report the host's cores; the affinity mask tells the
    truth. More threads than cores only adds contention. Returns the number of threads set.
    """
    if n_threads is None:
        try:
            n_threads = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS / Windows
            n_threads = os.cpu_count() or 1
    if n_threads < 1:
        raise KwsError(f"n_threads must be at least 1, got {n_threads}.")
    torch.set_num_threads(n_threads)
    return n_threads


def make_optimizer(model: nn.Module, lr: float = 0.01, weight_decay: float = 1e-4) -> torch.optim.Adam:
    """Adam, as in the tutorial (lr 0.01, weight decay 1e-4)."""
    if not lr > 0:
        raise KwsError(f"The learning rate must be positive, got {lr}. Try 0.01 (Adam) or 0.001.")
    if weight_decay < 0:
        raise KwsError(f"weight_decay must be >= 0, got {weight_decay}. Try 1e-4.")
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


SCHEDULERS = ("step", "onecycle", "cosine", "constant")


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str = "step",
    epochs: int = 30,
    steps_per_epoch: int = 1,
    step_size: int = 20,
    gamma: float = 0.1,
    max_lr: float | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A learning-rate schedule, **stepped once per batch** by :func:`train`.

    - ``"step"``: multiply the rate by ``gamma`` every ``step_size`` epochs (tutorial: 20, 0.1).
    - ``"onecycle"``: warm up to ``max_lr`` (default: the optimizer's lr) during the first 30 %
      of training, then anneal to almost zero. Usually the fastest way to a good model.
    - ``"cosine"``: cosine decay from the optimizer's lr to zero over all epochs.
    - ``"constant"``: keep the rate.
    """
    if epochs < 1 or steps_per_epoch < 1:
        raise KwsError(f"epochs and steps_per_epoch must be >= 1, got {epochs} and {steps_per_epoch}.")
    total_steps = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler
    if kind == "step":
        if step_size < 1:
            raise KwsError(f"step_size is in epochs and must be >= 1, got {step_size}.")
        return sched.StepLR(optimizer, step_size=step_size * steps_per_epoch, gamma=gamma)
    if kind == "onecycle":
        max_lr = max_lr or optimizer.param_groups[0]["lr"]
        return sched.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=0.3)
    if kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total_steps)
    if kind == "constant":
        return sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    raise KwsError(f"Unknown scheduler {kind!r}. Choose one of: {', '.join(SCHEDULERS)}.")


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def _prepare_transform(transform: Transform | None, device: torch.device, training: bool) -> Transform:
    """Identity for ``None``; an ``nn.Module`` is moved to ``device`` and put in train/eval mode."""
    if transform is None:
        return lambda x: x
    if isinstance(transform, nn.Module):
        transform.to(device).train(training)
    return transform


def train_steps(
    model: nn.Module,
    loader: Iterable,
    transform: Transform | None,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    augment: Transform | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    first_step: int = 0,
    scaler: torch.amp.GradScaler | None = None,
) -> Iterator[tuple[float, float, int]]:
    """Train ``model`` on each batch of ``loader`` in turn, yielding ``(loss, lr, batch size)``
    after every optimizer step: the epoch of :func:`train`, one step at a time, so that a caller's
    own loop can log each step and stop early (``break``).

    For each batch ``(waveforms [B, 1, time], targets [B])``:

    1. move it to ``device``;
    2. ``augment`` the waveforms (optional, e.g. noise or time shift on ``[B, 1, time]``);
    3. ``transform`` them into model inputs (Resample, Mel front end, SpecAugment...);
    4. forward, loss, backward, optimizer step, scheduler step.

    Augment and transform run without gradients: they are data preparation, not model. On CUDA
    the forward pass runs in mixed precision (:func:`autocast`) and ``scaler`` (default: a new
    :func:`make_grad_scaler`; pass one to keep its scale across epochs) scales the loss.
    ``first_step`` (the global step of the first batch) only names the step in error messages;
    a loader without batches is a :class:`KwsError`.
    """
    if scaler is None:
        scaler = make_grad_scaler(device)
    transform = _prepare_transform(transform, device, training=True)
    model.train()
    i = -1
    for i, (waveforms, targets) in enumerate(loader):
        waveforms, targets = waveforms.to(device), targets.to(device)
        with torch.no_grad():
            if augment is not None:
                waveforms = augment(waveforms)
            inputs = transform(waveforms)

        with autocast(device):
            logits = model(inputs)  # [B, n_classes]
            loss = criterion(logits, targets)
        loss_value = loss.item()
        if not np.isfinite(loss_value):  # checked before the step, so the weights stay usable
            raise KwsError(
                f"The training loss became {loss_value} at step {first_step + i}. "
                "Lower the learning rate (e.g. divide it by 10) and train again."
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # skipped when float16 gradients overflowed; the scale then shrinks
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        if scheduler is not None:
            scheduler.step()
        yield loss_value, lr, len(targets)
    if i < 0:
        raise KwsError("The training loader gave no batches: is the training split empty?")


def train(
    model: nn.Module,
    loader: Iterable,
    transform: Transform | None,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    on_iteration: Callable[[int, float, float], None] | None = None,
    augment: Transform | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    first_step: int = 0,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Train ``model`` for one epoch over ``loader`` (:func:`train_steps`). Returns the mean
    training loss. After each step ``on_iteration(step, loss, lr)`` is called with the global
    step ``first_step + batch index``.
    """
    total_loss, n_seen = 0.0, 0
    steps = train_steps(model, loader, transform, criterion, optimizer, device, augment, scheduler, first_step, scaler)
    for i, (loss, lr, n) in enumerate(steps):
        total_loss += loss * n
        n_seen += n
        if on_iteration is not None:
            on_iteration(first_step + i, loss, lr)
    return total_loss / n_seen


def test(
    model: nn.Module,
    loader: Iterable,
    transform: Transform | None,
    device: torch.device | str,
    labels: Sequence[str] | None = None,
    on_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> dict:
    """Evaluate ``model`` on every batch of ``loader``. ``on_batch(logits, targets)``, if given, sees
    each batch's float32 logits ``[B, n_classes]`` and targets first (e.g. to keep the mistakes'
    probabilities: :func:`kwscore.evaluation.evaluate`). Returns a plain (JSON-able) dict::

    accuracy            fraction of clips classified correctly, in [0, 1]
    loss                mean cross-entropy
    n_correct, n_total  counts behind the accuracy
    per_class_correct   [n_classes] correct clips per true class
    per_class_total     [n_classes] clips per true class
    per_class_accuracy  [n_classes] (None for a class with no clip)
    confusion           [n_classes][n_classes] counts; row = true class, column = predicted
    predictions         predicted class index of every clip, in loader order
    targets             true class index of every clip, in loader order
    labels              the class names, when given
    """
    transform = _prepare_transform(transform, device, training=False)
    model.eval()
    confusion, predictions, targets_all, loss_sum = None, [], [], 0.0
    with torch.no_grad():
        for waveforms, targets in loader:
            waveforms, targets = waveforms.to(device), targets.to(device)
            inputs = transform(waveforms)
            with autocast(device):
                logits = model(inputs).float()  # [B, n_classes]
            if on_batch is not None:
                on_batch(logits, targets)
            n = logits.shape[1]
            if confusion is None:
                confusion = torch.zeros(n, n, dtype=torch.long, device=device)
            loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            pred = logits.argmax(dim=1)  # [B]
            # One bincount fills the whole confusion matrix: cell (t, p) has index t * n + p.
            confusion += torch.bincount(targets * n + pred, minlength=n * n).view(n, n)
            predictions.append(pred.cpu())
            targets_all.append(targets.cpu())
    if confusion is None:
        raise KwsError("The evaluation loader gave no batches: is the validation/test split empty?")
    if labels is not None and len(labels) != confusion.shape[0]:
        raise KwsError(f"{len(labels)} labels given for a model with {confusion.shape[0]} outputs.")

    confusion = confusion.cpu()
    correct, total = confusion.diag(), confusion.sum(dim=1)
    n_total = int(total.sum())
    return dict(
        accuracy=float(correct.sum()) / n_total,
        loss=loss_sum / n_total,
        n_correct=int(correct.sum()),
        n_total=n_total,
        per_class_correct=correct.tolist(),
        per_class_total=total.tolist(),
        per_class_accuracy=[
            c / t if t else None for c, t in zip(correct.tolist(), total.tolist(), strict=True)
        ],
        confusion=confusion.tolist(),
        predictions=torch.cat(predictions).tolist(),
        targets=torch.cat(targets_all).tolist(),
        labels=list(labels) if labels is not None else None,
    )


test.__test__ = False  # a library function, not a unit test: tells pytest not to collect it


def probabilities(model: nn.Module, waveforms: torch.Tensor, transform: Transform | None = None) -> torch.Tensor:
    """Class probabilities of a batch of clips ``[B, 1, time]``: transform, model, softmax ->
    ``[B, n_classes]`` float32 on the CPU (``model`` and ``transform`` ready: in eval mode, where
    ``waveforms`` are). The one prediction path: :func:`predict`, Try it and streaming detection
    (:class:`kwscore.inference.Predictor`) all go through it."""
    with torch.inference_mode():
        inputs = transform(waveforms) if transform is not None else waveforms
        return torch.softmax(model(inputs).float(), dim=1).cpu()


def predict(
    model: nn.Module,
    waveform: torch.Tensor,
    transform: Transform | None,
    labels: Sequence[str],
    device: torch.device | str = "cpu",
) -> list[tuple[str, float]]:
    """Classify one clip. Returns ``[(label, probability), ...]`` sorted, most likely first.

    ``waveform``: ``[1, time]`` (mono, torchaudio convention) or ``[time]``, at the sample rate
    the transform expects (16 kHz for the transforms used here).
    """
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2 or waveform.shape[0] != 1:
        raise KwsError(
            f"predict() takes one mono clip [1, time], got shape {list(waveform.shape)}. "
            "Mix it down with kwscore.audio.to_mono first."
        )
    transform = _prepare_transform(transform, device, training=False)
    model.eval()
    probs = probabilities(model, waveform.unsqueeze(0).to(device), transform)[0]  # [n_classes]
    if len(labels) != len(probs):
        raise KwsError(f"{len(labels)} labels given for a model with {len(probs)} outputs.")
    order = torch.argsort(probs, descending=True).tolist()
    return [(labels[i], float(probs[i])) for i in order]


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "kws-studio-checkpoint"
CHECKPOINT_VERSION = 1
# What every checkpoint holds besides ``extra``; load_checkpoint fills the optional keys with None.
_RESERVED = ("format", "version", "kwscore_version", "model_name", "model_kwargs", "n_classes", "state_dict")
OPTIONAL_KEYS = ("labels", "feature_config", "transform_config", "epoch", "val_accuracy")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, extra: dict | None = None) -> Path:
    """Save everything needed to rebuild ``model`` to ``path``, atomically.

    The file holds only tensors and plain Python values, so :func:`load_checkpoint` can read it
    with ``torch.load(weights_only=True)`` (no arbitrary code runs when loading). Keys::

        format, version, kwscore_version
        model_name, model_kwargs, n_classes   -> build_model(model_name, n_classes, **model_kwargs)
        state_dict                            the weights (on the CPU)
        ...extra                              conventionally: labels (list of n_classes names),
                                              feature_config, transform_config (dicts),
                                              epoch (int), val_accuracy (float in [0, 1])

    ``extra`` must be JSON-able (str, int, float, bool, None, lists and dicts of them). The file
    is written to a temporary name and renamed, so a crash never leaves half a checkpoint.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise KwsError(f"extra must not contain the reserved keys {clash}; rename them.")
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as exc:
        raise KwsError(
            f"Checkpoint extras must be plain JSON values ({exc}). Convert tensors/NumPy numbers "
            "with .tolist() or float()."
        ) from exc
    if not hasattr(model, "config") or not hasattr(model, "name"):
        raise KwsError("Only models made by kwscore.models.build_model can be checkpointed.")
    n_classes = n_outputs(model)
    labels = extra.get("labels")
    if labels is not None and len(labels) != n_classes:
        raise KwsError(f"{len(labels)} labels for a model with {n_classes} outputs: they must match.")

    ckpt = dict(
        format=CHECKPOINT_FORMAT,
        version=CHECKPOINT_VERSION,
        kwscore_version=__version__,
        model_name=model.name,
        model_kwargs=dict(model.config),
        n_classes=n_classes,
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    )
    buffer = io.BytesIO()  # serialise first: torch.save hides a full disk behind a RuntimeError
    torch.save(ckpt, buffer)
    return atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``).

    Raises :class:`KwsError` for a missing file, a file that is not a checkpoint, or one that
    would need arbitrary code to load (a pickled object).
    """
    path = Path(path)
    if not path.is_file():
        raise KwsError(f"No checkpoint at {path}. Train a model first or pick another file.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # garbage bytes, truncated file, a pickled object we refuse to run...
        raise KwsError(
            f"{path.name} is not a KWS Studio checkpoint that can be loaded safely "
            f"({type(exc).__name__}). Pick a .pt file saved by KWS Studio, or train again."
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise KwsError(f"{path.name} is a PyTorch file but not a KWS Studio checkpoint. Pick another file.")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise KwsError(
            f"{path.name} was saved by a newer KWS Studio (format {ckpt['version']}); update kwscore."
        )
    missing = [k for k in _RESERVED if k not in ckpt]
    if missing:
        raise KwsError(f"{path.name} is an incomplete checkpoint (missing {missing}). Train again.")
    for key in OPTIONAL_KEYS:
        ckpt.setdefault(key, None)
    return ckpt


#: The largest model KWS Studio builds (numbers in its weights and buffers): 25× the biggest
#: recipe (M34-res, 4.1 M). Neither a run's options nor a checkpoint may ask for more.
MAX_MODEL_NUMBERS = 100_000_000


def shape_only_model(name: str, n_classes: int, kwargs: dict) -> tuple[nn.Module, int]:
    """Build a model on PyTorch's "meta" device (shapes only, no memory): ``(model, its numbers)``.

    :class:`KwsError` when the options do not make a model or it would hold more than
    :data:`MAX_MODEL_NUMBERS` numbers: check with this before building a model for real.
    """
    try:
        with torch.device("meta"):
            model = build_model(name, n_classes, **kwargs)
    except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError) as exc:
        raise KwsError(f"The model options {kwargs} do not make a {name} model ({exc}).") from exc
    numbers = sum(t.numel() for t in model.state_dict().values())
    if numbers > MAX_MODEL_NUMBERS:
        raise KwsError(
            f"A {name} model with options {kwargs} holds {numbers:,} numbers, more than the "
            f"{MAX_MODEL_NUMBERS:,} KWS Studio builds (the largest recipe holds about 4 million). It was not built."
        )
    return model, numbers


def model_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the model stored in a checkpoint dict and load its weights. Returned in eval mode.

    The model is first sized on the "meta" device (:func:`shape_only_model`) and refused unless it
    holds exactly as many numbers as the checkpoint's weights: a small file asking for a gigantic
    model is refused, not built.
    """
    name, n_classes, kwargs, weights = (ckpt.get(k) for k in ("model_name", "n_classes", "model_kwargs", "state_dict"))
    if not (isinstance(name, str) and isinstance(n_classes, int) and not isinstance(n_classes, bool)
            and 1 <= n_classes <= 100_000 and isinstance(kwargs, dict) and isinstance(weights, dict)
            and all(isinstance(v, torch.Tensor) for v in weights.values())):  # fmt: skip
        raise KwsError("The checkpoint's model description is damaged (name, classes, options or weights). Train again.")
    try:
        _, needed = shape_only_model(name, n_classes, kwargs)
    except KwsError as exc:
        raise KwsError(f"This checkpoint cannot be loaded: {exc}") from exc
    stored = sum(t.numel() for t in weights.values())
    if needed != stored:
        raise KwsError(
            f"The checkpoint's {name} model needs {needed:,} numbers but its weights hold {stored:,}: they do "
            "not fit. Train again."
        )
    model = build_model(name, n_classes, **kwargs)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise KwsError(f"The checkpoint's weights do not fit its model ({exc}). Train again.") from exc
    return model.to(device).eval()
