"""The datasets KWS Studio knows about, for pickers in the dashboard and the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kwscore import paths
from kwscore.data.layout import dataset_folder, word_folders


@dataclass(frozen=True)
class DatasetEntry:
    key: str  # "synthetic", "real", "user", "shared-real", or "folder:<path>"
    label: str  # shown in pickers
    root: Path

    @property
    def available(self) -> bool:
        return dataset_folder(self.root).is_dir() and bool(word_folders(self.root))


def extra_roots() -> list[Path]:
    """Extra dataset roots from ``KWS_DATASETS`` (os.pathsep-separated)."""
    raw = os.environ.get("KWS_DATASETS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def known_datasets(extra: list[Path] | tuple[Path, ...] = ()) -> list[DatasetEntry]:
    """Embedded synthetic first, then the real download, your recordings and any extra roots.

    Only datasets that exist are listed, except the embedded one (it is generated on first use).
    """
    entries = [DatasetEntry("synthetic", "Embedded synthetic speech (espeak-ng)", paths.synth_root())]
    candidates = [
        DatasetEntry("real", "Speech Commands v0.02 (downloaded)", paths.real_root()),
        DatasetEntry("user", "My recordings", paths.user_root()),
    ]
    for root in [*extra_roots(), *extra]:
        candidates.append(DatasetEntry(f"folder:{root}", f"Folder: {root.resolve().name}", root))
    seen = {entries[0].root.resolve()}
    for entry in candidates:
        if entry.available and entry.root.resolve() not in seen:
            seen.add(entry.root.resolve())
            entries.append(entry)
    return entries
