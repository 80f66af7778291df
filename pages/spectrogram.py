"""Spectrogram lab: move the STFT and Mel sliders and watch the clip's dB Mel spectrogram change.

The settings chosen here are carried (``st.session_state["feature_config"]``) to the other pages;
the widgets are :class:`dashboard.feature_editor.FeatureEditor`'s, the same as on the Train page.

Fast under load (issue #12): a slider move reruns one ``st.fragment`` (the settings, the picture and
its six numbers), not the navigation, the sidebar, the clip picker or the clip's player, and the
browser redraws only what that sends. The picture itself is light HTML (one PNG with its axes,
:func:`dashboard.plots.mel_picture`): a key press cost Chromium 190 ms of CPU with it against 310 ms
with the plotly heatmap (bench_pages); "Hover for values" swaps in the interactive plotly chart. What is not needed to see the
change waits until it is asked for: "Look closer" (the worked-out numbers and four side views, only
the open tab computed) and the PyTorch code are collapsed expanders whose contents are built when
opened. Spectrograms are cached
per clip and settings for every session (``st.cache_data``: arrays copy cheaply); the plotly figures
built from them are shared objects (``st.cache_resource``: a cached Figure copied back out of
``st.cache_data`` costs ~45 ms to unpickle, 5x more than building it). ``benchmarks/bench_pages.py``
times a key press against a trivial one-slider page.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dashboard import clips, code_view, plots, ui
from dashboard.feature_editor import FeatureEditor, describe, problems, teaching
from kwscore import snippets
from kwscore.choices import RECIPE_NOTES, SAMPLE_RATES, rate_label
from kwscore.data.clips import Clip
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
LOOK = "spec_look"  #: the "Look closer" expander (closed at first: its contents are built when opened)
HOVER = "spec_hover"  #: the main picture as an interactive plotly chart instead of a light picture
MAIN_HEIGHT = 380  #: px, of the main picture (light or interactive)
EDITOR = FeatureEditor("spec")
#: A clip's identity for the caches: (file, modification time). Its waveform is passed unhashed.
ClipKey = tuple[str, float]


def pin(config: FeatureConfig) -> None:
    ss[PINNED] = config.to_dict()


@st.cache_data(max_entries=512, show_spinner=False)
def spectrum(clip_key: ClipKey, _waveform: torch.Tensor, config: FeatureConfig, kind: str = "mel") -> np.ndarray:
    """The clip's dB spectrogram (``kind`` "mel" or "linear"), once per clip and settings for all sessions."""
    fn = mel_db if kind == "mel" else linear_spectrogram_db
    return fn(_waveform, config).numpy()


@st.cache_resource(max_entries=256, show_spinner=False)
def figure(clip_key: ClipKey, _waveform: torch.Tensor, config: FeatureConfig, title: str, *, kind: str = "mel",
           height: int = 320, font_scale: float = 1.0) -> go.Figure:  # fmt: skip
    """A spectrogram figure, shared by every session (never modified after it is built).
    ``title`` may hold ``{rows}`` and ``{frames}``, filled from the spectrogram's shape."""
    spec = spectrum(clip_key, _waveform, config, kind)
    draw = plots.mel_spectrogram if kind == "mel" else plots.linear_spectrogram
    return draw(spec, config, title=title.format(rows=spec.shape[0], frames=spec.shape[1]),
                zrange=plots.z_range(spec, top_db=config.top_db), height=height)  # fmt: skip


@st.cache_data(max_entries=512, show_spinner=False)
def picture(clip_key: ClipKey, _waveform: torch.Tensor, config: FeatureConfig, title: str, *,
            height: int = MAIN_HEIGHT, font_scale: float = 1.0) -> str:  # fmt: skip
    """The main picture as light HTML (:func:`dashboard.plots.mel_picture`), shared by every session."""
    spec = spectrum(clip_key, _waveform, config)
    return plots.mel_picture(spec, config, title=title.format(rows=spec.shape[0], frames=spec.shape[1]),
                             zrange=plots.z_range(spec, top_db=config.top_db), height=height, key="spec_main")  # fmt: skip


st.title("Spectrogram lab")
st.caption(
    "A keyword-spotting CNN never sees samples: it sees a small picture, *Mel bands × frames*. Start from "
    "torchaudio's defaults, move the sliders and watch how the window, the hop, the FFT size and the Mel "
    "bands shape that picture. Your settings travel to the Augmentation lab and the Train page."
)

clip = clips.picker("spec")
loaded = clips.load(clip) if clip else None
if loaded is None:
    st.stop()
clips.play(loaded[0])  # outside the lab's fragment: the sound does not change with the settings


@st.fragment
def lab(clip: Clip, waveform: torch.Tensor, font_scale: float) -> None:
    """Settings, picture and numbers (side views and code when opened): a slider move reruns only this."""
    plots.FONT_SCALE.set(font_scale)  # a fragment rerun skips the entry point that sets it
    key: ClipKey = (str(clip.path), clip.path.stat().st_mtime)
    n_samples = waveform.shape[-1]

    # -- settings: read, repair, then draw the widgets -----------------------------------------
    state = EDITOR.read(free=bool(ss.get("spec_free", False)))
    left, right = st.columns([1, 2.6], gap="medium")
    with left.container(border=True):
        config = EDITOR.draw(state, heading="**Front-end settings**")
        # Not ui.kept (which writes the value back every run): a value written from Python is sent
        # again with the widget and re-applied by the browser on every slider move.
        st.toggle("Let me try invalid settings", key="spec_free", persist_state="session",
                  help="Full slider ranges, no automatic repairs: see the error each mistake gives.")  # fmt: skip

    mistakes = list(problems(config))
    display = replace(config, normalize=False)  # the picture shows dB; the model then normalises per clip
    ms = 1000.0 / config.sample_rate
    try:
        numbers = teaching(config)  # works with empty Mel bands too (it counts them)
    except KwsError:
        numbers = None

    def mel(cfg: FeatureConfig, title: str, height: int = 320) -> go.Figure:
        return figure(key, waveform, cfg, title, height=height, font_scale=font_scale)

    with right:
        for note in state.notes:
            st.warning(note, icon=":material/build:")
        if mistakes:
            st.error(
                "**These settings do not work together:**\n\n" + "\n".join(f"- {p}" for p in mistakes)
                + "\n\nThe other pages keep your last working settings.",
                icon=":material/block:",
            )
        else:
            lesson = empty_bands_lesson(config)
            if lesson:
                st.info(f"**Lesson:** {lesson}", icon=":material/school:")
            frames = config.frames_for(n_samples)
            title = f"dB Mel spectrogram of “{clip.word}”: {{rows}} Mel bands × {{frames}} frames"
            if ss.get(HOVER):
                st.plotly_chart(
                    mel(display, title, MAIN_HEIGHT),
                    key="spec_main",
                    # No plotly mode bar on the picture redrawn at every slider move (hover, drag-to-zoom
                    # and double-click-to-reset still work): rebuilding it took ~75 of ~320 ms per key
                    # press in Chromium on the loaded 2-core machine (issue #12 profile).
                    config={"displayModeBar": False},
                )
            else:
                st.html(picture(key, waveform, display, title, font_scale=font_scale))
            cap, hover = st.columns([3, 1], vertical_alignment="center")
            cap.caption(
                f"`mel_db(waveform, config)`: `[1, {n_samples}]` → `[{config.n_mels}, {frames}]`. "
                "Colours are dB (10·log10 of the energy). The model then normalises each clip to zero mean "
                "and unit variance."
            )
            hover.toggle("Hover for values", key=HOVER, persist_state="session",
                         help="An interactive chart: point at a cell to read its time, band and dB, drag to zoom. "
                         "Each slider move then costs the browser about 1.6 times the work.")  # fmt: skip
        if numbers is not None:
            n = numbers
            # Two rows of three as three columns of two: 10 elements to send and redraw, not 14.
            cols = st.columns(3) * 2
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

    with st.expander("Look closer: the numbers behind the picture, default vs yours, the Mel filterbank, linear vs Mel, "
                     "sample rates", icon=":material/search:", key=LOOK, on_change="rerun") as closer:  # fmt: skip
        if closer.open:  # built when opened: a slider move does not redraw what nobody is looking at
            look_closer(key, waveform, config, display, ms, mel, numbers, bool(mistakes))
    code_view.show(lambda: snippets.spectrogram_code(config, clip.path, n_samples), key="spec_code")


def numbers_table(n, config: FeatureConfig) -> None:
    """The numbers behind the picture, each worked out (the Mel band centres listed on demand)."""
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
        with st.expander(f"All {len(centres)} Mel band centres", key="spec_centres", on_change="rerun") as listed:
            if listed.open:  # a table only when asked for: a slider move does not redraw it
                st.dataframe(
                    pd.DataFrame({"band": range(len(centres)), "centre (Hz)": [round(c, 1) for c in centres]}),
                    hide_index=True,
                    height=240,
                )


#: The "Look closer" tabs (inside the expander LOOK). The first (text only) is open at first: the
#: views with more figures are computed when their tab is opened.
VIEWS = ["The numbers behind the picture", "Default vs yours", "Mel filterbank", "Linear STFT vs Mel",
         "Sample rate: what M5 hears"]  # fmt: skip


def look_closer(key: ClipKey, waveform: torch.Tensor, config: FeatureConfig, display: FeatureConfig, ms: float,
                mel, numbers, mistakes: bool) -> None:  # fmt: skip
    """The numbers and the side views: only the open tab is computed (its figures from the shared caches)."""
    n_samples = waveform.shape[-1]
    views = st.tabs(VIEWS, key="spec_view", on_change="rerun")
    with views[0]:
        if views[0].open and numbers is not None:
            numbers_table(numbers, config)
    if mistakes:
        for view in views[1:]:
            if view.open:
                with view:
                    st.info("These views need settings that work together: see the error above.")
        return
    try:
        with views[1]:
            if views[1].open:
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
                short = {"torchaudio": "torchaudio's defaults", "classic": "Classic 40-band", "pinned": "Pinned"}[against]
                a.plotly_chart(
                    mel(default, f"{short}: {{rows}} × {{frames}} ({default.win_length * ms:g} ms window, "
                        f"{default.hop_length * ms:g} ms hop, n_fft {default.n_fft})"),
                    key="spec_default",
                )  # fmt: skip
                b.plotly_chart(
                    mel(display, f"Yours: {{rows}} × {{frames}} ({config.win_length * ms:g} ms window, "
                        f"{config.hop_length * ms:g} ms hop, n_fft {config.n_fft})"),
                    key="spec_yours",
                )  # fmt: skip
                changed = [
                    f"{k} {getattr(base, k)} → {getattr(config, k)}"
                    for k in ("n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "top_db", "window")
                    if getattr(base, k) != getattr(config, k)
                ]
                st.caption(f"Changed from {short.lower() if against != 'torchaudio' else short}: " + "; ".join(changed)
                           if changed else f"Your settings are {short.lower() if against != 'torchaudio' else short}.")  # fmt: skip
        with views[2]:
            if views[2].open:
                st.plotly_chart(plots.filterbank(config), key="spec_filterbank")
                st.caption(
                    "Each Mel band is a triangle that sums neighbouring FFT bins. Bands are narrow at low "
                    "frequencies (where we hear small pitch differences) and wide at high ones. A band "
                    "narrower than the bin spacing may fall between two bins and stay empty."
                )
        with views[3]:
            if views[3].open:
                a, b = st.columns(2)
                a.plotly_chart(
                    figure(key, waveform, display, "Linear STFT: {rows} bins × {frames} frames", kind="linear",
                           font_scale=plots.FONT_SCALE.get()),
                    key="spec_linear",
                )  # fmt: skip
                b.plotly_chart(mel(display, "Mel: {rows} bands × {frames} frames"), key="spec_mel_again")
                st.caption(
                    f"The Mel filterbank turns {config.n_freqs} equally spaced bins into {config.n_mels} bands: "
                    "low frequencies keep their detail, high ones are merged, and the picture becomes "
                    f"{config.n_freqs / config.n_mels:.1f}× smaller."
                )
        with views[4]:
            if views[4].open:
                rate = ui.kept(st.segmented_control, "Resample the clip to", key="spec_rate", default=8000,
                               options=list(SAMPLE_RATES), format_func=rate_label, required=True,
                               help="Every rate a raw-waveform model can listen at: listen to what each one keeps.")  # fmt: skip
                rate = int(rate or 8000)
                low, spec_low, cfg_low = resampled_spectrogram(waveform, display, rate, kind="linear")
                a, b = st.columns(2)
                with a:
                    st.plotly_chart(
                        figure(key, waveform, display, f"16 kHz: [1, {n_samples}] samples, 0 – 8 kHz", kind="linear",
                               font_scale=plots.FONT_SCALE.get()),
                        key="spec_16k",
                    )  # fmt: skip
                    clips.play(waveform, 16000)
                with b:
                    st.plotly_chart(
                        plots.linear_spectrogram(
                            spec_low, cfg_low, title=f"{rate_label(rate)}: [1, {low.shape[-1]}] samples, "
                            f"0 – {rate_label(rate / 2)}",
                            zrange=plots.z_range(spec_low, top_db=config.top_db), y_max=display.nyquist,
                        ),
                        key="spec_resampled",
                    )  # fmt: skip
                    clips.play(low, rate)
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


lab(clip, loaded[0], plots.FONT_SCALE.get())
