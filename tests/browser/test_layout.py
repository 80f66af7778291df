"""Layout in a real browser: nothing cut at 1280×800, little space above titles, a projector mode, and the
Train page's front-end panel that follows each edit and stays open."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import assert_clean, open_page, wait_idle

pytestmark = pytest.mark.browser

PAGES = ["", "worksheet", "explore", "spectrogram", "augmentation", "train", "runs", "try_it", "record", "live"]

#: Elements whose text must fit: widget labels, buttons, metric labels, tabs, page links, select-box values.
CUT = """() => {
  const sel = ['[data-testid="stWidgetLabel"]', '[data-testid="stWidgetLabel"] p', 'button', 'button p',
    '[data-testid="stMetricLabel"] p', '[data-baseweb="tab"] p', '[data-testid="stPageLink"] p',
    '[data-testid="stSidebarNavLink"] span', '[data-testid="stSelectbox"] input'];
  const cut = [];
  for (const el of document.querySelectorAll(sel.join(','))) {
    const text = (el.value || el.innerText || '').trim();
    if (el.offsetParent && text && el.scrollWidth > el.clientWidth + 1)
      cut.push(`${text.slice(0, 60)} (${el.scrollWidth} > ${el.clientWidth} px)`);
  }
  return cut;
}"""


@pytest.fixture
def small(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_nothing_is_cut_at_1280x800(small, server, path):
    open_page(small, server, path)
    assert small.evaluate(CUT) == []
    top = small.locator("[data-testid='stMain'] h1").first.bounding_box()["y"]
    assert top < 100, f"{top:.0f} px above the title"


@pytest.mark.parametrize("path", ["spectrogram", "train"])  # the densest pages
def test_nothing_is_cut_in_projector_mode_at_1920x1080(browser, server, path):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        open_page(pg, server, path)
        pg.locator("[data-testid='stSidebar'] label", has_text="Projector mode").click()
        wait_idle(pg)
        assert pg.evaluate(CUT) == []
    finally:
        context.close()


def test_projector_mode_makes_text_and_figures_larger(small, server):
    open_page(small, server, "spectrogram")

    def sizes():
        small.locator(".kws-picture .kws-title").first.wait_for()  # the lab's picture (its title, ticks and axes)
        return small.evaluate("""() => [parseFloat(getComputedStyle(document.documentElement).fontSize),
            parseFloat(getComputedStyle(document.querySelector('[data-testid="stCaptionContainer"]')).fontSize),
            parseFloat(getComputedStyle(document.querySelector('.kws-picture .kws-title')).fontSize),
            parseFloat(getComputedStyle(document.querySelector('.kws-picture')).fontSize)]""")

    before = sizes()
    small.locator("[data-testid='stSidebar'] label", has_text="Projector mode").click()
    wait_idle(small)
    after = sizes()
    assert all(a > 1.25 * b for a, b in zip(after, before, strict=True)), (before, after)
    small.locator("[data-testid='stSidebarNavLink']", has_text="Train").click()  # the mode stays on, page to page
    expect(small.locator("[data-testid='stMain'] h1").first).to_have_text("Train")
    wait_idle(small)
    assert small.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") == after[0]


def test_train_front_end_panel_follows_each_edit_and_stays_open(small, server):
    open_page(small, server, "train")
    panel = small.locator("[data-testid='stExpander']", has_text="Front end:")
    panel.locator("summary").click()
    n_mels = panel.locator(".st-key-trfe_n_mels input[type='range']")
    n_mels.wait_for()
    for expected in (41, 42):  # one key press each: the title shows it at once, the panel stays open
        n_mels.focus()
        n_mels.press("ArrowRight")
        wait_idle(small)
        expect(panel.locator("summary")).to_contain_text(re.compile(rf"Front end: {expected} Mel bands"))
        expect(n_mels).to_be_visible()
    assert_clean(small)
