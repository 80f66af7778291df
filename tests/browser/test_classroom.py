"""Several students on one server: the queue limit holds, everyone sees every run, anyone can cancel.

Plus misuse: an upload over the configured limit is refused, and a server restart while a run
trains shows the truth afterwards.
"""

import re
import time

import pytest
from playwright.sync_api import expect

from kwscore import jobs

from .conftest import Server, assert_clean, open_page, wait_idle

pytestmark = pytest.mark.browser


def launch_m5(pg, server, epochs: int) -> None:
    open_page(pg, server, "train")
    pg.locator("[data-testid='stRadio'] label", has_text="M5 · raw waveform").first.click()
    wait_idle(pg)
    box = pg.get_by_label("Epochs")
    expect(box).to_have_count(1)  # the model switch redraws the form: wait for the old one to go
    box.fill(str(epochs))
    box.press("Enter")
    wait_idle(pg)
    # (a button with a tooltip is in the page twice, once hidden: take the visible one)
    launch = pg.locator("[data-testid='stButton'] button", has_text="Launch").filter(visible=True)
    expect(launch).to_have_count(1)
    launch.click()
    wait_idle(pg)


def states(server) -> dict[str, str]:
    return {i.run_id: i.state for i in jobs.list_runs(server.runs_dir)}


def test_two_students_queue_watch_and_cancel(browser, server):
    before = set(states(server))
    a = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for pg in (a, b):
        pg.errors = []
        pg.set_default_timeout(60_000)
    try:
        launch_m5(a, server, epochs=40)
        launch_m5(b, server, epochs=40)
        queue_watch_and_cancel(a, b, server, before)
    finally:  # a failure here must not leave two 40-epoch runs in the queue for the next tests
        for run_id in set(states(server)) - before:
            jobs.cancel(run_id, server.runs_dir, wait_s=30)
    for pg in (a, b):
        assert_clean(pg)
        pg.context.close()


def queue_watch_and_cancel(a, b, server, before: set) -> None:
    new = [r for r in states(server) if r not in before]
    assert len(new) == 2
    deadline = time.time() + 120
    seen_running = False
    while time.time() < deadline:  # the queue limit: never two at once, one waits
        now = [states(server)[r] for r in new]
        assert now.count("running") <= 1, now
        if "running" in now and "queued" in now:
            seen_running = True
            break
        time.sleep(0.5)
    assert seen_running, "one run trains while the other waits"

    # B sees both runs on the Runs page
    open_page(b, server, "runs")
    table = b.locator("[data-testid='stDataFrame']").first
    table.wait_for()
    # B cancels A's run from the Train page's live panel
    running = next(r for r in new if states(server)[r] == "running")
    open_page(b, server, "train")
    box = b.get_by_role("combobox", name="Run to watch")
    box.click()
    box.press_sequentially(running.split("-")[-1])  # labels end with the id's tail: typing filters the list
    box.press("Enter")
    wait_idle(b)
    expect(box).to_have_value(re.compile(running.split("-")[-1]))
    b.get_by_role("button", name="Cancel run").click()
    deadline = time.time() + 60
    while states(server)[running] != "cancelled" and time.time() < deadline:
        time.sleep(0.5)
    assert states(server)[running] == "cancelled"
    # and the other run starts by itself once the first is gone
    other = next(r for r in new if r != running)
    deadline = time.time() + 60
    while states(server)[other] == "queued" and time.time() < deadline:
        time.sleep(0.5)
    assert states(server)[other] in ("running", "succeeded")


def test_upload_over_the_limit_is_refused(page, server, tmp_path):
    from tests.trained import trained_cnn_run

    trained_cnn_run(server.data_dir / "synthetic", server.runs_dir)  # Try it needs a finished run
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + b"\0" * (26 * 1024 * 1024))  # over .streamlit/config.toml's 25 MB
    open_page(page, server, "try_it")
    uploader = page.locator("[data-testid='stFileUploader']").first
    uploader.locator("input[type='file']").set_input_files(str(big))
    page.get_by_text("25", exact=False).filter(has_text="MB").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0


def test_server_restart_while_a_run_trains(browser, embedded_data_dir, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    first = Server(embedded_data_dir, runs)
    try:
        from kwscore.recipes import default_config

        config = default_config("m5", data=str(embedded_data_dir / "synthetic"), epochs=40)
        run_id = jobs.launch(config, runs)
        deadline = time.time() + 90
        while jobs.refresh_status(run_id, runs).get("state") != "running" and time.time() < deadline:
            time.sleep(0.5)
        assert jobs.refresh_status(run_id, runs)["state"] == "running"
    finally:
        first.stop()  # the dashboard goes away; the detached worker and its run do not
    second = Server(embedded_data_dir, runs)
    try:
        pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        pg.errors = []
        open_page(pg, second, "runs")
        state = jobs.refresh_status(run_id, runs)["state"]
        assert state in ("running", "succeeded"), "the run kept going through the restart"
        expect(pg.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile(run_id))  # in detail
        if jobs.refresh_status(run_id, runs)["state"] == "running":
            expect(pg.get_by_text("This run is still training", exact=False)).to_be_visible()
        else:
            expect(pg.locator("[data-testid='stMetric']", has_text="Test accuracy")).not_to_contain_text("–")
        assert pg.locator("[data-testid='stException']").count() == 0
        pg.context.close()
    finally:
        second.stop()
        jobs.stop_worker(runs, stop_runs=True)


def test_a_light_session_of_the_classroom_benchmark_does_what_a_browser_does(server):
    """benchmarks/bench_classroom.py stands students in with light sessions (Streamlit's protocol,
    no drawing): one must get its lab, see a slider move redrawn, and find its settings again after a
    visit to Runs — else the benchmark would time nothing real."""
    import asyncio
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_classroom import LightSession

    async def visit() -> tuple[str | None, str | None, str | None, list[str]]:
        errors: list[str] = []
        session = LightSession(server.url, errors)
        await session.open("spectrogram")
        try:
            first = session.model_input()
            moved = await session.move("n_mels", 3)
            await session.browse("runs")
            return first, moved, session.model_input(), errors
        finally:
            await session.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop running in this thread
        first, moved, back, errors = pool.submit(asyncio.run, visit()).result(timeout=300)
    assert not errors
    bands, frames = first.split(" × ")
    assert moved == f"{int(bands) + 3} × {frames}" and back == moved
