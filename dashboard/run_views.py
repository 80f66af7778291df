"""Run views: how the pages show training runs — listing (never raises), owner, queue position and
ETA, state badges, labels, cached reports/metrics/parameter counts, and the front end a run's model
listens through.

Pages only *read* run files (through :mod:`kwscore.jobs`) and launch/cancel/delete through it;
who may cancel or delete is :mod:`dashboard.identity`'s question. The experiment launcher lives in
:mod:`kwscore.experiments` (the CLI uses it too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
import torch

from dashboard import clips, datasets
from kwscore import audio
from kwscore.audio import SAMPLE_RATE
from kwscore.data.layout import word_folders
from kwscore.errors import KwsError
from kwscore.features import FeatureConfig

#: Colour and Material icon of each state, for badges in Markdown (``:green-badge[...]``).
STATE_STYLE = {
    "queued": ("gray", "hourglass_top"), "running": ("blue", "directions_run"),
    "succeeded": ("green", "check_circle"), "failed": ("red", "error"), "cancelled": ("orange", "stop_circle"),
    "unreadable": ("red", "warning"),
}  # fmt: skip
#: How a run without an owner (launched from the command line, or before names) is shown. The ready
#: model shipped with kwscore is shown as :data:`kwscore.pretrained.OWNER` instead.
NO_OWNER = "no name"


def runs_root() -> Path:
    """The runs folder (``KWS_RUNS_DIR`` or ``~/.kws-studio/runs``), created if needed."""
    from kwscore import jobs

    return jobs.runs_root()


def run_info_safe(path: Path):
    """:func:`kwscore.jobs.run_info`, but a run too damaged even for that comes back as unreadable."""
    from kwscore import jobs
    from kwscore.runfiles import UNREADABLE

    try:
        return jobs.run_info(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt run must never break a page
        return jobs.RunInfo(path.name, path, UNREADABLE, error=f"cannot read this run ({type(exc).__name__}: {exc})")


def all_runs() -> list:
    """Every run of the runs folder as :class:`kwscore.jobs.RunInfo`, newest first. Never raises."""
    from kwscore.runfiles import RUN_ID_RE

    try:
        folders = [p for p in runs_root().iterdir() if p.is_dir() and RUN_ID_RE.match(p.name)]
    except OSError as exc:
        st.error(f"Cannot read the runs folder: {exc}")
        return []
    infos = sorted((run_info_safe(p) for p in folders), key=lambda r: (r.created or 0.0, r.run_id), reverse=True)
    try:  # queued runs whose worker died (or a restarted machine): start a new worker
        from kwscore import jobs

        jobs.revive_worker(infos=infos)
    except Exception:  # noqa: BLE001 - listing the runs must work even when the queue does not
        pass
    return infos


def owner_text(info) -> str:
    """Who launched the run: the student's name, ``"KWS Studio (ready model)"`` for the shipped ready
    model, or ``"no name"``."""
    from kwscore.pretrained import owner_of

    return owner_of(info) or NO_OWNER


def queue_positions(infos: list | None = None) -> dict:
    """``{run_id: kwscore.jobs.QueueEntry}`` for the queued runs no worker has taken yet, in the order
    the workers start them (fair across owners), from ``infos`` (default: the runs folder). Empty
    when the queue cannot be read: a page must still draw."""
    from kwscore import jobs

    try:
        return {entry.run_id: entry for entry in jobs.queue_order(infos=infos)}
    except Exception:  # noqa: BLE001 - the queue order is a nicety; the listing must not depend on it
        return {}


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``…"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def eta_text(seconds: float | None) -> str:
    """``"starts in about 4 min"`` / ``"starts in under a minute"``; ``""`` when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "starts in under a minute"
    minutes = round(seconds / 60)
    return f"starts in about {minutes} min" if minutes < 90 else f"starts in about {fmt_duration(seconds)}"


def queue_text(entry) -> str:
    """``"3rd in line, starts in about 4 min"``; ``"next in line"`` for the first waiting run."""
    place = "next in line" if entry.position <= 1 else f"{ordinal(entry.position)} in line"
    eta = eta_text(entry.eta_s)
    return f"{place}, {eta}" if eta else place


def state_text(info, queue: dict | None = None) -> str:
    """The run's state in words; a queued one with its place in the queue (given
    :func:`queue_positions`): ``"waiting: 3rd in line, starts in about 4 min"``, or ``"starting"``
    once a worker has taken it."""
    if info.state == "queued" and queue is not None:
        entry = queue.get(info.run_id)
        return f"waiting: {queue_text(entry)}" if entry is not None else "starting"  # a worker has taken it
    return info.state


def state_badge(info, queue: dict | None = None) -> str:
    """:func:`state_text` as a coloured Markdown badge with an icon."""
    color, icon = STATE_STYLE.get(info.state, ("gray", "help"))
    return f":{color}-badge[:material/{icon}: {state_text(info, queue)}]"


def mine_first(items: list, owner: str, key=lambda i: getattr(i, "owner", "") or "") -> list:
    """``items`` (runs, or experiment records with ``owner=``) with ``owner``'s first, each group in
    its order. Without a name (``owner`` ""), the order is unchanged."""
    return sorted(items, key=lambda i: key(i) != owner) if owner else list(items)

def short_id(run_id: str) -> str:
    """The random tail of a run id (``…-m5-ae027b`` -> ``ae027b``), enough to tell runs apart."""
    return run_id.rsplit("-", 1)[-1]


def augment_name(augment: Any) -> str:
    """A run config's ``augment`` in a word: ``none`` / a preset name / the recipe's name."""
    from kwscore.runlabels import augment_text

    return augment_text(augment)


def augment_on(config: dict | None) -> bool:
    return augment_name((config or {}).get("augment", "none")) != "none"


def fraction_text(config: dict | None) -> str:
    fraction = (config or {}).get("fraction", 1.0)
    try:
        return f"{100 * float(fraction):g} %"
    except (TypeError, ValueError):
        return "?"


def run_label(info) -> str:
    """One run's label: its name, else ``m5 @ 16 kHz · 25 % · aug recipe · ae027b``."""
    from kwscore.runlabels import settings

    config = info.config or {}
    if str(config.get("name") or "").strip():
        return f"{config['name'].strip()} · {short_id(info.run_id)}"
    rate = f" @ {settings(config)['rate']}" if config else ""
    return f"{info.model or '?'}{rate} · {fraction_text(config)} · aug {augment_name(config.get('augment', 'none'))} · {short_id(info.run_id)}"


def compare_labels(infos: list) -> list[str]:
    """Labels for runs shown together, from their names or the settings that differ between them."""
    from kwscore.runlabels import compare_labels as labels

    return labels([i.config for i in infos], [i.run_id for i in infos])


def fmt_duration(seconds: float | None, compact: bool = False) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min`` (``compact``: ``3m 05s``); ``–`` for None."""
    if seconds is None:
        return "–"
    s = int(round(max(0.0, float(seconds))))
    if s < 60:
        return f"{s}s" if compact else f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if compact else f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if compact else f"{s // 3600} h {s % 3600 // 60:02d} min"


def dataset_name(data: str | None, short: bool = False) -> str:
    """The sidebar's name of a dataset root (``short``: a word or the folder name)."""
    if not data:
        return "?"
    try:
        resolved = Path(data).expanduser().resolve()
        for entry in datasets.entries():
            if entry.root.resolve() == resolved:
                if short:
                    return {"synthetic": "synthetic", "real": "Speech Commands"}.get(entry.key, entry.root.name)
                return entry.label
    except OSError:
        pass
    return Path(data).name or str(data)


def data_text(config: dict | None, short: bool = True) -> str:
    """A run's data in words: its dataset, plus any mixed-in ones (``synthetic + user``)."""
    config = config or {}
    mix = config.get("mix") or []
    return " + ".join(dataset_name(d, short) for d in [config.get("data"), *mix])


def commands_text(commands: Any) -> str:
    if isinstance(commands, list):
        return f"{len(commands)} words"
    return {"8": "8 commands", "35": "35 words", "all": "all words"}.get(str(commands), str(commands))


@st.cache_resource(max_entries=64, show_spinner=False)
def _cached_report(path: str, mtime: float) -> dict | None:
    from kwscore import jobs

    report = jobs.read_report(Path(path))
    needed = ("accuracy", "labels", "confusion", "per_class_accuracy")
    return report if report and all(k in report for k in needed) else None


def run_report(info) -> dict | None:
    """The run's report.json (cached until it changes; shared, do not modify), None if absent/bad."""
    path = Path(info.path)
    mtime = _mtime(path / "report.json")
    return _cached_report(str(path), mtime) if mtime else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@st.cache_resource(max_entries=256, show_spinner=False)
def _cached_metrics(path: str, mtime: float) -> tuple[list[dict], list[dict]]:
    from kwscore import jobs

    return jobs.read_metrics(Path(path))


def run_metrics(info) -> tuple[list[dict], list[dict]]:
    """``(iteration records, epoch records)`` of a run, re-read only when metrics.jsonl changed."""
    path = Path(info.path)
    mtime = _mtime(path / "metrics.jsonl")
    return _cached_metrics(str(path), mtime) if mtime else ([], [])


@st.cache_data(max_entries=64, show_spinner="Building the model…")
def describe_model(model: str, n_classes: int, input_shape: tuple[int, ...], kwargs_json: str) -> dict:
    """:func:`kwscore.models.describe` (layers, parameters, input shape), cached per setting."""
    import json

    from kwscore.models import describe

    return describe(model, n_classes, list(input_shape), **json.loads(kwargs_json))


@st.cache_data(max_entries=256, show_spinner=False)
def _count_params(model: str, n_classes: int, kwargs_json: str) -> int | None:
    import json

    from kwscore.models import build_model, count_parameters

    try:
        with torch.device("meta"):  # shapes only: a damaged config asking for a huge model costs nothing
            return count_parameters(build_model(model, n_classes, **json.loads(kwargs_json)))
    except (KwsError, TypeError, ValueError, RuntimeError, OverflowError):
        return None


def run_n_params(info) -> int | None:
    """Trainable parameters of a run's model: from its report, else counted from its config."""
    import json

    report = run_report(info)
    if report and report.get("n_params"):
        return int(report["n_params"])
    config = info.config or {}
    if not config.get("model"):
        return None
    try:
        from kwscore.data.dataset import resolve_commands

        n_classes = len(resolve_commands(config.get("commands", "8"), word_folders(config.get("data", ""))))
        kwargs = json.dumps(config.get("model_kwargs") or {}, sort_keys=True)
    except (KwsError, OSError, TypeError, ValueError):
        return None
    return _count_params(config["model"], n_classes, kwargs)


def model_input_view(config: dict, waveform: torch.Tensor) -> tuple[torch.Tensor, FeatureConfig, str]:
    """What a run's model gets from one 16 kHz clip, as a picture: ``(spectrogram, its config, kind)``.

    The clip goes through the run's own front end (:func:`kwscore.features.build_transform`, the
    one stored in its checkpoints). Mel models (``kind="mel"``): that output *is* the picture — the
    (normalised) dB Mel spectrogram. Waveform models (``"waveform"``): they get samples at their
    rate (8 kHz for the tutorial's M5, 16 kHz for the tuned recipe), shown as a linear dB
    spectrogram of that resampled clip (empty above Nyquist).
    """
    from kwscore.features import build_transform, linear_spectrogram_db, transform_config
    from kwscore.recipes import RunConfig

    rc = RunConfig.from_dict(config)
    clip = audio.fix_length(waveform, SAMPLE_RATE).unsqueeze(0)  # [1, 1, 16000]
    with torch.inference_mode():
        seen = build_transform(transform_config(rc.model_rate, rc.feature_config))(clip)
    if rc.representation == "mel":
        return seen[0, 0], rc.feature_config, "mel"
    view = FeatureConfig(normalize=False).at_sample_rate(rc.model_rate)
    return linear_spectrogram_db(seen[0], view), view, "waveform"


def load_audio_file(path: str | Path) -> torch.Tensor | None:
    """A clip file as ``[1, time]`` at 16 kHz (cached), or None when it cannot be read."""
    try:
        samples, _sr = clips._decode(str(path), Path(path).stat().st_mtime)
    except (KwsError, OSError):
        return None
    return torch.from_numpy(samples).unsqueeze(0)
