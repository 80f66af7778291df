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
    heatmap = page.locator(".kws-picture[data-key='spec_main']")
    expect(heatmap.locator(".kws-title")).to_contain_text("40 Mel bands × 101 frames")
    assert heatmap.locator("img").evaluate("img => img.complete && img.naturalWidth") == 101  # a pixel per frame
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
    expect(heatmap.locator(".kws-title")).to_contain_text("43 Mel bands × 101 frames")
    # "Hover for values": the interactive plotly chart instead, and the same for the next move
    page.locator(".st-key-spec_hover label").click()
    chart = page.locator("[data-testid='stPlotlyChart']").first
    expect(chart.locator(".gtitle")).to_contain_text("43 Mel bands × 101 frames")
    slider.focus()
    slider.press("ArrowRight")
    expect(chart.locator(".gtitle")).to_contain_text("44 Mel bands × 101 frames")
    wait_idle(page)
    assert_clean(page)


def test_spectrogram_look_closer_and_code_are_built_when_opened(page, server):
    open_page(page, server, "spectrogram")
    main = page.locator("[data-testid='stMain']")
    assert main.get_by_text("worked out").count() == 0 and main.locator("[data-testid='stCode']").count() == 0
    slider = page.locator(".st-key-spec_n_mels input[type='range']")
    slider.focus()
    slider.press("ArrowRight")  # 41 bands, before either is opened: they show the settings of now
    wait_idle(page)
    page.locator("[data-testid='stExpander']", has_text="Look closer").locator("summary").click()
    expect(main.locator("table", has_text="worked out")).to_contain_text(re.compile(r"41\s*×\s*101"))
    page.locator("[data-testid='stExpander']", has_text="PyTorch code").locator("summary").click()
    expect(main.locator("[data-testid='stCode']")).to_contain_text("n_mels=41,")
    slider.focus()
    slider.press("ArrowRight")  # open, both follow the next move
    expect(main.locator("table", has_text="worked out")).to_contain_text(re.compile(r"42\s*×\s*101"))
    expect(main.locator("[data-testid='stCode']")).to_contain_text("n_mels=42,")
    wait_idle(page)
    assert_clean(page)


def test_audio_elements_have_a_source(page, server):
    for path in ["explore", "spectrogram", "augmentation"]:
        open_page(page, server, path)
        audio = page.locator("audio").first
        audio.wait_for(state="attached")
        src = audio.get_attribute("src")
        assert src and (src.startswith("data:audio") or "/media/" in src), src
    assert_clean(page)
