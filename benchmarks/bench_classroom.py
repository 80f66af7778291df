"""Classroom load: 20 students moving Spectrogram-lab sliders at once while a model trains.

    .venv/bin/python benchmarks/bench_classroom.py [--sessions 20] [--moves 8] [--no-train] [--no-save]

One `streamlit run dashboard/app.py` server, one headless Chromium with N tabs (one browser context
each, so N independent Streamlit sessions). Each session moves the n_mels / hop sliders with the
keyboard and we time key press -> `data-test-script-state='notRunning'` (the page redrawn). First a
single session alone (the baseline), then N at once, while one training job runs in the background.
Reports p50/p95 latency for both, the errors seen (exception elements, console errors, timeouts:
must be 0) and the server's memory (RSS of the server process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_results, machine  # noqa: E402

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, IDLE, Server  # noqa: E402

SLIDERS = "[data-testid='stSlider'] input[type='range']"
#: The "Model input" metric (n_mels × frames): it changes with every n_mels or hop move.
MODEL_INPUT_JS = (
    "[...document.querySelectorAll(\"[data-testid='stMetric']\")]"
    ".find(m => m.innerText.includes('Model input'))?.querySelector(\"[data-testid='stMetricValue']\")?.innerText"
)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def student(browser, url: str, moves: int, latencies: list[float], errors: list[str]) -> None:
    """One session: open the Spectrogram lab, then move sliders ``moves`` times."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(120_000)  # 20 pages on 2 cores: slow is measured, only a hang is an error
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    try:
        await page.goto(f"{url}/spectrogram", timeout=120_000)
        await page.wait_for_selector(IDLE, timeout=120_000)
        sliders = page.locator(SLIDERS)
        for i in range(moves):
            slider = sliders.nth(3 if i % 2 == 0 else 2)  # n_mels, then hop_length
            await slider.focus()
            before = await page.evaluate(MODEL_INPUT_JS)
            t0 = time.perf_counter()
            await slider.press("ArrowRight" if i % 4 < 2 else "ArrowLeft")
            # redrawn = the model-input shape (n_mels × frames) changed and the script is idle again
            await page.wait_for_function(
                f"b => ({MODEL_INPUT_JS}) !== b && document.querySelector(\"{IDLE}\")", arg=before, timeout=120_000
            )
            latencies.append((time.perf_counter() - t0) * 1000)
        if await page.locator("[data-testid='stException']").count():
            errors.append("exception element on the page")
    except Exception as exc:  # noqa: BLE001 - a benchmark counts failures instead of stopping
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        await context.close()


async def round_of(url: str, sessions: int, moves: int) -> tuple[list[float], list[str], float]:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        t0 = time.perf_counter()
        await asyncio.gather(*(student(browser, url, moves, latencies, errors) for _ in range(sessions)))
        wall = time.perf_counter() - t0
        await browser.close()
    return latencies, errors, wall


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--moves", type=int, default=8, help="slider moves per session")
    ap.add_argument("--no-train", action="store_true", help="no background training job")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)

    from kwscore import jobs
    from kwscore.data.synth import default_params, generate
    from kwscore.runner import default_config

    with tempfile.TemporaryDirectory() as tmp:
        data, runs = Path(tmp) / "data", Path(tmp) / "runs"
        runs.mkdir(parents=True)
        generate(data / "synthetic", default_params())
        server = Server(data, runs)
        try:
            single, single_err, _ = asyncio.run(round_of(server.url, 1, args.moves * 2))
            run_id = None
            if not args.no_train:
                os.environ["KWS_RUNS_DIR"] = str(runs)
                config = default_config("cnn", data=str(data / "synthetic"), epochs=200, max_minutes=30)
                run_id = jobs.launch(config, runs)
                deadline = time.time() + 120
                while jobs.refresh_status(run_id, runs).get("state") != "running" and time.time() < deadline:
                    time.sleep(1)
            rss_before = rss_mb(server.proc.pid)
            many, many_err, wall = asyncio.run(round_of(server.url, args.sessions, args.moves))
            rss_after = rss_mb(server.proc.pid)
            state = jobs.refresh_status(run_id, runs).get("state") if run_id else "none"
        finally:
            server.stop()
            jobs.stop_worker(runs, stop_runs=True)

    errors = single_err + many_err
    body = (
        f"{machine()}.\n\nOne server, Spectrogram lab, key press → page idle, "
        f"{args.moves} slider moves per session; background training: "
        f"{'none' if args.no_train else 'CNN recipe on the embedded data (state during the test: ' + str(state) + ')'}.\n\n"
        "| sessions | moves timed | p50 ms | p95 ms | max ms | errors | wall s |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| 1 (alone, no training) | {len(single)} | {pct(single, 50):.0f} | {pct(single, 95):.0f} | "
        f"{max(single, default=float('nan')):.0f} | {len(single_err)} | |\n"
        f"| {args.sessions} at once | {len(many)} | {pct(many, 50):.0f} | {pct(many, 95):.0f} | "
        f"{max(many, default=float('nan')):.0f} | {len(many_err)} | {wall:.0f} |\n\n"
        f"p50 ratio {args.sessions} sessions / 1 session: {pct(many, 50) / pct(single, 50):.1f}×. "
        f"Server memory (RSS): {rss_before:.0f} MiB before the {args.sessions} sessions, "
        f"{rss_after:.0f} MiB after.\n"
    )
    if errors:
        body += "\nErrors:\n" + "\n".join(f"- {e}" for e in errors[:20]) + "\n"
    append_results("bench_classroom", body, save=not args.no_save)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
