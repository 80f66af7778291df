"""The lab's worksheet: every Task and Question of "Keyword Spotting with PyTorch", in order, with the
answer for the current settings and the student's own runs.

The lab follows the PyTorch speech-command tutorial: torchaudio's ``SPEECHCOMMANDS``, a
``MelSpectrogram`` front end and a 2D CNN (phase 1), the M5 network on raw waveforms (phase 2),
then data augmentation against less data (phase 3). :func:`worksheet` returns the items; the
dashboard's worksheet page draws them, each linked to the page that answers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kwscore.features import FeatureConfig, empty_mel_bands, preset_name, teaching_numbers
from kwscore.runlabels import augment_text, rate_text

#: What each sample rate keeps of speech (Nyquist = half the rate).
RATE_KEEPS = {
    4000: "up to 2 kHz: vowels and voicing survive, but the fricatives “s”, “f” and the bursts of “t”, “k” "
    "are gone — too little",
    8000: "up to 4 kHz: the telephone band (300–3,400 Hz) and every vowel formant; the word stays clear, only the "
    "hiss of “s” and “f” above 4 kHz is lost — the lowest rate that keeps speech intelligible",
    11025: "up to 5.5 kHz: most of the consonants' energy",
    16000: "everything Speech Commands holds, up to 8 kHz",
}


@dataclass
class Item:
    """One Task or Question of the lab."""

    number: str  #: "1.3"
    kind: str  #: "Task" or "Question"
    text: str
    page: str  #: the page file that answers it (pages/<page>)
    where: str  #: the widget or view on that page
    answer: str | None = None  #: the live answer (Markdown), None when there is nothing to say yet
    numbers: dict[str, Any] = field(default_factory=dict)  #: the values behind the answer (tests read these)


def nearest_powers_of_two(x: float) -> tuple[int, int]:
    """The powers of two just below and just above ``x`` (``160 -> (128, 256)``)."""
    below = 1 << max(0, math.floor(math.log2(x)))
    above = below if below == x else below * 2
    return below, above


def front_end_numbers(c: FeatureConfig) -> dict[str, Any]:
    """The arithmetic of the front-end questions, for a 1-s clip."""
    n = teaching_numbers(c)
    below, above = nearest_powers_of_two(n.ten_ms_samples)
    return {
        "sample_rate": c.sample_rate,
        "ten_ms_samples": n.ten_ms_samples,
        "pow2_below": below,
        "pow2_above": above,
        "pow2_nearest": n.pow2_nearest,
        "win_length": c.win_length,
        "hop_length": c.hop_length,
        "win_hop_ratio": n.win_hop_ratio,
        "overlap_pct": n.overlap_pct,
        "n_fft": c.n_fft,
        "n_freq_bins": n.n_freq_bins,
        "hz_per_bin": n.hz_per_bin,
        "n_mels": c.n_mels,
        "frames": n.frames_per_clip,
        "empty_bands": empty_mel_bands(c),
        "preset": preset_name(c),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _best(runs: list[dict], keep) -> dict | None:
    chosen = [r for r in runs if keep(r) and r.get("test_accuracy") is not None]
    return max(chosen, key=lambda r: r["test_accuracy"]) if chosen else None


def _run_text(r: dict) -> str:
    params = f", {r['n_params']:,} parameters" if r.get("n_params") else ""
    name = r["config"].get("name") or r["run_id"].rsplit("-", 1)[-1]
    return f"{_pct(r['test_accuracy'])} ({name}{params})"


def runs_answers(runs: list[dict]) -> dict[str, Any]:
    """What the student's finished runs say. ``runs``: dicts with ``run_id``, ``config``,
    ``test_accuracy`` (None while unfinished) and ``n_params``."""
    done = [r for r in runs if r.get("test_accuracy") is not None and r.get("config")]
    cnn = _best(done, lambda r: r["config"].get("model") == "cnn")
    wave = _best(done, lambda r: r["config"].get("model") != "cnn")
    by_preset: dict[str, dict] = {}
    for r in done:
        if r["config"].get("model") == "cnn":
            try:
                key = preset_name(FeatureConfig.from_dict(r["config"].get("features") or {})) or "custom"
            except Exception:  # noqa: BLE001 - a damaged config is simply not compared
                continue
            if key not in by_preset or r["test_accuracy"] > by_preset[key]["test_accuracy"]:
                by_preset[key] = r
    by_rate: dict[int, dict] = {}
    for r in done:
        if r["config"].get("model") != "cnn":
            rate = r["config"].get("sample_rate", 8000)
            if rate not in by_rate or r["test_accuracy"] > by_rate[rate]["test_accuracy"]:
                by_rate[rate] = r
    grids: dict[str, dict[tuple[float, bool], float]] = {}  # per model: (fraction, augmented) -> best accuracy
    for r in done:
        key = (float(r["config"].get("fraction", 1.0)), augment_text(r["config"].get("augment", "none")) != "none")
        grid = grids.setdefault(str(r["config"].get("model")), {})
        grid[key] = max(grid.get(key, 0.0), r["test_accuracy"])

    def pairs(model: str) -> int:
        return sum((f, True) in grids[model] and (f, False) in grids[model] for f, _ in grids[model])

    model = max(grids, key=pairs, default=None)
    return {"cnn": cnn, "waveform": wave, "by_preset": by_preset, "by_rate": by_rate,
            "grid": grids.get(model, {}), "grid_model": model}  # fmt: skip


def _augmentation_answer(grid: dict[tuple[float, bool], float], model: str | None) -> str | None:
    fractions = sorted({f for f, _ in grid})
    pairs = [f for f in fractions if (f, True) in grid and (f, False) in grid]
    if not pairs:
        return None
    lines = [f"{model}, {100 * f:g} % of the data: {_pct(grid[(f, False)])} without, {_pct(grid[(f, True)])} with augmentation"
             for f in pairs]  # fmt: skip
    helped = sum(grid[(f, True)] > grid[(f, False)] for f in pairs)
    verdict = f"Augmentation helped at {helped} of {len(pairs)} training fractions."
    small = [f for f in pairs if f < 1.0]
    for f in small:
        more = [g for g in fractions if g > f and (g, False) in grid and grid[(f, True)] >= grid[(g, False)]]
        if more:
            verdict += (f" With augmentation, {100 * f:g} % of the data did as well as {100 * max(more):g} % without: "
                        "it made up for the missing data there.")  # fmt: skip
            break
    return "; ".join(lines) + ". " + verdict


def worksheet(config: FeatureConfig, runs: list[dict] | None = None, dataset: dict | None = None) -> list[Item]:
    """Every Task and Question of the lab, in order, answered for ``config`` and the finished ``runs``.

    ``dataset``: ``{"clips", "words", "speakers", "sample_rate", "samples"}`` of the dataset in use.
    """
    f = front_end_numbers(config)
    ta = front_end_numbers(FeatureConfig(n_fft=400, win_length=400, hop_length=200, n_mels=128, f_min=0.0, f_max=None))
    r = runs_answers(runs or [])
    d = dataset or {}
    sr = f["sample_rate"]
    items = [
        Item("1.1", "Task", "Load the Speech Commands dataset with torchaudio's `SPEECHCOMMANDS` (training, "
             "validation and testing subsets) and look at one sample: its waveform, sample rate and label.",
             "explore.py", "Explore: the clip picker, the waveform and its tensor shape",
             f"{d['clips']:,} clips of {d['words']} words by {d['speakers']} speakers; one sample is a tensor "
             f"`[1, {d['samples']}]` at {d['sample_rate']:,} Hz: {d['samples'] / d['sample_rate']:.3g} s."
             if d else None, dict(d)),
        Item("1.2", "Task", "Turn the waveform into a Mel spectrogram with `torchaudio.transforms.MelSpectrogram`: "
             "first just use the default parameters.", "spectrogram.py",
             "Spectrogram lab: the “torchaudio” preset button",
             f"`MelSpectrogram()` = n_fft {ta['n_fft']}, win_length {ta['win_length']}, hop_length "
             f"{ta['hop_length']}, n_mels {ta['n_mels']}: a 1-s clip becomes **{ta['n_mels']} × {ta['frames']}**. "
             f"With only {ta['n_freq_bins']} FFT bins, {ta['empty_bands']} of the 128 Mel bands stay empty "
             "(torchaudio warns about it).", ta),
        Item("1.3", "Question", f"How many samples are 10 ms at {sr / 1000:g} kHz, and which powers of two are "
             "closest (the FFT is fastest there)?", "spectrogram.py", "Spectrogram lab: the numbers table",
             f"0.010 × {sr} = **{f['ten_ms_samples']:g} samples**; the nearest powers of two are "
             f"**{f['pow2_below']}** and **{f['pow2_above']}** ({f['pow2_nearest']} is closer).", f),
        Item("1.4", "Question", "What is the ratio between the window length and the hop length, and how much do "
             "neighbouring windows overlap?", "spectrogram.py", "Spectrogram lab: win_length and hop_length sliders",
             f"{f['win_length']} / {f['hop_length']} = **{f['win_hop_ratio']:.3g}**: each sample lies in about "
             f"{f['win_hop_ratio']:.3g} windows, an overlap of **{f['overlap_pct']:.1f} %**.", f),
        Item("1.5", "Question", "How many frequency bins does the FFT give, how many Mel bands do you keep, and how "
             "many frames does a 1-s clip give?", "spectrogram.py", "Spectrogram lab: Linear STFT vs Mel",
             f"n_fft {f['n_fft']} → {f['n_fft']} // 2 + 1 = **{f['n_freq_bins']} bins** "
             f"({f['hz_per_bin']:.4g} Hz apart), merged into **{f['n_mels']} Mel bands**"
             + (f" ({f['empty_bands']} empty)" if f["empty_bands"] else "")
             + f"; 1 + {sr} // {f['hop_length']} = **{f['frames']} frames**: the CNN sees "
             f"{f['n_mels']} × {f['frames']}.", f),
        Item("1.6", "Task", "Choose your own parameters and compare them with the defaults.", "spectrogram.py",
             "Spectrogram lab: Look closer → Default vs yours (choose what “default” means)",
             _default_vs_custom(f, r["by_preset"]), {k: v["test_accuracy"] for k, v in r["by_preset"].items()}),
        Item("1.7", "Task", "Train the 2D CNN on the Mel spectrograms (generic train/test functions, Adam); plot the "
             "loss and the accuracy.", "train.py", "Train: “CNN · Mel spectrogram”, then Launch",
             f"Your best CNN: {_run_text(r['cnn'])}." if r["cnn"] else None),
        Item("2.1", "Question", "M5 reads the raw waveform. To which sample rate can you reduce the audio and still "
             "keep the speech?", "spectrogram.py", "Spectrogram lab: Look closer → Sample rate: what M5 hears",
             "**8 kHz**: it keeps " + RATE_KEEPS[8000] + ". The tuned M5 recipe listens at 16 kHz to keep the "
             "4–8 kHz band of “s”, “t”, “f”; 4 kHz keeps " + RATE_KEEPS[4000] + "."
             + ("" if not r["by_rate"] else " Your M5 runs: " + ", ".join(
                 f"{rate_text(k)} {_run_text(v)}" for k, v in sorted(r["by_rate"].items())) + "."),
             {"rate": 8000, **{str(k): v["test_accuracy"] for k, v in r["by_rate"].items()}}),
        Item("2.2", "Task", "Train M5 on the resampled waveforms, as in the PyTorch tutorial.", "train.py",
             "Train: “M5 · PyTorch tutorial (8 kHz)”, then Launch",
             f"Your best raw-waveform model: {_run_text(r['waveform'])}." if r["waveform"] else None),
        Item("2.3", "Question", "2D or 1D: which works better here, the CNN on Mel spectrograms or M5 on the raw "
             "waveform, and at what cost?", "runs.py", "Runs: tick a CNN and an M5 run to compare their curves",
             _two_d_vs_one_d(r["cnn"], r["waveform"])),
        Item("3.1", "Task", "Add data augmentation (time shift, noise, pitch, speed, SpecAugment…): listen to what "
             "each effect does.", "augmentation.py", "Augmentation lab: effects, Draw again", None),
        Item("3.2", "Question", "Can data augmentation make up for less training data? Train on a share of the data "
             "with and without augmentation.", "runs.py",
             "Runs: Experiment — can augmentation make up for less data?", _augmentation_answer(r["grid"], r["grid_model"]),
             {f"{k[0]:g}/{'on' if k[1] else 'off'}": v for k, v in r["grid"].items()}),
        Item("3.3", "Task", "Annotate your results: name each run and write down what you changed and what happened.",
             "runs.py", "Runs: One run in detail → Name and notes",
             None if not runs else f"{sum(bool((x.get('config') or {}).get('name')) for x in runs)} of your "
             f"{len(runs)} runs have a name."),
    ]  # fmt: skip
    return items


def _default_vs_custom(f: dict, by_preset: dict[str, dict]) -> str:
    now = {"torchaudio": "torchaudio's defaults", "classic": "the classic 40-band front end"}.get(f["preset"] or "",
                                                                                               "your own settings")  # fmt: skip
    text = f"Now: {now}, {f['n_mels']} × {f['frames']}."
    if by_preset:
        text += " Your CNN runs: " + ", ".join(
            f"{ {'torchaudio': 'torchaudio defaults', 'classic': 'classic 40-band'}.get(k, k)} {_run_text(v)}"
            for k, v in sorted(by_preset.items())
        ) + "."
    else:
        text += " Train the CNN once with each (the front end panel on the Train page) to compare accuracies."
    return text


def _two_d_vs_one_d(cnn: dict | None, wave: dict | None) -> str | None:
    if not (cnn and wave):
        return None
    better = "the 2D CNN" if cnn["test_accuracy"] >= wave["test_accuracy"] else f"the raw-waveform {wave['config']['model']}"
    return f"CNN {_run_text(cnn)} vs {wave['config']['model']} {_run_text(wave)}: **{better}** is more accurate here."
