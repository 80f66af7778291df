"""The embedded synthetic dataset: real espeak-ng speech in the SpeechCommands layout."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwscore.data.layout import dataset_folder, noise_files, parse_clip_name
from kwscore.data.synth import MANIFEST, SynthParams, generate, is_complete, make_speakers, read_manifest
from kwscore.data.words import ALL_WORDS, COMMANDS, TASK_12_WORDS
from kwscore.errors import KwsError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    folder = dataset_folder(root)
    for p in sorted(folder.rglob("*.wav")) + [folder / "validation_list.txt", folder / "testing_list.txt"]:
        h.update(str(p.relative_to(folder)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_counts_and_format(small_synth):
    folder = dataset_folder(small_synth)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")) == sorted(COMMANDS)
    wavs = sorted(folder.glob("*/*_nohash_*.wav"))
    assert len(wavs) == 8 * 10 * 2
    speakers = {parse_clip_name(str(p.relative_to(folder)))[1] for p in wavs}
    assert len(speakers) == 10 and all(len(s) == 8 and int(s, 16) >= 0 for s in speakers)
    for p in wavs[::17]:
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames <= 16000
        x, _ = sf.read(p)
        assert np.abs(x).max() > 0.05, "a clip must contain a spoken word"
        assert np.all(np.abs(x[:100]) > 0) or np.std(x[:400]) > 0, "silence must not be digital zero"


def test_words_are_really_spoken_differently(small_synth):
    """Two speakers saying the same word give different audio; a word is not just noise."""
    folder = dataset_folder(small_synth)
    clips = sorted((folder / "yes").glob("*_nohash_0.wav"))[:2]
    a, b = (sf.read(p)[0] for p in clips)
    assert not np.allclose(a, b)
    energy = np.convolve(a**2, np.ones(800) / 800, mode="same")
    assert energy.max() > 100 * np.median(energy), "a word stands out of the noise floor"


def test_splits_are_speaker_disjoint_and_about_ten_percent(small_synth):
    folder = dataset_folder(small_synth)
    val = (folder / "validation_list.txt").read_text().split()
    test = (folder / "testing_list.txt").read_text().split()
    spk = lambda names: {parse_clip_name(n)[1] for n in names}  # noqa: E731
    assert spk(val) and spk(test) and not spk(val) & spk(test)
    assert len(spk(val)) == len(spk(test)) == 1  # 10 % of 10 speakers
    assert all((folder / n).exists() for n in val + test)


def test_background_noises_present(small_synth):
    names = [p.name for p in noise_files(small_synth)]
    assert names == ["babble.wav", "brown_noise.wav", "pink_noise.wav", "white_noise.wav"]
    for p in noise_files(small_synth):
        info = sf.info(p)
        assert info.samplerate == 16000 and info.frames / info.samplerate >= 20


def test_noise_colours_have_the_right_spectral_slope(small_synth):
    slopes = {}
    for p in noise_files(small_synth):
        x, sr = sf.read(p)
        spec = np.abs(np.fft.rfft(x[: sr * 4])) ** 2
        f = np.fft.rfftfreq(sr * 4, 1 / sr)
        band = (f > 100) & (f < 4000)
        slopes[p.stem] = np.polyfit(np.log10(f[band]), np.log10(spec[band] + 1e-20), 1)[0]
    assert abs(slopes["white_noise"]) < 0.2
    assert -1.3 < slopes["pink_noise"] < -0.7
    assert -2.3 < slopes["brown_noise"] < -1.7


def test_manifest_and_idempotence(small_synth):
    manifest = read_manifest(small_synth)
    assert manifest["params"] == {
        "speakers": 10, "words": "commands", "utterances": 2, "seed": 1, "rooms": False, "keyword_utterances": 0,
        "harder_test": True,
    }  # fmt: skip
    assert manifest["counts"]["clips"] == 160 and manifest["generator_version"] >= 1
    marker = dataset_folder(small_synth) / MANIFEST
    before = marker.stat().st_mtime_ns
    generate(small_synth, SynthParams(speakers=10, words="commands", utterances=2, keyword_utterances=0, seed=1, rooms=False))
    assert marker.stat().st_mtime_ns == before, "a complete dataset is reused, not regenerated"


def test_deterministic_for_a_seed(tmp_path):
    params = SynthParams(speakers=3, words="commands", utterances=1, keyword_utterances=0, seed=7)
    a = generate(tmp_path / "a", params)
    b = generate(tmp_path / "b", params)
    assert _digest(a) == _digest(b)
    c = generate(tmp_path / "c", SynthParams(speakers=3, words="commands", utterances=1, keyword_utterances=0, seed=8))
    assert _digest(a) != _digest(c)


def test_partial_dataset_is_detected_and_regenerated(tmp_path):
    params = SynthParams(speakers=3, words="commands", utterances=1, keyword_utterances=0, seed=2)
    root = generate(tmp_path, params)
    victim = next(dataset_folder(root).glob("yes/*.wav"))
    victim.unlink()  # as if interrupted / damaged
    (tmp_path / ".SpeechCommands.partial-99999").mkdir()  # leftover of a killed run
    assert not is_complete(root, params)
    generate(root, params)
    assert is_complete(root, params) and victim.exists()
    assert not list(tmp_path.glob(".SpeechCommands.partial-*"))


def test_speakers_differ_in_every_dimension():
    speakers = make_speakers(40, seed=0)
    assert len({s.id for s in speakers}) == 40
    assert len({s.accent for s in speakers}) >= 6
    assert len({s.variant for s in speakers}) >= 20
    assert len({s.rate for s in speakers}) >= 20


def test_all_35_words_with_more_takes_of_the_keywords(tmp_path):
    root = generate(tmp_path, SynthParams(speakers=3, words="all", utterances=1, keyword_utterances=2))
    folder = dataset_folder(root)
    counts = {w: len(list((folder / w).glob("*.wav"))) for w in ALL_WORDS}
    assert counts == {w: 6 if w in TASK_12_WORDS else 3 for w in ALL_WORDS}
    assert read_manifest(root)["counts"]["clips"] == sum(counts.values())
    assert sorted(f.name for f in (folder / "yes").glob("*.wav"))[:2] == [
        f"{speaker}_nohash_{n}.wav" for speaker in sorted(read_manifest(root)["speakers"])[:1] for n in range(2)
    ]


def test_testing_speakers_record_in_harder_conditions():
    """The same takes recorded as a training speaker's and as a testing speaker's session: the
    testing one always has a room, and its noise is 0-20 dB below the speech instead of 10-50."""
    from kwscore.data.synth import record_session

    takes = np.zeros((6, 16000), dtype=np.float32)
    takes[:, 4000:8000] = np.sin(np.arange(4000) * 0.3, dtype=np.float32) * 0.5
    easy_snr, hard_snr, rooms = [], [], 0
    for seed in range(12):
        _, easy = record_session(takes, np.random.default_rng(seed), rooms=True)
        clips, hard = record_session(takes, np.random.default_rng(seed), rooms=True, harder=True)
        assert clips.shape == takes.shape and np.isfinite(clips).all()
        assert "room" in hard and 0.3 <= hard["room"]["rt60_s"] <= 0.9
        rooms += "room" in easy
        easy_snr += easy["snr_db"]
        hard_snr += hard["snr_db"]
    assert rooms < 12  # a training speaker has a room 7 times in 10
    assert max(hard_snr) <= 25.0 and min(hard_snr) >= -3.0 and np.mean(hard_snr) < np.mean(easy_snr) - 10


def test_refuses_to_overwrite_a_foreign_dataset(tmp_path):
    foreign = dataset_folder(tmp_path) / "yes"
    foreign.mkdir(parents=True)
    sf.write(foreign / "aaaaaaaa_nohash_0.wav", np.zeros(16000), 16000, subtype="PCM_16")
    for force in (False, True):  # --force never deletes a dataset kwscore did not write
        with pytest.raises(KwsError, match="did not generate"):
            generate(tmp_path, SynthParams(speakers=3, words="commands", utterances=1, keyword_utterances=0), force=force)
        assert (foreign / "aaaaaaaa_nohash_0.wav").exists()


def test_regenerating_keeps_clips_it_did_not_write(tmp_path):
    """A take recorded into a generated dataset survives --force in ROOT/_trash/, byte for byte."""
    params = SynthParams(speakers=3, words="commands", utterances=1, keyword_utterances=0, seed=3)
    root = generate(tmp_path, params)
    take = dataset_folder(root) / "yes" / "feedbeef_nohash_0.wav"
    sf.write(take, np.full(16000, 0.25), 16000, subtype="PCM_16")
    data = take.read_bytes()
    generate(root, params, force=True)
    assert not take.exists() and is_complete(root, params)
    kept = list((tmp_path / "_trash").rglob("feedbeef_nohash_0.wav"))
    assert len(kept) == 1 and kept[0].read_bytes() == data and kept[0].parent.name == "yes"


@pytest.mark.parametrize("kwargs, message", [
    ({"words": "some"}, "words must be"),
    ({"speakers": 2}, "at least 3 speakers"),
    ({"utterances": 0}, "utterances"),
    ({"keyword_utterances": 21}, "keyword_utterances"),
])  # fmt: skip
def test_bad_parameters(kwargs, message):
    with pytest.raises(KwsError, match=message):
        SynthParams(**kwargs).validate()


def test_manifest_is_json(small_synth):
    assert json.loads((dataset_folder(small_synth) / MANIFEST).read_text())["counts"]["noises"] == 4


def test_a_recording_session_adds_a_room_a_microphone_and_noise():
    """record_session: the same takes sound recorded (reverb tail, coloured noise floor, speaker's level)."""
    from kwscore.data.synth import record_session

    takes = np.zeros((4, 16000), dtype=np.float32)
    takes[:, 4000:6000] = np.sin(np.arange(2000) * 2 * np.pi * 440 / 16000)  # a 125-ms tone as the "word"
    for seed in range(6):  # some sessions are in a room (7 in 10), all have a microphone and noise
        clips, session = record_session(takes, np.random.default_rng(seed))
        same, _ = record_session(takes, np.random.default_rng(seed))
        assert clips.shape == takes.shape and np.array_equal(clips, same)
        assert "mic" in session and session["noise"] in ("white", "pink", "brown")
        quiet = clips[:, 12000:]  # long after the word: only noise (and no digital silence)
        assert 0 < np.abs(quiet).max() < np.abs(clips).max()
        peak_db = 20 * np.log10(np.abs(clips).max(axis=1))
        assert (peak_db < 0).all() and (peak_db > -25).all()
        if "room" in session:  # the room rings on after the word ends
            tail = np.abs(clips[:, 6000:6400]).mean()
            assert tail > 3 * np.abs(quiet).mean()
    clean, session = record_session(takes, np.random.default_rng(0), rooms=False)
    assert "room" not in session and "mic" not in session
    assert np.abs(clean[:, 12000:]).max() < 1e-2
