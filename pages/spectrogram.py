"""Spectrogram lab: move the STFT and Mel sliders and watch the clip's dB Mel spectrogram change.

The settings chosen here are carried (``st.session_state["feature_config"]``) to the other pages;
the widgets are :class:`dashboard.feature_editor.FeatureEditor`'s, the same as on the Train page.
"""

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import code_view, plots, ui
from dashboard.feature_editor import FeatureEditor, describe
from kwscore import snippets
from kwscore.choices import RECIPE_NOTES, SAMPLE_RATES, rate_label
from kwscore.errors import KwsError
from kwscore.features import (
    FEATURE_PRESETS,
    PRESET_TITLES,
    FeatureConfig,
    empty_bands_lesson,
    linear_spectrogram_db,
    mel_db,
    resampled_spectrogram,
)

ss = st.session_state
PINNED = "spec_pinned"  #: settings the student pinned as "yours" for Default vs yours
EDITOR = FeatureEditor("spec")


def pin(config: FeatureConfig) -> None:
    ss[PINNED] = config.to_dict()


st.title("Spectrogram lab")
st.caption(
    "A keyword-spotting CNN never sees samples: it sees a small picture, *Mel bands × frames*. Start from "
    "torchaudio's defaults, move the sliders and watch how the window, the hop, the FFT size and the Mel "
    "bands shape that picture. Your settings travel to the Augmentation lab and the Train page."
)

clip = ui.clip_picker("spec")
loaded = ui.load_clip(clip) if clip else None
if loaded is None:
    st.stop()
waveform, _ = loaded
n_samples = waveform.shape[-1]

# -- settings: read, repair, then draw the widgets ---------------------------------------------
free = ss.get("spec_free", ss.get(ui.KEPT_KEY, {}).get("spec_free", False))
state = EDITOR.read(free=free)
notes = state.notes

left, right = st.columns([1, 2.6], gap="medium")
with left.container(border=True):
    st.markdown("**Front-end settings**")
    config = EDITOR.draw(state)
    ui.kept(
        st.toggle,
        "Let me try invalid settings",
        key="spec_free",
        default=False,
        help="Full slider ranges, no automatic repairs: see the error each mistake gives.",
    )

problems = list(ui.problems(config))
lesson = None if problems else empty_bands_lesson(config)
display = replace(config, normalize=False)  # the picture shows dB; the model then normalises per clip
ms = 1000.0 / config.sample_rate
try:
    numbers = ui.teaching(config)  # works with empty Mel bands too (it counts them)
except KwsError:
    numbers = None

with right:
    for note in notes:
        st.warning(note, icon=":material/build:")
    if problems:
        st.error(
            "**These settings do not work together:**\n\n" + "\n".join(f"- {p}" for p in problems)
            + "\n\nThe other pages keep your last working settings.",
            icon=":material/block:",
        )
    else:
        if lesson:
            st.info(f"**Lesson:** {lesson}", icon=":material/school:")
        spec = mel_db(waveform, display)
        frames = spec.shape[-1]
        fig = plots.mel_spectrogram(
            spec,
            display,
            title=f"dB Mel spectrogram of “{clip.word}”: {config.n_mels} Mel bands × {frames} frames",
            zrange=plots.z_range(spec, top_db=config.top_db),
            height=380,
        )
        st.plotly_chart(fig, key="spec_main")
        ui.play(waveform)
        st.caption(
            f"`mel_db(waveform, config)`: `[1, {n_samples}]` → `[{config.n_mels}, {frames}]`. "
            "Colours are dB (10·log10 of the energy). The model then normalises each clip to zero mean "
            "and unit variance."
        )
    if numbers is not None:
        n = numbers
        cols = st.columns(3) + st.columns(3)
        off = dict(delta_color="off", delta_arrow="off")
        cols[0].metric("Window (samples)", n.win_samples, f"{n.win_ms:g} ms", **off)
        cols[1].metric("Hop (samples)", n.hop_samples, f"{n.hop_ms:g} ms", **off)
        cols[2].metric("Overlap", f"{n.overlap_pct:.1f} %", f"each sample in {n.win_hop_ratio:.2g} window{'' if n.win_hop_ratio == 1 else 's'}", **off)
        cols[3].metric("Hz per FFT bin", f"{n.hz_per_bin:g}", f"{n.n_freq_bins} bins", **off)
        cols[4].metric("Frames per second", f"{n.frames_per_second:g}", f"{n.frames_per_clip} per 1-s clip", **off)
        cols[5].metric(
            "Model input", f"{n.input_shape[0]} × {n.input_shape[1]}", "n_mels × frames", **off,
            help="For a 1-s clip: frames = 1 + samples // hop (centre padding).",
        )  # fmt: skip

# -- the numbers behind the picture ------------------------------------------------------------
if numbers is not None:
    n = numbers
    st.subheader("The numbers behind the picture")
    how, why = st.columns([1.5, 1], gap="large")
    centres = n.mel_centres_hz
    shown = ", ".join(f"{c:.0f}" for c in centres[:4]) + ", …, " + ", ".join(f"{c:.0f}" for c in centres[-2:])
    how.markdown(
        f"""
| quantity | worked out | value |
|---|---|---|
| window | {n.win_samples} / {n.sample_rate} s | **{n.win_ms:g} ms** |
| hop | {n.hop_samples} / {n.sample_rate} s | **{n.hop_ms:g} ms** |
| 10 ms at {n.sample_rate / 1000:g} kHz | 0.010 × {n.sample_rate} | **{n.ten_ms_samples:g} samples** |
| power of two closest to 10 ms | {n.pow2_below} or {n.pow2_above} → {n.pow2_nearest} | **{n.pow2_nearest} samples = {n.pow2_nearest_ms:g} ms** |
| overlap | ({n.win_samples} − {n.hop_samples}) / {n.win_samples} | **{n.overlap_pct:.1f} %** |
| zero padding | {n.n_fft} − {n.win_samples} | **{n.zero_padding} zeros** |
| frequency resolution | {n.sample_rate} / {n.n_fft} | **{n.hz_per_bin:g} Hz per bin** |
| FFT bins | {n.n_fft} // 2 + 1 | **{n.n_freq_bins} bins, 0 – {n.nyquist_hz:g} Hz** |
| frames per second | {n.sample_rate} / {n.hop_samples} | **{n.frames_per_second:g}** |
| frames in 1 s | 1 + {n.clip_samples} // {n.hop_samples} | **{n.frames_per_clip}** |
| model input | n_mels × frames | **{n.input_shape[0]} × {n.input_shape[1]}** |
| Mel band centres (Hz) | HTK Mel scale, {config.f_min:g} – {config.f_max_hz:g} Hz | {shown} |
"""
    )
    with why:
        st.markdown("**Why frames every ~10 ms?**")
        st.caption(n.why_10_ms)
        st.markdown("**Why a power of two?**")
        st.caption(
            f"The FFT is fastest for power-of-two sizes, so 10 ms ({n.ten_ms_samples:g} samples) is often "
            f"rounded to {n.pow2_nearest} samples ({n.pow2_nearest_ms:g} ms) on small devices, and n_fft "
            "to the next power of two above the window."
        )
        with st.expander(f"All {len(centres)} Mel band centres"):
            st.dataframe(
                pd.DataFrame({"band": range(len(centres)), "centre (Hz)": [round(c, 1) for c in centres]}),
                hide_index=True,
                height=240,
            )

if problems:
    st.stop()

# -- side views, only the open one is computed -------------------------------------------------
st.subheader("Look closer")
views = st.tabs(
    ["Default vs yours", "Mel filterbank", "Linear STFT vs Mel", "Sample rate: what M5 hears"],
    key="spec_view",
    on_change="rerun",
)
try:
    with views[0]:
        if views[0].open:
            choices = list(FEATURE_PRESETS) + (["pinned"] if ss.get(PINNED) else [])
            pinned = FeatureConfig.from_dict(ss[PINNED]) if ss.get(PINNED) else None
            names = {**PRESET_TITLES, "pinned": f"yours, pinned: {describe(pinned)}" if pinned else ""}
            c1, c2 = st.columns([2.2, 1], vertical_alignment="bottom")
            against = ui.kept(c1.selectbox, "Compare with", key="spec_compare", default="torchaudio",
                              options=choices, format_func=names.get,
                              help="What “default” means: torchaudio's MelSpectrogram() with no arguments, the "
                              "lab's classic 40-band KWS front end, or settings you pinned.")  # fmt: skip
            c2.button("Pin my settings", on_click=pin, args=(config,), icon=":material/push_pin:", width="stretch",
                      help="Keep the current settings as “yours, pinned”, to compare later settings with.")  # fmt: skip
            base = pinned if against == "pinned" else FEATURE_PRESETS[against]
            default = replace(base, normalize=False)
            a, b = st.columns(2)
            d_spec = mel_db(waveform, default)
            short = {"torchaudio": "torchaudio's defaults", "classic": "Classic 40-band", "pinned": "Pinned"}[against]
            a.plotly_chart(
                plots.mel_spectrogram(
                    d_spec, default, title=f"{short}: {default.n_mels} × {d_spec.shape[-1]} "
                    f"({default.win_length * ms:g} ms window, {default.hop_length * ms:g} ms hop, n_fft {default.n_fft})",
                    zrange=plots.z_range(d_spec, top_db=default.top_db),
                ),
                key="spec_default",
            )  # fmt: skip
            b.plotly_chart(
                plots.mel_spectrogram(
                    spec, display, title=f"Yours: {config.n_mels} × {spec.shape[-1]} ({config.win_length * ms:g} ms "
                    f"window, {config.hop_length * ms:g} ms hop, n_fft {config.n_fft})",
                    zrange=plots.z_range(spec, top_db=config.top_db),
                ),
                key="spec_yours",
            )  # fmt: skip
            changed = [
                f"{k} {getattr(base, k)} → {getattr(config, k)}"
                for k in ("n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "top_db", "window")
                if getattr(base, k) != getattr(config, k)
            ]
            st.caption(f"Changed from {short.lower() if against != 'torchaudio' else short}: " + "; ".join(changed)
                       if changed else f"Your settings are {short.lower() if against != 'torchaudio' else short}.")  # fmt: skip
    with views[1]:
        if views[1].open:
            st.plotly_chart(plots.filterbank(config), key="spec_filterbank")
            st.caption(
                "Each Mel band is a triangle that sums neighbouring FFT bins. Bands are narrow at low "
                "frequencies (where we hear small pitch differences) and wide at high ones. A band "
                "narrower than the bin spacing may fall between two bins and stay empty."
            )
    with views[2]:
        if views[2].open:
            a, b = st.columns(2)
            lin = linear_spectrogram_db(waveform, display)
            a.plotly_chart(
                plots.linear_spectrogram(
                    lin, display, title=f"Linear STFT: {lin.shape[0]} bins × {lin.shape[1]} frames",
                    zrange=plots.z_range(lin, top_db=config.top_db),
                ),
                key="spec_linear",
            )  # fmt: skip
            b.plotly_chart(
                plots.mel_spectrogram(
                    spec, display, title=f"Mel: {config.n_mels} bands × {spec.shape[-1]} frames",
                    zrange=plots.z_range(spec, top_db=config.top_db),
                ),
                key="spec_mel_again",
            )  # fmt: skip
            st.caption(
                f"The Mel filterbank turns {lin.shape[0]} equally spaced bins into {config.n_mels} bands: "
                "low frequencies keep their detail, high ones are merged, and the picture becomes "
                f"{lin.shape[0] / config.n_mels:.1f}× smaller."
            )
    with views[3]:
        if views[3].open:
            rate = ui.kept(st.segmented_control, "Resample the clip to", key="spec_rate", default=8000,
                           options=list(SAMPLE_RATES), format_func=rate_label, required=True,
                           help="Every rate a raw-waveform model can listen at: listen to what each one keeps.")  # fmt: skip
            rate = int(rate or 8000)
            low, spec_low, cfg_low = resampled_spectrogram(waveform, display, rate, kind="linear")
            lin16 = linear_spectrogram_db(waveform, display)
            a, b = st.columns(2)
            with a:
                st.plotly_chart(
                    plots.linear_spectrogram(
                        lin16, display, title=f"16 kHz: [1, {n_samples}] samples, 0 – 8 kHz",
                        zrange=plots.z_range(lin16, top_db=config.top_db),
                    ),
                    key="spec_16k",
                )  # fmt: skip
                ui.play(waveform, 16000)
            with b:
                st.plotly_chart(
                    plots.linear_spectrogram(
                        spec_low, cfg_low, title=f"{rate_label(rate)}: [1, {low.shape[-1]}] samples, "
                        f"0 – {rate_label(rate / 2)}",
                        zrange=plots.z_range(spec_low, top_db=config.top_db), y_max=display.nyquist,
                    ),
                    key="spec_resampled",
                )  # fmt: skip
                ui.play(low, rate)
            kept_band = {4000: "only up to 2 kHz: the vowels survive, “s”, “f”, “t” and most of “k” are gone — "
                         "words get hard to tell apart",
                         8000: "up to 4 kHz: the word is still clear, the hiss of “s” and “f” is gone",
                         11025: "up to 5.5 kHz: most of the consonants' energy stays",
                         16000: "everything the clip has, up to 8 kHz"}.get(rate, "")  # fmt: skip
            st.caption(
                f"Resampling to {rate_label(rate)} keeps {kept_band}: everything above {rate_label(rate / 2)} (the "
                "new Nyquist frequency) is filtered out first, or it would fold back as aliasing. Same "
                f"{cfg_low.win_length * 1000 / rate:.3g} ms window = {cfg_low.win_length} samples at "
                f"{rate_label(rate)}, hop {cfg_low.hop_length}, n_fft {cfg_low.n_fft}."
            )
            st.markdown(
                f"**Which rate does M5 hear?** The PyTorch tutorial's M5 listens at **8 kHz**. "
                f"{RECIPE_NOTES['m5tutorial']}  \n**The tuned M5 recipe listens at 16 kHz**: {RECIPE_NOTES['m5'][7:]}"
            )
except KwsError as exc:
    st.error(str(exc))

code_view.show(snippets.spectrogram_code(config, clip.path, n_samples), key="spec_code")
