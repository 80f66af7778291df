"""One small CNN trained once per test session, shared by the Try-it, streaming, inference and export
tests (imported by their fixtures; trained on first use, then reused).

The recipe: the 8 commands of the embedded synthetic set (1,024 training clips: 4 takes of each
keyword), a CNN 16-32-64 without dropout, 15 epochs, batch 32, lr 0.01 one-cycle, time shift ±100 ms and the dataset's background
noises (p 0.8, weight up to 0.3) so that it copes with words in noise. About 25 s of CPU time: ~95 %
test accuracy on unseen synthetic voices.
"""

from __future__ import annotations

import threading
from pathlib import Path

STREAM_AUGMENT = {
    "name": "stream-test",
    "steps": [
        {"effect": "time_shift", "p": 1.0, "params": {"shift_ms": [-100.0, 100.0]}},
        {"effect": "add_background_noise", "p": 0.8, "params": {"weight": [0.0, 0.3]}},
    ],
}
RUN_ID = "20260101-000000-cnn-a1b2c3"  # a valid run id, so that kwscore.jobs and the pages list it

_lock = threading.Lock()
_cache: dict[str, Path] = {}


def trained_cnn_run(data_root: Path, runs_dir: Path) -> Path:
    """Train (once per process) and return the run folder ``runs_dir/RUN_ID``; later calls copy it
    into their own ``runs_dir`` if it differs."""
    import shutil

    from kwscore.recipes import default_config
    from kwscore.runner import run_training

    with _lock:
        if "run" not in _cache:
            config = default_config(
                "cnn", data=str(data_root), commands="8", epochs=15, batch_size=32, lr=0.01,
                model_kwargs={"channels": [16, 32, 64], "dropout": 0.0}, augment=STREAM_AUGMENT, seed=0, threads=1,
                unknown=False,  # the 8 words only (tests/task_model.py has the _unknown_/_silence_ model)
            )  # fmt: skip
            run_dir = runs_dir / RUN_ID
            result = run_training(config, run_dir)
            assert result.state == "succeeded", result
            _cache["run"] = run_dir
        source = _cache["run"]
    target = runs_dir / RUN_ID
    if target != source and not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("export"))
    return target


def heard_clip(root: Path, word: str, predictor, min_probability: float = 0.7, keep=None):
    """A test-split clip of ``word`` (``[16000]`` float32 numpy) that ``predictor`` hears right on its
    own (and that ``keep(clip)`` accepts, when given): tests of pages and file handling check those,
    not the small test model, whose weights vary a little between processes."""
    from kwscore import audio
    from kwscore.data.dataset import SpeechCommands

    ds = SpeechCommands(root, subset="testing", commands=[word])
    for i in range(len(ds)):
        clip = audio.fix_length(ds.waveform(i), 16000)
        p = predictor.predict(clip)
        if p.word == word and p.probability >= min_probability and (keep is None or keep(clip[0].numpy())):
            return clip[0].numpy()
    raise AssertionError(f"the test model hears no test clip of {word!r} right: it is too weak")
