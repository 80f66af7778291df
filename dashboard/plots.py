"""Plotly figure builders shared by the pages: waveforms, spectrograms, filterbanks, dataset bars.

Every builder takes plain arrays/tensors plus the :class:`~kwscore.features.FeatureConfig` that made
them and returns a ``plotly.graph_objects.Figure`` with its axes in physical units (seconds, Hz,
dB). Arrays go to the browser as typed arrays, and evenly spaced axes as ``x0``/``dx`` rather than
a list of coordinates, so a figure stays small and quick to send.

Figures are built in one go from plain dicts (``go.Figure(data=[...], layout={...})``): plotly's
``update_layout`` / ``update_yaxes`` calls parse and validate every property path again, which cost
~12 ms per heatmap here against ~1 ms for the dicts, on every slider move.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
import torch

from kwscore.data.info import SPLITS, DatasetInfo
from kwscore.features import FeatureConfig, fft_bin_hz, mel_centre_hz, mel_filterbank

#: Magma (perceptually uniform: quiet is dark, loud is bright) spelled as ``rgb(...)`` stops.
#: Streamlit's plotly front end draws the darkest hex stop ``#000004`` as a pale pink, which paints
#: the quietest cells (the dB floor) almost white; rgb() strings render as intended.
SPEC_COLORSCALE = [
    [i / (len(pc.sequential.Magma) - 1), "rgb({}, {}, {})".format(*pc.hex_to_rgb(c))]
    for i, c in enumerate(pc.sequential.Magma)
]
ORIGINAL_COLOR = "#2563eb"
AUGMENTED_COLOR = "#ea580c"
MASK_COLOR = "#22d3ee"
SPLIT_COLORS = {"training": "#2563eb", "validation": "#f59e0b", "testing": "#10b981"}
#: Heatmaps larger than this are max-pooled along time before they are sent (a 2048-point FFT
#: with a 1-ms hop would otherwise ship a million cells for a picture 1000 pixels wide).
MAX_CELLS = 200_000


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _layout(*, title: str, height: int, x_title: str, y_title: str, **extra: object) -> dict:
    """The layout every figure shares: a left-aligned title, tight margins, axis titles."""
    xaxis = {"title": {"text": x_title} if x_title else None, **extra.pop("xaxis", {})}
    yaxis = {"title": {"text": y_title} if y_title else None, **extra.pop("yaxis", {})}
    return {
        "title": {"text": title, "font": {"size": 14}, "x": 0, "xanchor": "left"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "xaxis": {k: v for k, v in xaxis.items() if v is not None},
        "yaxis": {k: v for k, v in yaxis.items() if v is not None},
        "showlegend": False,
        **extra,
    }


def hz_label(hz: float) -> str:
    """``450 Hz`` / ``1.2 kHz``."""
    return f"{hz:.0f} Hz" if hz < 1000 else f"{hz / 1000:.1f} kHz"


# --------------------------------------------------------------------------------------------
# Waveforms
# --------------------------------------------------------------------------------------------


def waveform(
    samples: torch.Tensor | np.ndarray,
    sample_rate: int,
    *,
    title: str = "Waveform",
    color: str = ORIGINAL_COLOR,
    y_range: float | None = None,
    height: int = 220,
) -> go.Figure:
    """Amplitude against time (s). ``samples`` is ``[time]`` or ``[1, time]``; ``y_range`` ±limit."""
    y = _np(samples).reshape(-1)
    limit = y_range or max(float(np.abs(y).max()) if y.size else 0.0, 1e-3) * 1.05
    trace = {
        "type": "scatter",
        "y": y,
        "x0": 0.0,
        "dx": 1.0 / sample_rate,
        "mode": "lines",
        "line": {"width": 1, "color": color},
        "hovertemplate": "%{x:.4f} s<br>%{y:.4f}<extra></extra>",
    }
    layout = _layout(
        title=title,
        height=height,
        x_title="Time (s)",
        y_title="Amplitude",
        xaxis={"range": [0, max(y.size - 1, 1) / sample_rate]},
        yaxis={"range": [-limit, limit], "zeroline": True},
    )
    return go.Figure(data=[trace], layout=layout)


# --------------------------------------------------------------------------------------------
# Spectrograms
# --------------------------------------------------------------------------------------------


def _pool_time(z: np.ndarray, max_cells: int = MAX_CELLS) -> tuple[np.ndarray, int]:
    """Max-pool frames in groups of ``k`` until the heatmap has at most ``max_cells`` cells."""
    rows, frames = z.shape
    k = max(1, -(-rows * frames // max_cells))
    if k == 1:
        return z, 1
    pad = (-frames) % k
    if pad:
        z = np.concatenate([z, np.repeat(z[:, -1:], pad, axis=1)], axis=1)
    return z.reshape(rows, -1, k).max(axis=2), k


def z_range(*specs: torch.Tensor | np.ndarray, top_db: float | None = None) -> tuple[float, float]:
    """A colour range shared by several dB spectrograms: the loudest value down ``top_db`` dB."""
    hi = max(float(_np(s).max()) for s in specs)
    lo = min(float(_np(s).min()) for s in specs)
    return (max(lo, hi - top_db) if top_db else lo), hi


def _heatmap(
    z: np.ndarray,
    config: FeatureConfig,
    *,
    title: str,
    y0: float,
    dy: float,
    zrange: tuple[float, float] | None,
    colorbar_title: str,
    colorbar: bool,
    height: int,
    y_title: str,
    hover_y: str,
    yaxis: dict,
    shapes: list[dict] | None = None,
    annotations: list[dict] | None = None,
) -> go.Figure:
    z, k = _pool_time(z)
    dx = k * config.hop_length / config.sample_rate
    if k > 1:
        title += f" <span style='font-size:11px'>(shown as the max of every {k} frames)</span>"
    zmin, zmax = zrange if zrange else (float(z.min()), float(z.max()))
    trace = {
        "type": "heatmap",
        "z": z,
        "x0": 0.0,
        "dx": dx,
        "y0": y0,
        "dy": dy,
        "zmin": zmin,
        "zmax": zmax,
        "colorscale": SPEC_COLORSCALE,
        "showscale": colorbar,
        "colorbar": {"title": {"text": colorbar_title, "side": "right"}, "thickness": 12},
        "hovertemplate": f"%{{x:.3f}} s<br>{hover_y}<br>%{{z:.1f}} {colorbar_title}<extra></extra>",
    }
    layout = _layout(
        title=title,
        height=height,
        x_title="Time (s)",
        y_title=y_title,
        xaxis={"range": [-dx / 2, (z.shape[1] - 0.5) * dx]},
        yaxis=yaxis,
        shapes=shapes or [],
        annotations=annotations or [],
    )
    return go.Figure(data=[trace], layout=layout)


def mel_spectrogram(
    spec: torch.Tensor | np.ndarray,
    config: FeatureConfig,
    *,
    title: str = "dB Mel spectrogram",
    zrange: tuple[float, float] | None = None,
    colorbar_title: str = "dB",
    height: int = 320,
    n_ticks: int = 7,
    compact: bool = False,
    colorbar: bool = True,
    masks: dict | None = None,
) -> go.Figure:
    """A ``[n_mels, frames]`` Mel spectrogram: one row per band, ticks at band centres in Hz.

    Ticks read ``band · centre`` (``compact``: the centre only, for narrow columns). ``masks`` is
    :func:`kwscore.augment.spec_augment`'s record: its masks are outlined (see :func:`mask_shapes`).
    """
    z = _np(spec)
    n_mels = z.shape[0]
    centres = mel_centre_hz(config) if config.n_mels == n_mels else None
    ticks = sorted({int(round(v)) for v in np.linspace(0, n_mels - 1, min(n_ticks, n_mels))})
    if centres is None:
        text = [str(i) for i in ticks]
    elif compact:
        text = [hz_label(centres[i]) for i in ticks]
    else:
        text = [f"{i} · {hz_label(centres[i])}" for i in ticks]
    shapes, notes = mask_shapes(masks, config, z.shape[1])
    return _heatmap(
        z,
        config,
        title=title,
        y0=0,
        dy=1,
        zrange=zrange,
        colorbar_title=colorbar_title,
        colorbar=colorbar,
        height=height,
        y_title="" if compact else "Mel band (centre frequency)",
        hover_y="Mel band %{y}",
        yaxis={"tickvals": ticks, "ticktext": text, "range": [-0.5, n_mels - 0.5]},
        shapes=shapes,
        annotations=notes,
    )


def linear_spectrogram(
    spec: torch.Tensor | np.ndarray,
    config: FeatureConfig,
    *,
    title: str = "dB spectrogram (linear frequency)",
    zrange: tuple[float, float] | None = None,
    colorbar_title: str = "dB",
    y_max: float | None = None,
    height: int = 320,
) -> go.Figure:
    """A ``[n_freqs, frames]`` STFT spectrogram with a frequency axis in Hz (0 to ``y_max``)."""
    dy = config.sample_rate / config.n_fft
    top = y_max or config.nyquist
    shapes, notes = [], []
    if top > config.nyquist + dy:  # e.g. 8 kHz audio on a 0-8 kHz axis: show what is gone
        shapes.append({"type": "rect", "xref": "x domain", "x0": 0, "x1": 1, "y0": config.nyquist, "y1": top,
                       "fillcolor": "#e5e7eb", "line": {"width": 0}, "layer": "below"})  # fmt: skip
        notes.append({"xref": "x domain", "x": 0.01, "y": top, "yanchor": "top", "xanchor": "left", "showarrow": False,
                      "text": f"nothing above {hz_label(config.nyquist)} (Nyquist of {config.sample_rate} Hz)",
                      "font": {"size": 11, "color": "#4b5563"}})  # fmt: skip
    return _heatmap(
        _np(spec),
        config,
        title=title,
        y0=0.0,
        dy=dy,
        zrange=zrange,
        colorbar_title=colorbar_title,
        colorbar=True,
        height=height,
        y_title="Frequency (Hz)",
        hover_y="%{y:.0f} Hz",
        yaxis={"range": [-dy / 2, top]},
        shapes=shapes,
        annotations=notes,
    )


def mask_shapes(record: dict | None, config: FeatureConfig, n_frames: int) -> tuple[list[dict], list[dict]]:
    """Rectangles outlining SpecAugment's masks (from :func:`kwscore.augment.spec_augment`'s
    record, in Mel bands and frames) on a Mel heatmap, and a note for the time warp."""
    if not record or not record.get("applied"):
        return [], []
    dx = config.hop_length / config.sample_rate
    style = {"type": "rect", "line": {"color": MASK_COLOR, "width": 2}, "fillcolor": "rgba(34, 211, 238, 0.12)",
             "layer": "above"}  # fmt: skip
    shapes = [
        {**style, "x0": -dx / 2, "x1": (n_frames - 0.5) * dx, "y0": start - 0.5, "y1": start + width - 0.5}
        for start, width in record.get("freq_masks", [])
        if width > 0
    ]
    shapes += [
        {**style, "x0": (start - 0.5) * dx, "x1": (start + width - 0.5) * dx, "yref": "y domain", "y0": 0, "y1": 1}
        for start, width in record.get("time_masks", [])
        if width > 0
    ]
    notes = []
    warp = record.get("time_warp")
    if warp and warp[1]:
        w0, d = warp
        x = (w0 + d) * dx
        shapes.append({"type": "line", "x0": x, "x1": x, "yref": "y domain", "y0": 0, "y1": 1,
                       "line": {"color": "white", "width": 2, "dash": "dot"}})  # fmt: skip
        notes.append({"x": x, "yref": "y domain", "y": 1.0, "text": f"warp: frame {w0} → {w0 + d}", "showarrow": False,
                      "font": {"color": "white", "size": 11}, "xanchor": "left", "yanchor": "top"})  # fmt: skip
    return shapes, notes


# --------------------------------------------------------------------------------------------
# The Mel filterbank
# --------------------------------------------------------------------------------------------


def filterbank(config: FeatureConfig, *, height: int = 340) -> go.Figure:
    """The triangular Mel filters over frequency, with the FFT bins they sum as ticks below."""
    fb = mel_filterbank(config).numpy()  # [n_freqs, n_mels]
    freqs = fft_bin_hz(config)
    empty = int((fb.sum(axis=0) == 0).sum())
    traces: list[tuple[list, list]] = [([], []), ([], [])]
    for m in range(fb.shape[1]):
        nz = np.flatnonzero(fb[:, m])
        if nz.size == 0:
            continue
        seg = np.arange(max(nz[0] - 1, 0), min(nz[-1] + 2, fb.shape[0]))
        xs, ys = traces[m % 2]
        xs.extend([*freqs[seg].tolist(), None])
        ys.extend([*fb[seg, m].tolist(), None])
    data: list[dict] = [
        {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "line": {"width": 1.5, "color": color},
         "hoverinfo": "skip"}
        for (xs, ys), color in zip(traces, ["#2563eb", "#ea580c"], strict=True)
    ]  # fmt: skip
    data.append(
        {
            "type": "scatter",
            "x": freqs,
            "y": np.full(freqs.shape, -0.06),
            "mode": "markers",
            "marker": {"symbol": "line-ns-open", "size": 7, "color": "#6b7280"},
            "hovertemplate": "FFT bin %{pointNumber}: %{x:.1f} Hz<extra></extra>",
        }
    )
    title = (
        f"{config.n_mels} triangular Mel filters over {config.n_freqs} FFT bins "
        f"({config.sample_rate / config.n_fft:g} Hz apart, grey ticks)"
    )
    if empty:
        title += f" — {empty} filter(s) catch no bin"
    layout = _layout(
        title=title,
        height=height,
        x_title="Frequency (Hz)",
        y_title="Weight",
        xaxis={"range": [0, config.nyquist]},
        yaxis={"range": [-0.12, 1.05]},
    )
    return go.Figure(data=data, layout=layout)


# --------------------------------------------------------------------------------------------
# Dataset charts
# --------------------------------------------------------------------------------------------


def clips_per_word(info: DatasetInfo, words: Sequence[str] | None = None, *, height: int = 300) -> go.Figure:
    """Grouped bars: clips of each word in each split."""
    words = list(words or info.words)
    data = [
        {"type": "bar", "name": s, "x": words, "y": [info.clips[s][w] for w in words], "marker": {"color": SPLIT_COLORS[s]}}
        for s in SPLITS
    ]
    layout = _layout(
        title="Clips per word and split",
        height=height,
        x_title="",
        y_title="Clips",
        barmode="group",
        bargap=0.15,
    )
    layout.update(showlegend=True, legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    return go.Figure(data=data, layout=layout)


def speakers_per_split(info: DatasetInfo, *, height: int = 300) -> go.Figure:
    """Bars: how many different speakers each split holds (they never overlap)."""
    counts = [len(info.speakers[s]) for s in SPLITS]
    trace = {
        "type": "bar",
        "x": list(SPLITS),
        "y": counts,
        "text": counts,
        "textposition": "auto",
        "marker": {"color": [SPLIT_COLORS[s] for s in SPLITS]},
    }
    layout = _layout(title="Speakers per split", height=height, x_title="", y_title="Speakers")
    return go.Figure(data=[trace], layout=layout)
