"""End-to-end fixtures: a real `streamlit run dashboard/app.py` server and headless Debian Chromium.

Playwright's own browser download does not work here, so we drive /usr/bin/chromium. Tests wait
for the app to be idle (``data-test-script-state='notRunning'``), never with sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ARTIFACTS = REPO / "tests" / "artifacts"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not become healthy in {timeout} s")


class Server:
    """A running dashboard: its URL and its data/runs folders."""

    def __init__(self, data_dir: Path, runs_dir: Path, script: str = "dashboard/app.py") -> None:
        self.data_dir, self.runs_dir = data_dir, runs_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "KWS_DATA_DIR": str(data_dir), "KWS_RUNS_DIR": str(runs_dir)}
        cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(self.port),
               "--server.address", "127.0.0.1"]  # fmt: skip
        self.log = open(runs_dir.parent / f"streamlit-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="session")
def server(embedded_data_dir, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    runs = tmp_path_factory.mktemp("browser") / "runs"
    runs.mkdir()
    srv = Server(embedded_data_dir, runs)
    yield srv
    srv.stop()
    from kwscore import jobs

    jobs.stop_worker(runs, stop_runs=True)


def microphone_file(data_dir: Path, folder: Path) -> Path:
    """What the fake microphone hears: 0.3 s of quiet, a test-split "yes" of the embedded set, then
    1.5 s of quiet (Chromium loops the file from the start of each recording)."""
    import numpy as np
    import soundfile as sf

    from kwscore.data.layout import dataset_folder

    root = dataset_folder(data_dir / "synthetic")
    clip = next(c for c in sorted((root / "yes").glob("*.wav")) if f"yes/{c.name}" in (root / "testing_list.txt").read_text())
    word, sr = sf.read(clip, dtype="int16")
    loud = np.flatnonzero(np.abs(word) > 0.1 * np.abs(word).max())
    word = word[max(0, loud[0] - sr // 20) : loud[-1] + sr // 20]
    path = folder / "microphone.wav"
    sf.write(path, np.concatenate([np.zeros(3 * sr // 10, np.int16), word, np.zeros(3 * sr // 2, np.int16)]), sr,
             subtype="PCM_16")  # fmt: skip
    return path


@pytest.fixture(scope="session")
def browser(embedded_data_dir, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    mic = microphone_file(embedded_data_dir, tmp_path_factory.mktemp("microphone"))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic}"])  # fmt: skip
        yield b
        b.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh browser tab; console errors and page errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["microphone"])
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("response", lambda r: pg.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    pg.set_default_timeout(60_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    except Exception:  # noqa: BLE001 - a failed screenshot must not hide the test's own result
        pass
    context.close()


def real_errors(pg) -> list[str]:
    """Console/page/HTTP errors, less Streamlit's own probes.

    Opened on a page URL such as /explore, Streamlit's front end first asks /explore/_stcore/health
    and /explore/_stcore/host-config (404) before falling back to /_stcore/...; those 404s and their
    "Failed to load resource" console lines are the framework's base-path detection, not our pages.
    """
    probes = [e for e in pg.errors if e.startswith("HTTP 404") and "/_stcore/" in e]
    errors = [e for e in pg.errors if e not in probes and "favicon" not in e]
    if probes:
        errors = [e for e in errors if not e.startswith("Failed to load resource: the server responded with a status of 404")]
    return errors


def assert_clean(pg) -> None:
    """No exception element on the page, no console / page / HTTP error in the browser."""
    assert pg.locator("[data-testid='stException']").count() == 0, "an exception element is shown"
    assert not real_errors(pg), f"browser errors: {real_errors(pg)}"


def wait_idle(pg, timeout: float = 60_000, settle_ms: int = 400) -> None:
    """Wait until Streamlit has finished running the script and stays idle for ``settle_ms``.

    A page may rerun itself right after a run (st.rerun, a fragment), so one idle moment is not
    enough: the state must still be idle after a short pause.
    """
    pg.wait_for_timeout(150)  # let a rerun that was just triggered start
    for _ in range(50):
        pg.wait_for_selector(IDLE, timeout=timeout)
        pg.wait_for_timeout(settle_ms)
        if pg.locator(IDLE).count():
            return
    raise TimeoutError("the page kept rerunning")


def open_page(pg, server: Server, path: str = "") -> None:
    pg.goto(f"{server.url}/{path}")
    pg.wait_for_selector("[data-testid='stApp']")
    pg.locator("[data-testid='stMain'] h1").first.wait_for()  # the page's script has started drawing
    wait_idle(pg)
