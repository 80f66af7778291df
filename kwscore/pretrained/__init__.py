"""Ready models shipped inside kwscore, so that "Try it" works before anyone trains.

Each sub-folder (``ready-embed/``) is an ordinary run folder — ``config.json``, ``status.json``,
``metrics.jsonl``, ``report.json``, ``best.pt`` — made by ``kwscore train`` on the embedded synthetic
dataset, plus ``about.json``: what it was trained on, the command that reproduces it
(``python benchmarks/make_ready_model.py``) and its accuracy on *real* voices.

:func:`install` copies it into the runs folder once, as a run like any other (Runs, Try it, export,
``kwscore eval`` and ``detect`` need no special case)::

    from kwscore import pretrained
    pretrained.install()          # -> ["ready-embed-3fa2c1"] the first time, [] afterwards

The shipped files name the embedded dataset ``${EMBEDDED}``; installing replaces it with this
machine's :func:`kwscore.paths.synth_root`. A run is installed once per runs folder (a small marker
file, ``.ready-models.json``, remembers it): a student who deletes it does not get it back, and a
run of the same id is never overwritten. ``KWS_READY_MODEL=0`` turns installing off.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kwscore import paths
from kwscore.errors import KwsError

#: The folder of the shipped ready models (package data).
HERE = Path(__file__).resolve().parent
#: The ready model the dashboard installs.
READY = "ready-embed"
#: Stands for the embedded dataset's root in the shipped files.
EMBEDDED = "${EMBEDDED}"
ABOUT = "about.json"
#: The files of a shipped run (log.txt is written at install; last.pt is not shipped).
FILES = ("config.json", "status.json", "metrics.jsonl", "report.json", ABOUT, "best.pt")
#: In the runs folder: the ids of the ready models installed there once (deleted ones included).
MARKER = ".ready-models.json"
LOCK = ".ready-models.lock"
#: ``KWS_READY_MODEL`` values that turn installing off.
OFF = ("0", "no", "false", "off")


def shipped() -> list[Path]:
    """The shipped ready-model folders (those with an ``about.json``), :data:`READY` first."""
    folders = sorted(
        (p for p in HERE.iterdir() if (p / ABOUT).is_file()), key=lambda p: (p.name != READY, p.name)
    )
    return folders


def about(run_dir: str | os.PathLike) -> dict | None:
    """The ``about.json`` of a run folder (an installed ready model), ``None`` for any other run.

    Never raises: a damaged file reads as ``None``. The fields the pages use are checked.
    """
    from kwscore.runfiles import is_int, is_number, read_json

    try:
        data = read_json(Path(run_dir) / ABOUT, max_bytes=1_000_000)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    trained, real = data.get("trained_on"), data.get("real")
    ok = (
        isinstance(data.get("model"), str)
        and isinstance(trained, dict) and is_int(trained.get("clips"), 1) and is_int(trained.get("speakers"), 1)
        and isinstance(real, dict) and is_number(real.get("accuracy"), 0.0, 1.0) and is_int(real.get("commands"), 1)
    )  # fmt: skip
    return data if ok else None


#: Shown as the owner of an installed ready model: it is no student's run.
OWNER = "KWS Studio (ready model)"


def owner_of(info) -> str:
    """Whose a run (a :class:`kwscore.jobs.RunInfo`) is, in words: its owner, :data:`OWNER` for an
    installed ready model (it has an ``about.json``), else ``""`` (a run launched without a name)."""
    owner = (getattr(info, "owner", "") or "").strip()
    if owner:
        return owner
    return OWNER if getattr(info, "path", None) and about(info.path) is not None else ""


def ready_line(info: dict) -> str:
    """``Ready model: a small head on a pretrained speech embedding, trained on the embedded synthetic
    speech (3,800 clips, 95 voices); on real voices it gets 85.3 % (8 commands).`` — every number from
    ``about.json``."""
    model = str(info["model"])
    what = {"cnn": "a CNN", "embed": "a small head on a pretrained speech embedding,"}.get(model, f"an {model.upper()}")
    trained, real = info["trained_on"], info["real"]
    return (
        f"Ready model: {what} trained on the embedded synthetic speech ({trained['clips']:,} clips, "
        f"{trained['speakers']:,} voices); on real voices it gets {100 * real['accuracy']:.1f} % "
        f"({real['commands']} commands)."
    )


def enabled() -> bool:
    """False when ``KWS_READY_MODEL`` is 0 / no / false / off."""
    return os.environ.get("KWS_READY_MODEL", "1").strip().lower() not in OFF


def installed(runs_dir: str | os.PathLike) -> list[str]:
    """The ready-model run ids installed in ``runs_dir`` so far (deleted ones included)."""
    try:
        data = json.loads((Path(runs_dir) / MARKER).read_text())
    except (OSError, ValueError):
        return []
    ids = data.get("installed") if isinstance(data, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def install(runs_dir: str | os.PathLike | None = None) -> list[str]:
    """Copy every shipped ready model into the runs folder, once; return the ids installed now.

    Nothing happens for a model installed there before (even if the student deleted it since), for
    a folder of the same id (never overwritten), or when ``KWS_READY_MODEL=0``. Safe when several
    processes start at once (a lock; each run appears whole, by a rename). Raises
    :class:`KwsError` when the runs folder cannot be written.
    """
    if not enabled():
        return []
    root = Path(runs_dir).expanduser() if runs_dir else paths.runs_dir()
    todo = [(folder, _about(folder)) for folder in shipped()]
    todo = [(folder, info) for folder, info in todo if info and info["run_id"] not in installed(root)]
    if not todo:
        return []
    from kwscore.data.synth import _exclusive  # the one cross-process lock (torch is imported from here on)

    new: list[str] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root / LOCK):
            done = installed(root)
            for folder, info in todo:
                run_id = info["run_id"]
                if run_id in done:
                    continue
                if not (root / run_id).exists():
                    _copy_run(folder, root, run_id)
                    new.append(run_id)
                done.append(run_id)
            from kwscore.runfiles import write_json

            write_json(root / MARKER, {"installed": done})
    except (OSError, ValueError) as exc:  # a folder we cannot write, a damaged shipped file
        raise KwsError(
            f"Could not install the ready model into {root}: {getattr(exc, 'strerror', None) or exc}."
        ) from exc
    return new


def _about(folder: Path) -> dict | None:
    info = about(folder)
    if info is None or not isinstance(info.get("run_id"), str):
        return None
    from kwscore.runfiles import RUN_ID_RE

    return info if RUN_ID_RE.match(info["run_id"]) else None


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """JSON ``value`` with ``change`` applied to every string in it (keys excepted)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    return value


def fill(value: Any, data_root: str) -> Any:
    """``value`` (JSON) with every string that starts with :data:`EMBEDDED` pointing into ``data_root``."""
    return map_strings(value, lambda s: data_root + s[len(EMBEDDED) :] if s.startswith(EMBEDDED) else s)


def _copy_run(folder: Path, root: Path, run_id: str) -> None:
    """The shipped run in ``folder`` -> ``root/run_id``, with the embedded dataset's local path filled in."""
    from kwscore.runfiles import RunFiles, read_json, write_json
    from kwscore.training import _RESERVED, load_checkpoint, model_from_checkpoint, save_checkpoint

    data_root = str(paths.synth_root())
    tmp = Path(tempfile.mkdtemp(prefix=".ready-", dir=root))  # a dot name: no listing ever sees it
    try:
        for name in ("config.json", "status.json", "report.json", ABOUT):
            write_json(tmp / name, fill(read_json(folder / name), data_root))
        shutil.copyfile(folder / "metrics.jsonl", tmp / "metrics.jsonl")
        ckpt = load_checkpoint(folder / "best.pt")
        extra = {k: v for k, v in ckpt.items() if k not in _RESERVED}
        save_checkpoint(tmp / "best.pt", model_from_checkpoint(ckpt), fill(extra, data_root))
        RunFiles(tmp).log(
            f"installed {run_id}, the ready model shipped with kwscore ({folder.name}), on {data_root}; "
            "`python benchmarks/make_ready_model.py` remakes it"
        )
        os.rename(tmp, root / run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = [
    "EMBEDDED",
    "OWNER",
    "READY",
    "about",
    "enabled",
    "fill",
    "install",
    "installed",
    "map_strings",
    "owner_of",
    "ready_line",
    "shipped",
]
