"""A run as a Jupyter notebook: written by `kwscore notebook`, executed for real with nbclient."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from kwscore.errors import KwsError
from kwscore.notebook import build_notebook
from kwscore.recipes import default_config


def tiny(small_synth, model="cnn", **changes) -> dict:
    kwargs = {"channels": [8, 16]} if model == "cnn" else {"n_channel": 4, "stride": 16}
    return default_config(model, data=str(small_synth), epochs=1, batch_size=32, model_kwargs=kwargs,
                          name="tiny notebook", notes="A note.", **changes).to_dict()  # fmt: skip


def test_the_notebook_follows_the_lab_steps(small_synth):
    nb = build_notebook(tiny(small_synth))
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert headings[0] == "# Keyword spotting with PyTorch — tiny notebook"
    steps = ["## 0. Settings", "## 1. The dataset", "## 2. Look at a sample", "## 3. The transform",
             "## 4. label_to_index", "## 5. The model", "## 6. Train and test", "## 7. The loss curve",
             "## 8. Test accuracy"]  # fmt: skip
    positions = [next(i for i, h in enumerate(headings) if h.startswith(s)) for s in steps]
    assert positions == sorted(positions)  # every step, in the lab's order
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "T.MelSpectrogram(" in code and "n_mels=40," in code and "make_collate(labels)" in code
    nbformat.validate(nb)
    with pytest.raises(KwsError, match="cannot be turned into a notebook"):
        build_notebook({**tiny(small_synth), "lr": -1.0})


@pytest.mark.slow
def test_the_cli_notebook_executes_and_trains(small_synth, tmp_path):
    from nbclient import NotebookClient

    from kwscore import jobs

    runs = tmp_path / "runs"
    run_id = jobs.create_run(default_config(**{k: v for k, v in tiny(small_synth, "m5").items()}), runs)
    out = tmp_path / "run.ipynb"
    env = {**os.environ, "KWS_RUNS_DIR": str(runs)}
    result = subprocess.run([sys.executable, "-m", "kwscore.cli", "notebook", "tiny notebook", "-o", str(out)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out, as_version=4)
    assert json.loads(out.read_text())["metadata"]["kernelspec"]["name"] == "python3"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "epoch 1: train loss" in text and "test accuracy" in text
    assert "parameters" in text and "one batch: [32, 1, 16000] [32]" in text
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    bad = subprocess.run([sys.executable, "-m", "kwscore.cli", "notebook", run_id[-6:], "-o", str(tmp_path / "x.txt")],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and ".ipynb" in bad.stderr
