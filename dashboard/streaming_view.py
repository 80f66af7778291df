"""The Runs page's streaming view: how a run does on a long stream (:mod:`kwscore.streameval`).

:func:`show` draws, for one finished run, its last streaming evaluation (``RUN/streaming/report.json``,
written by ``kwscore stream-eval`` or by the button here): recall, wrong words and false alarms per
hour; the DET curve (miss rate against false alarms per hour) with a threshold slider that shows the
trade-off and can keep a threshold for Try it and Live; the figures per word; and the false alarms
with the highest scores, to listen to.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import plots
from kwscore import streameval
from kwscore.errors import KwsError

ss = st.session_state


def det_figure(curve: list[dict], point: dict | None = None, recommended: dict | None = None,
               height: int = 380) -> go.Figure:  # fmt: skip
    """Miss rate (%) against false alarms per hour over thresholds; ``point``: the slider's threshold."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[p["fa_per_hour"] for p in curve], y=[100 * p["miss"] for p in curve], mode="lines+markers",
        line={"shape": "hv", "color": plots.class_color(0), "width": 2}, marker={"size": 4},
        customdata=[p["threshold"] for p in curve], name="DET",
        hovertemplate="threshold %{customdata:.3f}<br>%{x:.1f} false alarms / h<br>miss %{y:.1f} %<extra></extra>",
    ))  # fmt: skip
    for p, color, text, where in ((recommended, "#16a34a", "recommended", "top right"),
                                  (point, "#dc2626", "slider", "bottom right")):  # fmt: skip
        if p is not None:
            fig.add_trace(go.Scatter(x=[p["fa_per_hour"]], y=[100 * p["miss"]], mode="markers+text", text=[text],
                                     textposition=where, marker={"size": 12, "color": color}, name=text,
                                     hoverinfo="skip"))  # fmt: skip
    fig.update_layout(**plots._layout(title="Detection-error trade-off: lower left is better", height=height,
                                      x_title="False alarms per hour", y_title="Missed keywords",
                                      yaxis={"ticksuffix": " %", "rangemode": "tozero"},
                                      xaxis={"rangemode": "tozero"}))  # fmt: skip
    return fig


def nearest(curve: list[dict], threshold: float) -> dict:
    """The curve's operating point at ``threshold``: the last point whose threshold is at most it."""
    below = [p for p in curve if p["threshold"] <= threshold + 1e-9]
    return below[-1] if below else curve[0]


def per_word_table(per_word: dict) -> pd.DataFrame:
    rows = [{"word": w, "said": v["said"], "heard right": v["hits"], "as another word": v["wrong"],
             "recall": None if v["recall"] is None else round(100 * v["recall"], 1), "false alarms": v["false_alarms"]}
            for w, v in per_word.items()]  # fmt: skip
    return pd.DataFrame(rows)


def evaluate_here(info) -> None:
    """Build a stream from the run's dataset, run the evaluation with a progress bar, save it."""
    from kwscore.inference import Predictor

    data = (info.config or {}).get("data")
    c1, c2, c3 = st.columns([1, 1, 1.3], vertical_alignment="bottom")
    minutes = c1.select_slider("Stream length (min)", [1, 2, 5, 10], value=2, key="stream_eval_minutes")
    snr = c2.select_slider("Speech above the noise (dB SNR)", [0, 5, 10, 20, 30], value=10, key="stream_eval_snr")
    if not c3.button("Evaluate on a stream", icon=":material/graphic_eq:", key="stream_eval_go", width="stretch"):
        st.caption(f"The same as `kwscore stream-eval {info.run_id} --minutes {minutes} --snr {snr}`: the test split's "
                   "words about 3 s apart, 1 in 4 a word the model must not report, in the dataset's noises.")  # fmt: skip
        return
    bar = st.progress(0.0, text="Building the stream from the test split…")
    try:
        model = Predictor.from_run(info.path)
        comp = streameval.build_stream(data, model.labels, minutes, snr)
        source = {"data": str(data), "minutes": minutes, "snr_db": snr, "others": 0.25, "seed": 0,
                  "noise": comp.noise, "words": len(comp.words)}  # fmt: skip
        ev, _ = streameval.evaluate_stream(
            model, comp, source=source,
            progress=lambda share: bar.progress(min(share, 1.0), text=f"Listening: {share * minutes:.1f} of {minutes} min"),
        )  # fmt: skip
        streameval.save(info.path, ev, comp.waveform)
    except KwsError as exc:
        st.error(str(exc))
        return
    finally:
        bar.empty()
    st.rerun()


def show(info) -> None:
    """The streaming view of one run (call it inside the Runs page's detail)."""
    if info.state != "succeeded":
        st.info("A run can be evaluated on a stream once it has finished training.")
        return
    report = streameval.load(info.path)
    if report is None:
        st.markdown("This run has not been evaluated on a long stream yet: **false alarms per hour** and the "
                    "**DET curve** show how it would do listening all day, not just on 1-s clips.")  # fmt: skip
        evaluate_here(info)
        return
    try:
        draw(info, report)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        st.error(f"This run's streaming report is damaged ({type(exc).__name__}: {exc}). Evaluate it again.")
    with st.expander("Evaluate again on another stream"):
        evaluate_here(info)


def draw(info, report: dict) -> None:
    src, s, curve = report["source"], report["at_threshold"], report["curve"]
    threshold = float(report["config"]["threshold"])
    if "minutes" in src:
        st.caption(f"{report['duration'] / 60:.1f} min of the test split: {s['keywords']} keywords and "
                   f"{s['non_keywords']} other words about 3 s apart, in {src.get('noise', 'noise')} at "
                   f"{src['snr_db']:g} dB SNR. A detection counts within ±0.5 s of its word.")  # fmt: skip
    else:
        st.caption(f"{src.get('wav', 'a recording')}: {s['keywords']} keywords, {s['non_keywords']} other words.")
    m = st.columns(4)
    m[0].metric(f"Recall at {threshold:g}", f"{100 * s['recall']:.1f} %", help="Keywords reported as the right word.")
    m[1].metric("Wrong word", f"{100 * s['wrong_rate']:.1f} %", help="Keywords reported as another keyword.")
    m[2].metric("False alarms", s["false_alarms"], help="Detections where no keyword was said.")
    m[3].metric("False alarms per hour", f"{s['fa_per_hour']:.1f}")
    stored = streameval.stored_threshold(info.path)
    thresholds = sorted({p["threshold"] for p in curve if p["threshold"] < 1.0}) or [threshold]
    start = stored if stored is not None else (report.get("recommended") or {}).get("threshold", threshold)
    start = min(thresholds, key=lambda t: abs(t - start))
    left, right = st.columns([1.4, 1], gap="medium")
    with right:
        chosen = st.select_slider("Threshold", thresholds, value=start, key=f"stream_threshold_{info.run_id}",
                                  format_func=lambda t: f"{t:.3f}",
                                  help="A keyword fires when its smoothed probability reaches this.")  # fmt: skip
        p = nearest(curve, chosen)
        st.markdown(f"At **{chosen:.3f}**: **{100 * p['recall']:.1f} %** of the keywords heard right, "
                    f"{100 * p['wrong_rate']:.1f} % as another word, **{p['false_alarms']} false alarm(s)** "
                    f"= **{p['fa_per_hour']:.1f} per hour**.")  # fmt: skip
        rec = report.get("recommended")
        if rec:
            real = rec.get("score") or rec
            st.caption(f"Recommended for ≤ {report['target_fa_per_hour']:g} false alarm(s) per hour: "
                       f"{rec['threshold']:.3f} (recall {100 * real['recall']:.1f} %, "
                       f"{real['false_alarms']} false alarm(s) when run at it).")  # fmt: skip
        else:
            st.caption(f"No threshold keeps false alarms under {report['target_fa_per_hour']:g} per hour on this stream.")
        if st.button("Use this threshold in Try it and Live", icon=":material/check:", key="stream_store",
                     help="Kept with the run (streaming/threshold.json)."):  # fmt: skip
            streameval.store_threshold(info.path, chosen, "chosen on the Runs page")
            stored = chosen
        st.caption(f"Stored threshold: **{stored:.3f}**" if stored is not None else "No threshold stored: 0.5 is used.")
    left.plotly_chart(det_figure(curve, p, report.get("recommended")), key="stream_det")
    with st.expander("Per word"):
        st.dataframe(per_word_table(s["per_word"]), hide_index=True, width="stretch")
    worst = report.get("worst_false_alarms") or []
    if worst:
        st.markdown(f"**The false alarms with the highest scores** (at {threshold:g}): what fooled the model?")
        folder = Path(info.path) / streameval.FOLDER
        for row_start in range(0, len(worst), 4):
            for column, fa in zip(st.columns(4), worst[row_start : row_start + 4], strict=False):
                with column:
                    where = f"on the word *{fa['at']}*" if fa.get("at") else "in the noise"
                    st.markdown(f"**{fa['word']}** {100 * fa['score']:.0f} % at {fa['start']:.1f} s, {where}")
                    path = folder / str(fa.get("audio", ""))
                    if fa.get("audio") and path.is_file():
                        st.audio(path.read_bytes(), format="audio/wav")
    elif s["false_alarms"] == 0:
        st.success("No false alarm at this threshold.", icon=":material/verified:")
