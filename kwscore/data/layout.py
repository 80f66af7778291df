"""The SpeechCommands folder layout that every dataset here follows.

    ROOT/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav
    ROOT/SpeechCommands/speech_commands_v0.02/validation_list.txt
    ROOT/SpeechCommands/speech_commands_v0.02/testing_list.txt
    ROOT/SpeechCommands/speech_commands_v0.02/_background_noise_/*.wav

This is exactly what ``torchaudio.datasets.SPEECHCOMMANDS(root=ROOT)`` expects, so one loader serves
the synthetic set, the real download and any folder a teacher prepares.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kwscore.data.words import NOISE_FOLDER

ARCHIVE_FOLDER = Path("SpeechCommands") / "speech_commands_v0.02"
FILENAME_RE = re.compile(r"^(?P<speaker>[0-9a-zA-Z]+)_nohash_(?P<n>\d+)\.wav$")


def dataset_folder(root: str | os.PathLike) -> Path:
    """The folder holding the word folders, for a dataset ROOT.

    Accepts the ROOT itself or, for convenience, the inner ``speech_commands_v0.02`` folder.
    """
    root = Path(root).expanduser()
    if root.name == ARCHIVE_FOLDER.name and root.parent.name == ARCHIVE_FOLDER.parent.name:
        return root
    return root / ARCHIVE_FOLDER


def dataset_root(root: str | os.PathLike) -> Path:
    """Inverse of :func:`dataset_folder`: the ROOT that torchaudio's SPEECHCOMMANDS wants."""
    return dataset_folder(root).parent.parent


def noise_files(root: str | os.PathLike) -> list[Path]:
    """The background-noise recordings of a dataset (sorted; empty if it has none)."""
    folder = dataset_folder(root) / NOISE_FOLDER
    return sorted(folder.glob("*.wav")) if folder.is_dir() else []


def word_folders(root: str | os.PathLike) -> list[str]:
    """Names of the word folders present in a dataset (sorted)."""
    folder = dataset_folder(root)
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


def parse_clip_name(relpath: str) -> tuple[str, str, int]:
    """``"yes/0a7c2a8d_nohash_1.wav"`` -> ``("yes", "0a7c2a8d", 1)`` (label, speaker, utterance)."""
    word, name = Path(relpath).parts[-2:]
    m = FILENAME_RE.match(name)
    if not m:
        raise ValueError(f"not a Speech Commands clip name: {relpath}")
    return word, m["speaker"], int(m["n"])
