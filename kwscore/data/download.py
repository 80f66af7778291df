"""Download the real Speech Commands v0.02 (2.3 GB, 105 k clips) with torchaudio.

We fetch the archive ourselves with a SHA-256 check and a progress bar, then let
``torchaudio.datasets.SPEECHCOMMANDS(download=True)`` find it and extract it into the standard layout.
Any URL works as long as the archive is named ``speech_commands_v0.02.tar.gz`` (tests serve a small
archive from a ``file://`` URL).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

from torchaudio._internal import download_url_to_file
from torchaudio.datasets import SPEECHCOMMANDS

from kwscore.data.layout import ARCHIVE_FOLDER, dataset_folder
from kwscore.errors import KwsError

REAL_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
REAL_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
ARCHIVE_NAME = "speech_commands_v0.02.tar.gz"
DONE_MARKER = ".kwscore_extracted"


def is_downloaded(root: str | os.PathLike) -> bool:
    """True once an archive was fully extracted under ROOT."""
    return (dataset_folder(root) / DONE_MARKER).exists()


def download(
    root: str | os.PathLike,
    url: str = REAL_URL,
    sha256: str | None = None,
    progress: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Download and extract Speech Commands v0.02 into ROOT. Returns ROOT.

    ``sha256`` defaults to the official archive's checksum when ``url`` is the official one.
    """
    root = Path(root).expanduser()
    if is_downloaded(root):
        return root
    if Path(urlparse(url).path).name != ARCHIVE_NAME:
        raise KwsError(f"The archive must be named {ARCHIVE_NAME} (torchaudio's layout), got {url}.")
    if sha256 is None and url == REAL_URL:
        sha256 = REAL_SHA256
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ARCHIVE_NAME
    if not archive.exists():
        try:
            download_url_to_file(url, str(archive), hash_prefix=sha256, progress=progress)
        except URLError as exc:
            raise KwsError(f"Could not download {url}: {exc.reason}. Check the network or the URL.") from exc
        except RuntimeError as exc:  # torch.hub: "invalid hash value"
            raise KwsError(f"The download of {url} is corrupt ({exc}). Nothing was kept; try again.") from exc
    folder = dataset_folder(root)
    if folder.exists():
        shutil.rmtree(folder)  # a half-extracted earlier attempt
    try:
        SPEECHCOMMANDS(root, url=url, folder_in_archive=str(ARCHIVE_FOLDER.parent), download=True)
    except Exception as exc:  # tarfile errors, disk full...
        shutil.rmtree(folder, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise KwsError(f"Could not extract {archive}: {exc}. The archive was removed; try again.") from exc
    (folder / DONE_MARKER).write_text(url + "\n")
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return root
