"""Augmentation lab: switch effects on, draw random parameters, hear and see what they do.

The recipe built here is carried to the Train page as ``st.session_state["augment_config"]``.
"""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import clips, code_view, datasets, feature_editor, plots, ui
from kwscore import snippets
from kwscore.audio import fix_length
from kwscore.augment import (
    COMPRESSOR_PRESETS,
    LIMITS,
    NOISE_COLORS,
    PRESETS,
    AugmentConfig,
    AugmentStep,
    SpecAugmentConfig,
    spec_augment,
)
from kwscore.errors import KwsError
from kwscore.features import mel_db

ss = st.session_state
W = "augw_"  #: prefix of every effect widget (forgotten together when a preset is loaded)
SEED_KEY = "aug_seed"

#: Waveform effects in pipeline order: (effect, title, what it simulates, [(param, label, step, format)]).
SIMPLE = {
    "time_stretch": ("Time stretch", "Slower or faster talkers; the pitch stays.", "rate", "rate (×)", 0.01, "%.2f"),
    "pitch_shift": ("Pitch shift", "Higher or lower voices; the speed stays.", "semitones", "semitones", 0.1, "%.1f"),
    "time_shift": ("Time shift", "The word starts earlier or later (zeros fill in).", "shift_ms", "shift (ms)", 10.0, "%.0f"),
    "gain": ("Gain", "Near, far or quiet microphones (+6 dB = twice the amplitude).", "gain_db", "gain (dB)", 0.5, "%.1f"),
}
ORDER = [
    "time_stretch", "pitch_shift", "time_shift", "gain", "reverb", "microphone", "compress", "add_background_noise",
    "add_colored_noise",
]  # fmt: skip
TITLES = {
    **{k: v[0] for k, v in SIMPLE.items()},
    "reverb": "Room (reverberation)",
    "microphone": "Microphone",
    "compress": "Compression",
    "add_background_noise": "Background noise",
    "add_colored_noise": "Coloured noise",
    "spec_augment": "SpecAugment",
}
HELP = {
    **{k: v[1] for k, v in SIMPLE.items()},
    "reverb": "The word said in a random room: walls send it back again and again. RT60 is how long "
    "the room rings (time for -60 dB): 0.2 s a furnished room, 0.8 s a bare classroom.",
    "microphone": "The word recorded through a random microphone: no deep bass below the low cut, no highs "
    "above the high cut (a phone keeps up to ~3.4 kHz), and two bumps or dips in between.",
    "compress": "Phone, radio and broadcast processing: quiet parts louder, the clip denser.",
    "add_background_noise": "Kitchens, streets, fans: a random second of a noise recording mixed in.",
    "add_colored_noise": "Hiss (white), rain-like (pink) or rumble (brown) noise at a chosen SNR.",
}
LEVELS = ["weight", "SNR (dB)"]


def widget_values(cfg: AugmentConfig) -> dict[str, object]:
    """The widget values that show ``cfg`` (effects it lacks: off, with their default ranges)."""
    v: dict[str, object] = {
        f"{W}time_stretch_rate": (0.9, 1.1),
        f"{W}pitch_shift_semitones": (-2.0, 2.0),
        f"{W}time_shift_shift_ms": (-100.0, 100.0),
        f"{W}gain_gain_db": (-6.0, 6.0),
        f"{W}compress_preset": ["speech"],
        f"{W}bg_level": LEVELS[0],
        f"{W}bg_weight": (0.1, 0.5),
        f"{W}bg_snr": (0.0, 20.0),
        f"{W}colored_color": list(NOISE_COLORS),
        f"{W}colored_snr": (10.0, 30.0),
        f"{W}reverb_rt60": (0.15, 0.8),
        f"{W}mic_low_hz": (20.0, 250.0),
        f"{W}mic_high_hz": (2800.0, 7500.0),
        f"{W}mic_eq_db": (-6.0, 6.0),
    }
    for effect in ORDER:
        v[f"{W}{effect}_on"] = False
        v[f"{W}{effect}_p"] = 1.0

    def pair(x: object) -> tuple[float, float]:
        return (float(x[0]), float(x[1])) if isinstance(x, (tuple, list)) else (float(x), float(x))

    def names(x: object) -> list[str]:
        return [x] if isinstance(x, str) else list(x)

    for step in cfg.steps:
        kw = step.kwargs
        v[f"{W}{step.effect}_on"], v[f"{W}{step.effect}_p"] = True, float(step.p)
        if step.effect in SIMPLE:
            param = SIMPLE[step.effect][2]
            if param in kw:
                v[f"{W}{step.effect}_{param}"] = pair(kw[param])
        elif step.effect == "compress" and "preset" in kw:
            v[f"{W}compress_preset"] = names(kw["preset"])
        elif step.effect == "add_background_noise":
            if kw.get("snr_db") is not None:
                v[f"{W}bg_level"], v[f"{W}bg_snr"] = LEVELS[1], pair(kw["snr_db"])
            elif kw.get("weight") is not None:
                v[f"{W}bg_level"], v[f"{W}bg_weight"] = LEVELS[0], pair(kw["weight"])
        elif step.effect == "reverb" and "rt60" in kw:
            v[f"{W}reverb_rt60"] = pair(kw["rt60"])
        elif step.effect == "microphone":
            for param in ("low_hz", "high_hz", "eq_db"):
                if param in kw:
                    v[f"{W}mic_{param}"] = pair(kw[param])
        elif step.effect == "add_colored_noise":
            if "color" in kw:
                v[f"{W}colored_color"] = names(kw["color"])
            if kw.get("snr_db") is not None:
                v[f"{W}colored_snr"] = pair(kw["snr_db"])
    s = cfg.spec_augment
    v[f"{W}spec_on"] = s is not None
    s = s or SpecAugmentConfig()
    v.update({f"{W}spec_F": s.freq_mask_param, f"{W}spec_T": s.time_mask_param, f"{W}spec_nF": s.n_freq_masks,
              f"{W}spec_nT": s.n_time_masks, f"{W}spec_W": s.time_warp, f"{W}spec_V": round(s.freq_warp * 100)})  # fmt: skip
    return v


def load_preset() -> None:
    """Button callback: replace the recipe by a named preset and refill every widget from it."""
    ui.set_augment_config(PRESETS[ss["aug_preset"]])
    ui.forget(W)


def draw_again() -> None:
    ss[SEED_KEY] = ss.get(SEED_KEY, 0) + 1


def short(value: object) -> str:
    """A number or range as a student reads it: ``1.04``, ``0.9–1.1``, ``speech, radio``."""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, (tuple, list)):
        numeric_pair = len(value) == 2 and not isinstance(value[0], str)
        return ("–" if numeric_pair else ", ").join(short(v) for v in value)
    return str(value)


def describe(record: dict, noise_names: list[str]) -> str:
    """What was drawn, as one line: ``rate = 1.04, stretched_length = 15342``."""
    skip = {"effect", "applied"}
    parts = []
    for k, val in record.items():
        if k in skip:
            continue
        if k == "noise_index" and val < len(noise_names):
            parts.append(f"noise = {noise_names[val]}")
            continue
        parts.append(f"{k} = {short(val)}")
    return ", ".join(parts)


def describe_masks(record: dict) -> str:
    f = [f"bands {s}–{s + w - 1}" for s, w in record["freq_masks"] if w]
    t = [f"frames {s}–{s + w - 1}" for s, w in record["time_masks"] if w]
    out = [f"frequency masks: {'; '.join(f) or 'none (width 0 drawn)'}", f"time masks: {'; '.join(t) or 'none'}"]
    if record.get("time_warp") and record["time_warp"][1]:
        w0, d = record["time_warp"]
        out.append(f"time warp: frame {w0} moved by {d:+d}")
    if record.get("freq_warp"):
        out.append(f"vocal tract: bands × {record['freq_warp']:.3f} (formants {'higher' if record['freq_warp'] < 1 else 'lower'})")
    return " · ".join(out)


st.title("Augmentation lab")
st.caption(
    "A keyword spotter must hear “yes” from any voice, at any speed, in any room. Augmentation fakes that "
    "variety: every time a clip is used in training, fresh random parameters are drawn from the ranges "
    "below. Switch effects on, press **Draw again**, and listen."
)

clip = clips.picker("aug")
loaded = clips.load(clip) if clip else None
if loaded is None:
    st.stop()
waveform, _ = loaded
padded = waveform.shape[-1] < 16000
if padded:  # as in a training batch: short clips are zero-padded to one second
    waveform = fix_length(waveform, 16000)
root = datasets.current()
noises, noise_names = clips.background_noises(root)
features = replace(feature_editor.feature_config(), normalize=False)
frames = feature_editor.teaching(features).frames_per_clip

# The carried recipe changed elsewhere (or this is the first visit): refill the widgets from it.
carried = ui.augment_config()
if ss.get("_aug_written") != carried.to_dict():
    ui.forget(W)
defaults = widget_values(carried)


def kept(widget: Callable[..., Any], label: str, key: str, **kwargs: Any) -> Any:
    """:func:`ui.kept` for an effect widget: key ``augw_<key>``, default from the carried recipe."""
    return ui.kept(widget, label, key=W + key, default=defaults[W + key], **kwargs)


top = st.columns([1.3, 0.8, 1, 2.2], vertical_alignment="bottom")
top[0].selectbox("Start from a preset", list(PRESETS), index=2, key="aug_preset")
top[1].button("Load preset", on_click=load_preset, width="stretch")
top[2].button(
    "Draw again", on_click=draw_again, type="primary", width="stretch", key="aug_draw", icon=":material/casino:"
)
seed = ss.setdefault(SEED_KEY, 0)
honour_p = top[3].toggle(
    "Use each effect's probability p in the preview",
    key="aug_honour_p",
    help="Off: every effect that is on is applied, so you always hear it. On: like training, each "
    "effect is applied only with its probability p.",
)

left, right = st.columns([1, 2.5], gap="medium")
params: dict[str, dict] = {}
with left:
    st.markdown("**Waveform effects**, in this order")
    for effect in ORDER:
        with st.container(border=True):
            on = kept(st.toggle, TITLES[effect], f"{effect}_on", help=HELP[effect])
            if not on:
                continue
            if effect in SIMPLE:
                _, _, param, label, step, fmt = SIMPLE[effect]
                lo, hi, why = LIMITS[param]
                value = kept(st.slider, f"{label}, drawn from", f"{effect}_{param}",
                             min_value=float(lo), max_value=float(hi), step=step, format=fmt, help=why)  # fmt: skip
                params[effect] = {param: tuple(value)}
            elif effect == "reverb":
                lo, hi, why = LIMITS["rt60"]
                value = kept(st.slider, "RT60 (s), drawn from", "reverb_rt60", min_value=float(lo), max_value=float(hi),
                             step=0.05, format="%.2f", help=why)  # fmt: skip
                params[effect] = {"rt60": tuple(value)}
            elif effect == "microphone":
                params[effect] = {}
                for param, label, step in (("low_hz", "low cut (Hz)", 10.0), ("high_hz", "high cut (Hz)", 100.0),
                                           ("eq_db", "EQ bumps (dB)", 0.5)):  # fmt: skip
                    lo, hi, why = LIMITS[param]
                    value = kept(st.slider, f"{label}, drawn from", f"mic_{param}", min_value=float(lo),
                                 max_value=float(hi), step=step, help=why)  # fmt: skip
                    params[effect][param] = tuple(value)
            elif effect == "compress":
                chosen = kept(
                    st.multiselect, "presets (one drawn at random)", "compress_preset", options=list(COMPRESSOR_PRESETS),
                    help="\n".join(f"- **{k}**: {p.description}" for k, p in COMPRESSOR_PRESETS.items()),
                )  # fmt: skip
                chosen = [k for k in COMPRESSOR_PRESETS if k in chosen] or ["speech"]
                params[effect] = {"preset": chosen[0] if len(chosen) == 1 else tuple(chosen)}
            elif effect == "add_background_noise":
                source = (
                    f"Recordings from this dataset's `_background_noise_`: {', '.join(noise_names)}."
                    if noise_names
                    else "This dataset has no `_background_noise_` folder: coloured noise is used instead."
                )
                level = kept(st.radio, "level set by", "bg_level", options=LEVELS, horizontal=True,
                             help=f"{source}\n\nweight: the recording × weight, as recorded. SNR: scaled so "
                             "the word is this many dB above the noise.")  # fmt: skip
                if level == LEVELS[0]:
                    lo, hi, why = LIMITS["weight"]
                    value = kept(st.slider, "weight", "bg_weight", min_value=float(lo), max_value=float(hi),
                                 step=0.05, help=why)  # fmt: skip
                    params[effect] = {"weight": tuple(value)}
                else:
                    lo, hi, why = LIMITS["snr_db"]
                    value = kept(st.slider, "SNR (dB)", "bg_snr", min_value=float(lo), max_value=float(hi),
                                 step=1.0, help=why)  # fmt: skip
                    params[effect] = {"snr_db": tuple(value)}
            elif effect == "add_colored_noise":
                colours = kept(st.multiselect, "colours (one drawn at random)", "colored_color",
                               options=list(NOISE_COLORS), help="white: hiss; pink: 1/f, like rain; brown: "
                               "1/f², a rumble.")  # fmt: skip
                lo, hi, why = LIMITS["snr_db"]
                value = kept(st.slider, "SNR (dB)", "colored_snr", min_value=float(lo), max_value=float(hi),
                             step=1.0, help=why)  # fmt: skip
                colours = [c for c in NOISE_COLORS if c in colours] or ["white"]
                params[effect] = {"snr_db": tuple(value)}
                if len(colours) < len(NOISE_COLORS):
                    params[effect]["color"] = colours[0] if len(colours) == 1 else tuple(colours)
            kept(st.slider, "p, chance per clip in training", f"{effect}_p", min_value=0.0, max_value=1.0, step=0.05)


views_box, table_box = right.container(), right.container()
with right.container(border=True):
    spec_on = kept(st.toggle, "SpecAugment: hide random Mel bands and frames", "spec_on",
                   help="Park et al., 2019. Applied to the spectrogram, after the waveform effects: the model "
                   "learns not to rely on any single band or moment.")  # fmt: skip
    if spec_on:
        n_mels = features.n_mels
        c1, c2, c3 = st.columns(3)
        with c1:
            kept(st.slider, "F: widest frequency mask (bands)", "spec_F", min_value=0, max_value=max(1, n_mels // 2))
            kept(st.slider, "frequency masks", "spec_nF", min_value=0, max_value=4)
        with c2:
            kept(st.slider, "T: widest time mask (frames)", "spec_T", min_value=0, max_value=max(1, frames // 2))
            kept(st.slider, "time masks", "spec_nT", min_value=0, max_value=4)
        with c3:
            kept(st.slider, "W: time warp (frames, 0 = off)", "spec_W", min_value=0,
                 max_value=max(1, min(20, (frames - 1) // 2)))  # fmt: skip
            kept(st.slider, "V: vocal-tract warp (± %, 0 = off)", "spec_V", min_value=0, max_value=30,
                 help="VTLP: stretch or squeeze the Mel axis by up to this share, so every formant moves "
                      "together, as between a taller and a smaller speaker.")  # fmt: skip
            st.caption("Each mask's width is drawn from 0 to F (or T); masks are filled with the clip's mean.")

# -- the recipe ---------------------------------------------------------------------------------
steps = tuple(AugmentStep(e, float(ss[f"{W}{e}_p"]), params[e]) for e in ORDER if e in params)
spec_cfg = (
    SpecAugmentConfig(
        freq_mask_param=int(ss[f"{W}spec_F"]), time_mask_param=int(ss[f"{W}spec_T"]),
        n_freq_masks=int(ss[f"{W}spec_nF"]), n_time_masks=int(ss[f"{W}spec_nT"]), time_warp=int(ss[f"{W}spec_W"]),
        freq_warp=int(ss[f"{W}spec_V"]) / 100,
    )  # fmt: skip
    if spec_on
    else None
)
recipe = AugmentConfig(steps=steps, spec_augment=spec_cfg)
same = [k for k, p in PRESETS.items() if p.steps == recipe.steps and p.spec_augment == recipe.spec_augment]
recipe = replace(recipe, name=same[0] if same else "custom")

with views_box:
    try:
        recipe.validate()
        if spec_cfg:
            spec_cfg.check_shape(features.n_mels, frames)
    except KwsError as exc:
        st.error(str(exc))
        st.stop()
    ui.set_augment_config(recipe)
    ss["_aug_written"] = recipe.to_dict()

    # Each effect draws from its own seed, so switching one on does not re-draw the others.
    augmented, rows = waveform, []
    for step in recipe.steps:
        preview = step if honour_p else replace(step, p=1.0)
        augmented, records = AugmentConfig(steps=(preview,)).apply(
            augmented, seed=(seed, ORDER.index(step.effect)), noises=noises
        )
        rec = records[0]
        rows.append(
            {
                "effect": TITLES[step.effect],
                "applied": "yes" if rec["applied"] else "skipped (coin > p)",
                "drawn this time": describe(rec, noise_names) if rec["applied"] else "",
                "range": ", ".join(f"{k} {short(v)}" for k, v in step.params),
                "p": f"{step.p:.2f}",
            }
        )
    spec_o = mel_db(waveform, features)
    spec_a = mel_db(augmented, features)
    mask_record = None
    if spec_cfg:
        try:
            spec_a, mask_record = spec_augment(spec_a, spec_cfg, seed=(seed, len(ORDER)))
        except KwsError as exc:
            st.error(str(exc))
            st.stop()
        rows.append(
            {
                "effect": TITLES["spec_augment"],
                "applied": "yes" if mask_record["applied"] else "skipped",
                "drawn this time": describe_masks(mask_record),
                "range": f"F {spec_cfg.freq_mask_param} × {spec_cfg.n_freq_masks}, T {spec_cfg.time_mask_param} "
                f"× {spec_cfg.n_time_masks}, W {spec_cfg.time_warp}, V ±{spec_cfg.freq_warp:.0%}",
                "p": f"{spec_cfg.p:.2f}",
            }
        )

    peak = max(float(waveform.abs().max()), float(augmented.abs().max()), 1e-3) * 1.05
    zr = plots.z_range(spec_o, spec_a, top_db=features.top_db)
    a, b = st.columns(2, gap="medium")
    with a:
        st.markdown(f"**Original** · “{clip.word}”, speaker {clip.speaker}" + (" (zero-padded to 1 s)" if padded else ""))
        clips.play(waveform)
        st.plotly_chart(plots.waveform(waveform, 16000, title="Waveform", y_range=peak), key="aug_wave_o")
        st.plotly_chart(
            plots.mel_spectrogram(spec_o, features, title=f"dB Mel spectrogram ({features.n_mels} × {spec_o.shape[-1]})",
                                  zrange=zr, height=300, compact=True, colorbar=False),
            key="aug_spec_o",
        )  # fmt: skip
    with b:
        st.markdown(f"**Augmented** · recipe *{recipe.name}*, draw #{seed}")
        clips.play(augmented)
        st.plotly_chart(
            plots.waveform(augmented, 16000, title="Waveform", color=plots.AUGMENTED_COLOR, y_range=peak),
            key="aug_wave_a",
        )
        n_masks = sum(s["type"] == "rect" for s in plots.mask_shapes(mask_record, features, spec_a.shape[-1])[0])
        title = f"dB Mel spectrogram ({features.n_mels} × {spec_a.shape[-1]})"
        st.plotly_chart(
            plots.mel_spectrogram(
                spec_a, features, title=f"dB Mel spectrogram + {n_masks} SpecAugment masks" if n_masks else title,
                zrange=zr, height=300, compact=True, colorbar=False, masks=mask_record,
            ),
            key="aug_spec_a",
        )  # fmt: skip
    if float(augmented.abs().max()) > 1.0:
        st.caption(
            f"The augmented peak is {float(augmented.abs().max()):.2f} (> 1): playback clips it, the model "
            "sees the values unclipped."
        )

with table_box:
    st.markdown("**What was applied** (the random values drawn for this preview)")
    if rows:
        st.table(pd.DataFrame(rows).set_index("effect"))
    else:
        st.info("No effect is on: switch one on at the left, or load a preset.")
    rms_o, rms_a = (float(w.double().pow(2).mean().sqrt()) for w in (waveform, augmented))
    st.caption(
        f"RMS {20 * np.log10(max(rms_o, 1e-9)):.1f} → {20 * np.log10(max(rms_a, 1e-9)):.1f} dBFS. Both "
        "spectrograms share one dB colour scale (bright = loud), so a gain or a noise shows as it sounds. The Mel "
        f"settings come from the Spectrogram lab ({features.n_mels} bands, {features.win_length}/"
        f"{features.hop_length}-sample window/hop). The Train page offers this recipe as “from the Augmentation "
        "lab”; its default stays the model's tuned recipe."
    )

code_view.show(lambda: snippets.augmentation_code(recipe.to_dict(), clip.path, root, seed, honour_p, features, ORDER),
               key="aug_code")
