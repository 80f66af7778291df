"""Where KWS Studio keeps its data and runs.

Defaults live under ``~/.kws-studio`` so that nothing large ends up inside the repository.
Override them with environment variables (handy for classrooms and tests):

- ``KWS_DATA_DIR``: root folder of the datasets (default ``~/.kws-studio/data``)
- ``KWS_RUNS_DIR``: folder holding one sub-folder per training run (default ``~/.kws-studio/runs``)
"""

import os
from pathlib import Path

HOME = Path(os.environ.get("KWS_HOME", Path.home() / ".kws-studio"))


def data_dir() -> Path:
    """Root of all datasets; each dataset is a folder in the SpeechCommands layout."""
    return Path(os.environ.get("KWS_DATA_DIR", HOME / "data")).expanduser()


def synth_root() -> Path:
    """Root of the embedded synthetic dataset (``<root>/SpeechCommands/speech_commands_v0.02``)."""
    return data_dir() / "synthetic"


def real_root() -> Path:
    """Root where ``kwscore data download`` puts the real Speech Commands v0.02."""
    return data_dir() / "real"


def user_root() -> Path:
    """Root of the user's own recordings ("Your own words")."""
    return data_dir() / "user"


def runs_dir() -> Path:
    """Folder with one sub-folder per training run."""
    return Path(os.environ.get("KWS_RUNS_DIR", HOME / "runs")).expanduser()
