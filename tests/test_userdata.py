"""Your own words: takes saved safely in the SpeechCommands layout, usable by the one loader."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from kwscore.audio import trim_silence
from kwscore.data.dataset import SpeechCommands
from kwscore.data.layout import dataset_folder
from kwscore.errors import KwsError
from kwscore.userdata import delete_take, list_takes, prepare_take, save_take, speaker_id


def tone_take(sr=44100, seconds=2.0, word_at=0.7, word_len=0.4, channels=2):
    """A 'recording': quiet room noise with a 0.4-s tone burst (the 'word')."""
    t = torch.arange(int(sr * seconds)) / sr
    x = 0.002 * torch.randn(channels, t.numel())
    burst = (t >= word_at) & (t < word_at + word_len)
    x[:, burst] += 0.5 * torch.sin(2 * math.pi * 440 * t[burst])
    return x, sr


def test_speaker_id_is_stable_and_hex():
    assert speaker_id("Ada Lovelace") == speaker_id("  ada   lovelace ") != speaker_id("Alan")
    assert len(speaker_id("x")) == 8 and int(speaker_id("x"), 16) >= 0
    with pytest.raises(KwsError, match="name"):
        speaker_id("   ")


def test_trim_and_centre():
    x, sr = tone_take()
    trimmed = trim_silence(x[:1], sr)
    assert 0.4 <= trimmed.shape[-1] / sr <= 0.6
    clip = prepare_take(x, sr)
    assert clip.shape == (1, 16000)
    loud = torch.nonzero(clip[0].abs() > 0.1).flatten()
    centre = (loud[0] + loud[-1]) / 2 / 16000
    assert abs(centre - 0.5) < 0.05


def test_bad_takes_are_refused():
    with pytest.raises(KwsError, match="silent"):
        prepare_take(torch.zeros(1, 16000), 16000)
    with pytest.raises(KwsError, match="NaN"):
        prepare_take(torch.full((1, 16000), float("nan")), 16000)
    x, sr = tone_take(seconds=3, word_at=0.2, word_len=2.0)
    with pytest.raises(KwsError, match="fit in 1 s"):
        prepare_take(x, sr)


def test_save_never_overwrites_and_loader_reads_it(tmp_path):
    for i in range(5):
        x, sr = tone_take(word_at=0.3 + 0.1 * i)
        take = save_take(tmp_path, "hello", "Ada", x, sr)
        assert take.number == i and take.path.exists()
    before = {t.path: t.path.read_bytes() for t in list_takes(tmp_path)}
    save_take(tmp_path, "Hello", "Ada", *tone_take())  # same word, normalised to lower case
    after = list_takes(tmp_path, "hello", "Ada")
    assert len(after) == 6 and all(p.read_bytes() == b for p, b in before.items())
    info = sf.info(after[0].path)
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000)
    folder = dataset_folder(tmp_path)
    assert (folder / "validation_list.txt").read_text().split() == [f"hello/{speaker_id('Ada')}_nohash_3.wav"]
    assert len(SpeechCommands(tmp_path, "training", commands="all")) == 4
    assert len(SpeechCommands(tmp_path, "testing", commands="all")) == 1


def test_delete_moves_to_trash(tmp_path):
    take = save_take(tmp_path, "lamp", "Bo", *tone_take())
    moved = delete_take(tmp_path, take.clip_id)
    assert moved.exists() and not take.path.exists() and "_trash" in str(moved)
    with pytest.raises(KwsError, match="no take"):
        delete_take(tmp_path, take.clip_id)
    with pytest.raises(KwsError, match="not a take name"):
        delete_take(tmp_path, "../../etc/passwd")


@pytest.mark.parametrize("word", ["../x", "a/b", "", "UPPER CASE", "x" * 40])
def test_bad_word_names(tmp_path, word):
    with pytest.raises(KwsError, match="cannot be a word name"):
        save_take(tmp_path, word, "Ada", *tone_take())
    assert not any(tmp_path.rglob("*.wav"))


def test_mono_float_numpy_input(tmp_path):
    x = np.sin(np.arange(8000) / 5).astype(np.float32) * np.hanning(8000).astype(np.float32)
    take = save_take(tmp_path, "beep", "Cy", torch.from_numpy(x)[None], 8000)
    assert sf.info(take.path).samplerate == 16000


def test_train_on_your_recordings_mixed_with_a_dataset(small_synth, tmp_path):
    """Takes of a new word join the embedded set's splits; a real run learns all nine words."""
    from kwscore.cli import main as cli
    from kwscore.recipes import default_config
    from kwscore.runner import run_training

    user = tmp_path / "user"
    for i in range(10):  # two 'speakers', five takes each: 3 training, 1 validation, 1 testing
        save_take(user, "beep", ["Ada", "Bo"][i % 2], *tone_take(word_at=0.2 + 0.05 * i))
    mixed = SpeechCommands([small_synth, user], "testing", commands="all")
    alone = SpeechCommands(small_synth, "testing", commands="all")
    assert mixed.labels == sorted([*alone.labels, "beep"])
    assert len(mixed) == len(alone) + 2 and mixed.path(len(mixed) - 1).is_relative_to(user)
    config = default_config("m5", data=str(small_synth), mix=[str(user)], commands="all", epochs=1,
                            augment="none", threads=1)  # fmt: skip
    result = run_training(config, tmp_path / "run")
    assert result.report["labels"] == mixed.labels and result.report["per_class_total"]["beep"] == 2
    assert result.report["n_total"] == len(mixed)
    # the CLI evaluates on the same mix by default
    assert cli(["eval", str(tmp_path / "run"), "--json"]) == 0
    with pytest.raises(KwsError, match="mix must be a list"):
        default_config("m5", data=str(small_synth), mix="oops").validate()


def test_long_names_get_a_message_not_an_oserror(tmp_path):
    """A 300-character word or take name: a one-line KwsError, never 'File name too long'."""
    save_take(tmp_path, "hello", "Ada", *tone_take())
    for call in (lambda: save_take(tmp_path, "h" * 300, "Ada", *tone_take()),
                 lambda: list_takes(tmp_path, "h" * 300),
                 lambda: delete_take(tmp_path, "hello/" + "a" * 300 + "_nohash_0.wav")):  # fmt: skip
        with pytest.raises(KwsError) as info:
            call()
        assert len(str(info.value)) < 250 and "characters)" in str(info.value), str(info.value)
    assert save_take(tmp_path, "hello", "B" * 300, *tone_take()).number == 0  # a long user name is hashed
    assert len(list_takes(tmp_path, "hello")) == 2


@pytest.mark.parametrize("sr", [1, 999983, 2**31 - 1])
def test_impossible_rates_are_refused(tmp_path, sr):
    x, _ = tone_take(sr=16000)
    with pytest.raises(KwsError, match="4,000 to 192,000 Hz"):
        prepare_take(x, sr)
    assert not list_takes(tmp_path)


def test_odd_rates_are_resampled_cheaply(tmp_path):
    x, sr = tone_take(sr=44101)
    take = save_take(tmp_path, "hello", "Ada", x, sr)
    assert sf.info(str(take.path)).samplerate == 16000 and sf.info(str(take.path)).frames == 16000
