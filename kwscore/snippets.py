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
{extra}
CLIP = {path!r}
samples, sample_rate = sf.read(CLIP, dtype="float32")  # 16-bit WAV -> floats in [-1, 1]
if samples.ndim == 2:  # stereo -> mono
    samples = samples.mean(axis=1)
waveform = torch.from_numpy(samples).reshape(1, -1)  # [1, time]
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
        _LOAD.format(path=str(clip_path), extra="import torchaudio.transforms as T\n")
        + "\n"
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
        _LOAD.format(path=str(clip_path), extra="")
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
    from kwscore.recipes import RunConfig

    rc = RunConfig.from_dict(config)
    settings = rc.to_dict()
    if rc.representation == "mel":  # the front end's rate is the one that counts (sample_rate: waveform models)
        settings.pop("sample_rate", None)
    kwargs = dict(rc.model_kwargs)
    if rc.representation == "waveform":
        kwargs.setdefault("sample_rate", rc.model_rate)
    front = (
        "from kwscore.features import FeatureConfig, MelFrontEnd\n"
        f"front_end = MelFrontEnd(FeatureConfig.from_dict({_literal(rc.feature_config.to_dict())}))\n"
        f"x = front_end(torch.zeros(1, 1, 16000))  # one second -> {input_shape[1:]}\n"
        if rc.representation == "mel"
        else "x = torch.zeros(1, 1, 16000)  # one second at 16 kHz: the embedding makes its own log-Mel frames\n"
        if rc.representation == "embedding"
        else f"resample = torchaudio.transforms.Resample(16000, {rc.model_rate})\n"
        f"x = resample(torch.zeros(1, 1, 16000))  # one second at {rc.model_rate} Hz -> {input_shape[1:]}\n"
    )
    return f'''import torch
import torchaudio

from kwscore.models import build_model, count_parameters
from kwscore.recipes import RunConfig
from kwscore.runner import run_training

config = RunConfig.from_dict({_config_literal(settings)})

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



def _stream_config_code(cfg: dict) -> str:
    """``StreamConfig(...)`` with the page's detector settings (seconds, probabilities, dB)."""
    keys = ("hop", "smooth", "threshold", "refractory", "gate_db")
    return "cfg = StreamConfig(" + ", ".join(f"{k}={float(cfg[k])!r}" for k in keys) + ")"


def try_it_code(run_dir: str | os.PathLike, audio_name: str, kind: str, threshold: float,
                stream: dict | None = None, long: bool = False) -> str:  # fmt: skip
    """Try it: load the run's model and classify the recording on screen (``kind="clip"``: one word,
    its loudest second) or scan it with the streaming detector (``kind="stream"``, ``stream``: the
    :class:`~kwscore.streaming.StreamConfig` as a dict; ``long``: read block by block, as the page does
    over a minute)."""
    load = f'''model = Predictor.from_run({str(run_dir)!r})  # best.pt with its labels and its front end
AUDIO = {audio_name!r}  # the recording on screen: the file you uploaded, or the download above
'''
    decode = "sound = read_audio(Path(AUDIO).read_bytes(), AUDIO)  # decode, check -> mono 16 kHz [1, time]\n"
    if kind == "clip":
        return (
            "from pathlib import Path\n\nimport torch\n\nfrom kwscore.inference import Predictor, loudest_second, read_audio\n\n"
            + load
            + decode
            + f'''clip, start = loudest_second(sound.waveform)  # the second the model hears (zero-padded if shorter)
prediction = model.predict(clip, threshold={float(threshold)!r})

# What predict() does, in plain PyTorch: the front end, the network, a softmax.
with torch.inference_mode():
    probs = torch.softmax(model.model(model.transform(clip.unsqueeze(0))), dim=1)[0]  # [1, 1, 16000] in
assert torch.allclose(probs, prediction.probs, atol=1e-5)

for label, p in prediction.top:
    print(f"{{label:>12}} {{100 * p:5.1f}} %")
print(f"heard {{prediction.word}} ({{100 * prediction.probability:.0f}} %), "
      f"{{'confident' if prediction.confident else 'not confident'}} at {{100 * prediction.threshold:.0f}} %")
'''
        )
    if long:
        imports = ("from kwscore.inference import Predictor\nfrom kwscore.longaudio import detect_recording, open_recording\n"
                   "from kwscore.streaming import StreamConfig\n\n")  # fmt: skip
        scan = """rec = open_recording(AUDIO)  # any length: read 10 s at a time, never all in memory
result = detect_recording(rec, model, cfg)
duration = rec.duration
"""
    else:
        imports = ("from pathlib import Path\n\nfrom kwscore.inference import Predictor, read_audio\n"
                   "from kwscore.streaming import StreamConfig\n\n")  # fmt: skip
        scan = decode + """result = model.detect(sound.waveform, cfg)  # 1-s windows every hop, classified; smoothed, gated, picked
duration = sound.duration
"""
    return (
        imports
        + load
        + _stream_config_code(stream or {})
        + "\n"
        + scan
        + '''print(f"{len(result.detections)} words detected in {duration:.1f} s ({len(result.times)} windows)")
for d in result.detections:
    print(f"{d.word:>8} {d.start:6.2f}-{d.end:.2f} s  score {d.score:.3f}")
# result.smoothed [windows, classes]: the timeline's curves; result.active: the windows the gate let through.
'''
    )


def live_code(run_dir: str | os.PathLike, stream: dict, data_root: str | os.PathLike | None) -> str:
    """Live: the streaming detector's live loop with the page's settings. A test recording of the
    run's held-out clips stands in for the microphone (fed 20 ms at a time, as the browser sends it)."""
    return f'''from kwscore.inference import Predictor
from kwscore.streaming import LiveDetector, StreamConfig, compose_from_dataset

model = Predictor.from_run({str(run_dir)!r})
{_stream_config_code(stream)}
detector = LiveDetector(model.probabilities, model.labels, cfg)  # a 1-s window every {1000 * float(stream["hop"]):.0f} ms

# The page feeds it the browser's microphone (WebRTC, resampled to 16 kHz). Here 20 s of the test
# split's words in noise stand in for the microphone, fed the same way, 20 ms at a time:
DATA = {str(data_root) if data_root else None!r}  # the run's dataset
microphone = compose_from_dataset(DATA, model.labels, 20.0, seed=0).waveform[0]
for i in range(0, len(microphone), 320):
    for d in detector.feed(microphone[i : i + 320]):
        print(f"at {{detector.now:5.2f}} s heard {{d.word}} ({{d.start:.2f}}-{{d.end:.2f}} s, {{d.score:.2f}})")
print(f"{{len(detector.detections)}} words detected in {{detector.now:.1f}} s")
# With a real microphone (pip install sounddevice):
#   import sounddevice
#   with sounddevice.InputStream(samplerate=16000, channels=1, blocksize=320) as mic:
#       while True:
#           block, _ = mic.read(320)
#           for d in detector.feed(block[:, 0]):
#               print("heard", d.word)
'''


def record_code(root: str | os.PathLike, take_path: str | os.PathLike | None, word: str, user_name: str,
                parent_run: str | os.PathLike | None, runs_root: str | os.PathLike) -> str:  # fmt: skip
    """Your own words: a take trimmed and centred in one second (as saved), the takes as a Speech
    Commands dataset, and the fine-tuning run made from them."""
    take = (
        f'''# One take: trimmed of its silence and centred in one second, as "Keep this take" saves it.
sound = read_audio(Path({str(take_path)!r}).read_bytes(), "the recording", max_seconds=10.0)  # -> mono 16 kHz
clip = prepare_take(sound.waveform, 16000)  # [1, 16000]
print(f"take {{sound.duration:.2f}} s -> {{clip.shape[-1] / 16000:g}} s")
KEEP = False  # True saves it as the next take of {word!r} (never overwrites one)
if KEEP:
    print(save_take(ROOT, {word!r}, {user_name!r}, sound.waveform, 16000).path)

'''
        if take_path
        else ""
    )
    tune = (
        f'''
# Fine-tuning: the parent's model, words and recipe, its best weights to start from, your takes mixed in.
config = finetune_config({str(parent_run)!r}, ROOT, {str(runs_root)!r})
print("fine-tune:", config.epochs, "epochs at lr", config.lr, "from", config.init, "mixing in", config.mix)
TRAIN = False  # True trains here (the page's button queues exactly this run)
if TRAIN:
    print(run_training(config, "runs/my-finetune").state)
'''
        if parent_run
        else ""
    )
    return f'''from collections import Counter
from pathlib import Path

from kwscore.data.dataset import SpeechCommands
from kwscore.inference import read_audio
from kwscore.recipes import finetune_config
from kwscore.runner import run_training
from kwscore.userdata import list_takes, prepare_take, save_take, split_of

ROOT = {str(root)!r}  # My recordings: ROOT/<word>/<speaker>_nohash_<n>.wav + validation/testing lists

{take}# The takes are a dataset in the Speech Commands layout: takes 3, 8, 13… of a word validation, 4, 9, 14… testing.
takes = list_takes(ROOT)
print(len(takes), "takes:", dict(sorted(Counter((t.word, split_of(t.number)) for t in takes).items())))
for subset in ("training", "validation", "testing") if takes else ():
    clips = SpeechCommands(ROOT, subset=subset, commands="all")  # what Train reads
    print(subset, len(clips), "clips")
{tune}'''
