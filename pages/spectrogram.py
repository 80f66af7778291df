"""Spectrogram lab: move the STFT and Mel sliders and watch the clip's dB Mel spectrogram change.

The settings chosen here are carried (``st.session_state["feature_config"]``) to the other pages.
"""

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import plots, ui
from kwscore.errors import KwsError
from kwscore.features import (
    MIN_HOP_LENGTH,
    MIN_WIN_LENGTH,
    N_FFT_CHOICES,
    N_MELS_RANGE,
    TOP_DB_RANGE,
    WINDOWS,
    FeatureConfig,
    linear_spectrogram_db,
    mel_db,
    resampled_spectrogram,
)

ss = st.session_state
#: FeatureConfig field -> widget key. Widgets are refilled from the carried config when missing.
KEYS = {
    "n_fft": "spec_n_fft",
    "win_length": "spec_win",
    "hop_length": "spec_hop",
    "n_mels": "spec_n_mels",
    "f_max": "spec_f_max",
    "top_db": "spec_top_db",
    "window": "spec_window",
}
F_MAX_STEP = 100


def widget_values(c: FeatureConfig) -> dict[str, object]:
    """A config as the widgets hold it (whole Hz, whole dB)."""
    return {
        "n_fft": c.n_fft,
        "win_length": c.win_length,
        "hop_length": c.hop_length,
        "n_mels": c.n_mels,
        "f_max": int(round(c.f_max_hz)),
        "top_db": int(round(c.top_db if c.top_db is not None else TOP_DB_RANGE[1])),
        "window": c.window,
    }


def from_widgets(base: FeatureConfig) -> FeatureConfig:
    """``base`` with every setting the widgets hold."""
    cast = {"f_max": float, "top_db": float, "window": str}
    return replace(base, **{name: cast.get(name, int)(ss[key]) for name, key in KEYS.items()})


def reset() -> None:
    ui.set_feature_config(FeatureConfig())
    for name, value in widget_values(FeatureConfig()).items():
        ss[KEYS[name]] = value


def slider(label: str, key: str, lo: int, hi: int, step: int, help: str) -> None:
    """An int slider, or a line of text when only one value fits (a slider needs lo < hi)."""
    if lo >= hi:
        ss[key] = lo  # not drawn this run: refilled from the carried config next time
        st.markdown(f"{label}  \n:gray[only {lo} fits the other settings]")
        return
    # Always (re)write the value: when lo/hi move, Streamlit sees a new widget, which would
    # otherwise start again at its default (lo) instead of the value the student chose.
    ss[key] = min(max(int(ss[key]), lo), hi)
    st.slider(label, min_value=lo, max_value=hi, step=step, key=key, help=help)


st.title("Spectrogram lab")
st.caption(
    "A keyword-spotting CNN never sees samples: it sees a small picture, *Mel bands × frames*. Move "
    "the sliders and watch how the window, the hop, the FFT size and the Mel bands shape that picture. "
    "Your settings travel to the Augmentation lab and the Train page."
)

clip = ui.clip_picker("spec")
loaded = ui.load_clip(clip) if clip else None
if loaded is None:
    st.stop()
waveform, _ = loaded
n_samples = waveform.shape[-1]

# -- settings: read, repair, then draw the widgets ---------------------------------------------
saved = ui.feature_config()
for name, value in widget_values(saved).items():
    if KEYS[name] not in ss:
        ss[KEYS[name]] = value
free = ss.get("spec_free", ss.get(ui.KEPT_KEY, {}).get("spec_free", False))
candidate = from_widgets(saved)
config, notes = (candidate, []) if free else ui.fit_feature_config(candidate)
problems = list(ui.problems(config))
for name, value in widget_values(config).items():
    if ss[KEYS[name]] != value:
        ss[KEYS[name]] = value

if free or problems:  # full ranges: every combination can be tried, the mistakes are explained
    win_hi, hop_hi, mels_hi, fmax_lo = N_FFT_CHOICES[-1], N_FFT_CHOICES[-1], N_MELS_RANGE[1], 500
else:
    r = ui.slider_ranges(config)
    win_hi, hop_hi, mels_hi = r.win_length[1], r.hop_length[1], r.n_mels[1]
    fmax_lo = -(-int(r.f_max[0]) // F_MAX_STEP) * F_MAX_STEP  # round up: still no empty band
ms = 1000.0 / config.sample_rate

left, right = st.columns([1, 2.6], gap="medium")
with left.container(border=True):
    st.markdown("**Front-end settings**")
    st.select_slider(
        f"n_fft: {config.n_fft}-point FFT → {config.n_freqs} bins",
        options=N_FFT_CHOICES,
        key=KEYS["n_fft"],
        help="Points per FFT. Powers of two are fastest. The window is zero-padded up to n_fft.",
    )
    slider(
        f"win_length: {config.win_length * ms:g} ms window",
        KEYS["win_length"],
        MIN_WIN_LENGTH,
        win_hi,
        16,
        "Samples per analysis window (at most n_fft). Long windows resolve pitch harmonics; short ones "
        "follow fast changes.",
    )
    slider(
        f"hop_length: {config.hop_length * ms:g} ms hop",
        KEYS["hop_length"],
        MIN_HOP_LENGTH,
        hop_hi,
        16,
        "Samples from one window to the next (at most the window, so no audio is skipped).",
    )
    slider(
        f"n_mels: {config.n_mels} Mel bands",
        KEYS["n_mels"],
        N_MELS_RANGE[0],
        mels_hi,
        1,
        "Rows of the picture. Too many for a small n_fft and some bands catch no FFT bin at all.",
    )
    slider(
        f"f_max: Mel scale up to {plots.hz_label(config.f_max_hz)}",
        KEYS["f_max"],
        fmax_lo,
        int(config.nyquist),
        F_MAX_STEP,
        "Top of the Mel scale. 8 kHz is the Nyquist frequency of 16 kHz audio.",
    )
    slider(
        f"top_db: keep {config.top_db:g} dB below the peak",
        KEYS["top_db"],
        int(TOP_DB_RANGE[0]),
        int(TOP_DB_RANGE[1]),
        5,
        "Everything quieter than the loudest value minus top_db is floored there.",
    )
    st.radio("Window function", list(WINDOWS), key=KEYS["window"], horizontal=True)
    ui.kept(
        st.toggle,
        "Let me try invalid settings",
        key="spec_free",
        default=False,
        help="Full slider ranges, no automatic repairs: see the error each mistake gives.",
    )
    st.button("Reset to the defaults", on_click=reset, width="stretch")

config = from_widgets(config)  # what the widgets hold now (a slider may have nudged a value into range)
problems = list(ui.problems(config))
if not problems:
    ui.set_feature_config(config)  # carried to the other pages (only valid settings are)
display = replace(config, normalize=False)  # the picture shows dB; the model then normalises per clip
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
        if n.empty_mel_bands:
            st.warning(f"{n.empty_mel_bands} of the {config.n_mels} Mel bands catch no FFT bin.")
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
    ["Default vs yours", "Mel filterbank", "Linear STFT vs Mel", "16 kHz → 8 kHz (what M5 hears)"],
    key="spec_view",
    on_change="rerun",
)
default = replace(FeatureConfig(), normalize=False)
try:
    with views[0]:
        if views[0].open:
            a, b = st.columns(2)
            d_spec = mel_db(waveform, default)
            a.plotly_chart(
                plots.mel_spectrogram(
                    d_spec, default, title=f"Default: {default.n_mels} × {d_spec.shape[-1]} "
                    f"(30 ms window, 10 ms hop, n_fft 512)", zrange=plots.z_range(d_spec, top_db=default.top_db),
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
                f"{k} {getattr(default, k)} → {getattr(config, k)}"
                for k in ("n_fft", "win_length", "hop_length", "n_mels", "f_max", "top_db", "window")
                if getattr(default, k) != getattr(config, k)
            ]
            st.caption("Changed: " + "; ".join(changed) if changed else "Your settings are the defaults.")
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
            low, spec8, cfg8 = resampled_spectrogram(waveform, display, 8000, kind="linear")
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
                        spec8, cfg8, title=f"8 kHz: [1, {low.shape[-1]}] samples, 0 – 4 kHz",
                        zrange=plots.z_range(spec8, top_db=config.top_db), y_max=display.nyquist,
                    ),
                    key="spec_8k",
                )  # fmt: skip
                ui.play(low, 8000)
            st.caption(
                "M5 listens to the raw waveform at 8 kHz: half the samples, so a 2× cheaper network. "
                "Resampling first removes everything above 4 kHz (the new Nyquist frequency), or it "
                "would fold back as aliasing. Listen: the word is still clear, the hiss of “s” and "
                f"“f” is gone. Same {cfg8.win_length * 1000 / 8000:g} ms window = {cfg8.win_length} "
                f"samples at 8 kHz, hop {cfg8.hop_length}, n_fft {cfg8.n_fft}."
            )
except KwsError as exc:
    st.error(str(exc))
