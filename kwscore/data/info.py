"""What is in a dataset: words, clips and speakers per split, durations, split hygiene.

Reading only file headers (``soundfile.info``), so it is quick even for thousands of clips.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kwscore import audio
from kwscore.data.clips import scan_clips
from kwscore.data.dataset import SUBSETS, check_layout
from kwscore.data.layout import dataset_root, noise_files, read_split_lists, word_folders
from kwscore.data.synth import read_manifest
from kwscore.errors import KwsError


@dataclass
class DatasetInfo:
    """Summary of a dataset in the SpeechCommands layout."""

    root: Path
    name: str
    words: list[str]
    clips: dict[str, Counter] = field(default_factory=dict)  # split -> word -> count
    speakers: dict[str, set] = field(default_factory=dict)  # split -> speaker ids
    durations: list[float] = field(default_factory=list)  # seconds, every clip
    sample_rates: Counter = field(default_factory=Counter)
    noises: list[str] = field(default_factory=list)
    has_split_lists: bool = True
    list_problems: list[str] = field(default_factory=list)  #: bad lines of the split lists, in words
    unreadable: list[str] = field(default_factory=list)  #: clip ids whose header cannot be read

    def total(self, split: str | None = None) -> int:
        splits = [split] if split else SUBSETS
        return sum(sum(self.clips[s].values()) for s in splits)

    def overlapping_speakers(self) -> dict[str, set]:
        """Speakers found in two splits (should be empty: splits are by speaker)."""
        out = {}
        for i, a in enumerate(SUBSETS):
            for b in SUBSETS[i + 1 :]:
                both = self.speakers[a] & self.speakers[b]
                if both:
                    out[f"{a}/{b}"] = both
        return out

    def duration_stats(self) -> dict[str, float]:
        d = np.asarray(self.durations or [0.0])
        return {"min": float(d.min()), "mean": float(d.mean()), "max": float(d.max())}

    def format(self) -> str:
        """A human-readable report (what ``kwscore data info`` prints)."""
        lines = [f"Dataset: {self.name}", f"Root:    {self.root}", f"Words ({len(self.words)}): {', '.join(self.words)}"]
        lines.append(f"{'split':<12}{'clips':>8}{'speakers':>10}")
        for s in SUBSETS:
            lines.append(f"{s:<12}{self.total(s):>8}{len(self.speakers[s]):>10}")
        st = self.duration_stats()
        lines.append(f"Duration (s): min {st['min']:.3f}, mean {st['mean']:.3f}, max {st['max']:.3f}")
        rates = ", ".join(f"{sr} Hz × {n}" for sr, n in sorted(self.sample_rates.items()))
        lines.append(f"Sample rates: {rates}")
        lines.append(f"Background noises: {', '.join(self.noises) or 'none'}")
        if not self.has_split_lists:
            lines.append("Split lists: missing (validation_list.txt / testing_list.txt): all clips count as training")
        for problem in self.list_problems:
            lines.append(f"WARNING: split list: {problem}")
        if self.unreadable:
            more = f" and {len(self.unreadable) - 3} more" if len(self.unreadable) > 3 else ""
            lines.append(f"WARNING: {len(self.unreadable)} clip(s) cannot be read and will be skipped: "
                         f"{', '.join(self.unreadable[:3])}{more}")  # fmt: skip
        overlap = self.overlapping_speakers()
        if overlap:
            for pair, ids in overlap.items():
                lines.append(f"WARNING: {len(ids)} speaker(s) in both {pair}: {', '.join(sorted(ids)[:5])}")
        else:
            lines.append("Splits are speaker-disjoint: OK")
        return "\n".join(lines)


def dataset_name(root: str | os.PathLike) -> str:
    """A display name: the generator from the manifest, else the folder name."""
    manifest = read_manifest(root)
    if manifest:
        c = manifest["counts"]
        return f"Synthetic speech (espeak-ng, {c['speakers']} speakers, seed {manifest['params']['seed']})"
    return f"Speech Commands layout: {dataset_root(root).name}"


def dataset_info(root: str | os.PathLike, with_durations: bool = True) -> DatasetInfo:
    """Scan a dataset: counts per split and word, speakers per split, clip durations."""
    folder = check_layout(root)
    lists = read_split_lists(root)
    info = DatasetInfo(root=dataset_root(root), name=dataset_name(root), words=word_folders(root))
    info.has_split_lists = not lists.missing
    info.list_problems = lists.problems
    info.clips = {s: Counter() for s in SUBSETS}
    info.speakers = defaultdict(set)
    # the one clip scan (the dashboard's picker too); a pipe or a folder named like a clip is kept, to be reported
    for rel, word, speaker, _take, split in scan_clips(root, files_only=False, lists=lists).rows:
        info.clips[split][word] += 1
        info.speakers[split].add(speaker)
        if with_durations:
            try:
                frames, sample_rate = audio.header(folder / rel)
            except KwsError:
                info.unreadable.append(rel)  # the loader skips it with a warning
                continue
            info.durations.append(frames / sample_rate)
            info.sample_rates[sample_rate] += 1
    info.speakers = {s: info.speakers[s] for s in SUBSETS}
    info.noises = [p.name for p in noise_files(root)]
    return info
