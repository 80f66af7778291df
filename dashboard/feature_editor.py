"""The front-end editor: one set of widgets for a :class:`FeatureConfig`, shared by the Spectrogram
lab and the Train page.

Two steps, so that a page can show the *current* settings before the widgets are drawn (a panel
title that lags one edit behind is confusing)::

    editor = FeatureEditor("spec")
    state = editor.read(free=False)        # widget values -> a (repaired) config, with notes
    ...                                    # draw a title from state.config
    config = editor.draw(state)            # the widgets; returns what they hold now

The carried config (:func:`feature_config`, ``st.session_state["feature_config"]``) fills the
widgets whenever it changed elsewhere (the other page, a preset button); valid settings are written
back to it, so both pages agree. Other pages read it with :func:`feature_config`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import streamlit as st

from kwscore.errors import KwsError
from kwscore.features import (
    FEATURE_PRESETS,
    MAX_F_MIN,
    MIN_HOP_LENGTH,
    MIN_WIN_LENGTH,
    N_FFT_RANGE,
    N_MELS_RANGE,
    PRESET_TITLES,
    TOP_DB_RANGE,
    WINDOWS,
    FeatureConfig,
    SliderRanges,
    TeachingNumbers,
    empty_bands_lesson,
    preset_name,
    teaching_numbers,
    valid_choices,
)

#: Session-state key of the carried settings, ``FeatureConfig.to_dict()``.
FEATURE_KEY = "feature_config"

#: FeatureConfig field -> widget key suffix (the Spectrogram lab's keys are ``spec_<suffix>``).
FIELDS = {
    "n_fft": "n_fft",
    "win_length": "win",
    "hop_length": "hop",
    "n_mels": "n_mels",
    "f_min": "f_min",
    "f_max": "f_max",
    "top_db": "top_db",
    "window": "window",
}
F_STEP = 10  #: f_min / f_max slider step, Hz
CAST = {"f_min": float, "f_max": float, "top_db": float, "window": str}


def widget_values(c: FeatureConfig) -> dict[str, object]:
    """A config as the widgets hold it (whole Hz, whole dB)."""
    return {
        "n_fft": c.n_fft,
        "win_length": c.win_length,
        "hop_length": c.hop_length,
        "n_mels": c.n_mels,
        "f_min": int(round(c.f_min)),
        "f_max": int(round(c.f_max_hz)),
        "top_db": int(round(c.top_db if c.top_db is not None else TOP_DB_RANGE[1])),
        "window": c.window,
    }


def _set(key: str, value: object) -> None:
    """Write a widget's value only when it differs: a written value is sent again with the widget
    (``set_value``) and re-applied by the browser on every rerun, which costs redraws."""
    ss = st.session_state
    if key not in ss or ss[key] != value:
        ss[key] = value


def feature_config() -> FeatureConfig:
    """The front end chosen in the Spectrogram lab or on Train (the default FeatureConfig until then)."""
    data = st.session_state.get(FEATURE_KEY)
    if data:
        try:
            config = FeatureConfig.from_dict(data)
        except (KwsError, TypeError):
            return FeatureConfig()  # a stale or hand-edited value: fall back to the default
        if not problems(config):
            return config
    return FeatureConfig()


def set_feature_config(config: FeatureConfig) -> None:
    st.session_state[FEATURE_KEY] = config.to_dict()


@functools.lru_cache(maxsize=512)
def problems(config: FeatureConfig) -> tuple[str, ...]:
    """``config.problems()``, cached per config (it builds a Mel filterbank: ~0.5 ms each time)."""
    return tuple(config.problems())


@functools.lru_cache(maxsize=256)
def teaching(config: FeatureConfig) -> TeachingNumbers:
    """:func:`kwscore.features.teaching_numbers` for a 1-s clip, cached per config."""
    return teaching_numbers(config)


@functools.lru_cache(maxsize=256)
def slider_ranges(config: FeatureConfig) -> SliderRanges:
    """:func:`kwscore.features.valid_choices`, cached per config."""
    return valid_choices(config)


def fit_feature_config(config: FeatureConfig) -> tuple[FeatureConfig, list[str]]:
    """Make the smallest changes that turn ``config`` valid, each explained in a sentence.

    Only ``n_fft`` can break the others: a window longer than the FFT is shortened, then the hop.
    Empty Mel bands are never "repaired" (128 bands stay 128): the editor explains them instead.
    """
    notes: list[str] = []
    c = config
    if c.win_length > c.n_fft:
        notes.append(
            f"An n_fft of {c.n_fft} cannot hold a {c.win_length}-sample window: the window was "
            f"shortened to {c.n_fft} samples ({1000 * c.n_fft / c.sample_rate:g} ms)."
        )
        c = replace(c, win_length=c.n_fft)
    if c.hop_length > c.win_length:
        notes.append(f"The hop was shortened to the window, {c.win_length} samples: a longer hop would skip audio.")
        c = replace(c, hop_length=c.win_length)
    return c, notes


def describe(c: FeatureConfig) -> str:
    """``128 Mel bands × 81 frames (window 25 ms, hop 12.5 ms, n_fft 400)``: a one-line summary."""
    ms = 1000 / c.sample_rate
    return (
        f"{c.n_mels} Mel bands × {c.frames_for(c.sample_rate)} frames (window {c.win_length * ms:g} ms, "
        f"hop {c.hop_length * ms:g} ms, n_fft {c.n_fft})"
    )


def preset_title(c: FeatureConfig) -> str:
    name = preset_name(c)
    return PRESET_TITLES[name] if name else "your own settings"


@dataclass
class EditorState:
    """What the widgets hold, read before they are drawn."""

    config: FeatureConfig  #: the (repaired, unless free) settings
    notes: list[str] = field(default_factory=list)  #: repairs made, one sentence each
    problems: list[str] = field(default_factory=list)  #: mistakes left (free mode), one sentence each
    free: bool = False

    @property
    def lesson(self) -> str | None:
        """The empty-band lesson for these settings (None when every band catches a bin)."""
        return None if self.problems else empty_bands_lesson(self.config)


class FeatureEditor:
    """Widgets for a FeatureConfig under keys ``<prefix>_<field>`` (see :data:`FIELDS`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.keys = {name: f"{prefix}_{suffix}" for name, suffix in FIELDS.items()}
        self.synced = f"_{prefix}_fe_synced"
        self.ranges = f"_{prefix}_fe_ranges"  #: widget key -> (lo, hi) of the slider drawn last

    # -- state --------------------------------------------------------------------------------
    def _from_widgets(self, base: FeatureConfig) -> FeatureConfig:
        ss = st.session_state
        return replace(base, **{name: CAST.get(name, int)(ss[key]) for name, key in self.keys.items()})

    def _write(self, c: FeatureConfig) -> None:
        for name, value in widget_values(c).items():
            _set(self.keys[name], value)

    def read(self, free: bool = False) -> EditorState:
        """The settings the widgets hold (filled from the carried config when it changed elsewhere),
        repaired unless ``free``; repaired values are written back to the widgets."""
        ss = st.session_state
        carried = feature_config()
        if ss.get(self.synced) != carried.to_dict() or any(k not in ss for k in self.keys.values()):
            self._write(carried)  # first visit, the other page, or a preset: refill the widgets
            ss[self.synced] = carried.to_dict()
        candidate = self._from_widgets(carried)
        config, notes = (candidate, []) if free else fit_feature_config(candidate)
        self._write(config)
        return EditorState(config, notes, list(problems(config)), free)

    def load_preset(self, name: str) -> None:
        """Button callback: the named preset becomes the carried config (the widgets refill)."""
        set_feature_config(FEATURE_PRESETS[name])
        st.session_state.pop(self.synced, None)

    # -- widgets ------------------------------------------------------------------------------
    def _slider(self, label: str, name: str, lo: int, hi: int, step: int, help: str) -> None:
        """An int slider, or a line of text when only one value fits (a slider needs lo < hi)."""
        ss, key = st.session_state, self.keys[name]
        drawn = ss.setdefault(self.ranges, {})
        if lo >= hi:
            _set(key, lo)
            drawn.pop(key, None)
            st.markdown(f"{label}  \n:gray[only {lo} fits the other settings]")
            return
        # When lo/hi move, Streamlit sees a new widget, which would otherwise start again at its
        # default (lo) instead of the value the student chose: then the value is written again.
        value = min(max(int(ss[key]), lo), hi)
        if drawn.get(key) != (lo, hi):
            ss[key] = value
            drawn[key] = (lo, hi)
        else:
            _set(key, value)
        st.slider(label, min_value=lo, max_value=hi, step=step, key=key, help=help)

    def draw(self, state: EditorState, *, presets: bool = True, heading: str = "") -> FeatureConfig:
        """Draw the widgets for ``state`` (under ``heading``, markdown); return the config they hold afterwards."""
        c, ss = state.config, st.session_state
        ms = 1000.0 / c.sample_rate
        if state.free or state.problems:  # full ranges: every combination can be tried
            win_hi = hop_hi = N_FFT_RANGE[1]
            fmin_hi, fmax_lo = int(MAX_F_MIN), F_STEP
        else:
            r = slider_ranges(c)
            win_hi, hop_hi = r.win_length[1], r.hop_length[1]
            fmin_hi = int(r.f_min[1]) // F_STEP * F_STEP
            fmax_lo = -(-int(r.f_max[0]) // F_STEP) * F_STEP
        if heading:  # one element with the "Now:" line: fewer to send and redraw on every move
            st.markdown(heading + (f"  \n:small[:gray[Now: **{preset_title(c)}**. Start from:]]" if presets else ""))
        elif presets:
            st.caption(f"Now: **{preset_title(c)}**. Start from:")
        if presets:
            for name, text in (("torchaudio", "torchaudio's defaults"), ("classic", "Classic 40-band")):
                st.button(text, key=f"{self.prefix}_preset_{name}", on_click=self.load_preset, args=(name,),
                          width="stretch", help=PRESET_TITLES[name], disabled=preset_name(c) == name)  # fmt: skip
        power2 = c.n_fft & (c.n_fft - 1) == 0
        # Written on every run, unlike the sliders: with the value sent along, a number input that the
        # browser draws afresh starts from it. Without it, it started from its minimum (16) and sent
        # that back, which bench_classroom caught under load: n_fft 16 on the next slider move.
        ss[self.keys["n_fft"]] = min(max(int(ss[self.keys["n_fft"]]), N_FFT_RANGE[0]), N_FFT_RANGE[1])
        st.number_input(
            f"n_fft: {c.n_fft}-point FFT → {c.n_freqs} bins",
            min_value=N_FFT_RANGE[0], max_value=N_FFT_RANGE[1], step=1, key=self.keys["n_fft"],
            help="Points per FFT: any whole number. Powers of two (256, 512…) are fastest; torchaudio's "
            "default is 400. The window is zero-padded up to n_fft.",
        )  # fmt: skip
        st.caption(
            f":material/bolt: {c.n_fft} is a power of two: the fastest FFT size."
            if power2
            else f"{c.n_fft} is not a power of two: it works, the FFT is a little slower "
            f"(nearest powers: {1 << (c.n_fft.bit_length() - 1)} and {1 << c.n_fft.bit_length()})."
        )
        self._slider(f"win_length: {c.win_length} samples = {c.win_length * ms:g} ms", "win_length",
                     MIN_WIN_LENGTH, win_hi, 1, "Samples per analysis window (at most n_fft). Long windows "
                     "resolve pitch harmonics; short ones follow fast changes. Arrow keys move one sample.")  # fmt: skip
        self._slider(f"hop_length: {c.hop_length} samples = {c.hop_length * ms:g} ms", "hop_length",
                     MIN_HOP_LENGTH, hop_hi, 1, "Samples from one window to the next (at most the window, "
                     "so no audio is skipped). torchaudio's default is half the window.")  # fmt: skip
        self._slider(f"n_mels: {c.n_mels} Mel bands", "n_mels", N_MELS_RANGE[0], N_MELS_RANGE[1], 1,
                     "Rows of the picture. Too many for a small n_fft and some bands catch no FFT bin at all "
                     "(torchaudio's default 128 at n_fft 400 leaves a few empty).")  # fmt: skip
        self._slider(f"f_min: Mel scale from {c.f_min:g} Hz", "f_min", 0, max(F_STEP, fmin_hi), F_STEP,
                     "Bottom of the Mel scale: torchaudio uses 0 Hz, the classic KWS front end 20 Hz.")  # fmt: skip
        self._slider(f"f_max: Mel scale up to {c.f_max_hz:g} Hz", "f_max", min(fmax_lo, int(c.nyquist) - F_STEP),
                     int(c.nyquist), F_STEP, "Top of the Mel scale. 8 kHz is the Nyquist frequency of 16 kHz audio.")  # fmt: skip
        self._slider(f"top_db: keep {c.top_db:g} dB below the peak", "top_db", int(TOP_DB_RANGE[0]),
                     int(TOP_DB_RANGE[1]), 5, "Everything quieter than the loudest value minus top_db is floored there.")  # fmt: skip
        st.radio("Window function", list(WINDOWS), key=self.keys["window"], horizontal=True)
        now = self._from_widgets(c)
        if not problems(now):
            set_feature_config(now)  # carried to the other pages (only valid settings are)
            ss[self.synced] = now.to_dict()
        return now

