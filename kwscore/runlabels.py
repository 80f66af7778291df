"""Telling runs apart: their settings in words, labels from what differs, lookup by id or name.

Three M5 runs at 4, 8 and 16 kHz must not share one legend entry. :func:`compare_labels` builds
each run's label from the settings that *differ* between the runs compared::

    compare_labels([m5_at_8k, m5_at_16k])       # ["m5 @ 8 kHz", "m5 @ 16 kHz"]
    compare_labels([cnn, m5])                   # ["cnn", "m5"]
    compare_labels([named("baseline"), other])  # ["baseline", "m5 @ 16 kHz"]

On the command line a run is named by its folder, its id, any unique prefix or suffix of its id
(the 6 characters the dashboard shows), or its name (:func:`resolve_run`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kwscore.errors import KwsError

#: Settings in the order a label lists them: (key, how the value reads in a label).
_ORDER = (
    "model", "rate", "front end", "size", "data", "words", "fraction", "augmentation", "epochs", "lr",
    "batch", "weight decay", "schedule", "seed",
)  # fmt: skip


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def rate_text(hz: Any) -> str:
    try:
        return f"{float(hz) / 1000:g} kHz"
    except (TypeError, ValueError):
        return "?"


def augment_text(augment: Any) -> str:
    """A run config's ``augment`` in a word: ``none`` / a preset name / the recipe's name."""
    if isinstance(augment, str):
        return augment
    if isinstance(augment, dict):
        if not augment.get("steps") and not augment.get("spec_augment"):
            return "none"
        return str(augment.get("name") or "custom")
    return "?"


def _features(config: dict) -> dict:
    from kwscore.features import FeatureConfig

    try:
        return FeatureConfig.from_dict(config.get("features") or {}).to_dict()
    except (KwsError, TypeError, ValueError):
        return {}


def reads(config: dict) -> str:
    """What the run's model reads: ``"mel"``, ``"waveform"`` or ``"embedding"``."""
    from kwscore.models import representation  # here: this module stays light (no torch) until asked

    return representation(config.get("model"))


def is_mel(config: dict) -> bool:
    return reads(config) == "mel"


def sample_rate(config: dict) -> int | None:
    """The rate the run's model listens at (the front end's for the CNN)."""
    value = _features(config).get("sample_rate") if is_mel(config) else config.get("sample_rate", 8000)
    return value if isinstance(value, int) else None


def front_end_text(config: dict) -> str:
    """``40 Mel · 512/480/160`` (n_fft/window/hop) for the CNN, ``speech embedding`` for the transfer
    model (its own fixed 32-band log-Mel front end), ``raw waveform`` for the M-models."""
    if not is_mel(config):
        return "speech embedding" if reads(config) == "embedding" else "raw waveform"
    f = _features(config)
    if not f:
        return "?"
    return f"{f['n_mels']} Mel · {f['n_fft']}/{f['win_length']}/{f['hop_length']}"


def settings(config: dict) -> dict[str, str]:
    """A run's settings in words, in label order (model first)."""
    config = config or {}
    kwargs = config.get("model_kwargs") or {}
    size = ",".join(f"{k} {_num(v) if not isinstance(v, list) else '-'.join(map(str, v))}"
                    for k, v in sorted(kwargs.items()))  # fmt: skip
    mix = config.get("mix") or []
    fraction = config.get("fraction", 1.0)
    return {
        "model": str(config.get("model") or "?"),
        "rate": rate_text(sample_rate(config)),
        "front end": front_end_text(config),
        "size": size,
        "data": " + ".join(Path(str(d)).name or str(d) for d in [config.get("data", ""), *mix]),
        "words": str(config.get("commands", "8")) if not isinstance(config.get("commands"), list)
        else f"{len(config['commands'])} words",
        "fraction": f"{100 * float(fraction):g} %" if isinstance(fraction, int | float) else "?",
        "augmentation": augment_text(config.get("augment", "none")),
        "epochs": _num(config.get("epochs", "?")),
        "lr": _num(config.get("lr", "?")),
        "batch": _num(config.get("batch_size", "?")),
        "weight decay": _num(config.get("weight_decay", "?")),
        "schedule": str(config.get("scheduler", "?")),
        "seed": _num(config.get("seed", 0)),
    }  # fmt: skip


def _part(key: str, value: str) -> str:
    if key == "rate":
        return f"@ {value}"
    if key in ("front end", "augmentation"):
        return {"front end": value, "augmentation": f"aug {value}"}[key]
    if key == "fraction":
        return f"{value} data"
    return f"{key} {value}"


def _follows_model(table: list[dict[str, str]], key: str) -> bool:
    """True when ``key`` differs only because the model does (cnn vs m5: their front ends, recipes):
    every model has one value, so the model's name already tells the runs apart."""
    per_model: dict[str, set[str]] = {}
    for row in table:
        per_model.setdefault(row["model"], set()).add(row[key])
    return len(per_model) > 1 and all(len(values) == 1 for values in per_model.values())


def compare_labels(configs: Sequence[dict | None], run_ids: Sequence[str] | None = None) -> list[str]:
    """One label per run, from its name or the settings that differ between these runs.

    A run with a name is labelled by its name. Otherwise: the model, then every setting whose value
    is not the same for all the runs compared (``"m5 @ 8 kHz"``, ``"cnn · 64 Mel · 512/480/160"``).
    Runs still alike get the tail of their run id (``"m5 · 46e218"``).
    """
    configs = [c or {} for c in configs]
    table = [settings(c) for c in configs]
    differs = [k for k in _ORDER[1:] if len({row[k] for row in table}) > 1 and not _follows_model(table, k)]
    labels = []
    for config, row in zip(configs, table, strict=True):
        name = str(config.get("name") or "").strip()
        if name:
            labels.append(name)
            continue
        parts = [row["model"]] + [_part(k, row[k]) for k in differs]
        label = parts[0] + "".join(f" {p}" if p.startswith("@") else f" · {p}" for p in parts[1:])
        labels.append(label)
    if run_ids is not None:
        seen: dict[str, int] = {}
        for label in labels:
            seen[label] = seen.get(label, 0) + 1
        labels = [f"{label} · {rid.rsplit('-', 1)[-1]}" if seen[label] > 1 else label
                  for label, rid in zip(labels, run_ids, strict=True)]  # fmt: skip
    return labels


# --------------------------------------------------------------------------------------------
# Names and notes
# --------------------------------------------------------------------------------------------


def annotate(run_dir: str | os.PathLike, name: str | None = None, notes: str | None = None) -> dict:
    """Set a run's ``name`` and/or ``notes`` in its config.json (atomically); returns the config.

    Only these two fields change: a run reads its config when it starts, so a queued, running or
    finished run can be renamed at any time.
    """
    from kwscore.runfiles import RunFiles, write_json

    files = RunFiles(Path(run_dir))
    config = files.read_config()
    if not isinstance(config, dict):
        raise KwsError(f"Run {files.run_id} has no readable config.json: it cannot be renamed.")
    if name is not None:
        name = " ".join(str(name).split())
        if len(name) > 200:
            raise KwsError("A run name is at most 200 characters.")
        config["name"] = name
    if notes is not None:
        config["notes"] = str(notes).strip()
    write_json(files.config_path, config)
    return config


# --------------------------------------------------------------------------------------------
# Finding a run: folder, id, unique prefix/suffix of an id, or name
# --------------------------------------------------------------------------------------------


def _names(folders: list[Path]) -> dict[str, str]:
    from kwscore.runfiles import read_json

    out = {}
    for folder in folders:
        try:
            config = read_json(folder / "config.json")
        except (OSError, ValueError, KwsError):
            continue
        if isinstance(config, dict) and isinstance(config.get("name"), str) and config["name"].strip():
            out[folder.name] = config["name"].strip()
    return out


def resolve_run(query: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the run ``query`` names: a run folder, a run id, a unique prefix or suffix of a
    run id (``46e218``), or a run name. Ambiguous or unknown: :class:`KwsError` listing the candidates."""
    from kwscore import jobs
    from kwscore.runfiles import RUN_ID_RE

    text = str(query).strip()
    path = Path(text).expanduser()
    if text and path.is_dir() and (path / "config.json").exists():
        return path
    root = jobs.runs_root(runs_dir)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and RUN_ID_RE.match(p.name) and not p.name.startswith("_"))
    by_id = {p.name: p for p in folders}
    if not text:
        raise KwsError("Name a run: its id, the end of its id (as the dashboard shows it) or its name.")
    if text in by_id:
        return by_id[text]
    names = _names(folders)
    named = [rid for rid, name in names.items() if name == text]
    if len(named) == 1:
        return by_id[named[0]]
    matches = named or [rid for rid in by_id if rid.startswith(text) or rid.endswith(text)]
    if len(matches) == 1:
        return by_id[matches[0]]
    if not matches:
        raise KwsError(f"No run {text!r} in {root}: give a run id, its end (e.g. the 6 characters the dashboard "
                       "shows) or a run name. `kwscore runs` lists them.")  # fmt: skip
    listed = ", ".join(f"{rid} ({names[rid]})" if rid in names else rid for rid in matches[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise KwsError(f"{text!r} matches {len(matches)} runs: {listed}{more}. Give more of the run id.")
