"""Refresh the README's screenshots: a real server, a trained model, headless Chromium.

    .venv/bin/python docs/take_screenshots.py [--pages train runs ...]

Generates the embedded dataset and trains the small test CNN (about 35 s) in a temporary folder,
starts `streamlit run dashboard/app.py` on it, opens each page at 1400 px wide and saves
``docs/screenshots/<page>.png`` (the whole page). For *Try it* it picks the test recording built
from the dataset, so the streaming timeline shows; *try_it_clip* uploads one held-out word;
*spectrogram_code* is the Spectrogram lab's "PyTorch code" expander, open; on *Live* the fake microphone
(a held-out "yes", looped) is listened to until a word lights up. The *Runs* page tells more with several runs
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
PAGES = ["explore", "spectrogram", "spectrogram_code", "augmentation", "train", "runs", "try_it", "try_it_clip",
         "record", "live", "worksheet"]  # fmt: skip
#: Shots of a page in another state: the page they open.
URL = {"spectrogram_code": "spectrogram", "try_it_clip": "try_it"}
CODE = "PyTorch code for what is on screen"


def prepare(page, name: str, clip: Path | None = None) -> None:
    """Bring a page into the state the README shows (``clip``: a WAV of one word, for *try_it_clip*)."""
    if name == "spectrogram_code":  # the Spectrogram lab's "PyTorch code" expander, open
        page.locator("[data-testid='stExpander'] summary", has_text=CODE).click()
        page.locator("[data-testid='stExpander']", has_text=CODE).locator("[data-testid='stCode']").wait_for()
        wait_idle(page)
    if name == "try_it_clip":  # an upload of one held-out word the model hears right
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(clip))
        page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=60_000)
        wait_idle(page)
    if name == "live":  # the fake microphone says "yes" every 2.3 s
        frame = page.frame_locator("iframe[title*='streamlit_webrtc']")
        for _ in range(3):  # a click while the component is still wiring itself up is lost
            frame.get_by_role("button", name="START").click()
            try:
                frame.get_by_role("button", name="STOP").wait_for(timeout=20_000)
                break
            except Exception:  # noqa: BLE001 - playwright's timeout: click again
                continue
        try:
            page.locator("[data-kws-det]").first.wait_for(timeout=40_000)
            page.wait_for_timeout(2500)  # a few more windows on the timeline
        except Exception:  # noqa: BLE001 - nothing heard: the page as it is
            pass
    if name == "record":  # four takes from the fake microphone (a held-out "yes"): 3 kept, 1 to judge
        box = page.locator("[data-testid='stMain']").get_by_label("Speaker name", exact=True)
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
        page.locator("button", has_text="Test recording").first.click()
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
        run = trained_cnn_run(data / "synthetic", runs) if args.runs_dir is None else None
        clip = Path(tmp) / "left.wav"
        if "try_it_clip" in args.pages:
            import soundfile as sf

            from kwscore.inference import Predictor, finished_runs
            from tests.trained import heard_clip

            model = Predictor.from_run(run or finished_runs(args.runs_dir)[0].path)
            sf.write(clip, heard_clip(data / "synthetic", "left", model), 16000, subtype="PCM_16")
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
                    open_page(page, server, URL.get(name, name))
                    prepare(page, name, clip)
                    # Streamlit scrolls inside its own container: make the page as tall as its content
                    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
                    page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
                    if name == "live":  # its script keeps running while it listens: never idle
                        page.wait_for_timeout(1500)
                    else:
                        wait_idle(page)
                    OUT.mkdir(parents=True, exist_ok=True)
                    if name == "spectrogram_code":  # only the code
                        page.locator("[data-testid='stExpander']", has_text=CODE).screenshot(path=str(OUT / f"{name}.png"))
                    else:
                        page.screenshot(path=str(OUT / f"{name}.png"))
                    page.set_viewport_size({"width": 1400, "height": 1000})
                    print(f"saved {OUT / name}.png", flush=True)
                    if name == "live":  # stop listening before the next page
                        page.frame_locator("iframe[title*='streamlit_webrtc']").get_by_role("button", name="STOP").click()
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
