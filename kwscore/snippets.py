"""The PyTorch code behind each dashboard page, rendered from the page's current settings.

Every function returns a complete, copyable Python script (a string) that reproduces what the page
shows with torchaudio and kwscore, and prints the numbers the page shows (a spectrogram's shape, a
parameter count, an accuracy), so a student can paste it into a notebook and compare. The tests run
each snippet in a fresh interpreter and check its output against the page.
"""

from __future__ import annotations

import os
import pprint
from typing import Any

from kwscore.features import FeatureConfig, preset_name

_LOAD = '''import soundfile as sf
import torch
import torchaudio

samples, sample_rate = sf.read({path!r}, dtype="float32")  # 16-bit WAV -> floats in [-1, 1]
waveform = torch.from_numpy(samples).reshape(1, -1) if samples.ndim == 1 else torch.from_numpy(samples.mean(axis=1)).reshape(1, -1)
if sample_rate != 16000:  # the dashboard works at 16 kHz
    waveform = torchaudio.functional.resample(waveform, sample_rate, 16000)
'''


def _literal(value: Any) -> str:
    """A Python literal for a JSON-like value, wrapped to fit a page."""
    return pprint.pformat(value, width=100, sort_dicts=False)


def mel_transform_code(c: FeatureConfig, indent: str = "") -> str:
    """``T.MelSpectrogram(...)`` and ``T.AmplitudeToDB(...)`` with exactly ``c``'s parameters."""
    window = {"hann": "torch.hann_window", "hamming": "torch.hamming_window"}[c.window]
    note = "  # = T.MelSpectrogram(): torchaudio's defaults" if preset_name(c) == "torchaudio" else ""
    lines = [
        f"mel = T.MelSpectrogram({note}",
        f"    sample_rate={c.sample_rate},",
        f"    n_fft={c.n_fft},",
        f"    win_length={c.win_length},",
        f"    hop_length={c.hop_length},",
        f"    f_min={float(c.f_min)!r},",
        f"    f_max={c.f_max_hz!r},",
        f"    n_mels={c.n_mels},",
        f"    window_fn={window},",
        f"    power={float(c.power)!r},",
        ")",
        f"to_db = T.AmplitudeToDB(stype={'power' if c.power == 2.0 else 'magnitude'!r}, top_db={c.top_db!r})",
    ]
    return "\n".join(indent + line for line in lines)


def spectrogram_code(c: FeatureConfig, clip_path: str | os.PathLike, n_samples: int | None = None) -> str:
    """The Spectrogram lab: the clip -> the dB Mel spectrogram on screen (before normalisation)."""
    return (
        _LOAD.format(path=str(clip_path))
        + "import torchaudio.transforms as T\n\n"
        + mel_transform_code(c)
        + '''
with torch.inference_mode():
    spec = to_db(mel(waveform))[0]  # [n_mels, frames]: the picture on the page (dB, not yet normalised)
print("waveform", list(waveform.shape), "-> spectrogram", list(spec.shape))
print(f"dB range {spec.min().item():.1f} .. {spec.max().item():.1f}")

# What the CNN gets: the same picture, normalised per clip (zero mean, unit variance).
model_input = (spec - spec.mean()) / (spec.std() + 1e-5)
# kwscore does all of the above in one call:
#   from kwscore.features import FeatureConfig, mel_db
#   mel_db(waveform, FeatureConfig(**settings))
'''
    )


def explore_code(root: str | os.PathLike, clip_id: str, subset: str) -> str:
    """Explore: the dataset as the lab loads it, and one sample."""
    return f'''from kwscore.data.dataset import SpeechCommands

# torchaudio.datasets.SPEECHCOMMANDS walks the same folders and split lists; kwscore's subclass
# decodes with soundfile (torchaudio.load needs FFmpeg since torchaudio 2.9).
dataset = SpeechCommands({str(root)!r}, subset={subset!r}, commands="all")
index = next(i for i in range(len(dataset)) if dataset.clip_id(i) == {clip_id!r})
waveform, sample_rate, label, speaker_id, utterance_number = dataset[index]
print(f"{{len(dataset)}} clips in the {subset} split")
print("shape", list(waveform.shape), "sample rate", sample_rate, "label", label,
      "speaker", speaker_id, "take", utterance_number)
print(f"duration {{waveform.shape[-1] / sample_rate:.3f}} s")
'''


def augmentation_code(recipe: dict, clip_path: str | os.PathLike, root: str | os.PathLike, seed: int,
                      honour_p: bool, features: FeatureConfig, order: list[str]) -> str:
    """The Augmentation lab: the recipe, applied to the clip as the preview does (``order``: the lab's
    effect order, which numbers each effect's seed)."""
    order = list(order)
    return (
        _LOAD.format(path=str(clip_path))
        + f'''from dataclasses import replace

from kwscore.audio import fix_length
from kwscore.augment import AugmentConfig, load_noises, spec_augment
from kwscore.features import FeatureConfig, mel_db

recipe = AugmentConfig.from_dict({_literal(recipe)})
noises = load_noises({str(root)!r})  # the dataset's _background_noise_ recordings
waveform = fix_length(waveform, 16000)  # as in a training batch: one second

# The lab's preview: each effect draws from its own seed (draw #{seed}), so switching one on does not
# re-draw the others{"" if honour_p else "; p is set to 1 so that every effect that is on is heard"}.
ORDER = {order!r}
augmented = waveform
for step in recipe.steps:
    preview = {"step" if honour_p else "replace(step, p=1.0)"}
    augmented, records = AugmentConfig(steps=(preview,)).apply(augmented, seed=({seed}, ORDER.index(step.effect)), noises=noises)
    print(step.effect, records[0])

features = FeatureConfig.from_dict({_literal(features.to_dict())})
spec = mel_db(augmented, features)
if recipe.spec_augment is not None:
    spec, masks = spec_augment(spec, recipe.spec_augment, seed=({seed}, len(ORDER)))
    print("SpecAugment", masks)
rms = [20 * torch.log10(w.double().pow(2).mean().sqrt().clamp_min(1e-9)).item() for w in (waveform, augmented)]
print(f"RMS {{rms[0]:.1f}} -> {{rms[1]:.1f}} dBFS, spectrogram {{list(spec.shape)}}")
# In training the same recipe runs on every batch: RunConfig(augment=recipe.to_dict()).
'''
    )


def _config_literal(config: dict) -> str:
    keep = {k: v for k, v in config.items() if v not in (None, "", [], {}) or k in ("features",)}
    return _literal(keep)


def train_code(config: dict, n_classes: int, input_shape: list[int]) -> str:
    """The Train page: the model definition, its summary, and the training call with these settings."""
    from kwscore.runner import RunConfig

    rc = RunConfig.from_dict(config)
    kwargs = dict(rc.model_kwargs)
    if rc.representation == "waveform":
        kwargs.setdefault("sample_rate", rc.model_rate)
    front = (
        "from kwscore.features import FeatureConfig, MelFrontEnd\n"
        f"front_end = MelFrontEnd(FeatureConfig.from_dict({_literal(rc.feature_config.to_dict())}))\n"
        f"x = front_end(torch.zeros(1, 1, 16000))  # one second -> {input_shape[1:]}\n"
        if rc.representation == "mel"
        else f"resample = torchaudio.transforms.Resample(16000, {rc.model_rate})\n"
        f"x = resample(torch.zeros(1, 1, 16000))  # one second at {rc.model_rate} Hz -> {input_shape[1:]}\n"
    )
    return f'''import torch
import torchaudio

from kwscore.models import build_model, count_parameters
from kwscore.runner import RunConfig, run_training

config = RunConfig.from_dict({_config_literal(rc.to_dict())})

# The model with these settings ({n_classes} words)
model = build_model({rc.model!r}, {n_classes}, **{_literal(kwargs)})
print(model)
print(f"{{count_parameters(model):,}} parameters")

# What goes in: the front end of this run
{front}print("input", list(x.shape), "-> output", list(model(x).shape))

# The training call (the Train page's Launch button queues exactly this, in its own process).
TRAIN = False  # set to True to train here: {rc.epochs} epochs
if TRAIN:
    result = run_training(config, "runs/my-run")
    print(result.state, result.report["accuracy"])
'''


def runs_code(run_dir: str | os.PathLike, config: dict) -> str:
    """The Runs page: a finished run's test accuracy and confusion matrix, recomputed."""
    data = [config.get("data"), *(config.get("mix") or [])]
    return f'''from kwscore.evaluation import evaluate, load_run_model
from kwscore.labels import task_dataset

model, transform, labels, config = load_run_model({str(run_dir)!r})  # best.pt + its front end
# the test split's keywords (+ _unknown_ / _silence_ clips when the model has those classes)
test_set = task_dataset({_literal([d for d in data if d])}, "testing", labels, {int(config.get("seed") or 0)})
report = evaluate(model, test_set, transform, labels)
print(f"test accuracy {{report['accuracy']:.4f}} ({{report['n_correct']}}/{{report['n_total']}})")
print("confusion (rows: true word, columns: predicted)", labels)
for label, row in zip(labels, report["confusion"]):
    print(f"{{label:>8}}", row)
# Or from the shell: kwscore eval {os.path.basename(str(run_dir))}; kwscore notebook {os.path.basename(str(run_dir))} -o run.ipynb
'''


def pipeline_code(root: str | os.PathLike, c: FeatureConfig) -> str:
    """Home: the whole path in a few lines — a clip, its Mel spectrogram, the CNN's scores."""
    return f'''import torch
import torchaudio.transforms as T

from kwscore.data.dataset import SpeechCommands
from kwscore.models import build_model

dataset = SpeechCommands({str(root)!r}, subset="training")  # the 8 commands
waveform, sample_rate, label, speaker_id, utterance_number = dataset[0]

{mel_transform_code(c)}
spec = to_db(mel(waveform))  # [1, n_mels, frames]
model = build_model("cnn", n_classes=len(dataset.labels))
scores = model(spec.unsqueeze(0))  # [1, 1, n_mels, frames] -> [1, {{len(dataset.labels)}}] (untrained)
print(label, list(waveform.shape), "->", list(spec.shape), "->", list(scores.shape))
'''


def worksheet_code(c: FeatureConfig) -> str:
    """The worksheet: the arithmetic of the front-end questions."""
    return f'''from kwscore.features import FeatureConfig, teaching_numbers

n = teaching_numbers(FeatureConfig.from_dict({_literal(c.to_dict())}))
print("10 ms =", n.ten_ms_samples, "samples; powers of two around it:", n.pow2_below, n.pow2_above)
print("window / hop =", n.win_hop_ratio, "; frames per 1-s clip:", n.frames_per_clip)
print("FFT bins:", n.n_freq_bins, "; Mel bands:", n.input_shape[0], "; empty bands:", n.empty_mel_bands)
'''

