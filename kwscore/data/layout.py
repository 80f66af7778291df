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
import stat
from dataclasses import dataclass, field
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
    """Names of the word folders of a dataset that hold at least one clip (sorted).

    An empty folder (or a file, a symlink loop, an unreadable folder) is not a word: it would
    become a class with no clip to learn it from.
    """
    folder = dataset_folder(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith((".", "_")) and _holds_clips(p))


def _holds_clips(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(FILENAME_RE.match(e.name) for e in entries)
    except OSError:  # not a folder, a symlink loop, no permission
        return False


# ---------------------------------------------------------------------------------------------
# The split lists
# ---------------------------------------------------------------------------------------------

LIST_FILES = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
MAX_LIST_BYTES = 64 * 2**20  # the real testing_list.txt is 0.4 MB


@dataclass
class SplitLists:
    """A dataset's ``validation_list.txt`` and ``testing_list.txt``, checked line by line.

    ``validation`` / ``testing``: the clip ids (``"<word>/<speaker>_nohash_<n>.wav"``) that name a
    clip of this dataset, in file order, without repeats. Blank lines are ignored; every other
    line that does not name such a clip is left out and described in ``problems`` (one sentence
    per list file). ``missing``: the list files that are absent or unreadable.
    """

    validation: list[str] = field(default_factory=list)
    testing: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _line_problem(folder: Path, line: str) -> str | None:
    """Why a list line does not name a clip of the dataset in ``folder`` (None when it does)."""
    if line.startswith(("/", "\\")) or (len(line) > 1 and line[1] == ":"):
        return "an absolute path"
    parts = line.split("/")
    if len(parts) != 2 or any(part in ("", ".", "..") for part in parts) or "\\" in line:
        return "not <word>/<file>.wav inside the dataset"
    word, name = parts
    if word.startswith((".", "_")):
        return "not in a word folder"
    if not FILENAME_RE.match(name):
        return "not a clip name like <speaker>_nohash_<n>.wav"
    try:
        exists = (folder / word / name).is_file()
    except OSError:  # a name too long, a symlink loop...
        exists = False
    return None if exists else "missing: no such file"


def _read_list(folder: Path, filename: str, out: SplitLists) -> list[str]:
    path = folder / filename
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > MAX_LIST_BYTES:
            raise OSError(f"{info.st_size / 2**20:.0f} MB, larger than any split list")
        raw = path.read_bytes()
    except FileNotFoundError:
        out.missing.append(filename)
        return []
    except OSError as exc:
        out.missing.append(filename)
        out.problems.append(f"{filename} cannot be read ({exc.strerror or exc}): it is ignored.")
        return []
    clips: dict[str, None] = {}
    bad: list[tuple[int, str, str]] = []
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        try:
            line = chunk.decode("utf-8").strip()
        except UnicodeDecodeError:
            bad.append((number, chunk.decode("utf-8", "replace").strip(), "not UTF-8 text"))
            continue
        if not line:
            continue
        problem = _line_problem(folder, line)
        if problem:
            bad.append((number, line, problem))
        else:
            clips.setdefault(line)
    if bad:
        shown = "; ".join(f"line {n} {text[:60]!r}: {why}" for n, text, why in bad[:3])
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        out.problems.append(f"{filename}: {len(bad)} line(s) ignored ({shown}{more}).")
    return list(clips)


def read_split_lists(root: str | os.PathLike) -> SplitLists:
    """Read and check the split lists of a dataset (see :class:`SplitLists`). Never raises."""
    folder = dataset_folder(root)
    out = SplitLists()
    for split, filename in LIST_FILES.items():
        setattr(out, split, _read_list(folder, filename, out))
    return out


def parse_clip_name(relpath: str) -> tuple[str, str, int]:
    """``"yes/0a7c2a8d_nohash_1.wav"`` -> ``("yes", "0a7c2a8d", 1)`` (label, speaker, utterance)."""
    word, name = Path(relpath).parts[-2:]
    m = FILENAME_RE.match(name)
    if not m:
        raise ValueError(f"not a Speech Commands clip name: {relpath}")
    return word, m["speaker"], int(m["n"])
