"""The whole lab in a real browser: data -> Spectrogram lab -> Train M5 -> Runs -> Try it.

Also: the fake microphone drives the recording widget.
"""

import re

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import expect

from kwscore import jobs
from kwscore.data.layout import dataset_folder

from .conftest import assert_clean, open_page, wait_idle

pytestmark = pytest.mark.browser


def test_full_path_train_watch_compare_try(page, server):
    # 1. the embedded data is there (generated on first start) and the Spectrogram lab draws it
    open_page(page, server, "spectrogram")
    page.locator(".kws-picture img").first.wait_for()
    page.locator("audio").first.wait_for(state="attached")

    # 2. Train a tiny M5 for 1 epoch
    open_page(page, server, "train")
    page.locator("[data-testid='stRadio'] label", has_text="M5 · raw waveform").first.click()
    wait_idle(page)
    epochs = page.get_by_label("Epochs")
    expect(epochs).to_have_count(1)  # the model switch redraws the form: wait for the old one to go
    epochs.fill("1")
    epochs.press("Enter")
    wait_idle(page)
    # (a button with a tooltip is in the page twice, once hidden: take the visible one)
    launch = page.locator("[data-testid='stButton'] button", has_text="Launch").filter(visible=True)
    expect(launch).to_have_count(1)
    assert launch.is_enabled()
    launch.click()

    # 3. the live panel updates until the run succeeds (polling fragment, no page reload)
    watched = page.get_by_role("combobox", name="Run to watch")
    expect(watched).to_have_value(re.compile("launched here"))
    tail = watched.input_value().split(" · ")[-2]
    run = next(i for i in jobs.list_runs(server.runs_dir) if i.run_id.endswith(tail))
    live = page.locator("[data-testid='stMain'] [data-testid='stMarkdownContainer']", has_text=tail)
    live.filter(has_text="succeeded").first.wait_for(timeout=240_000)
    assert jobs.refresh_status(run.run_id, server.runs_dir)["state"] == "succeeded"
    page.locator("[data-testid='stPlotlyChart']").nth(1).wait_for(timeout=30_000)  # loss and accuracy curves
    assert_clean(page)

    # 4. Runs shows it, with a confusion matrix
    open_page(page, server, "runs")
    page.get_by_text("Confusion matrix on the test split", exact=False).first.wait_for(timeout=60_000)
    assert_clean(page)

    # 5. Try it: upload a test clip, get a prediction
    open_page(page, server, "try_it")
    clip = sorted(dataset_folder(server.data_dir / "synthetic").glob("yes/*.wav"))[0]
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(clip))
    wait_idle(page)
    page.get_by_text("The second the model hears", exact=False).first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2, "waveform and probabilities"
    assert_clean(page)


def test_fake_microphone_records_a_take(page, server):
    open_page(page, server, "record")
    name = page.get_by_label("Speaker name", exact=True)
    name.fill("Ada")
    name.press("Enter")
    wait_idle(page)
    recorder = page.locator("[data-testid='stAudioInput']").first
    recorder.wait_for(timeout=30_000)
    record = recorder.get_by_role("button", name="Record")
    record.click()
    page.wait_for_timeout(1500)  # the fake microphone plays a quiet 0.3 s, "yes", then quiet
    recorder.get_by_role("button", name="Stop recording").click()
    wait_idle(page)
    page.wait_for_timeout(500)
    wait_idle(page)
    assert page.locator("audio").count() >= 1, "the take can be played back"
    page.get_by_role("button", name="Keep this take").click()
    wait_idle(page)
    takes = list((server.data_dir / "user").rglob("yes/*_nohash_*.wav"))  # other tests may record other words
    assert len(takes) == 1
    take, sr = sf.read(takes[0])
    assert (sr, take.shape) == (16000, (16000,)) and np.abs(take).max() > 0.05, "the word, not silence"
    assert_clean(page)
