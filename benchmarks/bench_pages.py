"""Time per slider move of the Spectrogram lab, against a trivial one-slider plotly page (the floor).

    .venv/bin/python benchmarks/bench_pages.py [--runs 21] [--moves 21] [--no-browser] [--no-save]

In the browser (what a student waits for): two `streamlit run` servers, the dashboard and the
trivial page (written to a temporary file), one headless Chromium. Key press on the n_mels slider
(ArrowRight / ArrowLeft) -> the picture's (the floor: the chart's) title shows the new value and the app is idle
(``data-test-script-state='notRunning'``), the same on the floor page's slider, and on the lab in a
second session with "Look closer" open; the pages take turns, so all are measured under the same
load in one run; a fourth session has "Hover for values" on (the picture as a plotly chart, as the
lab drew it before). The ratio lab / floor, the lab as a student first sees it, is the goal (issue
#12: <= 1.3x). Chromium's CPU time per press (all its processes) is reported beside each.

Both pages run under ``streamlit.testing.v1.AppTest`` (the real script, no browser): set a widget's
value, ``.run()``, time it. AppTest compiles the entry script and the page again on every run (a
fresh ``ScriptCache`` per run: ~60 ms for a 300-line page on a busy 2-core machine), which the server
does only once, so each page is timed twice: as AppTest does it, and with one script cache kept
across reruns, as ``streamlit run`` does. The Spectrogram lab moves a different setting each rerun (hop, n_mels,
window length, n_fft, f_max, top_db, window function, round and round), first as a student sees it
("Look closer" closed), then with each "Look closer" tab open; the trivial page (written to
a temporary file: one slider -> one 40 x 101 plotly heatmap) is the floor any Streamlit page pays.
The ratio says how much our page adds. The Explore and Augmentation pages and the bare Mel
computation are timed as well. Uses the embedded dataset under ``KWS_DATA_DIR`` (made if missing).
Appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit.testing.v1.app_test as app_test  # noqa: E402
from common import REPO, append_results, machine, time_it  # noqa: E402
from playwright.sync_api import Locator, Page  # noqa: E402
from streamlit.runtime.scriptrunner.script_cache import ScriptCache  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(REPO / "dashboard" / "app.py")

TRIVIAL_PAGE = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st

n = st.slider("seed", 0, 1000, 0, key="seed")
z = np.random.default_rng(n).standard_normal((40, 101)).astype(np.float32)
st.plotly_chart(go.Figure(go.Heatmap(z=z, colorscale="Magma"), layout_title_text=f"seed {n}"))
"""

SLIDER = "[data-testid='stSlider']"
#: The first picture's or chart's title (the lab's main picture names its n_mels; the floor's its seed).
TITLE = ".kws-picture .kws-title, [data-testid='stPlotlyChart'] .gtitle"
TITLE_JS = f"document.querySelector(\"{TITLE}\")?.textContent"

#: (widget accessor, key, two values to alternate between) for the Spectrogram lab.
SPECTROGRAM_MOVES = [
    ("slider", "spec_hop", (320, 160)),
    ("slider", "spec_n_mels", (64, 40)),
    ("slider", "spec_win", (400, 480)),
    ("number_input", "spec_n_fft", (1024, 512)),
    ("slider", "spec_f_max", (7000, 8000)),
    ("slider", "spec_top_db", (60, 80)),
    ("radio", "spec_window", ("hamming", "hann")),
]


def time_reruns(at: AppTest, move: Callable[[AppTest, int], None], runs: int) -> list[float]:
    """ms per ``at.run()`` after ``move(at, i)`` changed a widget, ``runs`` times."""
    times = []
    for i in range(runs):
        move(at, i)
        t0 = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t0) * 1000.0)
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception}")
    return times


def spectrogram_move(at: AppTest, i: int) -> None:
    kind, key, values = SPECTROGRAM_MOVES[i % len(SPECTROGRAM_MOVES)]
    getattr(at, kind)(key=key).set_value(values[(i // len(SPECTROGRAM_MOVES)) % 2])


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()  # first run may synthesise the dataset
    at.switch_page(f"../pages/{name}.py").run()
    if at.exception:
        raise RuntimeError(f"{name} raised: {at.exception}")
    return at


def key_to_idle(page: Page, slider: Locator, key: str) -> float:
    """ms from a key press on ``slider`` until the first chart's title changed and the app is idle."""
    from tests.browser.conftest import IDLE

    page.bring_to_front()
    slider.focus()
    before = page.evaluate(TITLE_JS)
    t0 = time.perf_counter()
    slider.press(key)
    page.wait_for_function(f"b => ({TITLE_JS}) !== b && document.querySelector(\"{IDLE}\")", arg=before,
                           polling="raf", timeout=60_000)  # fmt: skip
    return (time.perf_counter() - t0) * 1000.0


#: Seconds after each press before its CPU time is read (and the next page's press): the browser
#: finishes drawing meanwhile. The four tabs' idle work in that time (~10 ms/s each) is counted too.
SETTLE_S = 0.5


def browser_cpu() -> float:
    """CPU seconds used so far by every Chromium process (and Playwright's driver)."""
    from bench_classroom import cpu_by_process

    return sum(cpu for kind, cpu in cpu_by_process().values() if kind == "browser")


def browser_times(trivial_path: Path, moves: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Key press -> idle in Chromium for the lab's n_mels slider and the floor page's slider, in turns:
    ms per press, and Chromium's CPU ms per press (all its processes: what a student's computer spends
    on the redraw, and what 30 tabs on one machine share in bench_classroom), by session."""
    from playwright.sync_api import sync_playwright

    from kwscore import paths
    from kwscore.data.synth import default_params, generate
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, IDLE, Server

    generate(paths.synth_root(), default_params())  # the dataset the dashboard opens (made once, if missing)
    runs = trivial_path.parent / "runs"
    runs.mkdir(exist_ok=True)
    lab_server = Server(paths.data_dir(), runs)
    floor_server = Server(paths.data_dir(), runs, script=str(trivial_path))
    times: dict[str, list[float]] = {"lab": [], "floor": [], "lab, look closer": [], "lab, hover": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    urls = {"lab": f"{lab_server.url}/spectrogram", "floor": floor_server.url, "lab, look closer": f"{lab_server.url}/spectrogram",
            "lab, hover": f"{lab_server.url}/spectrogram"}  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pages, sliders = {}, {}
            for name, url in urls.items():
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.goto(url, timeout=120_000)
                page.wait_for_selector(f"{IDLE} :is({TITLE})", timeout=120_000)
                if name == "lab, look closer":  # a second session with "Look closer" open at its first tab
                    page.get_by_text("Look closer").first.click()
                    page.wait_for_selector(f"{IDLE} :text('worked out')", timeout=60_000)
                if name == "lab, hover":  # a session with "Hover for values" on: the picture as a plotly chart
                    page.locator(".st-key-spec_hover label").click()
                    page.wait_for_selector(f"{IDLE} [data-testid='stPlotlyChart'] .gtitle", timeout=60_000)
                pages[name] = page
                found = page.locator(SLIDER).filter(has_text="n_mels") if name != "floor" else page.locator(SLIDER)
                sliders[name] = found.first.locator("input[type='range']")
            for i in range(moves + 2):  # two warm-up moves each
                key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
                for name in times:
                    before = browser_cpu()
                    ms = key_to_idle(pages[name], sliders[name], key)
                    time.sleep(SETTLE_S)  # a chart finishes drawing after its title changed: count it here
                    if i >= 2:
                        times[name].append(ms)
                        cpu[name].append(1000.0 * (browser_cpu() - before))
            for name, page in pages.items():
                if page.locator("[data-testid='stException']").count():
                    raise RuntimeError(f"the {name} page shows an exception")
            browser.close()
    finally:
        lab_server.stop()
        floor_server.stop()
    return times, cpu


def keep_script_cache(keep: bool) -> None:
    """Reuse one compiled-script cache across AppTest runs (what the server does), or not."""
    shared = ScriptCache()
    app_test.ScriptCache = (lambda: shared) if keep else ScriptCache


def row(name: str, times: list[float], floor: float | None) -> str:
    med = statistics.median(times)
    p90 = sorted(times)[max(0, round(0.9 * len(times)) - 1)]
    ratio = f"{med / floor:.2f}×" if floor else "1.0× (floor)"
    return f"| {name} | {med:.1f} | {p90:.1f} | {min(times):.1f} | {len(times)} | {ratio} |"


def cpu_cell(cpu: list[float]) -> str:
    return f" {statistics.median(cpu):.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="timed reruns per page (default 21)")
    parser.add_argument("--moves", type=int, default=21, help="timed key presses per page in Chromium (default 21)")
    parser.add_argument("--no-browser", action="store_true", help="server-side (AppTest) figures only")
    parser.add_argument("--no-save", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trivial_path = Path(tmp) / "trivial.py"
        trivial_path.write_text(TRIVIAL_PAGE)
        browser, browser_cpu_ms = browser_times(trivial_path, args.moves) if not args.no_browser else (None, {})
        for keep in (False, True):
            keep_script_cache(keep)
            how = "script cache kept" if keep else "AppTest as is"
            trivial = AppTest.from_file(str(trivial_path), default_timeout=60).run()
            results[f"trivial, {how}"] = time_reruns(
                trivial, lambda at, i: at.slider(key="seed").set_value(i + 1), args.runs
            )
            spec = page("spectrogram")
            results[f"spectrogram, {how}"] = time_reruns(spec, spectrogram_move, args.runs)

    # With the cache kept from here on: the other side views of the Spectrogram lab, the other pages.
    views = {}
    spec.session_state["spec_look"] = True  # the "Look closer" expander (closed as a student first sees the lab)
    for view in ("The numbers behind the picture", "Default vs yours", "Mel filterbank", "Linear STFT vs Mel",
                 "Sample rate: what M5 hears"):  # fmt: skip
        spec.session_state["spec_view"] = view
        spec.run()
        views[view] = time_reruns(spec, spectrogram_move, max(7, args.runs // 3))
    explore = page("explore")
    words = explore.selectbox(key="explore_word").options
    explore_times = time_reruns(
        explore, lambda at, i: at.selectbox(key="explore_word").select(words[i % len(words)]), args.runs
    )
    aug = page("augmentation")  # the "standard" recipe: stretch, pitch, shift, noise, SpecAugment
    aug_times = time_reruns(aug, lambda at, i: at.button(key="aug_draw").click(), args.runs)

    import torch

    from kwscore.features import FeatureConfig, mel_db

    clip = torch.randn(1, 16000) * 0.1
    mel_default = time_it(lambda i: mel_db(clip, FeatureConfig()), 50)
    big = FeatureConfig(n_fft=2048, win_length=2048, hop_length=16, n_mels=128)
    mel_big = time_it(lambda i: mel_db(clip, big), 20)

    floor_as_is = statistics.median(results["trivial, AppTest as is"])
    floor = statistics.median(results["trivial, script cache kept"])
    lines = [f"{machine()}.", ""]
    if browser:
        b_lab, b_floor = statistics.median(browser["lab"]), statistics.median(browser["floor"])
        lines += [
            "In Chromium: key press on a slider -> the chart redrawn and the app idle, the pages in turns "
            "(one run, same load). Lab: the n_mels slider, the page as a student first sees it ('Look closer' "
            "and the code closed), and in a second session with 'Look closer' open at its first tab.",
            "",
            "| page, slider | median ms | p90 ms | fastest ms | presses | vs floor | Chromium CPU ms per press |",
            "|---|---:|---:|---:|---:|---:|---:|",
            row("trivial one-slider plotly page (floor)", browser["floor"], None) + cpu_cell(browser_cpu_ms["floor"]),
            row("**Spectrogram lab, n_mels**", browser["lab"], b_floor) + cpu_cell(browser_cpu_ms["lab"]),
            row("Spectrogram lab, n_mels, 'Look closer' open (the numbers)", browser["lab, look closer"], b_floor)
            + cpu_cell(browser_cpu_ms["lab, look closer"]),
            row("Spectrogram lab, n_mels, 'Hover for values' on (the picture as a plotly chart)", browser["lab, hover"],
                b_floor) + cpu_cell(browser_cpu_ms["lab, hover"]),
            "",
            f"**Browser ratio lab / floor: {b_lab / b_floor:.2f}×** (goal ≤ 1.3×). Chromium CPU per press "
            f"(median, all its processes, up to {SETTLE_S:g} s after the redraw, the idle tabs included): what "
            "each student's computer spends on a redraw.",
            "",
        ]
    lines += [
        "Server-side time of one rerun under AppTest (set a widget, `.run()`; the whole app: entry "
        "point, sidebar, page). The trivial page is one slider -> one 40 × 101 plotly heatmap. The "
        "Spectrogram lab moves a different setting each rerun (hop, n_mels, window, n_fft, f_max, "
        "top_db, window function), the page as a student first sees it ('Look closer' and the code closed), "
        "then with 'Look closer' open at each of its tabs. "
        "\"AppTest as is\" recompiles both scripts every rerun; \"script cache kept\" reuses the "
        "compiled scripts, as `streamlit run` does.",
        "",
        "| page, widget moved | median ms | p90 ms | fastest ms | reruns | vs trivial |",
        "|---|---:|---:|---:|---:|---:|",
        row("trivial one-slider plotly page, AppTest as is (floor)", results["trivial, AppTest as is"], None),
        row("Spectrogram lab, AppTest as is", results["spectrogram, AppTest as is"], floor_as_is),
        row("trivial one-slider plotly page, script cache kept (floor)", results["trivial, script cache kept"], None),
        row("**Spectrogram lab, script cache kept**", results["spectrogram, script cache kept"], floor),
        *(row(f"Spectrogram lab, 'Look closer' open at '{v}', script cache kept", t, floor) for v, t in views.items()),
        row("Explore, another word, script cache kept", explore_times, floor),
        row("Augmentation lab, 'Draw again' (standard recipe), script cache kept", aug_times, floor),
        "",
        f"`mel_db` on a 1-s clip: default front end (40 × 101) {mel_default[0]:.2f} ms median; "
        f"n_fft 2048, hop 16, 128 bands (128 × 1001, the heaviest slider corner) {mel_big[0]:.2f} ms.",
    ]
    append_results("bench_pages", "\n".join(lines), save=not args.no_save)


if __name__ == "__main__":
    main()
