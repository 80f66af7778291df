"""The real download path (SPEECHCOMMANDS(download=True)), against a local archive on file://."""

import hashlib
import tarfile

import pytest

from kwscore.data.dataset import SpeechCommands
from kwscore.data.download import download, is_downloaded
from kwscore.data.layout import dataset_folder
from kwscore.errors import KwsError


@pytest.fixture(scope="module")
def archive(small_synth, tmp_path_factory):
    """A small speech_commands_v0.02.tar.gz laid out like the official one (word folders on top)."""
    out = tmp_path_factory.mktemp("server") / "speech_commands_v0.02.tar.gz"
    folder = dataset_folder(small_synth)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"./{path.name}")
    return out, hashlib.sha256(out.read_bytes()).hexdigest()


def test_download_and_extract_from_file_url(archive, tmp_path):
    path, sha = archive
    root = download(tmp_path / "real", url=path.as_uri(), sha256=sha, progress=False)
    assert is_downloaded(root)
    assert not (root / path.name).exists(), "the archive is removed after extraction"
    ds = SpeechCommands(root, "testing")
    assert len(ds) > 0 and ds[0][0].shape == (1, 16000)
    assert len(SpeechCommands(root, None)) == 160
    # a second call finds it done and does nothing
    assert download(root, url="file:///nonexistent/speech_commands_v0.02.tar.gz") == root


def test_checksum_mismatch_keeps_nothing(archive, tmp_path):
    path, _ = archive
    with pytest.raises(KwsError, match="corrupt"):
        download(tmp_path / "real", url=path.as_uri(), sha256="0" * 64, progress=False)
    assert not is_downloaded(tmp_path / "real")
    assert not list((tmp_path / "real").glob("*.tar.gz")) and not list((tmp_path / "real").glob("*.partial"))


def test_unreachable_url_and_wrong_name(tmp_path):
    with pytest.raises(KwsError, match="Could not download"):
        download(tmp_path, url="file:///no/such/dir/speech_commands_v0.02.tar.gz", progress=False)
    with pytest.raises(KwsError, match="must be named"):
        download(tmp_path, url="file:///tmp/other.tar.gz", progress=False)
