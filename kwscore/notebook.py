"""A training run as a Jupyter notebook: the lab's steps, in the lab's order, with the run's settings.

    kwscore notebook RUN -o run.ipynb          # or the download button on the Runs page

The notebook does with torchaudio and kwscore what the PyTorch speech-command tutorial does, one
markdown-explained step per cell: load the dataset, look at a sample, the transform,
``label_to_index`` / ``collate_fn``, the model, the generic ``train`` / ``test`` loop, the loss plot
and the confusion matrix. It uses the tutorial's loop (a ``DataLoader`` over decoded clips), so it is
slower than the dashboard's runner (which decodes every clip once into one tensor); the settings —
model, front end, augmentation, optimiser, schedule, training fraction, seed — are the run's.
"""

from __future__ import annotations

import json
import os
import pprint
from pathlib import Path
from typing import Any

from kwscore.errors import KwsError
from kwscore.runlabels import settings


def _code(text: str):
    import nbformat

    return nbformat.v4.new_code_cell(text.strip("\n"))


def _md(text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def _lit(value: Any) -> str:
    return pprint.pformat(value, width=100, sort_dicts=False)


def build_notebook(config: dict, *, title: str = "", epochs: int | None = None, max_train_clips: int | None = None):
    """The notebook (an ``nbformat`` node) that reproduces a run config step by step.

    ``epochs`` overrides the run's epochs (a quick try); ``max_train_clips`` caps the training clips
    (tests, slow machines). Raises :class:`KwsError` for a config that is not a valid run.
    """
    import nbformat

    from kwscore.recipes import RunConfig
    from kwscore.snippets import mel_transform_code

    rc = RunConfig.from_dict(config)
    problems = rc.problems(check_data=False)
    if problems:
        raise KwsError("This run's settings cannot be turned into a notebook: " + " ".join(problems))
    words = settings(rc.to_dict())
    n_epochs = int(epochs or rc.epochs)
    title = title or rc.name or f"{rc.model} @ {words['rate']}"
    fc = rc.feature_config
    table = "\n".join(f"| {k} | {v} |" for k, v in words.items())
    cells = [
        _md(f"""
# Keyword spotting with PyTorch — {title}

This notebook reproduces a KWS Studio run step by step, in the lab's order. Run it top to bottom
(Kernel → Restart & Run All). {rc.notes or ''}

| setting | value |
|---|---|
{table}
"""),
        _md("## 0. Settings\nThe run's whole configuration, as stored in its `config.json`."),
        _code(f"""
import torch
import torchaudio
import torchaudio.transforms as T
from torch import nn

from kwscore.recipes import RunConfig

config = RunConfig.from_dict({_lit(rc.to_dict())})
EPOCHS = {n_epochs}  # the run trained for {rc.epochs}
torch.manual_seed(config.seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(config.model, "on", config.data, "for", EPOCHS, "epochs on", device)
"""),
        _md("""
## 1. The dataset
`SPEECHCOMMANDS` in torchaudio's layout: one folder per word, `validation_list.txt` and
`testing_list.txt` name the clips of the other two splits (split by speaker). kwscore's
`SpeechCommands` walks the same folders (it decodes with soundfile, which needs no FFmpeg).
"""),
        _code(f"""
from kwscore.data.dataset import SpeechCommands
from kwscore.labels import task_dataset, with_non_keywords
from kwscore.training_data import select_fraction

roots = config.data_roots  # the dataset, plus any mixed-in ones
train_set = SpeechCommands(roots, subset="training", commands=config.commands)
keep = select_fraction(train_set, config.fraction, config.fraction_by, config.seed)  # the run's training fraction
MAX_TRAIN_CLIPS = {max_train_clips!r}
train_set = train_set.select(keep[:MAX_TRAIN_CLIPS] if MAX_TRAIN_CLIPS else keep)
if config.unknown:  # + "_unknown_" (other words) and "_silence_" (noise) classes, as the run had
    train_set = with_non_keywords(train_set, config.seed)
labels = train_set.labels
val_set = task_dataset(roots, "validation", labels, config.seed)
test_set = task_dataset(roots, "testing", labels, config.seed)
print(len(train_set), "training,", len(val_set), "validation,", len(test_set), "test clips of", len(labels), "words:", labels)
"""),
        _md("## 2. Look at a sample\nEach item is `(waveform, sample_rate, label, speaker_id, utterance_number)`."),
        _code("""
from IPython.display import Audio, display

waveform, sample_rate, label, speaker_id, utterance_number = train_set[0]
print("shape", list(waveform.shape), "sample rate", sample_rate, "label", label, "speaker", speaker_id)
display(Audio(waveform.numpy(), rate=sample_rate))
"""),
        _md(
            "## 3. The transform\n"
            + (
                "The Mel spectrogram with this run's settings: torchaudio's `MelSpectrogram` and `AmplitudeToDB`, "
                "then each clip normalised to zero mean and unit variance. kwscore's `MelFrontEnd` is exactly that, "
                "in one module (and the one the model is trained with below)."
                if fc is not None
                else f"M5 reads the raw waveform, resampled to {words['rate']} ({rc.model_rate} samples per second)."
            )
        ),
        _code(
            (
                mel_transform_code(fc)
                + "\nspec = to_db(mel(waveform))\nprint(\"Mel spectrogram\", list(spec.shape), \"(n_mels × frames)\")\n\n"
                if fc is not None
                else ""
            )
            + """
from kwscore.features import build_transform, transform_config

transform = build_transform(transform_config(config.model_rate, config.feature_config))  # [B, 1, 16000] -> model input
print("model input for one clip:", list(transform(waveform.unsqueeze(0)).shape))
"""
        ),
        _md("""
## 4. label_to_index, index_to_label and the collate function
Words become class indices; a batch is the list of clips padded to the same length, stacked.
"""),
        _code("""
from torch.utils.data import DataLoader

from kwscore.data.dataset import index_to_label, label_to_index, make_collate

print(label_to_index(labels[0], labels), "->", index_to_label(label_to_index(labels[0], labels), labels))
collate_fn = make_collate(labels)
train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, collate_fn=collate_fn)
val_loader = DataLoader(val_set, batch_size=256, collate_fn=collate_fn)
test_loader = DataLoader(test_set, batch_size=256, collate_fn=collate_fn)
waveforms, targets = next(iter(train_loader))
print("one batch:", list(waveforms.shape), list(targets.shape))
"""),
        _md("## 5. The model"),
        _code(f"""
from kwscore.models import build_model, count_parameters

kwargs = dict(config.model_kwargs)
{"kwargs.setdefault('sample_rate', config.model_rate)" if rc.representation == "waveform" else ""}
model = build_model(config.model, len(labels), **kwargs).to(device)
print(model)
print(f"{{count_parameters(model):,}} parameters")
"""),
        _md("""
## 6. Train and test
Adam, the run's learning-rate schedule (stepped every batch), cross-entropy; the run's augmentation
on the waveforms (and SpecAugment on the spectrograms); the generic `train` / `test` functions.
"""),
        _code("""
from kwscore.augment import BatchAugment, SpecAugment, load_noises
from kwscore.training import make_optimizer, make_scheduler, test, train

recipe = config.augment_config()
noises = load_noises(config.data) if any(s.effect == "add_background_noise" for s in recipe.steps) else []
augment = BatchAugment(recipe, 16000, noises, config.seed) if recipe.steps else None  # on the 16 kHz batches
train_transform = transform
if recipe.spec_augment is not None and config.representation == "mel":
    train_transform = nn.Sequential(transform, SpecAugment(recipe.spec_augment))
criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
scheduler = make_scheduler(optimizer, config.scheduler, epochs=EPOCHS, steps_per_epoch=len(train_loader),
                           step_size=config.step_size, gamma=config.gamma)
losses, accuracies, step = [], [], 0
for epoch in range(1, EPOCHS + 1):
    loss = train(model, train_loader, train_transform, criterion, optimizer, device, augment=augment,
                 scheduler=scheduler, first_step=step, on_iteration=lambda s, l, lr: losses.append(l))
    step += len(train_loader)
    val = test(model, val_loader, transform, device, labels)
    accuracies.append(val["accuracy"])
    print(f"epoch {epoch}: train loss {loss:.3f}, validation accuracy {val['accuracy']:.1%}")
"""),
        _md("## 7. The loss curve"),
        _code("""
import plotly.express as px

px.line(x=list(range(len(losses))), y=losses, labels={"x": "step", "y": "training loss"},
        title="Training loss per batch").show()
"""),
        _md("## 8. Test accuracy and the confusion matrix\nRows: the true word; columns: what the model heard."),
        _code("""
result = test(model, test_loader, transform, device, labels)
print(f"test accuracy {result['accuracy']:.1%} ({result['n_correct']}/{result['n_total']})")
px.imshow(result["confusion"], x=labels, y=labels, text_auto=True, color_continuous_scale="Blues",
          labels={"x": "predicted", "y": "true"}, title="Confusion matrix (test split)").show()
"""),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def run_notebook(run_dir: str | os.PathLike, **kwargs):
    """:func:`build_notebook` for the run in ``run_dir`` (its config.json; its name as the title)."""
    from kwscore.runfiles import RunFiles

    files = RunFiles(Path(run_dir))
    config = files.read_config()
    title = str(config.get("name") or files.run_id)
    return build_notebook(config, title=title, **kwargs)


def notebook_json(nb) -> str:
    """The notebook as the text of an ``.ipynb`` file."""
    import nbformat

    return nbformat.writes(nb)


def write_notebook(nb, path: str | os.PathLike) -> Path:
    """Write ``nb`` to ``path`` (atomically)."""
    from kwscore.runfiles import write_json

    return write_json(Path(path), json.loads(notebook_json(nb)))
