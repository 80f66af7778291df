"""Every page in a real browser loads cleanly; the sound pages' widgets work and their audio plays."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import assert_clean, open_page, wait_idle

pytestmark = pytest.mark.browser

PAGES = ["", "worksheet", "explore", "spectrogram", "augmentation", "train", "runs", "try_it", "record"]


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_without_errors(page, server, path):
    open_page(page, server, path)
    assert_clean(page)
    assert page.locator("h1").first.inner_text().strip()


def test_spectrogram_slider_by_keyboard_redraws(page, server):
    open_page(page, server, "spectrogram")
    heatmap = page.locator("[data-testid='stPlotlyChart']").first
    before = heatmap.inner_html()
    model_input = page.locator("[data-testid='stMetric']", has_text="Model input").locator("[data-testid='stMetricValue']")
    shape_before = model_input.inner_text()
    assert shape_before.replace(" ", "") == "40×101"
    slider = page.locator(".st-key-spec_n_mels input[type='range']")
    for n_mels in (41, 42, 43):  # one step of n_mels per key press, each redrawn
        slider.focus()
        slider.press("ArrowRight")
        expect(model_input).to_have_text(re.compile(rf"{n_mels}\s*×\s*101"))
        wait_idle(page)
    assert heatmap.inner_html() != before
    assert_clean(page)


def test_audio_elements_have_a_source(page, server):
    for path in ["explore", "spectrogram", "augmentation"]:
        open_page(page, server, path)
        audio = page.locator("audio").first
        audio.wait_for(state="attached")
        src = audio.get_attribute("src")
        assert src and (src.startswith("data:audio") or "/media/" in src), src
    assert_clean(page)
