"""First start in a real browser: with an empty runs folder, Try it already has a model (the ready
model shipped with kwscore) and says what it was trained on and how it does on real voices."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kwscore import jobs, pretrained

from .conftest import ARTIFACTS, CHROMIUM, Server, assert_clean, open_page

pytestmark = pytest.mark.browser


@pytest.fixture
def first_start(embedded_data_dir, tmp_path, monkeypatch):
    """A fresh server: the embedded dataset, a runs folder nobody used, installing switched on."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    monkeypatch.setenv("KWS_READY_MODEL", "1")
    runs = tmp_path / "runs"
    runs.mkdir()
    srv = Server(embedded_data_dir, runs)
    yield srv
    srv.stop()
    jobs.stop_worker(runs, stop_runs=True)


def test_a_fresh_server_offers_the_ready_model_on_try_it(first_start, browser):
    about = pretrained.about(pretrained.HERE / pretrained.READY)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.set_default_timeout(60_000)
    try:
        open_page(pg, first_start, "try_it")
        expect(pg.get_by_text(pretrained.ready_line(about), exact=True)).to_be_visible()
        chosen = pg.locator("[data-testid='stMain'] [data-testid='stSelectbox'] input").first
        expect(chosen).to_have_value(re.compile(r"^Ready model \(embedded data\) · embed · "))
        assert pg.get_by_text("No finished training run").count() == 0
        assert (first_start.runs_dir / about["run_id"] / "best.pt").is_file()
        assert_clean(pg)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "ready_model_try_it.png"), full_page=True)
        context.close()
