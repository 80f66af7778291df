"""One loader for every dataset: synthetic, downloaded, the shared real set, any folder."""

import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from kwscore.data.dataset import (
    SpeechCommands,
    collate,
    fits_pcm16,
    from_pcm16,
    index_to_label,
    label_to_index,
    pad_sequence,
    resolve_commands,
    to_pcm16,
)
from kwscore.data.info import dataset_info
from kwscore.data.layout import dataset_folder
from kwscore.data.words import ALL_WORDS, COMMANDS
from kwscore.errors import KwsError


def test_subsets_follow_the_official_lists(small_synth):
    folder = dataset_folder(small_synth)
    val = set((folder / "validation_list.txt").read_text().split())
    test = set((folder / "testing_list.txt").read_text().split())
    ds = {s: SpeechCommands(small_synth, s) for s in ("training", "validation", "testing")}
    assert {ds["validation"].clip_id(i) for i in range(len(ds["validation"]))} == val
    assert {ds["testing"].clip_id(i) for i in range(len(ds["testing"]))} == test
    assert len(ds["training"]) == 160 - len(val) - len(test)
    spk = {s: set(d.speakers()) for s, d in ds.items()}
    assert not (spk["training"] & spk["validation"]) and not (spk["training"] & spk["testing"])


def test_item_is_torchaudios_tuple(small_synth):
    waveform, sr, label, speaker, utt = SpeechCommands(small_synth, "training")[0]
    assert waveform.shape == (1, 16000) and waveform.dtype == torch.float32
    assert sr == 16000 and label in COMMANDS and len(speaker) == 8 and utt in (0, 1)
    assert waveform.abs().max() <= 1.0


def test_resampling_on_decode(small_synth):
    ds = SpeechCommands(small_synth, "testing", sample_rate=8000)
    waveform, sr, *_ = ds[0]
    assert sr == 8000 and waveform.shape == (1, 8000)


def test_commands_filter(small_synth):
    assert resolve_commands("8", COMMANDS) == sorted(COMMANDS)
    assert resolve_commands(["yes", "no"], COMMANDS) == ["no", "yes"]
    assert resolve_commands("yes,no", COMMANDS) == ["no", "yes"]
    assert resolve_commands("35", ALL_WORDS) == sorted(ALL_WORDS)
    ds = SpeechCommands(small_synth, None, commands=["yes", "no"])
    assert {ds.get_metadata(i)[2] for i in range(len(ds))} == {"yes", "no"} and len(ds) == 40
    with pytest.raises(KwsError, match="Unknown command.*marvin"):
        SpeechCommands(small_synth, commands="35")  # the small set has only the 8 commands
    with pytest.raises(KwsError, match="Unknown command.*bogus"):
        resolve_commands(["bogus"], COMMANDS)


def test_labels_round_trip():
    labels = sorted(COMMANDS)
    for word in labels:
        assert index_to_label(label_to_index(word, labels), labels) == word
    assert label_to_index("yes", labels).item() == 7


def test_collate_pads_to_the_longest():
    a, b = torch.ones(1, 100), torch.full((1, 60), 0.5)
    batch = pad_sequence([a, b])
    assert batch.shape == (2, 1, 100)
    assert torch.all(batch[1, 0, 60:] == 0) and torch.all(batch[1, 0, :60] == 0.5)
    waves, targets = collate([(a, 16000, "yes", "s", 0), None, (b, 16000, "no", "s", 0)], ["no", "yes"])
    assert waves.shape == (2, 1, 100) and targets.tolist() == [1, 0]


def test_dataloader_batches(small_synth):
    ds = SpeechCommands(small_synth, "training")
    waves, targets = next(iter(DataLoader(ds, batch_size=16, shuffle=True, collate_fn=ds.collate_fn)))
    assert waves.shape == (16, 1, 16000) and targets.shape == (16,) and targets.max() < 8


def test_cache_avoids_file_io(small_synth, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_synth, copy)
    ds = SpeechCommands(copy, "validation", cache=True)
    calls = []
    ds.preload(progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (1, len(ds)) and calls[-1] == (len(ds), len(ds))
    first = ds[0][0].clone()
    assert ds.cache_bytes() == len(ds) * 16000 * 2  # 16-bit samples: 2 bytes each
    shutil.rmtree(dataset_folder(copy) / "yes")  # files gone: the cache still serves them
    assert all(ds[i] is not None for i in range(len(ds)))
    assert torch.equal(ds[0][0], first)


def test_corrupt_and_foreign_rate_files(small_synth, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_synth, copy)
    folder = dataset_folder(copy)
    (folder / "yes" / "deadbeef_nohash_0.wav").write_bytes(b"RIFF not really a wav")
    sf.write(folder / "no" / "cafecafe_nohash_0.wav", np.sin(np.arange(44100) / 10) * 0.3, 44100)
    ds = SpeechCommands(copy, "training")
    bad = next(i for i in range(len(ds)) if ds.clip_id(i) == "yes/deadbeef_nohash_0.wav")
    odd = next(i for i in range(len(ds)) if ds.clip_id(i) == "no/cafecafe_nohash_0.wav")
    with pytest.warns(UserWarning, match="corrupt"):
        assert ds[bad] is None
    with pytest.warns(UserWarning, match="44100 Hz"):
        assert ds[odd][0].shape == (1, 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(DataLoader(ds, batch_size=32, collate_fn=ds.collate_fn))
    assert sum(len(t) for _, t in batches) == len(ds) - 1, "a corrupt clip is skipped, the epoch goes on"


def test_missing_and_half_written_datasets(tmp_path):
    with pytest.raises(KwsError, match="does not exist.*kwscore data synth"):
        SpeechCommands(tmp_path / "nothing")
    dataset_folder(tmp_path).mkdir(parents=True)
    with pytest.raises(KwsError, match="no word folders"):
        SpeechCommands(tmp_path)


def test_missing_split_list_and_empty_split(small_synth, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_synth, copy)
    (dataset_folder(copy) / "testing_list.txt").unlink()
    with pytest.raises(KwsError, match="testing_list.txt"):
        SpeechCommands(copy, "testing")
    assert len(SpeechCommands(copy, None)) == 160  # the whole set still works
    (dataset_folder(copy) / "testing_list.txt").write_text("")
    with pytest.raises(KwsError, match="testing split.*no clips"):
        SpeechCommands(copy, "testing")
    with pytest.raises(KwsError, match="subset must be"):
        SpeechCommands(copy, "train")


def test_info_on_synthetic(small_synth):
    info = dataset_info(small_synth)
    assert info.words == sorted(COMMANDS) and info.total() == 160
    assert len(info.speakers["training"]) == 8 and not info.overlapping_speakers()
    assert info.duration_stats()["max"] <= 1.0 and info.sample_rates == {16000: 160}
    assert "speaker-disjoint: OK" in info.format() and "Synthetic speech" in info.name


def test_shared_real_set_with_official_splits(shared_real):
    folder = dataset_folder(shared_real)
    test_list = set((folder / "testing_list.txt").read_text().split())
    ds = SpeechCommands(shared_real, "testing", commands="8")
    assert len(ds) == sum(1 for n in test_list if n.split("/")[0] in COMMANDS) > 100
    waveform, sr, label, speaker, _ = ds[0]
    assert sr == 16000 and waveform.shape[0] == 1 and label in COMMANDS
    all35 = SpeechCommands(shared_real, "training", commands="35")
    assert all35.labels == sorted(ALL_WORDS)
    info = dataset_info(shared_real, with_durations=False)
    assert not info.overlapping_speakers() and len(info.words) == 35


# ------------------------------------------------------------------------------------------------
# issue #10: hostile split lists, NaN clips, empty word folders (the corpus is tests/badinput/)
# ------------------------------------------------------------------------------------------------


def _damaged_copy(small_synth, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_synth, copy)
    return copy, dataset_folder(copy)


def test_split_lists_are_checked_when_the_dataset_is_opened(small_synth, tmp_path):
    """Blank lines are ignored; traversal, absolute paths and missing files are reported once, when
    the dataset is opened, and left out — not met as a torchaudio traceback after training."""
    from kwscore.data.layout import read_split_lists

    copy, folder = _damaged_copy(small_synth, tmp_path)
    good_test = SpeechCommands(copy, "testing").clip_id(0)
    test_list = folder / "testing_list.txt"
    test_list.write_text("\n\n../../etc/passwd\n/etc/passwd\nyes/deadbeef_nohash_0.wav\n" + test_list.read_text())
    (folder / "validation_list.txt").write_bytes(b"\n" + (folder / "validation_list.txt").read_bytes() + b"\n\n")
    lists = read_split_lists(copy)
    assert good_test in lists.testing and not any(".." in c or c.startswith("/") for c in lists.testing)
    assert len(lists.problems) == 1, lists.problems  # blank lines are not problems
    problem = lists.problems[0]
    assert "testing_list.txt: 3 line(s) ignored" in problem and "'../../etc/passwd'" in problem
    assert "an absolute path" in problem and "missing: no such file" in problem and "corrupt" not in problem
    with pytest.warns(UserWarning, match="3 line"):
        ds = SpeechCommands(copy, "training")
    assert all(folder in ds.path(i).parents for i in range(len(ds)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once: opening again says nothing
        testing = SpeechCommands(copy, "testing")
    assert all(testing[i] is not None for i in range(len(testing)))  # every listed clip decodes
    info = dataset_info(copy).format()
    assert "WARNING: split list: testing_list.txt: 3 line(s) ignored" in info


def test_non_utf8_and_unreadable_split_lists(small_synth, tmp_path):
    copy, folder = _damaged_copy(small_synth, tmp_path)
    (folder / "testing_list.txt").write_bytes((folder / "testing_list.txt").read_bytes() + b"yes/\xff\xfe_nohash_0.wav\n")
    (folder / "validation_list.txt").unlink()
    (folder / "validation_list.txt").mkdir()
    with pytest.warns(UserWarning, match="not UTF-8"):
        assert len(SpeechCommands(copy, "testing")) == 16
    with pytest.raises(KwsError, match="no usable validation_list.txt"):
        SpeechCommands(copy, "validation")
    assert "validation_list.txt cannot be read" in dataset_info(copy).format()


def test_a_nan_clip_is_skipped_with_a_warning_naming_it(small_synth, tmp_path):
    copy, folder = _damaged_copy(small_synth, tmp_path)
    ds = SpeechCommands(copy, "training")
    path = ds.path(0)
    x, sr = sf.read(path, dtype="float32")
    x[100] = np.nan
    sf.write(path, x, sr, subtype="FLOAT")
    with pytest.warns(UserWarning, match=f"corrupt clip: .*{path.name}.*NaN or infinity"):
        assert SpeechCommands(copy, "training")[0] is None
    from kwscore.training_data import decode_all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        waveforms, targets = decode_all(SpeechCommands(copy, "training"), 16000)
    assert len(waveforms) == len(ds) - 1 and torch.isfinite(waveforms).all()


def test_a_missing_clip_is_reported_as_missing(small_synth, tmp_path):
    copy, folder = _damaged_copy(small_synth, tmp_path)
    ds = SpeechCommands(copy, "training")
    ds.path(0).unlink()
    with pytest.warns(UserWarning, match="skipping missing clip") as caught:
        assert ds[0] is None
    assert "corrupt" not in str(caught[0].message)


def test_odd_rates_in_a_dataset(small_synth, tmp_path):
    copy, folder = _damaged_copy(small_synth, tmp_path)
    sf.write(folder / "yes" / "0dd0dd00_nohash_0.wav", 0.3 * np.sin(np.arange(44101) / 9), 44101)
    data = bytearray((folder / "yes" / "0dd0dd00_nohash_0.wav").read_bytes())
    data[24:28] = (999983).to_bytes(4, "little")
    (folder / "no" / "0dd0dd01_nohash_0.wav").write_bytes(bytes(data))
    ds = SpeechCommands(copy, None, sample_rate=8000)
    odd = {ds.clip_id(i): i for i in range(len(ds))}
    with pytest.warns(UserWarning, match="44101 Hz"):
        assert ds[odd["yes/0dd0dd00_nohash_0.wav"]][0].shape == (1, 8000)
    with pytest.warns(UserWarning, match="999983 Hz: KWS Studio reads 4,000 to 192,000 Hz"):
        assert ds[odd["no/0dd0dd01_nohash_0.wav"]] is None


def test_empty_word_folders_are_not_classes(small_synth, tmp_path):
    copy, folder = _damaged_copy(small_synth, tmp_path)
    (folder / "marvin").mkdir()
    (folder / "sheila").mkdir()
    (folder / "sheila" / "notes.txt").write_text("no clips here")
    (folder / "bird").write_text("a file, not a folder")
    (folder / "loop").symlink_to("loop")
    ds = SpeechCommands(copy, "training", commands="all")
    assert ds.labels == sorted(COMMANDS)
    assert dataset_info(copy).words == sorted(COMMANDS)
    with pytest.raises(KwsError, match="Unknown command.*marvin"):
        SpeechCommands(copy, "training", commands=["yes", "marvin"])


def test_pcm16_round_trip_is_within_half_a_step():
    x = torch.rand(1, 4000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pcm = to_pcm16(x)
    assert pcm.dtype == torch.int16 and pcm.element_size() == 2
    assert (from_pcm16(pcm) - x).abs().max() <= 0.5 / 32768
    exact = torch.arange(-32768, 32768, 7, dtype=torch.int16).view(1, -1)
    assert torch.equal(to_pcm16(from_pcm16(exact)), exact)  # 16-bit values survive bit for bit
    assert to_pcm16(torch.tensor([1.5, -1.5])).tolist() == [32767, -32768]  # louder than full scale: clipped


def test_cache_on_real_files_matches_the_uncached_decode(shared_real):
    """Real 16-bit WAVs come back bit for bit from the 16-bit cache; resampled ones within 1/65536
    (a resampled clip that overshoots full scale is cached as float32, exactly)."""
    for rate, tolerance in ((16000, 0.0), (8000, 0.5 / 32768)):
        cached = SpeechCommands(shared_real, "testing", commands=["yes", "no"], sample_rate=rate, cache=True)
        picked = range(0, len(cached), max(1, len(cached) // 40))
        samples = 0
        for i in picked:
            want, got = cached.decode(i), cached[i][0]  # decode() never uses the cache
            assert got.dtype == torch.float32 and got.shape == want.shape
            assert (got - want).abs().max() <= tolerance
            samples += want.numel() * (2 if fits_pcm16(want) else 4)
        assert cached.cache_bytes() == samples  # 2 bytes per 16-bit sample
        if rate == 16000:
            assert samples == 2 * sum(cached.decode(i).numel() for i in picked)


def test_decode_all_keeps_16_bit_samples(small_synth):
    from kwscore.training_data import decode_all, in_chunks

    ds = SpeechCommands(small_synth, "validation")
    calls = []
    samples, targets = decode_all(ds, 16000, progress=lambda done, total: calls.append(done), chunk=16)
    assert samples.dtype == torch.int16 and samples.shape == (len(ds), 1, 16000)
    assert samples.untyped_storage().nbytes() == len(ds) * 16000 * 2
    assert calls[-1] == len(ds) and len(calls) == -(-len(ds) // 16)
    assert torch.equal(from_pcm16(samples[3]), ds[3][0]) and torch.equal(targets, ds.targets())
    doubled = in_chunks(lambda x: 2 * x, samples, chunk=7)  # float32 again, chunk by chunk
    assert doubled.dtype == torch.float32 and torch.equal(doubled[3], 2 * ds[3][0])
