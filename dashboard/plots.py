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

import contextvars
from collections.abc import Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
import torch

from kwscore.data.dataset import SUBSETS
from kwscore.data.info import DatasetInfo
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
#: One colour per split, on every page and plot (bars of clips, curves of a single run, test results).
SPLIT_COLORS = {"training": "#2563eb", "validation": "#f59e0b", "testing": "#10b981"}
#: Text size factor of every figure: 1 on a laptop, larger in projector mode (``dashboard.style``).
#: A context variable, so that one browser session's projector mode never reaches another's.
FONT_SCALE: contextvars.ContextVar[float] = contextvars.ContextVar("kws_font_scale", default=1.0)


def font(size: float) -> int:
    """A font size in px, scaled for projector mode."""
    return round(size * FONT_SCALE.get())
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
        "title": {"text": title, "font": {"size": font(14)}, "x": 0, "xanchor": "left"},
        "font": {"size": font(12)},
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


def _mel_ticks(config: FeatureConfig, n_mels: int, n_ticks: int = 7, compact: bool = False) -> tuple[list[int], list[str]]:
    """Band rows to label on a Mel axis and their labels, ``band · centre`` (``compact``: the centre)."""
    centres = mel_centre_hz(config) if config.n_mels == n_mels else None
    ticks = sorted({int(round(v)) for v in np.linspace(0, n_mels - 1, min(n_ticks, n_mels))})
    if centres is None:
        return ticks, [str(i) for i in ticks]
    if compact:
        return ticks, [hz_label(centres[i]) for i in ticks]
    return ticks, [f"{i} · {hz_label(centres[i])}" for i in ticks]


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
    ticks, text = _mel_ticks(config, n_mels, n_ticks, compact)
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


#: 256 colours of :data:`SPEC_COLORSCALE` (Magma) for pictures drawn as images (:func:`mel_picture`).
SPEC_LUT = np.stack([
    np.interp(np.linspace(0, 1, 256), [stop for stop, _ in SPEC_COLORSCALE],
              [pc.unlabel_rgb(colour)[channel] for _, colour in SPEC_COLORSCALE])
    for channel in range(3)
], axis=1).round().astype(np.uint8)  # fmt: skip
#: A picture (:func:`mel_picture`) keeps at most this many frames (more are max-pooled): a screen is
#: about this many pixels wide.
PICTURE_FRAMES = 1000


def _nice_ticks(lo: float, hi: float, steps: Sequence[float], most: int = 6) -> list[float]:
    """Round values between ``lo`` and ``hi``: the first of ``steps`` that gives at most ``most``."""
    step = next((s for s in steps if (hi - lo) / s <= most), steps[-1])
    first = np.ceil(lo / step - 1e-9) * step
    return [round(v, 6) + 0.0 for v in np.arange(first, hi + 1e-9, step)]  # + 0.0: never "-0"


def mel_picture(spec: torch.Tensor | np.ndarray, config: FeatureConfig, *, title: str, zrange: tuple[float, float],
                height: int = 380, key: str = "picture") -> str:  # fmt: skip
    """The same dB Mel spectrogram as :func:`mel_spectrogram`, as a light HTML picture for ``st.html``.

    One PNG (a pixel per band and frame, scaled up without smoothing) with its axes, colour bar and
    title as a few positioned HTML elements: about 30 elements for the browser to redraw against
    plotly's several hundred. A Spectrogram-lab key press cost Chromium 190 ms of CPU with it and
    310 ms with the plotly chart (``benchmarks/bench_pages.py``, one run), which 30 tabs on one class
    server feel (issue #12). No hover: the page offers the plotly figure for that. The wrapper carries ``data-key``,
    ``data-shape`` (bands × frames before pooling) and ``data-db`` (the lowest and highest dB value).
    """
    import base64
    import html
    import io

    from PIL import Image

    raw = _np(spec)
    n_mels, n_frames = raw.shape
    z, k = _pool_time(raw, n_mels * PICTURE_FRAMES)
    lo, hi = zrange
    level = np.clip((z - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    rgb = SPEC_LUT[np.round(level[::-1] * 255).astype(np.int64)]  # band 0 at the bottom
    png = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(png, format="PNG", compress_level=1)
    src = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()

    seconds = n_frames * config.hop_length / config.sample_rate  # each frame a cell centred on its time
    dx = config.hop_length / config.sample_rate
    x_left, x_span = -dx / 2, seconds
    band_rows, band_text = _mel_ticks(config, n_mels)
    label = max((len(t) for t in band_text), default=2)
    small, big = font(12), font(14)

    def at(pos: str, percent: float, text: str, extra: str = "") -> str:
        shift = "translateY(50%)" if pos == "bottom" else "translateX(-50%)"
        return (f'<span style="position:absolute;{pos}:{percent:.3f}%;transform:{shift};white-space:nowrap;'
                f'{extra}">{html.escape(text)}</span>')  # fmt: skip

    y_labels = "".join(at("bottom", 100 * (r + 0.5) / n_mels, t, "right:4px") for r, t in zip(band_rows, band_text, strict=True))
    x_labels = "".join(at("left", 100 * (t - x_left) / x_span, f"{t:g}") for t in
                       _nice_ticks(0.0, seconds, [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10]) if t <= x_left + x_span)  # fmt: skip
    db_labels = "".join(at("bottom", 100 * (v - lo) / max(hi - lo, 1e-9), f"{v:g}", "left:16px") for v in
                        _nice_ticks(lo, hi, [1, 2, 5, 10, 20, 25, 50, 100]))  # fmt: skip
    stops = ", ".join(f"{colour} {100 * stop:.1f}%" for stop, colour in SPEC_COLORSCALE)
    pooled = (f" <span style='font-size:{font(11)}px'>(shown as the max of every {k} frames)</span>" if k > 1 else "")
    plot_h = max(height - 40 - 2 * round(small * 1.5), 80)
    cell = "position:relative"
    return (
        f'<div class="kws-picture" data-key="{html.escape(key)}" data-shape="{n_mels}x{n_frames}" '
        f'data-db="{float(raw.min()):.3f},{float(raw.max()):.3f}" style="font-size:{small}px;line-height:1.2;'
        f'color:rgb(42,63,95)">'
        f'<div class="kws-title" style="font-size:{big}px;margin:4px 0 10px;color:rgb(42,63,95)">{html.escape(title)}{pooled}</div>'
        f'<div style="display:grid;grid-template-columns:{round(small * 1.4)}px {label * 0.62:.1f}em 1fr 62px;'
        f'grid-template-rows:{plot_h}px {round(small * 1.6)}px auto">'
        f'<div style="writing-mode:vertical-rl;transform:rotate(180deg);text-align:center;white-space:nowrap">'
        f"Mel band (centre frequency)</div>"
        f'<div style="{cell}">{y_labels}</div>'
        f'<img src="{src}" alt="{html.escape(title)}" title="{n_mels} Mel bands × {n_frames} frames" '
        f'style="width:100%;height:{plot_h}px;display:block;image-rendering:pixelated">'
        f'<div style="{cell};margin-left:8px"><div style="position:absolute;left:0;top:0;bottom:0;width:12px;'
        f'background:linear-gradient(to top, {stops})"></div>{db_labels}'
        f'<span style="position:absolute;left:0;top:-1.5em">dB</span></div>'
        f'<div></div><div></div><div style="{cell}">{x_labels}</div><div></div>'
        f'<div></div><div></div><div style="text-align:center">Time (s)</div><div></div>'
        "</div></div>"
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
                      "font": {"size": font(11), "color": "#4b5563"}})  # fmt: skip
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
        for s in SUBSETS
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
    counts = [len(info.speakers[s]) for s in SUBSETS]
    trace = {
        "type": "bar",
        "x": list(SUBSETS),
        "y": counts,
        "text": counts,
        "textposition": "auto",
        "marker": {"color": [SPLIT_COLORS[s] for s in SUBSETS]},
    }
    layout = _layout(title="Speakers per split", height=height, x_title="", y_title="Speakers")
    return go.Figure(data=[trace], layout=layout)


# --------------------------------------------------------------------------------------------
# Training runs: curves, confusion matrix, per-class accuracy, experiments
# --------------------------------------------------------------------------------------------

#: One colour per run in overlays (colour-blind-friendly Okabe–Ito order, then Plotly's).
RUN_COLORS = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#db2777", "#ca8a04", "#0891b2", "#4b5563",
              "#65a30d", "#b91c1c"]  # fmt: skip
#: Blues as ``rgb(...)`` stops (see SPEC_COLORSCALE for why not hex): white = 0, dark blue = all.
CONFUSION_COLORSCALE = [[i / (len(pc.sequential.Blues) - 1), c] for i, c in enumerate(pc.sequential.Blues)]
#: Test accuracy vs fraction: a fixed colour for each augmentation setting.
AUGMENT_COLORS = {"off": "#6b7280", "on": "#ea580c"}


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def _legend(layout: dict, show: bool, n_items: int = 2, per_row: int = 2) -> dict:
    """A horizontal legend at the bottom of the figure, below the x-axis title (room made for it)."""
    if show:
        rows = -(-n_items // per_row)
        layout.update(showlegend=True, legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom",
                                               "x": 0, "xanchor": "left", "font": {"size": font(12)}})  # fmt: skip
        layout["margin"] = {**layout["margin"], "b": font(50) + font(20) * rows}
        layout["height"] = layout["height"] + font(20) * rows
    return layout


def loss_curves(
    runs: Sequence[dict], *, title: str = "Training loss vs iteration", height: int = 300, x_max: int | None = None
) -> go.Figure:
    """Training loss against the optimiser step, one line per run.

    ``runs``: dicts with ``label``, ``color``, ``iterations`` (metrics.jsonl iteration records:
    ``step``, ``loss``, ``epoch``) and optionally ``epochs`` (their ``val_loss`` is drawn as dots
    at the step where each epoch ended, when only one run is shown). ``x_max``: fix the axis to the run's total steps (a live run fills it).
    """
    data: list[dict] = []
    single = len(runs) == 1
    for run in runs:
        its = run.get("iterations") or []
        data.append({
            "type": "scatter", "mode": "lines", "name": run["label"], "legendgroup": run["label"],
            "x": [r["step"] for r in its], "y": [r["loss"] for r in its],
            "line": {"width": 1.6, "color": run["color"]},
            "customdata": [r.get("epoch") for r in its],
            "hovertemplate": "step %{x} (epoch %{customdata})<br>loss %{y:.3f}<extra>" + run["label"] + "</extra>",
        })  # fmt: skip
        epochs = [e for e in run.get("epochs") or [] if e.get("val_loss") is not None]
        if single and epochs:
            data.append({
                "type": "scatter", "mode": "markers", "name": "validation loss (per epoch)",
                "x": [e["step"] for e in epochs], "y": [e["val_loss"] for e in epochs],
                "marker": {"size": 7, "color": SPLIT_COLORS["validation"], "symbol": "diamond"},
                "hovertemplate": "end of epoch %{customdata}<br>validation loss %{y:.3f}<extra></extra>",
                "customdata": [e["epoch"] for e in epochs],
            })  # fmt: skip
    layout = _layout(title=title, height=height, x_title="Iteration (optimiser step)", y_title="Cross-entropy loss",
                     yaxis={"rangemode": "tozero"}, xaxis={"range": [0, x_max]} if x_max else {})  # fmt: skip
    if single and len(data) > 1:
        data[0]["name"] = "training loss (mean of recent batches)"
        data[0]["line"]["color"] = SPLIT_COLORS["training"]
    return go.Figure(data=data, layout=_legend(layout, len(data) > 1, len(data)))


def accuracy_curves(
    runs: Sequence[dict], *, title: str = "Validation accuracy vs epoch", height: int = 300, x_max: int | None = None
) -> go.Figure:
    """Validation accuracy (%) after each epoch, one line per run; the best epoch is starred.

    ``runs``: dicts with ``label``, ``color`` and ``epochs`` (metrics.jsonl epoch records).
    ``x_max``: fix the axis to the run's planned epochs (a live run fills it).
    """
    data: list[dict] = []
    longest = max(1, x_max or 1)
    if len(runs) == 1:  # one run: its validation curve in the validation split's colour
        runs = [{**runs[0], "color": SPLIT_COLORS["validation"]}]
    for run in runs:
        epochs = run.get("epochs") or []
        longest = max(longest, len(epochs))
        acc = [100 * e["val_accuracy"] for e in epochs]
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": run["label"], "legendgroup": run["label"],
            "x": [e["epoch"] for e in epochs], "y": acc, "line": {"width": 2, "color": run["color"]},
            "marker": {"size": 5}, "hovertemplate": "epoch %{x}<br>%{y:.1f} %<extra>" + run["label"] + "</extra>",
        })  # fmt: skip
        if acc:
            best = int(np.argmax(acc))
            data.append({
                "type": "scatter", "mode": "markers", "x": [epochs[best]["epoch"]], "y": [acc[best]],
                "marker": {"size": 13, "symbol": "star", "color": run["color"], "line": {"width": 1, "color": "white"}},
                "legendgroup": run["label"], "showlegend": False,
                "hovertemplate": "best: epoch %{x}, %{y:.1f} %<extra>" + run["label"] + "</extra>",
            })  # fmt: skip
    layout = _layout(
        title=title, height=height, x_title="Epoch", y_title="Validation accuracy (%)",
        yaxis={"range": [0, 101], "ticksuffix": " %"},
        xaxis={"range": [0.5, longest + 0.5], "dtick": max(1, round(longest / 10))},
    )  # fmt: skip
    return go.Figure(data=data, layout=_legend(layout, len(runs) > 1, len(runs)))


def confusion_matrix(confusion: Sequence[Sequence[int]], labels: Sequence[str], *, height: int = 460) -> go.Figure:
    """The test-set confusion matrix: rows = true word, columns = predicted word, counts written in.

    Colour is the share of the row (so every word is judged on its own, whatever its clip count);
    the diagonal holds the correct answers.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    labels = list(labels)
    n = len(labels)
    text = [[str(v) if v else "" for v in row] for row in counts.tolist()]
    trace = {
        "type": "heatmap", "z": share, "x": labels, "y": labels, "zmin": 0, "zmax": 1,
        "colorscale": CONFUSION_COLORSCALE, "text": text, "texttemplate": "%{text}",
        "textfont": {"size": 12 if n <= 12 else 9 if n <= 24 else 7},
        "customdata": counts, "xgap": 1, "ygap": 1,
        "colorbar": {"title": {"text": "share of row", "side": "right"}, "thickness": 12, "tickformat": ".0%"},
        "hovertemplate": "true %{y} → predicted %{x}<br>%{customdata} clips (%{z:.0%} of %{y})<extra></extra>",
    }  # fmt: skip
    layout = _layout(
        title=f"Confusion matrix on the test split ({int(counts.sum())} clips)", height=height,
        x_title="Predicted word", y_title="True word",
        xaxis={"type": "category", "tickangle": -45 if n > 12 else 0, "side": "bottom"},
        yaxis={"type": "category", "autorange": "reversed"},
        plot_bgcolor="white",
    )  # fmt: skip
    return go.Figure(data=[trace], layout=layout)


def per_class_accuracy(
    accuracy: dict[str, float | None], totals: dict[str, int], overall: float | None = None, *, height: int = 320
) -> go.Figure:
    """Bars: test accuracy of each word (%, clip count on hover), with the overall accuracy as a line."""
    labels = list(accuracy)
    values = [None if accuracy[w] is None else 100 * accuracy[w] for w in labels]
    colors = ["#d1d5db" if v is None else "#059669" if v >= 90 else "#f59e0b" if v >= 70 else "#dc2626" for v in values]
    trace = {
        "type": "bar", "x": labels, "y": [v or 0 for v in values], "marker": {"color": colors},
        "text": ["n/a" if v is None else f"{v:.0f}" for v in values], "textposition": "outside",
        "customdata": [totals.get(w, 0) for w in labels],
        "hovertemplate": "%{x}: %{y:.1f} % of %{customdata} clips<extra></extra>",
    }  # fmt: skip
    shapes, title = [], "Test accuracy per word"
    if overall is not None:
        shapes.append({"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "y0": 100 * overall, "y1": 100 * overall,
                       "line": {"color": "#111827", "width": 1.5, "dash": "dash"}})  # fmt: skip
        title += f" (dashed: all words, {100 * overall:.1f} %)"
    layout = _layout(
        title=title, height=height, x_title="", y_title="Accuracy (%)",
        yaxis={"range": [0, 112], "ticksuffix": " %"},
        xaxis={"type": "category", "tickangle": -45 if len(labels) > 12 else 0},
        shapes=shapes,
    )  # fmt: skip
    return go.Figure(data=[trace], layout=layout)


def top_predictions(predicted: Sequence[dict], truth: str, *, height: int = 120) -> go.Figure:
    """A small horizontal bar chart of the model's top guesses (``[{label, probability}]``, best first)."""
    labels = [p["label"] for p in predicted][::-1]
    probs = [100 * float(p["probability"]) for p in predicted][::-1]
    trace = {
        "type": "bar", "orientation": "h", "y": labels, "x": probs,
        "marker": {"color": ["#059669" if w == truth else "#dc2626" for w in labels]},
        "text": [f"{p:.0f} %" for p in probs], "textposition": "auto",
        "hovertemplate": "%{y}: %{x:.1f} %<extra></extra>",
    }  # fmt: skip
    layout = _layout(title="", height=height, x_title="", y_title="", xaxis={"range": [0, 100], "visible": False},
                     yaxis={"type": "category"})  # fmt: skip
    layout["margin"] = {"l": 10, "r": 10, "t": 4, "b": 4}
    return go.Figure(data=[trace], layout=layout)


def experiment_curves(points: Sequence[dict], *, height: int = 360, title: str | None = None) -> go.Figure:
    """Test accuracy against the share of training data, one line per augmentation setting.

    ``points``: dicts with ``fraction`` (0-1), ``augment`` (``"off"`` / ``"on"``), ``accuracy``
    (0-1, or None while the run has not finished) and ``label`` (hover text). Unfinished runs are
    left out, so the lines fill in as the runs finish.
    """
    data = []
    fractions = sorted({p["fraction"] for p in points}) or [1.0]
    for setting, name in (("off", "augmentation off"), ("on", "augmentation on")):
        done = sorted((p for p in points if p["augment"] == setting and p["accuracy"] is not None),
                      key=lambda p: p["fraction"])  # fmt: skip
        data.append({
            "type": "scatter", "mode": "lines+markers+text", "name": name,
            "x": [100 * p["fraction"] for p in done], "y": [100 * p["accuracy"] for p in done],
            "text": [f"{100 * p['accuracy']:.0f}" for p in done], "textposition": "top center",
            "line": {"width": 2.5, "color": AUGMENT_COLORS[setting]}, "marker": {"size": 9},
            "customdata": [p.get("label", "") for p in done],
            "hovertemplate": f"{name}<br>%{{x:.0f}} % of the training data<br>test accuracy %{{y:.1f}} %"
                             "<br>%{customdata}<extra></extra>",
        })  # fmt: skip
    layout = _layout(
        title=title or "Test accuracy vs training data", height=height,
        x_title="Share of the training split used (%)", y_title="Test accuracy (%)",
        xaxis={"tickvals": [100 * f for f in fractions], "ticksuffix": " %",
               "range": [0, 105]},
        yaxis={"range": [0, 105], "ticksuffix": " %"},
    )  # fmt: skip
    return go.Figure(data=data, layout=_legend(layout, True, 2))


# --------------------------------------------------------------------------------------------
# Try it: class probabilities, long recordings, streaming detection
# --------------------------------------------------------------------------------------------

CONFIDENT_COLOR = "#059669"
UNSURE_COLOR = "#f59e0b"
OTHER_COLOR = "#cbd5e1"
THRESHOLD_COLOR = "#111827"


def class_probabilities(
    labels: Sequence[str], probs: Sequence[float] | torch.Tensor, threshold: float, *, height: int = 300
) -> go.Figure:
    """Bars: the probability of every class (%), the top-1 coloured (green above ``threshold``,
    amber below: not confident), the threshold as a dashed line."""
    p = [100 * float(v) for v in (probs.tolist() if isinstance(probs, torch.Tensor) else probs)]
    labels = list(labels)
    top = int(np.argmax(p)) if p else 0
    sure = p[top] >= 100 * threshold if p else False
    colors = [(CONFIDENT_COLOR if sure else UNSURE_COLOR) if i == top else OTHER_COLOR for i in range(len(p))]
    trace = {
        "type": "bar", "x": labels, "y": p, "marker": {"color": colors},
        "text": [f"{v:.0f} %" if v >= 0.5 else "" for v in p], "textposition": "outside",
        "hovertemplate": "%{x}: %{y:.1f} %<extra></extra>", "cliponaxis": False,
    }  # fmt: skip
    line = {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "y0": 100 * threshold, "y1": 100 * threshold,
            "line": {"color": THRESHOLD_COLOR, "width": 1.2, "dash": "dash"}}  # fmt: skip
    note = {"xref": "x domain", "x": 0, "y": 100 * threshold, "xanchor": "left", "yanchor": "bottom",
            "text": f"confident above {100 * threshold:.0f} %", "showarrow": False,
            "font": {"size": 11, "color": THRESHOLD_COLOR}, "bgcolor": "rgba(255,255,255,0.7)"}  # fmt: skip
    layout = _layout(
        title="Class probabilities (softmax of the model's outputs)", height=height, x_title="", y_title="Probability (%)",
        yaxis={"range": [0, 112], "ticksuffix": " %"},
        xaxis={"type": "category", "tickangle": -45 if len(labels) > 12 else 0},
        shapes=[line], annotations=[note],
    )  # fmt: skip
    return go.Figure(data=[trace], layout=layout)


def envelope(samples: torch.Tensor | np.ndarray, sample_rate: int, max_points: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times, lows, highs)``: the min and max of every block of samples, at most ``max_points``
    blocks — how a long waveform is drawn without sending a million points."""
    y = _np(samples).reshape(-1)
    k = max(1, -(-y.size // max_points))
    pad = (-y.size) % k
    if pad:
        y = np.concatenate([y, np.zeros(pad, dtype=np.float32)])
    blocks = y.reshape(-1, k)
    times = (np.arange(len(blocks)) * k + k / 2) / sample_rate
    return times.astype(np.float32), blocks.min(axis=1), blocks.max(axis=1)


def _envelope_traces(samples, sample_rate: int, color: str, xaxis: str = "x", yaxis: str = "y") -> list[dict]:
    t, lo, hi = envelope(samples, sample_rate)
    common = {"type": "scatter", "mode": "lines", "x": t, "line": {"width": 0.6, "color": color},
              "xaxis": xaxis, "yaxis": yaxis, "hoverinfo": "skip", "showlegend": False}  # fmt: skip
    return [{**common, "y": lo}, {**common, "y": hi, "fill": "tonexty", "fillcolor": color}]


def long_waveform(samples, sample_rate: int, *, title: str = "Waveform", color: str = ORIGINAL_COLOR,
                  height: int = 200) -> go.Figure:  # fmt: skip
    """A waveform of any length as its min/max envelope (amplitude against time in s)."""
    y = _np(samples).reshape(-1)
    limit = max(float(np.abs(y).max()) if y.size else 0.0, 1e-3) * 1.05
    layout = _layout(title=title, height=height, x_title="Time (s)", y_title="Amplitude",
                     xaxis={"range": [0, max(y.size, 1) / sample_rate]}, yaxis={"range": [-limit, limit]})  # fmt: skip
    return go.Figure(data=_envelope_traces(y, sample_rate, color), layout=layout)


def class_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def detection_timeline(
    samples: torch.Tensor | np.ndarray,
    sample_rate: int,
    result,
    *,
    truth: Sequence[dict] | None = None,
    height: int = 520,
    min_peak: float = 0.15,
) -> go.Figure:
    """Streaming detection at a glance (``result``: a :class:`kwscore.streaming.StreamResult`).

    Top: the waveform, each detected word boxed and labelled with its score; windows too quiet to
    fire (below the gate) greyed; the words really placed there (``truth``: dicts with ``word``,
    ``start``, ``end``) marked underneath. Bottom: the smoothed probability of every class that
    ever reaches ``min_peak``, drawn at the centre of its window, and the threshold.
    """
    cfg = result.config
    duration = float(result.duration)
    labels = list(result.labels)
    y = _np(samples).reshape(-1)
    limit = max(float(np.abs(y).max()) if y.size else 0.0, 1e-3) * 1.15
    data: list[dict] = _envelope_traces(y, sample_rate, "#94a3b8")
    shapes: list[dict] = []
    notes: list[dict] = []
    word_color = {w: class_color(i) for i, w in enumerate(labels)}

    for d in result.detections:
        color = word_color.get(d.word, ORIGINAL_COLOR)
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": d.start, "x1": d.end, "y0": -limit, "y1": limit,
                       "line": {"color": color, "width": 2}, "fillcolor": color, "opacity": 0.25, "layer": "below"})  # fmt: skip
        notes.append({"xref": "x", "yref": "y", "x": (d.start + d.end) / 2, "y": limit, "yanchor": "bottom",
                      "text": f"<b>{d.word}</b> {100 * d.score:.0f}%", "showarrow": False,
                      "font": {"size": 12, "color": color}})  # fmt: skip
    for w in truth or []:
        shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": w["start"], "x1": w["end"], "y0": -limit * 0.97,
                       "y1": -limit * 0.97, "line": {"color": "#111827", "width": 3}})  # fmt: skip
        notes.append({"xref": "x", "yref": "y", "x": (w["start"] + w["end"]) / 2, "y": -limit, "yanchor": "top",
                      "text": w["word"], "showarrow": False, "font": {"size": 10, "color": "#374151"}})  # fmt: skip

    # bottom panel: probabilities over time
    centres = result.centres.numpy()
    inactive = (~result.active).numpy()
    if inactive.any():  # grey bands where the gate keeps every window from firing
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inactive.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            shapes.append({"type": "rect", "xref": "x2", "yref": "y2 domain", "x0": centres[a] - cfg.hop / 2,
                           "x1": centres[b - 1] + cfg.hop / 2, "y0": 0, "y1": 1, "fillcolor": "#f1f5f9",
                           "line": {"width": 0}, "layer": "below"})  # fmt: skip
    smoothed = result.smoothed.numpy()
    shown = [i for i in range(len(labels)) if smoothed[:, i].max() >= min_peak]
    for i in shown:
        data.append({
            "type": "scatter", "mode": "lines", "x": centres, "y": 100 * smoothed[:, i], "name": labels[i],
            "line": {"width": 1.8, "color": word_color[labels[i]]}, "xaxis": "x2", "yaxis": "y2",
            "hovertemplate": f"{labels[i]}: %{{y:.0f}} % (window centred at %{{x:.2f}} s)<extra></extra>",
        })  # fmt: skip
    shapes.append({"type": "line", "xref": "x2 domain", "yref": "y2", "x0": 0, "x1": 1, "y0": 100 * cfg.threshold,
                   "y1": 100 * cfg.threshold, "line": {"color": THRESHOLD_COLOR, "width": 1.2, "dash": "dash"}})  # fmt: skip
    notes.append({"xref": "x2 domain", "yref": "y2", "x": 1, "y": 100 * cfg.threshold, "xanchor": "right",
                  "yanchor": "bottom", "text": f"threshold {100 * cfg.threshold:.0f} %", "showarrow": False,
                  "font": {"size": 11, "color": THRESHOLD_COLOR}, "bgcolor": "rgba(255,255,255,0.7)"})  # fmt: skip
    title = (f"Streaming detection: a 1-s window every {1000 * cfg.hop:.0f} ms, {len(result.detections)} word(s) "
             f"found")  # fmt: skip
    layout = _layout(
        title=title, height=height, x_title="", y_title="Amplitude",
        xaxis={"range": [0, duration], "showticklabels": False, "anchor": "y"},
        yaxis={"range": [-limit * 1.25, limit * 1.25], "domain": [0.58, 1.0], "zeroline": False},
        xaxis2={"range": [0, duration], "title": {"text": "Time (s)"}, "anchor": "y2", "matches": "x"},
        yaxis2={"range": [0, 105], "domain": [0.0, 0.5], "ticksuffix": " %",
                "title": {"text": "Smoothed probability"}},
        shapes=shapes, annotations=notes, hovermode="x unified",
    )  # fmt: skip
    return go.Figure(data=data, layout=_legend(layout, bool(shown), len(shown), per_row=8))
