"""The kwscore command, run as a real process."""

import subprocess
import sys

from kwscore.data.layout import dataset_folder


def kwscore(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "kwscore.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_synth_then_info(tmp_path):
    r = kwscore("data", "synth", "--root", tmp_path, "--speakers", 4, "--words", "commands", "--utterances", 1, "--keyword-utterances", 0)
    assert r.returncode == 0, r.stderr
    assert "Generated in" in r.stdout and len(list(dataset_folder(tmp_path).glob("*/*.wav"))) == 8 * 4 + 4
    r = kwscore("data", "synth", "--root", tmp_path, "--speakers", 4, "--words", "commands", "--utterances", 1, "--keyword-utterances", 0)
    assert "already" in r.stdout
    r = kwscore("data", "info", "--root", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "training" in r.stdout and "speaker-disjoint: OK" in r.stdout and "Words (8)" in r.stdout


def test_friendly_errors_not_tracebacks(tmp_path):
    r = kwscore("data", "info", "--root", tmp_path / "missing")
    assert r.returncode == 2 and r.stderr.startswith("error: No dataset at") and "Traceback" not in r.stderr
    r = kwscore("data", "synth", "--root", tmp_path, "--speakers", 1)
    assert r.returncode == 2 and "at least 3 speakers" in r.stderr and "Traceback" not in r.stderr


def test_download_from_file_url(small_synth, tmp_path):
    import tarfile

    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for p in dataset_folder(small_synth).iterdir():
            tar.add(p, arcname=p.name)
    r = kwscore("data", "download", "--root", tmp_path / "real", "--url", archive.as_uri())
    assert r.returncode == 0, r.stderr
    assert "ready" in r.stdout
    assert kwscore("data", "info", "--root", tmp_path / "real").returncode == 0
