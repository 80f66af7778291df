"""Saving files so that nothing is ever half-written.

Every file KWS Studio writes that a person cares about (clips, recordings, checkpoints, run status)
goes through :func:`atomic_open`: the data goes to a temporary file in the same folder, is flushed
to disk, and only then renamed over the target. A crash, a kill or a full disk leaves either the
old file or the new one — never a mixture — and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from kwscore.errors import KwsError


def _friendly(exc: OSError, path: Path) -> OSError | KwsError:
    """Turn 'no space left' into a sentence a person can act on; other errors pass unchanged."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return KwsError(
            f"The disk is full: {path.name} could not be saved (the previous version, if any, is "
            "intact). Free some space — for example delete old runs — and try again."
        )
    return exc


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_open(path) as f: f.write(...)`` writes ``path`` all-or-nothing.

    A full disk becomes a :class:`KwsError` that says the previous version is intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _friendly(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes or text to ``path`` atomically. Returns the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return Path(path)


def write_new(folder: str | os.PathLike, names: Iterable[str], data: bytes) -> Path:
    """Write ``data`` under the first of ``names`` that does not exist yet; never overwrites.

    The data is written and flushed to a temporary file first, then hard-linked to the new name:
    ``link`` fails if the name exists, even when two writers race for it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".new-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for name in names:
            try:
                os.link(tmp, folder / name)
                return folder / name
            except FileExistsError:
                continue
        raise KwsError(f"No free file name left in {folder}.")
    except OSError as exc:
        raise _friendly(exc, folder / "the new file") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
