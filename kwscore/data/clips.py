"""An index of a dataset's clips: split, word, speaker and take of every file, from names only.

Nothing is decoded, so even the full Speech Commands (105,829 clips) is listed in about a second.
The dashboard's clip picker and the CLI use the same scan::

    index = scan_clips(root)
    index.tree["training"]["yes"]["s003"]   # -> [0, 1, 2]: the takes of that speaker
    index.clip("yes/s003_nohash_1.wav")     # -> Clip(..., split="training")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from kwscore.data.dataset import SUBSETS
from kwscore.data.layout import FILENAME_RE, SplitLists, dataset_folder, read_split_lists, word_folders

if TYPE_CHECKING:
    import pandas as pd

#: split -> word -> speaker -> takes
Tree = dict[str, dict[str, dict[str, list[int]]]]


@dataclass(frozen=True)
class Clip:
    """One clip of a dataset, with what its name and the split lists say about it."""

    root: str
    clip_id: str  #: "yes/s003_nohash_1.wav", as the split lists name it
    word: str
    speaker: str
    take: int
    split: str

    @property
    def path(self) -> Path:
        return dataset_folder(self.root) / self.clip_id


@dataclass(frozen=True)
class ClipIndex:
    """Every clip of a dataset (file names only), as rows and as a split/word/speaker tree."""

    root: str
    rows: tuple[tuple[str, str, str, int, str], ...]  #: (clip_id, word, speaker, take, split), sorted
    tree: Tree

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def table(self) -> pd.DataFrame:
        """The rows as a DataFrame (columns clip_id, word, speaker, take, split)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=["clip_id", "word", "speaker", "take", "split"])

    def clip(self, clip_id: str) -> Clip | None:
        """The clip named ``<word>/<speaker>_nohash_<n>.wav``, or None when the dataset has no such clip."""
        word, name = clip_id.split("/", 1) if "/" in clip_id else ("", clip_id)
        m = FILENAME_RE.match(name)
        if not m:
            return None
        speaker, take = m["speaker"], int(m["n"])
        for split, words in self.tree.items():
            if take in words.get(word, {}).get(speaker, ()):
                return Clip(self.root, clip_id, word, speaker, take, split)
        return None

    def clip_ids(self, split: str | None = None, word: str | None = None) -> list[str]:
        """The clip ids of one split and/or word (all when both are None), in order."""
        return [r[0] for r in self.rows if (split is None or r[4] == split) and (word is None or r[1] == word)]

    def default_clip(self) -> Clip | None:
        """The first training "yes" (the first clip when there is none), or None for an empty dataset."""
        ids = self.clip_ids("training", "yes") or self.clip_ids()
        return self.clip(ids[0]) if ids else None


def folder_stamp(root: str | os.PathLike) -> float:
    """Latest modification time of the dataset's folders: it changes when clips are added or removed
    (a cache keyed on it is rebuilt then)."""
    folder = dataset_folder(root)
    return max((p.stat().st_mtime for p in [folder, *folder.iterdir()] if p.is_dir()), default=0.0)


def scan_clips(root: str | os.PathLike, *, files_only: bool = True, lists: SplitLists | None = None) -> ClipIndex:
    """List every ``<word>/<speaker>_nohash_<n>.wav`` of the dataset and the split it is in.

    The split comes from ``validation_list.txt`` / ``testing_list.txt`` (read checked: a non-UTF-8
    or hostile line is left out, never a traceback; ``lists``: already read by the caller); every
    other clip is training. ``files_only=False`` keeps a folder, pipe or device named like a clip
    (``kwscore data info`` reports those as unreadable; a picker leaves them out).
    """
    folder = dataset_folder(root)
    lists = read_split_lists(root) if lists is None else lists
    val, test = set(lists.validation), set(lists.testing)
    rows = []
    tree: Tree = {s: {} for s in SUBSETS}
    for word in word_folders(root):
        with os.scandir(folder / word) as entries:
            names = sorted(e.name for e in entries if not files_only or e.is_file())
        for name in names:
            m = FILENAME_RE.match(name)
            if not m:
                continue
            rel = f"{word}/{name}"
            split = "validation" if rel in val else "testing" if rel in test else "training"
            rows.append((rel, word, m["speaker"], int(m["n"]), split))
            tree[split].setdefault(word, {}).setdefault(m["speaker"], []).append(int(m["n"]))
    return ClipIndex(str(root), tuple(rows), {s: words for s, words in tree.items() if words})
