"""Refresh the README's screenshots: a real server, a trained model, headless Chromium.

    .venv/bin/python docs/take_screenshots.py [--pages train runs ...]

Generates the embedded dataset and trains the small test CNN (about 35 s) in a temporary folder,
starts `streamlit run dashboard/app.py` on it, opens each page at 1400 px wide and saves
``docs/screenshots/<page>.png`` (the whole page). For *Try it* it picks the test recording built
from the dataset, so the streaming timeline shows. The *Runs* page tells more with several runs
(a CNN and an M5, an experiment): ``--runs-dir DIR`` shows an existing runs folder instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    microphone_file,
    open_page,
    wait_idle,
)

OUT = REPO / "docs" / "screenshots"
PAGES = ["explore", "spectrogram", "augmentation", "train", "runs", "try_it", "record"]


def prepare(page, name: str) -> None:
    """Bring a page into the state the README shows."""
    if name == "record":  # four takes from the fake microphone (a held-out "yes"): 3 kept, 1 to judge
        box = page.get_by_label("Your name", exact=True)
        box.fill("Ada")
        box.press("Enter")
        wait_idle(page)
        for take in range(4):
            recorder = page.locator("[data-testid='stAudioInput']").first
            recorder.get_by_role("button", name="Record").click()
            page.wait_for_timeout(1500)
            recorder.get_by_role("button", name="Stop recording").click()
            keep = page.get_by_role("button", name="Keep this take")
            keep.wait_for()
            wait_idle(page)
            if take < 3:
                keep.click()
                wait_idle(page)
    if name == "try_it":
        page.locator("button", has_text="Test recording from the dataset").first.click()
        wait_idle(page)
        page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=60_000)
        wait_idle(page)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", nargs="*", default=PAGES, choices=PAGES)
    ap.add_argument("--runs-dir", type=Path, help="an existing runs folder (default: one new run)")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from kwscore.data.synth import default_params, generate
    from tests.trained import trained_cnn_run

    with tempfile.TemporaryDirectory() as tmp:
        data, runs = Path(tmp) / "data", Path(tmp) / "runs"
        runs.mkdir(parents=True)
        generate(data / "synthetic", default_params())
        if args.runs_dir is None:
            trained_cnn_run(data / "synthetic", runs)
        server = Server(data, args.runs_dir or runs)
        try:
            with sync_playwright() as p:
                mic = microphone_file(data, Path(tmp))
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic}"])  # fmt: skip
                context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["microphone"])
                page = context.new_page()
                page.set_default_timeout(60_000)
                for name in args.pages:
                    open_page(page, server, name)
                    prepare(page, name)
                    # Streamlit scrolls inside its own container: make the page as tall as its content
                    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
                    page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
                    wait_idle(page)
                    OUT.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    page.set_viewport_size({"width": 1400, "height": 1000})
                    print(f"saved {OUT / name}.png", flush=True)
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
