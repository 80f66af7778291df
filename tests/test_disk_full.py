"""A full disk while saving leaves the previous files intact (a real, tiny tmpfs)."""

import json
import os
import subprocess

import pytest
import torch

from kwscore import audio
from kwscore.errors import KwsError
from kwscore.models import build_model
from kwscore.runfiles import RunFiles
from kwscore.training import load_checkpoint, save_checkpoint
from kwscore.userdata import list_takes, save_take


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root, as in CI); skips where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk, leave: int = 0) -> None:
    """Fill the disk until at most ``leave`` bytes are free."""
    with open(disk / "filler", "wb") as f:
        chunk = b"\0" * 4096
        try:
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > leave + 4096:
                f.write(chunk)
                f.flush()
        except OSError:
            pass


def leftovers(folder):
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") and p.is_file()]


def test_status_json_survives_a_full_disk(small_disk):
    files = RunFiles(small_disk / "run")
    files.write_config({"model": "m5"})
    files.update_status(state="running", step=3)
    fill(small_disk)
    with pytest.raises(KwsError, match="disk is full.*previous version.*intact"):
        files.write_config({"model": "m5", "padding": "x" * 100_000})
    assert files.read_status()["step"] == 3 and json.loads(files.config_path.read_text()) == {"model": "m5"}
    assert not leftovers(small_disk / "run")


def test_checkpoint_survives_a_full_disk(small_disk):
    small = build_model("m5", 8, n_channel=8)
    save_checkpoint(small_disk / "best.pt", small, {"epoch": 1})
    fill(small_disk)
    big = build_model("m5", 8, n_channel=64)
    with pytest.raises(KwsError, match="disk is full"):
        save_checkpoint(small_disk / "best.pt", big, {"epoch": 2})
    ckpt = load_checkpoint(small_disk / "best.pt")
    assert ckpt["epoch"] == 1 and ckpt["model_kwargs"]["n_channel"] == 8
    assert not leftovers(small_disk)


def test_recordings_survive_a_full_disk(small_disk):
    t = torch.arange(16000) / 16000
    take = 0.3 * torch.sin(2 * torch.pi * 440 * t)[None] * (t < 0.4)
    saved = save_take(small_disk / "user", "lamp", "Ada", take, 16000)
    before = saved.path.read_bytes()
    fill(small_disk, leave=8_000)  # room for the temp file to start, not to finish
    with pytest.raises(KwsError, match="disk is full"):
        for _ in range(10):
            save_take(small_disk / "user", "lamp", "Ada", take, 16000)
    assert saved.path.read_bytes() == before
    for t_ in list_takes(small_disk / "user"):
        assert audio.load(t_.path)[0].shape == (1, 16000), "every take on disk is complete"
    assert not [n for n in leftovers(small_disk / "user") if n.endswith(".wav")]
