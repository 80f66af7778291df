"""Runs → "Test on another dataset": a finished run tested on other clips, next to its own test split."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kwscore.evaluation import evaluate, load_run_model
from kwscore.labels import task_dataset

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
SHARED_REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-commands-real"


def open_run(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("../pages/runs.py").run()
    at.selectbox(key="runs_detail").set_value(run_id).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def run_dir(kws_env) -> Path:
    from tests.trained import trained_cnn_run

    return trained_cnn_run(Path(kws_env) / "synthetic", Path(os.environ["KWS_RUNS_DIR"]))


def test_its_own_test_split_gives_its_own_test_accuracy(run_dir):
    at = open_run(run_dir.name)
    box = at.selectbox(key=f"xeval_data_{run_dir.name}")
    own = str(Path(os.environ["KWS_DATA_DIR"]) / "synthetic")
    assert box.options[0].endswith("(trained on it)")
    box.set_value(own)
    at.radio(key=f"xeval_subset_{run_dir.name}").set_value("testing")
    at.button(key=f"xeval_go_{run_dir.name}").click().run()
    assert not at.exception and not at.error, at.exception or at.error
    m = metrics(at)
    assert m["On its own test split"] == m[next(k for k in m if k.startswith("On ") and "trained on it" in k)]
    assert any(e.proto.id.endswith(f"-xeval_confusion_{run_dir.name}") for e in at.get("plotly_chart"))


@pytest.mark.skipif(not (SHARED_REAL / "SpeechCommands").is_dir(), reason="needs ../shared/data/speech-commands-real")
def test_real_voices_are_tested_with_the_one_evaluation(run_dir):
    at = open_run(run_dir.name)
    from dashboard import datasets

    real = str(datasets.SHARED_REAL)  # on offer wherever ../shared has it
    at.selectbox(key=f"xeval_data_{run_dir.name}").set_value(real)
    at.button(key=f"xeval_go_{run_dir.name}").click().run()  # the testing split by default
    assert not at.exception and not at.error, at.exception or at.error
    model, transform, labels, config = load_run_model(run_dir)
    expected = evaluate(model, task_dataset([real], "testing", labels, int(config.get("seed") or 0)), transform, labels)
    shown = next(v for k, v in metrics(at).items() if k.startswith("On ") and k != "On its own test split")
    assert shown == f"{100 * expected['accuracy']:.1f} %"
