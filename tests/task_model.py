"""One small CNN of the keyword task (8 commands + ``_unknown_`` + ``_silence_``), trained once per test
process on the ``small_synth_all`` dataset: the parent of the fine-tuning tests and the model of the
"no keyword" page tests. About 25 s of CPU time.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

RUN_ID = "20260102-000000-cnn-7a5c00"  # a valid run id, so that kwscore.jobs and the pages list it
MODEL_KWARGS = {"channels": [8, 16, 32], "dropout": 0.0}

_lock = threading.Lock()
_cache: dict[str, Path] = {}


def trained_task_run(data_root: Path, runs_dir: Path) -> Path:
    """Train (once per process) and return ``runs_dir/RUN_ID``; later calls copy it into their own
    ``runs_dir``."""
    from kwscore.recipes import default_config
    from kwscore.runner import run_training

    with _lock:
        if "run" not in _cache:
            config = default_config(
                "cnn", data=str(data_root), commands="8", epochs=60, batch_size=16, lr=0.01,
                model_kwargs=MODEL_KWARGS, augment="none", seed=0, threads=1,
            )  # fmt: skip
            result = run_training(config, runs_dir / RUN_ID)
            assert result.state == "succeeded", result
            _cache["run"] = runs_dir / RUN_ID
        source = _cache["run"]
    target = runs_dir / RUN_ID
    if target != source and not target.exists():
        shutil.copytree(source, target)
    return target
