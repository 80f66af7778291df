"""One loader for every dataset in the SpeechCommands layout.

:class:`SpeechCommands` walks files with ``torchaudio.datasets.SPEECHCOMMANDS`` (which also knows the
official ``training`` / ``validation`` / ``testing`` subsets) but decodes them with soundfile, because
``torchaudio.load`` needs torchcodec + FFmpeg since torchaudio 2.9. An item is torchaudio's tuple::

    (waveform [1, time] float32, sample_rate, label, speaker_id, utterance_number)

The :func:`collate` step is the tutorial's: zero-pad a batch to equal length and turn words into
class indices, giving ``(waveforms [batch, 1, time], targets [batch])``.

Clips kept in memory are 16-bit samples (:func:`to_pcm16` / :func:`from_pcm16`), as in the WAV files:
2 bytes a sample instead of float32's 4, so the full Speech Commands (105,829 one-second clips) fits
in about 3.4 GB. A 16-bit file comes back bit for bit; anything else to within half a step (1/65536).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchaudio.datasets import SPEECHCOMMANDS

from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.layout import (
    FILENAME_RE,
    LIST_FILES,
    SplitLists,
    dataset_folder,
    dataset_root,
    read_split_lists,
    word_folders,
)
from kwscore.data.words import ALL_WORDS, COMMANDS, TASK_12_WORDS
from kwscore.errors import KwsError

SUBSETS = ("training", "validation", "testing")
Item = tuple[torch.Tensor, int, str, str, int]


def resolve_commands(commands: str | int | Sequence[str], available: Sequence[str]) -> list[str]:
    """Turn a commands choice into the sorted list of class labels.

    ``"8"``/``8``: the 8 default commands; ``"12"``: the 10 words of the standard task (training adds
    ``_unknown_`` and ``_silence_``, :mod:`kwscore.labels`); ``"35"``/``35``: all Speech Commands words;
    ``"all"``: every word folder of this dataset (also your own new words); or a list of words.
    """
    choice = str(commands) if isinstance(commands, int | str) else None
    if choice in ("8", "commands"):
        words = list(COMMANDS)
    elif choice == "12":
        words = list(TASK_12_WORDS)
    elif choice == "35":
        words = list(ALL_WORDS)
    elif choice == "all":
        words = list(available)
    elif choice is not None:
        words = [w.strip() for w in choice.split(",") if w.strip()]
    else:
        words = list(commands)
    unknown = [w for w in words if w not in available]
    if unknown:
        raise KwsError(
            f"Unknown command(s) {', '.join(unknown)}: this dataset has no such word folder. "
            f"Pick from: {', '.join(available) or '(none)'}."
        )
    if not words:
        raise KwsError("No words chosen: use commands '8', '35', 'all' or a list of words.")
    return sorted(set(words))


#: Full scale of 16-bit samples: a float sample x in [-1, 1) is stored as round(x * PCM16_SCALE).
PCM16_SCALE = 32768.0


def to_pcm16(waveform: torch.Tensor) -> torch.Tensor:
    """float samples in [-1, 1] -> int16 (how a 16-bit WAV stores them); louder samples are clipped.

    A clip decoded from a 16-bit file comes back bit for bit through :func:`from_pcm16`; any other
    (a float WAV, a resampled clip) to within half a step, 1/65536.
    """
    return torch.from_numpy(_pcm16_array(waveform))


def _pcm16_array(waveform: torch.Tensor) -> np.ndarray:
    # NumPy, single-threaded: torch's round took 1-20 ms per clip on a busy 2-core machine, NumPy 0.02 ms
    x = waveform.detach().cpu().numpy()
    return np.clip(np.rint(x * np.float32(PCM16_SCALE)), -32768, 32767).astype(np.int16)


def fits_pcm16(waveform: torch.Tensor) -> bool:
    """Whether 16 bits hold ``waveform`` to within half a step: no sample beyond full scale (a
    resampled clip can overshoot a little; the cache keeps such a rare clip as float32)."""
    return bool(waveform.numel() == 0 or (waveform.min() >= -1.0 and waveform.max() <= 32767 / PCM16_SCALE))


def from_pcm16(samples: torch.Tensor) -> torch.Tensor:
    """int16 samples -> float32 in [-1, 1) (float tensors pass unchanged): per clip or per batch."""
    if samples.dtype != torch.int16:
        return samples
    if samples.device.type != "cpu":
        return samples.to(torch.float32) / PCM16_SCALE
    return torch.from_numpy(samples.numpy().astype(np.float32) * np.float32(1 / PCM16_SCALE))  # exact: 2**-15


def label_to_index(word: str, labels: Sequence[str]) -> torch.Tensor:
    """``"yes"`` -> ``tensor(7)``: the word's position in ``labels``."""
    return torch.tensor(labels.index(word))


def index_to_label(index: int | torch.Tensor, labels: Sequence[str]) -> str:
    """Inverse of :func:`label_to_index`."""
    return labels[int(index)]


def pad_sequence(batch: list[torch.Tensor]) -> torch.Tensor:
    """Zero-pad waveforms [1, time_i] to the longest: -> [batch, 1, max_time]."""
    batch = [item.t() for item in batch]
    padded = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True, padding_value=0.0)
    return padded.permute(0, 2, 1)


def collate(batch: list[Item | None], labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of items -> (waveforms [batch, 1, time], targets [batch]). Skipped (None) items drop out."""
    tensors, targets = [], []
    for item in batch:
        if item is None:
            continue
        waveform, _, label, *_ = item
        tensors.append(waveform)
        targets.append(label_to_index(label, labels))
    if not tensors:
        return torch.zeros(0, 1, 0), torch.zeros(0, dtype=torch.long)
    return pad_sequence(tensors), torch.stack(targets)


def make_collate(labels: Sequence[str]) -> Callable[[list[Item | None]], tuple[torch.Tensor, torch.Tensor]]:
    """A ``collate_fn`` for DataLoader that knows the label order."""
    labels = list(labels)

    def collate_fn(batch):
        return collate(batch, labels)

    return collate_fn


def check_layout(root: str | os.PathLike) -> Path:
    """Raise a friendly error unless ROOT is a dataset in the SpeechCommands layout."""
    folder = dataset_folder(root)
    hint = (
        "Expected ROOT/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav. "
        "Create the embedded data with `kwscore data synth`, or download the real set with "
        "`kwscore data download`."
    )
    if not folder.is_dir():
        raise KwsError(f"No dataset at {root}: the folder {folder} does not exist. {hint}")
    if not word_folders(root):
        raise KwsError(f"The dataset at {root} has no word folders (is it half-written?). {hint}")
    return folder


def _walk(root: Path, subset: str | None) -> list[tuple[str, int, str, str, int]]:
    """torchaudio's walker over one dataset: (absolute path, rate, label, speaker, utterance) per clip.

    torchaudio finds the clips; the split lists are read and checked here (:func:`read_split_lists`),
    so that a blank line, ``../../etc/passwd``, an absolute path or a missing file is reported once,
    when the dataset is opened, and left out — not met as a decoding error after training.
    """
    lists = read_split_lists(root)
    report_list_problems(root, lists)
    if subset in LIST_FILES and LIST_FILES[subset] in lists.missing:
        raise KwsError(
            f"The dataset at {root} has no usable {LIST_FILES[subset]}, so it has no official "
            f"{subset} split. Add validation_list.txt and testing_list.txt to {dataset_folder(root)}."
        )
    sc = SPEECHCOMMANDS(root, download=False, subset=None)  # every <word>/*_nohash_*.wav
    clips = {"/".join(Path(w).parts[-2:]): w for w in sc._walker if FILENAME_RE.match(os.path.basename(w))}
    if subset is None:
        chosen = list(clips)
    elif subset == "training":
        held_out = {*lists.validation, *lists.testing}
        chosen = [c for c in clips if c not in held_out]
    else:
        chosen = [c for c in getattr(lists, subset) if c in clips]
    sc._walker = [clips[c] for c in chosen]
    return [(os.path.join(sc._archive, m[0]), *m[1:]) for m in map(sc.get_metadata, range(len(sc)))]


_reported: set[tuple[str, str]] = set()


def report_list_problems(root: str | os.PathLike, lists: SplitLists) -> None:
    """Warn about the bad lines of a dataset's split lists, once per process and dataset."""
    for problem in lists.problems:
        key = (str(dataset_folder(root)), problem)
        if key not in _reported:
            _reported.add(key)
            warnings.warn(f"{dataset_folder(root)}: {problem}", stacklevel=4)


class SpeechCommands(Dataset):
    """Speech Commands (or any folder in its layout), decoded with soundfile.

    Args:
        root: dataset ROOT (the folder holding ``SpeechCommands/``), or the inner folder; or a list
            of ROOTs to mix several datasets (e.g. the embedded set and your own recordings): their
            clips join in every split, and the words are those of all of them together.
        subset: ``None`` (everything), ``"training"``, ``"validation"`` or ``"testing"``.
        commands: ``"8"``, ``"35"``, ``"all"`` or a list of words (see :func:`resolve_commands`).
        sample_rate: resample every clip to this rate once, when decoded (e.g. 8000 for M5).
        cache: keep decoded clips in memory, so epochs after the first do no file I/O. The cache
            holds 16-bit samples (2 bytes a sample, :func:`to_pcm16`; a rare clip louder than full
            scale stays float32); :meth:`waveform` turns a cached clip back into float32 when read.
    """

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike],
        subset: str | None = None,
        commands: str | int | Sequence[str] = "8",
        sample_rate: int = SAMPLE_RATE,
        cache: bool = False,
    ) -> None:
        if subset not in (None, *SUBSETS):
            raise KwsError(f"subset must be one of {', '.join(SUBSETS)} or None, not {subset!r}.")
        roots = [root] if isinstance(root, str | os.PathLike) else list(root)
        if not roots:
            raise KwsError("No dataset given: pass a dataset ROOT (or a list of them).")
        for r in roots:
            check_layout(r)
        self.root = dataset_root(roots[0])
        self.roots = [dataset_root(r) for r in roots]
        self.subset = subset
        self.sample_rate = int(sample_rate)
        self.labels = resolve_commands(commands, sorted(set().union(*map(word_folders, self.roots))))
        wanted = set(self.labels)
        # metadata: (path, sample_rate, label, speaker_id, utterance_number) per clip
        self._meta = [m for r in self.roots for m in _walk(r, subset) if m[2] in wanted]
        if not self._meta:
            raise KwsError(
                f"The {subset or 'whole'} split of {', '.join(map(str, roots))} has no clips of "
                f"{', '.join(self.labels)}. Check the split lists or choose other words."
            )
        # clip index -> its int16 samples as a NumPy array (~100 bytes of overhead a clip, a tensor ~1 KB)
        self._cache: dict[int, np.ndarray | None] | None = {} if cache else None
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self._meta)

    def path(self, n: int) -> Path:
        """Absolute path of the n-th clip."""
        return Path(self._meta[n][0])

    def clip_id(self, n: int) -> str:
        """``"yes/0a7c2a8d_nohash_1.wav"``: how the split lists name the n-th clip."""
        return "/".join(Path(self._meta[n][0]).parts[-2:])

    def get_metadata(self, n: int) -> tuple[str, int, str, str, int]:
        """Like torchaudio's: (path, sample rate, label, speaker, utterance) without decoding."""
        path, _, label, speaker, utt = self._meta[n]
        return path, self.sample_rate, label, speaker, utt

    def decode(self, n: int) -> torch.Tensor | None:
        """Decode clip n to mono [1, time] at :attr:`sample_rate`; None (and a warning naming the
        file) if it is missing, unreadable, empty or holds NaN/infinite samples."""
        path = self.path(n)
        try:  # audio.load refuses NaN/infinite samples, odd rates, pipes and devices
            waveform, sr = audio.load(path)
        except KwsError as exc:
            missing = isinstance(exc.__cause__, FileNotFoundError)
            self._warn(str(path), f"skipping {'missing' if missing else 'corrupt'} clip: {exc}")
            return None
        if waveform.numel() == 0:
            self._warn(str(path), f"skipping empty clip {path}")
            return None
        if sr != SAMPLE_RATE:
            self._warn(str(path), f"{path} is {sr} Hz, not 16 kHz: resampling it")
        return audio.resample(audio.to_mono(waveform), sr, self.sample_rate)

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def waveform(self, n: int) -> torch.Tensor | None:
        """The n-th waveform [1, time] float32, from the cache when enabled."""
        samples = self.samples(n)
        return None if samples is None else from_pcm16(samples)

    def samples(self, n: int) -> torch.Tensor | None:
        """The n-th clip as stored: int16 [1, time] from the cache, or float32 [1, time] decoded now
        when the cache is off (None for a clip that cannot be read). :func:`from_pcm16` makes either
        float32; batch code can stack int16 clips first and convert once per batch."""
        if self._cache is None:
            return self.decode(n)
        if n not in self._cache:
            waveform = self.decode(n)
            if waveform is None:
                self._cache[n] = None
            elif fits_pcm16(waveform):
                self._cache[n] = _pcm16_array(waveform)
            else:  # louder than full scale (rare): kept as float32, exactly
                self._cache[n] = waveform.numpy().copy()
        cached = self._cache[n]
        return None if cached is None else torch.from_numpy(cached)

    def __getitem__(self, n: int) -> Item | None:
        waveform = self.waveform(n)
        if waveform is None:
            return None  # collate() drops it: one bad file never stops an epoch
        _, _, label, speaker, utt = self._meta[n]
        return waveform, self.sample_rate, label, speaker, utt

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every clip into the cache now (enables the cache if it was off).

        ``progress(done, total)`` is called every 200 clips and at the end (the CLI and the runner
        draw a bar with it). 16-bit samples: the full Speech Commands needs about 3.4 GB.
        """
        if self._cache is None:
            self._cache = {}
        for n in range(len(self)):
            self.samples(n)
            if progress and (n % 200 == 0 or n == len(self) - 1):
                progress(n + 1, len(self))

    def cache_bytes(self) -> int:
        """Memory held by cached samples, in bytes (2 per sample)."""
        if not self._cache:
            return 0
        return sum(w.nbytes for w in self._cache.values() if w is not None)

    def targets(self) -> torch.Tensor:
        """Class index of every clip [len(self)] (no decoding)."""
        return torch.tensor([self.labels.index(m[2]) for m in self._meta])

    def speakers(self) -> list[str]:
        """Speaker id of every clip (no decoding)."""
        return [m[3] for m in self._meta]

    def select(self, indices: Sequence[int]) -> SpeechCommands:
        """A view of this dataset with only the clips at ``indices`` (shares the cache)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._meta = [self._meta[i] for i in indices]
        view._cache = None if self._cache is None else {}
        if self._cache:
            view._cache = {j: self._cache[i] for j, i in enumerate(indices) if i in self._cache}
        return view

    def collate_fn(self, batch: list[Item | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`collate` with this dataset's labels, for ``DataLoader(collate_fn=...)``."""
        return collate(batch, self.labels)
