"""Your own words: record takes and keep them as a dataset in the SpeechCommands layout.

Takes are trimmed of leading/trailing silence, converted to 16 kHz mono and centred in a 1-s clip,
then saved as ``<root>/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav``. The
speaker id is a stable 8-hex-digit hash of the user's name, like the real dataset's.

Recordings are never lost: a take is written to a temporary file and *linked* to its final name,
which fails rather than overwrite an existing take; deleting moves a take to ``_trash/``.

Splits: every 5th take of a word goes to validation and the next to testing
(takes 0-2 training, 3 validation, 4 testing, 5-7 training...), so that a handful of takes already
gives all three splits.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.layout import FILENAME_RE, dataset_folder, word_folders
from kwscore.errors import KwsError
from kwscore.fileio import atomic_write, write_new

CLIP_SAMPLES = SAMPLE_RATE
WORD_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
TRASH = "_trash"


@dataclass(frozen=True)
class Take:
    word: str
    speaker: str
    number: int
    path: Path

    @property
    def clip_id(self) -> str:
        return f"{self.word}/{self.path.name}"


def speaker_id(user_name: str) -> str:
    """A stable 8-hex-digit speaker id for a user name (case and spaces ignored)."""
    name = " ".join(user_name.lower().split())
    if not name:
        raise KwsError("Type your name first: it keeps your takes together as one speaker.")
    return hashlib.sha1(name.encode()).hexdigest()[:8]


def check_word(word: str) -> str:
    """Validate a word folder name: lower-case letters, digits, '-' or '_' (no paths)."""
    word = str(word).strip().lower()
    if not WORD_RE.match(word):
        shown = repr(word) if len(word) <= 40 else f"{word[:32]!r}… ({len(word)} characters)"
        raise KwsError(
            f"{shown} cannot be a word name: use 1-32 lower-case letters, digits, '-' or '_', "
            "starting with a letter (for example 'hello' or 'lights-on')."
        )
    return word


def prepare_take(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Any recording -> a 1-s 16 kHz mono clip with the word centred. [channels, time] -> [1, 16000]."""
    audio.check_rate(sample_rate, "The recording")
    if audio.count_nonfinite(waveform):
        raise KwsError("The recording contains invalid samples (NaN or infinity). Record it again.")
    x = audio.resample(audio.to_mono(waveform.float()), sample_rate, SAMPLE_RATE)
    peak = float(x.abs().max()) if x.numel() else 0.0
    if peak < 1e-3:
        raise KwsError("The recording is silent. Check the microphone and speak a little louder.")
    x = audio.trim_silence(x, SAMPLE_RATE)
    if x.shape[-1] > CLIP_SAMPLES:
        raise KwsError(
            f"After trimming silence the take still lasts {x.shape[-1] / SAMPLE_RATE:.1f} s: "
            "a keyword must fit in 1 s. Say just the word, a little faster."
        )
    left = (CLIP_SAMPLES - x.shape[-1]) // 2
    return torch.nn.functional.pad(x, (left, CLIP_SAMPLES - x.shape[-1] - left))


def split_of(number: int) -> str:
    return {3: "validation", 4: "testing"}.get(number % 5, "training")


def list_takes(root: str | os.PathLike, word: str | None = None, user_name: str | None = None) -> list[Take]:
    """Saved takes, optionally of one word and/or one user, sorted."""
    folder = dataset_folder(root)
    words = [check_word(word)] if word else word_folders(root)
    speaker = speaker_id(user_name) if user_name else None
    takes = []
    for w in words:
        for path in sorted((folder / w).glob("*.wav")) if (folder / w).is_dir() else []:
            m = FILENAME_RE.match(path.name)
            if m and (speaker is None or m["speaker"] == speaker):
                takes.append(Take(w, m["speaker"], int(m["n"]), path))
    return sorted(takes, key=lambda t: (t.word, t.speaker, t.number))


def _write_lists(root: Path) -> None:
    """Rewrite validation_list.txt / testing_list.txt from the takes on disk (atomically)."""
    folder = dataset_folder(root)
    lists = {"validation": [], "testing": []}
    for take in list_takes(root):
        split = split_of(take.number)
        if split in lists:
            lists[split].append(take.clip_id)
    for split, names in lists.items():
        atomic_write(folder / f"{split}_list.txt", "".join(f"{n}\n" for n in sorted(names)))


def save_take(root: str | os.PathLike, word: str, user_name: str, waveform: torch.Tensor, sample_rate: int) -> Take:
    """Prepare and save one take; never overwrites an existing one. Returns the saved take."""
    word = check_word(word)
    speaker = speaker_id(user_name)
    clip = prepare_take(waveform, sample_rate)
    folder = dataset_folder(root) / word
    folder.mkdir(parents=True, exist_ok=True)
    first = len(list_takes(root, word, user_name))
    names = (f"{speaker}_nohash_{n}.wav" for n in itertools.count(first))
    path = write_new(folder, names, audio.wav_bytes(clip, SAMPLE_RATE))
    n = int(FILENAME_RE.match(path.name)["n"])
    _write_lists(Path(root))
    return Take(word, speaker, n, path)


def delete_take(root: str | os.PathLike, clip_id: str) -> Path:
    """Move a take to ``_trash/`` (recoverable). ``clip_id`` is ``"word/<speaker>_nohash_<n>.wav"``."""
    folder = dataset_folder(root)
    parts = Path(clip_id).parts
    if len(clip_id) > 120 or len(parts) != 2 or not FILENAME_RE.match(parts[1]) or not WORD_RE.match(parts[0]):
        shown = repr(clip_id) if len(clip_id) <= 60 else f"{clip_id[:40]!r}… ({len(clip_id)} characters)"
        raise KwsError(f"{shown} is not a take name like 'hello/0a1b2c3d_nohash_0.wav'.")
    source = folder / parts[0] / parts[1]
    if not source.exists():
        raise KwsError(f"There is no take {clip_id}.")
    trash = dataset_folder(root).parent.parent / TRASH / parts[0]
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / parts[1]
    i = 1
    while target.exists():
        target = trash / f"{source.stem}.{i}.wav"
        i += 1
    os.replace(source, target)
    _write_lists(Path(root))
    return target
