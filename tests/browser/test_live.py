"""The Live page in Chromium with a fake microphone playing real words at known times.

The microphone file holds words said by speakers of the shared real set's testing list (skipped when
that set is absent), 2.5 s apart after 10 s of room noise only (time for the WebRTC connection to
come up); the noise stays 25 dB under the speech throughout, as in a room (in near-silence the
browser's automatic gain control lifts the quiet between words and the model hears words in it). The
words are ones the shipped ready model (the page's only run here: fixed weights, the same words on
every machine) hears right when the page's server-side path (Opus at 48 kHz, the
resampler, the live detector with the page's settings) listens to the file directly, so this
tests the page and its audio path — browser microphone, WebRTC without ICE servers, Opus, the
server's resampling and live detector, the page's redraws — not the model.

Latency is measured in the browser: from the end of each word in the file (the file starts playing
when ``getUserMedia`` resolves, timed by an init script) to the moment its detection appears in
the page (a MutationObserver). The figure is printed and written to ``tests/artifacts/live_latency.json``;
the 300-ms goal is reported, not asserted here (timing on a loaded 2-core machine is a benchmark's job).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, IDLE

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WORDS = ["yes", "stop", "left", "no", "up", "go", "right", "down"]
LEAD_S = 10.0  #: quiet before the first word: the WebRTC connection comes up meanwhile (seconds on a busy machine)
SR = 16000
NOISE_DB = -25  #: the room noise under the words, relative to the speech

TIMING = """
(() => {
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia && !md.__kwsWrapped) {
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => { const s = await orig(c); window.top.__kwsMicStart = window.top.__kwsMicStart || Date.now(); return s; };
    md.__kwsWrapped = true;
  }
  if (window === window.top) {
    window.__kwsSeen = {};
    const look = () => document.querySelectorAll('[data-kws-det]').forEach(e => {
      const k = e.getAttribute('data-kws-det');
      if (!(k in window.__kwsSeen)) window.__kwsSeen[k] = {t: Date.now(), word: e.getAttribute('data-word'),
                                                          end: parseFloat(e.getAttribute('data-end'))};
    });
    new MutationObserver(look).observe(document, {subtree: true, childList: true});
  }
})();
"""


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def opus_frames(wave: np.ndarray) -> list:
    """``wave`` (16 kHz mono float) as the server receives it from the browser: 48 kHz, encoded to
    Opus and decoded again in 20-ms ``av.AudioFrame``s (the browser's gain control is not imitated)."""
    import av
    import soxr

    pcm = (np.clip(soxr.resample(wave.astype(np.float32), SR, 48000), -1, 1) * 32767).astype(np.int16)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 48000, "mono", "s16", 32000
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate, decoder.layout = 48000, "mono"
    frames = []
    for k in range(0, len(pcm) - 959, 960):
        frame = av.AudioFrame.from_ndarray(pcm[None, k : k + 960], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, k
        for packet in encoder.encode(frame):
            frames += decoder.decode(packet)
    for packet in encoder.encode(None):
        frames += decoder.decode(packet)
    return frames


def heard_by_page(predictor, run, wave: torch.Tensor) -> list[str]:
    """The words the Live page's server-side path finds in ``wave`` [1, T] with the page's default
    settings for ``run``: Opus frames -> :class:`dashboard.live_view.LiveSession` (resampler + live
    detector)."""
    from dataclasses import replace

    from dashboard import live_view, run_views, ui_try

    cfg = replace(live_view.DEFAULTS, threshold=ui_try.default_threshold(run_views.run_info_safe(Path(run))))
    session = live_view.LiveSession(predictor.probabilities, predictor.labels, cfg)
    for frame in opus_frames(wave[0].numpy()):
        session.feed([frame])
    return [d.word for d, _ in session.shown]


def microphone_words(real_root, run, folder):
    """A WAV of real test-split words that the run's model hears right through the page's own path
    (Opus, resampler, live detector; :func:`heard_by_page`), each alone and in the whole file, and
    their placement (word, start, end in seconds)."""
    from kwscore.data.dataset import SpeechCommands
    from kwscore.inference import Predictor
    from kwscore.streaming import compose

    predictor = Predictor.from_run(run)
    noise = 0.02 * torch.randn(1, 5 * SR, generator=torch.Generator().manual_seed(0))

    def composition(clips):
        return compose(clips, noise, LEAD_S + 3.5 * len(clips), lead=LEAD_S, gap=(2.5, 2.5), noise_db=NOISE_DB, seed=1)

    clips = []
    for word in WORDS:
        ds = SpeechCommands(real_root, subset="testing", commands=[word])
        tried = 0
        for i in range(len(ds)):
            clip = ds.waveform(i)
            if clip is None or tried >= 30:
                continue
            clip = torch.nn.functional.pad(clip, (0, max(0, SR - clip.shape[-1])))[:, :SR]
            alone = predictor.predict(clip)
            if alone.word != word or alone.probability < 0.8:
                continue
            tried += 1
            single = compose([(word, ds.clip_id(i), clip)], noise, 3.0, lead=1.0, noise_db=NOISE_DB, seed=i)
            if heard_by_page(predictor, run, single.waveform) != [word]:
                continue
            # kept only if the file so far, with this word at its end, is still heard exactly
            if heard_by_page(predictor, run, composition([*clips, (word, ds.clip_id(i), clip)]).waveform) == [
                w for w, _, _ in clips
            ] + [word]:
                clips.append((word, ds.clip_id(i), clip))
                break
    if len(clips) < 4:
        pytest.skip(f"the ready model hears too few real words through the live path ({len(clips)})")
    comp = composition(clips)
    path = folder / "live-words.wav"
    sf.write(path, comp.waveform[0].numpy(), SR, subtype="PCM_16")
    return path, [(w.word, w.start, w.end) for w in comp.words]


def test_live_page_hears_every_word_in_order(ready_server, browser, shared_real, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    server, ready_run = ready_server
    wav, truth = microphone_words(shared_real, ready_run, tmp_path)
    chromium = browser.browser_type  # the session's Playwright: a second sync_playwright() cannot start beside it
    if chromium:
        browser = chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"])  # fmt: skip
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["microphone"])
        context.add_init_script(TIMING)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(90_000)
        page.goto(f"{server.url}/live")
        page.wait_for_selector(IDLE)
        page.get_by_text("Press Start above to listen").wait_for()
        page.locator("[data-kws-heard='nothing']").wait_for()  # st.html may be drawn just after the text
        assert page.locator("[data-kws-heard='nothing']").count() == 1
        frame = page.frame_locator("iframe[title*='streamlit_webrtc']")
        cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
        for _ in range(3):  # a click that lands while the component is still wiring itself up is lost
            frame.get_by_role("button", name="START").click()
            try:
                frame.get_by_role("button", name="STOP").wait_for(timeout=20_000)
                break
            except PlaywrightTimeout:
                continue
        # listen until the microphone has played the last word and 2 s more (counting detections is
        # not enough: a false alarm would end the wait before the last words are said)
        last_end = truth[-1][2]
        deadline = time.monotonic() + LEAD_S + 3.5 * len(truth) + 20
        while time.monotonic() < deadline:
            played = page.evaluate("window.__kwsMicStart ? (Date.now() - window.__kwsMicStart) / 1000 : 0")
            if played > last_end + 2.0:
                break
            page.wait_for_timeout(500)
        cpu_share = (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - wall0)
        seen = sorted(page.evaluate("window.__kwsSeen").values(), key=lambda s: s["t"])
        mic_start = page.evaluate("window.__kwsMicStart")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live_page.png"), full_page=True)
        frame.get_by_role("button", name="STOP").click()
        context.close()
        browser.close()
    heard = [s["word"] for s in seen]
    expected = [w for w, _, _ in truth]
    assert mic_start, "the page never opened the microphone"
    latencies = []
    for word, start, end in truth:  # the first detection of the word shown after the word began
        shown = [(s["t"] - mic_start) / 1000 for s in seen if s["word"] == word and (s["t"] - mic_start) / 1000 > start]
        if shown:
            latencies.append(min(shown) - end)
    report = {"expected": expected, "heard": heard, "latency_s": [round(x, 3) for x in latencies],
              "median_latency_s": float(np.median(latencies)) if latencies else None,
              "server_cpu_share_one_stream": round(cpu_share, 3)}  # fmt: skip
    (ARTIFACTS / "live_latency.json").write_text(json.dumps(report, indent=1))
    print(f"live: expected {expected}, heard {heard}; latency from the end of each word to the page: "
          f"{[f'{1000 * x:.0f} ms' for x in latencies]}, median {1000 * (report['median_latency_s'] or 0):.0f} ms; "
          f"server CPU while listening: {100 * cpu_share:.0f} % of a core")  # fmt: skip
    # Every word but at most one is heard, in order, with the right label. The browser's automatic gain
    # control (on in the page, as real microphones need it; not imitated by heard_by_page) lifts the
    # quiet between words: up to two extra detections are allowed.
    in_order = longest_common_subsequence(expected, heard)
    assert in_order >= len(expected) - 1 and len(heard) <= len(expected) + 2, report
    assert all(-0.2 < x < 2.0 for x in latencies), report  # found while the word is fresh, not by accident
    assert not errors, errors


def longest_common_subsequence(a, b):
    """How many words of `a` appear in `b` in the same order (a word heard wrongly costs one, not the rest)."""
    best = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            best[i + 1][j + 1] = best[i][j] + 1 if x == y else max(best[i][j + 1], best[i + 1][j])
    return best[-1][-1]


def test_longest_common_subsequence():
    assert longest_common_subsequence(["yes", "stop", "up", "right", "down"], ["yes", "up", "up", "right", "down"]) == 4
    assert longest_common_subsequence(["yes", "stop"], ["stop", "yes"]) == 1
    assert longest_common_subsequence(["yes", "no"], []) == 0


@pytest.fixture(scope="module")
def ready_server(embedded_data_dir, tmp_path_factory):
    """A dashboard whose only run is the shipped ready model (installed as at a first start): the
    page listens with it, and its fixed weights pick the same words on every machine."""
    from kwscore import pretrained
    from tests.browser.conftest import Server

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make test installs it)")
    runs = tmp_path_factory.mktemp("live") / "runs"
    os.environ["KWS_READY_MODEL"] = "1"  # tests/conftest.py turns installing off for everyone else
    try:
        (run_id,) = pretrained.install(runs)
    finally:
        os.environ["KWS_READY_MODEL"] = "0"
    srv = Server(embedded_data_dir, runs)
    yield srv, runs / run_id
    srv.stop()
