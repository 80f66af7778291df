"""Bad-input corpus, dataset family: hostile datasets in the SpeechCommands layout.

:func:`hostile_datasets` damages a copy of a small synthetic dataset in one way each — blank and
hostile split-list lines (``../../etc/passwd``, absolute paths, missing files, non-UTF-8 bytes), list
files that are folders, FIFOs or devices, NaN/infinite clips, clips that are FIFOs or device
symlinks, odd rates, empty word folders, a word folder that is a file, symlink loops — and says
what each way of using a dataset must answer.

The ways (``WAYS``):

- ``open``: :class:`kwscore.data.SpeechCommands` over every subset, every clip decoded (in this
  process; time and peak memory measured);
- ``info``: ``kwscore data info --root ROOT`` (the CLI's entry point, in this process, timed): it
  runs cleanly and reports the problem;
- ``train``: a 1-epoch ``kwscore train`` on the damaged set (only where the damage reaches
  training): it finishes, and says which file it skipped.

Nothing may hang, print a traceback, or fail a whole run because of one bad file.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwscore.cli import main as cli
from kwscore.data.dataset import SpeechCommands
from kwscore.data.layout import dataset_folder, word_folders
from kwscore.errors import KwsError
from tests.badinput.harness import (
    MAX_MB,
    MAX_SECONDS,
    assert_friendly,
    measure,
    run_cli,
)

SUBSETS = (None, "training", "validation", "testing")
WAYS = ("open", "info", "train")


# ------------------------------------------------------------------------------------------------
# the generator: each case damages a copy of the small synthetic set (8 words, 10 speakers)
# ------------------------------------------------------------------------------------------------


def _lists(folder: Path) -> tuple[Path, Path]:
    return folder / "validation_list.txt", folder / "testing_list.txt"


def append_to(which: str, text: bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / f"{which}_list.txt"
        path.write_bytes(path.read_bytes() + text)

    return damage


def prepend_to(which: str, text: bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / f"{which}_list.txt"
        path.write_bytes(text + path.read_bytes())

    return damage


def replace_list(which: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / f"{which}_list.txt"
        path.unlink()
        make(path)

    return damage


def first_training_clip(folder: Path, word: str = "yes") -> Path:
    held = set()
    for path in _lists(folder):
        held |= set(path.read_text().split())
    return next(p for p in sorted((folder / word).glob("*.wav")) if f"{word}/{p.name}" not in held)


def write_clip(x: np.ndarray, sr: int = 16000, subtype: str = "FLOAT", name: str = "badc0de_nohash_0.wav"):
    def damage(folder: Path) -> None:
        sf.write(folder / "yes" / name, x, sr, subtype=subtype)

    return damage


def poison_training_clip(value: float) -> Callable[[Path], None]:
    """Replace a training clip of "yes" by the same clip with NaN/inf samples (float WAV)."""

    def damage(folder: Path) -> None:
        path = first_training_clip(folder)
        x, sr = sf.read(path, dtype="float32")
        x[200:260] = value
        sf.write(path, x, sr, subtype="FLOAT")

    return damage


def special_clip(make: Callable[[Path], None], name: str = "f1f0_nohash_0.wav") -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        make(folder / "yes" / name)

    return damage


def crafted_rate_clip(rate: int) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / "yes" / "0dd4a7e0_nohash_0.wav"
        sf.write(path, 0.3 * np.sin(np.arange(16000) / 7), 16000, subtype="PCM_16")
        data = bytearray(path.read_bytes())
        data[24:28] = rate.to_bytes(4, "little")  # the fmt chunk's sample rate
        path.write_bytes(bytes(data))

    return damage


def several(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        for d in damages:
            d(folder)

    return damage


@dataclass(frozen=True)
class Case:
    """One damaged dataset.

    ``warns``: a phrase some warning of ``open`` must contain (None: no warning at all).
    ``refused``: subset -> phrase of the KwsError opening that subset must raise.
    ``info``: a phrase ``kwscore data info`` must print (None: only that it runs cleanly).
    ``absent_words``: words that must not be classes. ``train``: run a 1-epoch training too."""

    name: str
    damage: Callable[[Path], None]
    warns: str | None = None
    refused: dict = field(default_factory=dict)
    info: str | None = None
    absent_words: tuple[str, ...] = ()
    train: bool = False
    not_in: tuple[str, ...] = ()  #: phrases that must appear in no message (e.g. "corrupt")


def hostile_datasets() -> list[Case]:
    missing = b"yes/deadbeef_nohash_0.wav\n"
    return [
        # split lists: lines
        Case("blank-lines", several(prepend_to("validation", b"\n\n   \n"), append_to("testing", b"\n\r\n\n")),
             warns=None, train=True),  # fmt: skip
        Case("parent-traversal", append_to("testing", b"../../etc/passwd\n"), warns="'../../etc/passwd'",
             info="inside the dataset", train=True),  # fmt: skip
        Case("absolute-path", append_to("testing", b"/etc/passwd\n"), warns="an absolute path",
             info="an absolute path", train=True),  # fmt: skip
        Case("missing-file", append_to("validation", missing), warns="missing: no such file",
             info="missing: no such file", not_in=("corrupt",), train=True),  # fmt: skip
        Case("non-utf8-bytes", append_to("testing", b"yes/\xff\xfe\xfa_nohash_0.wav\n"), warns="not UTF-8",
             info="not UTF-8", train=True),  # fmt: skip
        Case("backslashes", append_to("validation", b"yes\\0a1b_nohash_0.wav\n"), warns="inside the dataset",
             info="inside the dataset"),  # fmt: skip
        Case("noise-folder-entry", append_to("validation", b"_background_noise_/white.wav\n"),
             warns="not in a word folder", info="not in a word folder"),  # fmt: skip
        Case("not-a-clip-name", append_to("testing", b"yes/readme.txt\n"), warns="not a clip name",
             info="not a clip name"),  # fmt: skip
        Case("windows-line-endings", lambda f: [p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n")) for p in _lists(f)]),
        Case("duplicate-lines", lambda f: _lists(f)[1].write_bytes(_lists(f)[1].read_bytes() * 3)),
        Case("one-thousand-bad-lines", append_to("testing", b"../x\n" * 1000), warns="1000 line(s) ignored",
             info="and 997 more"),  # fmt: skip
        Case("very-long-line", append_to("testing", b"yes/" + b"a" * 5000 + b"_nohash_0.wav\n"),
             warns="missing: no such file", info="missing: no such file"),  # fmt: skip
        # split lists: the files themselves
        Case("missing-testing-list", lambda f: _lists(f)[1].unlink(),
             refused={"testing": "no usable testing_list.txt"}, info="Split lists: missing"),  # fmt: skip
        Case("missing-both-lists", lambda f: [p.unlink() for p in _lists(f)],
             refused={"testing": "testing_list.txt", "validation": "validation_list.txt"},
             info="all clips count as training"),  # fmt: skip
        Case("list-is-a-folder", replace_list("validation", lambda p: p.mkdir()), warns="cannot be read",
             refused={"validation": "validation_list.txt"}, info="cannot be read"),  # fmt: skip
        Case("list-is-a-fifo", replace_list("testing", os.mkfifo), warns="not a regular file",
             refused={"testing": "testing_list.txt"}, info="not a regular file"),  # fmt: skip
        Case("list-is-dev-zero", replace_list("testing", lambda p: p.symlink_to("/dev/zero")),
             warns="not a regular file", refused={"testing": "testing_list.txt"}),  # fmt: skip
        Case("list-is-huge", replace_list("validation", lambda p: os.truncate(p.write_bytes(b"") or p, 2**33)),
             warns="larger than any split list", refused={"validation": "validation_list.txt"}),  # fmt: skip
        Case("list-is-a-symlink-loop", replace_list("testing", lambda p: p.symlink_to(p.name)),
             warns="cannot be read", refused={"testing": "testing_list.txt"}),  # fmt: skip
        # clips
        Case("nan-clip", poison_training_clip(np.nan), warns="NaN or infinity", train=True),
        Case("inf-clip", poison_training_clip(np.inf), warns="NaN or infinity", train=True),
        Case("new-nan-clip", write_clip(np.full(16000, np.nan, np.float32)), warns="badc0de_nohash_0.wav"),
        Case("clip-is-a-fifo", special_clip(os.mkfifo), warns="not a regular file", info="cannot be read",
             train=True),  # fmt: skip
        Case("clip-is-dev-zero", special_clip(lambda p: p.symlink_to("/dev/zero")), warns="not a regular file",
             info="cannot be read"),  # fmt: skip
        Case("clip-is-a-folder", special_clip(lambda p: p.mkdir()), warns="not a regular file"),
        Case("clip-symlink-loop", special_clip(lambda p: p.symlink_to(p.name)), warns="f1f0_nohash_0.wav"),
        Case("clip-at-999983-hz", crafted_rate_clip(999983), warns="192,000 Hz", info="cannot be read",
             train=True),  # fmt: skip
        Case("clip-at-1-hz", crafted_rate_clip(1), warns="4,000 to 192,000 Hz"),
        Case("clip-at-8001-hz", crafted_rate_clip(8001), warns="8001 Hz, not 16 kHz: resampling", info="8001 Hz"),
        Case("clip-at-44101-hz", write_clip(0.3 * np.sin(np.arange(44101) / 9), 44101, "PCM_16"),
             warns="44101 Hz, not 16 kHz", info="44101 Hz"),  # fmt: skip
        Case("zero-length-clip", write_clip(np.zeros(0, np.float32)), warns="empty clip"),
        Case("not-audio-clip", special_clip(lambda p: p.write_bytes(b"RIFF not really a wav")), warns="corrupt"),
        Case("odd-clip-names", several(special_clip(lambda p: shutil.copy(first_training_clip(p.parents[1]), p),
                                                    "abc_nohash_x.wav"),
                                       special_clip(lambda p: shutil.copy(first_training_clip(p.parents[1]), p),
                                                    "a_nohash_b_nohash_1.wav"))),  # fmt: skip
        # word folders
        Case("empty-word-folder", lambda f: (f / "marvin").mkdir(), absent_words=("marvin",), train=True),
        Case("word-folder-without-clips", lambda f: [(f / "sheila").mkdir(), (f / "sheila" / "notes.txt").write_text("x")],
             absent_words=("sheila",)),  # fmt: skip
        Case("word-folder-is-a-file", lambda f: (f / "bird").write_bytes(b"not a folder"), absent_words=("bird",)),
        Case("word-folder-symlink-loop", lambda f: (f / "loop").symlink_to("loop"), absent_words=("loop",)),
        Case("word-folder-links-to-its-parent", lambda f: (f / "up2").symlink_to(".."), absent_words=("up2",)),
        Case("hidden-word-folder", lambda f: shutil.copytree(f / "yes", f / ".cache"), absent_words=(".cache",)),
    ]


CASES = {case.name: case for case in hostile_datasets()}


def _params():
    for case in CASES.values():
        for way in WAYS:
            if way == "train" and not case.train:
                continue
            marks = [pytest.mark.slow] if way == "train" else []
            yield pytest.param(case.name, way, id=f"{case.name}-{way}", marks=marks)


# ------------------------------------------------------------------------------------------------
# the ways
# ------------------------------------------------------------------------------------------------


def open_everything(root: Path) -> tuple[dict, list[str]]:
    """Every subset opened and fully decoded: subset -> SpeechCommands or KwsError; the warnings."""
    results = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for subset in SUBSETS:
            try:
                ds = SpeechCommands(root, subset, commands="all")
                for i in range(len(ds)):
                    ds.waveform(i)
                results[subset] = ds
            except KwsError as exc:
                results[subset] = exc
    return results, [str(w.message) for w in caught]


@pytest.fixture
def damaged(small_synth, tmp_path, request) -> tuple[Case, Path]:
    case = CASES[request.node.callspec.params["name"]]
    root = tmp_path / "data"
    shutil.copytree(small_synth, root, symlinks=True)
    case.damage(dataset_folder(root))
    return case, root


@pytest.mark.parametrize("name, way", list(_params()))
def test_hostile_dataset(name, way, damaged, tmp_path, capsys):
    case, root = damaged
    if way == "open":
        (results, messages), seconds, grown = measure(open_everything, root)
        assert seconds <= MAX_SECONDS and grown <= MAX_MB, (seconds, grown)
        for subset, result in results.items():
            if subset in case.refused:
                assert isinstance(result, KwsError) and case.refused[subset] in str(result), result
                assert_friendly(str(result))
            else:
                assert isinstance(result, SpeechCommands), f"{subset}: {result}"
                assert not set(case.absent_words) & set(result.labels), result.labels
                assert all(dataset_folder(root) in ds_path.parents or ds_path.parent.parent.name == "up2"
                           for ds_path in map(result.path, range(len(result)))), "a clip outside the dataset"  # fmt: skip
        if case.warns is None:
            assert not messages, messages
        else:
            assert any(case.warns in m for m in messages), messages
        for message in messages:
            assert_friendly(message)
            assert not any(p in message for p in case.not_in), message
        lists_warnings = [m for m in messages if "line(s) ignored" in m]
        assert len(lists_warnings) <= 2, "each list's bad lines are reported once"
    elif way == "info":  # `kwscore data info --root ROOT`, the CLI's own entry point, in this process
        code, seconds, grown = measure(cli, ["data", "info", "--root", str(root)])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert seconds <= MAX_SECONDS and grown <= MAX_MB, (seconds, grown)
        assert_friendly(out)
        assert "Traceback" not in err
        if case.info:
            assert case.info in out, out
        words = out.split("Words (", 1)[1].splitlines()[0]
        assert not any(f" {w}," in f" {words}," for w in case.absent_words), words
        for phrase in case.not_in:
            assert phrase not in out + err
    else:
        runs = tmp_path / "runs"
        out = run_cli(["train", "--model", "cnn", "--data", str(root), "--commands", "all", "--epochs", "1",
                       "--threads", "1", "--runs-dir", str(runs)], timeout=300)  # fmt: skip
        assert out.code == 0, out.text[-2000:]
        assert "Traceback" not in out.text, out.text[-2000:]
        (run,) = list(runs.iterdir())
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "succeeded", status
        report = json.loads((run / "report.json").read_text())
        labels = report.get("labels") or json.loads((run / "config.json").read_text()).get("labels", [])
        assert not set(case.absent_words) & set(labels), labels
        everything = out.text + (run / "log.txt").read_text()
        assert "nan" not in everything.split("loss", 1)[-1].lower().split(), "the loss stayed a number"
        if case.warns:
            assert case.warns in everything, everything[-3000:]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 35 and len(list(_params())) >= 80


def test_word_folders_are_folders_with_clips(small_synth, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(small_synth, root)
    folder = dataset_folder(root)
    (folder / "marvin").mkdir()
    assert "marvin" not in word_folders(root)
    shutil.copy(first_training_clip(folder), folder / "marvin" / "0a0a0a0a_nohash_0.wav")
    assert "marvin" in word_folders(root)
