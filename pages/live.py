"""Live: the microphone streams continuously to a trained model; each keyword lights up as it is said.

The browser sends its microphone to the server over WebRTC (``streamlit-webrtc``, no internet
servers: :data:`dashboard.live_view.RTC_CONFIGURATION`); the streaming detector's live mode
(:class:`kwscore.streaming.LiveDetector`) scores a 1-s window every hop. Ten times a second the page
redraws what is heard now ("nothing" when no keyword), every class's probability, and the last
10 s with the detections marked. Logic and pictures live in ``dashboard/live_view.py``.
"""

import queue
import time
from dataclasses import replace

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from dashboard import code_view, live_view, ui_try
from kwscore import snippets

ss = st.session_state

st.title("Live")
st.caption(
    "Press **Start**, allow the microphone and say a keyword: it lights up as soon as the model hears it. "
    "The model listens to the last second, ten times a second, the way a phone listens for its wake word."
)

runs = ui_try.finished_runs_or_stop()
by_id = {r.run_id: r for r in runs}
if ss.get("live_run") not in by_id:
    ss["live_run"] = runs[0].run_id
c1, c2 = st.columns([2.2, 1], vertical_alignment="bottom")
run_id = c1.selectbox("Model (a finished run; the best by test accuracy first)", list(by_id), key="live_run",
                      format_func=lambda r: ui_try.run_choice_label(by_id[r]))  # fmt: skip
info = by_id[run_id]
model = ui_try.predictor_or_stop(info)
threshold = c2.slider("Threshold", 0.3, 0.95, ui_try.default_threshold(info), 0.01, key=f"live_threshold_{run_id}",
                      help="A keyword fires when its smoothed probability reaches this (the run's stored threshold "
                      "from its streaming evaluation, if it has one).")  # fmt: skip
with st.expander("Detector settings: smoothing, refractory period, gate", icon=":material/tune:"):
    s1, s2, s3 = st.columns(3)
    start = live_view.DEFAULTS
    smooth = s1.select_slider("Smoothing (ms)", [0, 100, 200, 300, 500], round(1000 * start.smooth), key="live_smooth",
                              help="Each class's probability is averaged over the last this-many ms of windows: "
                              "steadier, but later.")  # fmt: skip
    refractory = s2.select_slider("Refractory period (ms)", [250, 500, 800, 1000, 1500], round(1000 * start.refractory),
                                  key="live_refractory", help="After a detection nothing fires for this long.")  # fmt: skip
    gate = s3.select_slider("Gate (dB above the noise floor)", [0, 6, 9, 12, 15, 20], round(start.gate_db), key="live_gate",
                            help="A sound must be this much louder than the last 10 s's noise floor to count.")  # fmt: skip
cfg = replace(live_view.DEFAULTS, smooth=smooth / 1000, threshold=threshold, refractory=refractory / 1000,
              gate_db=float(gate)).validate()  # fmt: skip

ctx = webrtc_streamer(
    key="live-mic", mode=WebRtcMode.SENDONLY, rtc_configuration=live_view.RTC_CONFIGURATION,
    media_stream_constraints=live_view.MEDIA_CONSTRAINTS, audio_receiver_size=1024,
)  # fmt: skip
st.caption(f"Knows **{len(model.labels)} classes**: {', '.join(model.labels)}. Browsers allow the microphone only "
           "on localhost or over HTTPS.")  # fmt: skip

left, right = st.columns([1, 1.4], gap="medium")
with left:
    heard_slot = st.empty()
    bars_slot = st.empty()
with right:
    timeline_slot = st.empty()
    st.markdown("**Heard so far** (newest first)")
    list_slot = st.empty()
state_slot = st.empty()  # "press Start" or "listening": one slot, so no stale message stays while listening
code_view.show(lambda: snippets.live_code(info.path, cfg.to_dict(), (info.config or {}).get("data")), key="live_code")

key = (run_id, cfg)
session = ss.get("live_session")
if session is None or ss.get("live_session_key") != key:  # another model or settings: start afresh
    session = live_view.LiveSession(model.probabilities, model.labels, cfg)
    ss["live_session"], ss["live_session_key"] = session, key


def draw() -> None:
    heard_slot.html(live_view.heard_html(session))
    bars_slot.html(live_view.bars_html(session, model.labels, threshold))
    timeline_slot.html(live_view.timeline_svg(session, threshold))
    list_slot.html(live_view.detections_html(session))


draw()
if not ctx.state.playing:
    state_slot.info("Press **Start** above to listen.", icon=":material/mic:")
    st.stop()
state_slot.caption("Listening… press **Stop** to end.")

last_draw, waiting_since = 0.0, time.monotonic()
while ctx.state.playing:
    receiver = ctx.audio_receiver
    if receiver is None:
        time.sleep(0.05)
        continue
    try:
        frames = receiver.get_frames(timeout=1.0)
    except queue.Empty:
        if time.monotonic() - waiting_since > 5:
            heard_slot.warning("No sound arrives from the microphone. Is it muted, or used by another program?")
        continue
    waiting_since = time.monotonic()
    found = session.feed(frames)
    if found or time.monotonic() - last_draw >= live_view.DRAW_EVERY_S:
        draw()
        last_draw = time.monotonic()
