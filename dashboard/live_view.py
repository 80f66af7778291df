"""The Live page's parts: microphone frames in, live detections and small, fast HTML pictures out.

The browser streams its microphone to the server over WebRTC (``streamlit-webrtc``, on ``aiortc``):
20-ms frames of 48 kHz Opus-decoded audio. :class:`LiveSession` turns them into 16 kHz mono (a
streaming soxr resampler that keeps its state between frames) and feeds the streaming detector's
live mode (:class:`kwscore.streaming.LiveDetector`). The pictures are plain HTML/SVG strings
(``st.html``) rather than plotly figures: drawn ten times a second for every listening student,
building a plotly figure would cost more CPU than the model does.

WebRTC needs no server on the internet here: :data:`RTC_CONFIGURATION` lists **no ICE servers**, so
browser and server connect directly (host candidates) — on localhost, or on a LAN over HTTPS. With a
STUN server configured but unreachable (an offline classroom), the connection waits 40-45 s for it.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence

import numpy as np
import soxr

from kwscore.labels import display_label, is_keyword
from kwscore.streaming import Detection, LiveDetector, StreamConfig

#: No STUN/TURN servers: direct connections only (localhost, LAN), nothing to wait for offline.
RTC_CONFIGURATION = {"iceServers": []}
MEDIA_CONSTRAINTS = {"audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": True},
                     "video": False}  # fmt: skip
#: The page's detector settings before a student moves a slider (the threshold is the run's own:
#: :func:`dashboard.ui_try.default_threshold`).
DEFAULTS = StreamConfig(hop=0.1, smooth=0.2, refractory=0.8, gate_db=12.0)
#: The pictures are redrawn at most this often (s): 10 updates a second.
DRAW_EVERY_S = 0.1
#: A detection stays lit this long (s) in the big "what is heard" box.
LIT_S = 1.2
COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
          "#65a30d", "#7c3aed", "#0d9488"]  # fmt: skip


def frame_samples(frame) -> tuple[np.ndarray, int]:
    """An ``av.AudioFrame`` -> (mono float32 samples [time] in [-1, 1], its sample rate)."""
    x = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        x = x.reshape(channels, -1).mean(axis=0)
    else:  # packed: [1, time * channels], interleaved
        x = x.reshape(-1, channels).mean(axis=1)
    scale = {"s16": 32768.0, "s16p": 32768.0, "s32": 2147483648.0, "s32p": 2147483648.0}.get(frame.format.name, 1.0)
    return (x / scale).astype(np.float32), int(frame.sample_rate)


class LiveSession:
    """One listener: frames from the browser in, detections out (with the wall-clock time of each)."""

    def __init__(self, classify, labels: Sequence[str], cfg: StreamConfig, sample_rate: int = 16000):
        self.detector = LiveDetector(classify, labels, cfg, sample_rate)
        self.sample_rate = sample_rate
        self.resampler: soxr.ResampleStream | None = None
        self.input_rate = 0
        self.started = time.time()  #: wall clock when the first frame arrived
        self.shown: list[tuple[Detection, float]] = []  #: (detection, wall time it was found)
        self.frames = 0

    def feed(self, frames: Sequence) -> list[Detection]:
        """Frames from ``webrtc_ctx.audio_receiver.get_frames()`` -> the new detections."""
        found = []
        for frame in frames:
            x, rate = frame_samples(frame)
            if self.frames == 0:
                self.started = time.time()
            self.frames += 1
            if rate != self.sample_rate:
                if self.resampler is None or rate != self.input_rate:
                    self.resampler, self.input_rate = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32"), rate
                x = self.resampler.resample_chunk(x)
            found += self.detector.feed(x)
        now = time.time()
        self.shown += [(d, now) for d in found]
        return found

    @property
    def labels(self) -> list[str]:
        return self.detector.labels


# --------------------------------------------------------------------------------------------
# Pictures (HTML strings for st.html)
# --------------------------------------------------------------------------------------------


def color(labels: Sequence[str], word: str) -> str:
    return COLORS[list(labels).index(word) % len(COLORS)] if word in labels else "#6b7280"


def heard_html(session: LiveSession | None) -> str:
    """The big box: the keyword just detected (lit for :data:`LIT_S`), or "nothing"."""
    word, score = None, 0.0
    if session is not None and session.detector.detections:
        last = session.detector.detections[-1]
        if session.detector.now - last.end <= LIT_S:
            word, score = last.word, last.score
    if word is None:
        return ('<div data-kws-heard="nothing" style="padding:18px;border-radius:12px;background:#f1f5f9;'
                'color:#64748b;font-size:34px;text-align:center;font-weight:600">nothing</div>')  # fmt: skip
    c = color(session.labels, word)
    return (f'<div data-kws-heard="{html.escape(word)}" style="padding:18px;border-radius:12px;background:{c};'
            f'color:white;font-size:34px;text-align:center;font-weight:700">{html.escape(word)} '
            f'<span style="font-size:18px;font-weight:500">{100 * score:.0f} %</span></div>')  # fmt: skip


def bars_html(session: LiveSession | None, labels: Sequence[str], threshold: float) -> str:
    """Horizontal bars: every class's smoothed probability now; the threshold marked."""
    probs = np.zeros(len(labels)) if session is None or not session.detector.history else \
        session.detector.history[-1][1].numpy()  # fmt: skip
    rows = []
    for label, p in zip(labels, probs, strict=True):
        c = color(labels, label) if is_keyword(label) else "#94a3b8"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:8px;height:22px">'
            f'<div style="width:110px;text-align:right;font-size:13px;color:#334155">{html.escape(display_label(label))}</div>'
            f'<div style="position:relative;flex:1;height:14px;background:#f1f5f9;border-radius:3px">'
            f'<div style="width:{100 * p:.1f}%;height:100%;background:{c};border-radius:3px"></div>'
            f'<div style="position:absolute;left:{100 * threshold:.1f}%;top:-3px;bottom:-3px;border-left:2px dashed #b91c1c"></div>'
            f'</div><div style="width:44px;font-size:12px;color:#475569">{100 * p:.0f} %</div></div>'
        )  # fmt: skip
    return '<div data-kws-bars="1">' + "".join(rows) + "</div>"


def timeline_svg(session: LiveSession | None, threshold: float, span: float = 10.0) -> str:
    """An ``<img>`` of an SVG picture of the last ``span`` seconds: the best keyword's smoothed probability over time (coloured by the
    word), grey where the gate keeps the detector quiet, the threshold, and each detection marked."""
    w, h = 640, 180
    top, bottom = 22, 20
    plot_h = h - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
             '<rect width="100%" height="100%" fill="white"/>']
    now = session.detector.now if session is not None else 0.0
    x = lambda t: w * (1 - (now - t) / span)  # noqa: E731
    y = lambda p: top + plot_h * (1 - p)  # noqa: E731
    if session is not None and session.detector.history:
        labels = session.labels
        keyword = np.array([is_keyword(label) for label in labels])
        pts = []
        for t, probs, active in session.detector.history:
            p = probs.numpy() * keyword
            k = int(p.argmax())
            pts.append((t, float(p[k]), labels[k], active))
        for (t0, _, _, a0), (t1, _, _, _) in zip(pts, pts[1:], strict=False):
            if not a0:
                parts.append(f'<rect x="{x(t0):.1f}" y="{top}" width="{max(0.5, x(t1) - x(t0)):.1f}" height="{plot_h}" fill="#f1f5f9"/>')
        for (t0, p0, k0, _), (t1, p1, _, _) in zip(pts, pts[1:], strict=False):
            parts.append(f'<line x1="{x(t0):.1f}" y1="{y(p0):.1f}" x2="{x(t1):.1f}" y2="{y(p1):.1f}" '
                         f'stroke="{color(labels, k0)}" stroke-width="2.5"/>')  # fmt: skip
        for d in session.detector.detections:
            if d.end < now - span:
                continue
            c = color(labels, d.word)
            parts.append(f'<rect x="{x(d.start):.1f}" y="{top}" width="{max(2.0, x(d.end) - x(d.start)):.1f}" '
                         f'height="{plot_h}" fill="{c}" fill-opacity="0.18" stroke="{c}"/>'
                         f'<text x="{x(d.start):.1f}" y="{top - 6}" font-size="15" font-weight="700" fill="{c}">'
                         f'{html.escape(d.word)}</text>')  # fmt: skip
    parts.append(f'<line x1="0" y1="{y(threshold):.1f}" x2="{w}" y2="{y(threshold):.1f}" stroke="#b91c1c" '
                 'stroke-dasharray="6,5" stroke-width="1.2"/>')  # fmt: skip
    for s in range(int(span) + 1):  # a tick every second, "now" on the right
        anchor, x0 = ("end", w - 3) if s == 0 else ("start", 3) if s == int(span) else ("middle", w * (1 - s / span))
        parts.append(f'<text x="{x0:.1f}" y="{h - 5}" font-size="12" text-anchor="{anchor}" '
                     f'fill="#64748b">{"now" if s == 0 else f"-{s} s"}</text>')  # fmt: skip
    parts.append("</svg>")
    svg = base64.b64encode("".join(parts).encode()).decode()
    # as an image: st.html sanitises inline SVG away, a data-URI image passes
    return (f'<img data-kws-timeline="1" src="data:image/svg+xml;base64,{svg}" alt="the last {span:g} s" '
            'style="width:100%;height:auto;border:1px solid #e2e8f0;border-radius:8px"/>')


def detections_html(session: LiveSession | None, last: int = 12) -> str:
    """The latest detections, newest first; each carries its word and times for the browser test."""
    if session is None or not session.shown:
        return '<div style="color:#64748b;font-size:13px">No keyword yet.</div>'
    items = []
    for i, (d, wall) in reversed(list(enumerate(session.shown))[-last:]):
        items.append(
            f'<div data-kws-det="{i}" data-word="{html.escape(d.word)}" data-end="{d.end:.3f}" data-wall="{wall:.3f}" '
            f'style="font-size:14px;padding:2px 0"><b style="color:{color(session.labels, d.word)}">'
            f'{html.escape(d.word)}</b> {100 * d.score:.0f} % · at {d.start:.1f} s</div>'
        )  # fmt: skip
    return "".join(items)
