"""The dashboard under streamlit.testing.v1.AppTest (real pages, no browser)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kwscore.data.synth import default_params, is_complete

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def run_app(timeout=120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    return at.run()


def test_home_page_shows_the_dataset(kws_env):
    at = run_app()
    assert not at.exception, at.exception
    assert "KWS Studio" in at.title[0].value
    metrics = {m.label: m.value for m in at.metric}
    # 35 Speech Commands words, 40 speakers (KWS_SYNTH_SPEAKERS in conftest) × 2 takes
    assert metrics["Words"] == "35" and metrics["Clips"] == "2,600" and metrics["Speakers"] == "40"
    assert at.get("plotly_chart"), "clips-per-word chart"
    assert any("speaker-disjoint" in s.value for s in at.success)


@pytest.mark.slow
def test_first_start_generates_the_embedded_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path))
    at = run_app()
    assert not at.exception
    assert is_complete(tmp_path / "synthetic", default_params())
    assert {m.label: m.value for m in at.metric}["Clips"] == "2,600"


def test_custom_folder_picker(kws_env, small_synth):
    at = run_app()
    at.sidebar.selectbox[0].select("Another folder…").run()
    assert at.info and not at.exception
    at.sidebar.text_input(key="dataset_folder").input(str(small_synth)).run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Clips"] == "160"
    at.sidebar.text_input(key="dataset_folder").input("/no/such/folder").run()
    assert not at.exception and "does not exist" in at.error[0].value
