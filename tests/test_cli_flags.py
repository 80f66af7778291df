"""`kwscore train`'s flags come from RunConfig / FeatureConfig fields; runs are found by prefix, suffix or name."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from kwscore import cli
from kwscore.choices import RECIPE_KEYS, recipe_model
from kwscore.errors import KwsError
from kwscore.features import FeatureConfig
from kwscore.models import MODEL_NAMES
from kwscore.recipes import RECIPES, RunConfig


def config_of(*argv):
    return cli._config_from_args(cli.build_parser().parse_args(["train", *map(str, argv)]))


def test_flags_are_derived_from_the_config_fields():
    train = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "n_fft")  # fmt: skip
    assert train.type is int and train.option_strings == ["--n-fft"]
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    feature_fields = {f.name for f in dataclasses.fields(FeatureConfig)}
    assert set(cli.TRAIN_RUN_FLAGS) <= run_fields and set(cli.TRAIN_FEATURE_FLAGS) <= feature_fields
    assert {"sample_rate", "weight_decay", "name", "notes"} <= set(cli.TRAIN_RUN_FLAGS)
    assert {"n_fft", "win_length", "hop_length", "n_mels", "f_max"} <= set(cli.TRAIN_FEATURE_FLAGS)
    parser = cli.build_parser()
    for name in [*cli.TRAIN_RUN_FLAGS, *cli.TRAIN_FEATURE_FLAGS]:  # each flag parses into its field's type
        args = parser.parse_args(["train", f"--{name.replace('_', '-')}", "7"])
        assert getattr(args, name) in (7, 7.0, "7")


def test_front_end_and_run_flags_reach_the_config(small_synth):
    c = config_of("--model", "cnn", "--data", small_synth, "--n-fft", 400, "--win-length", 400, "--hop-length", 200,
                  "--n-mels", 128, "--f-max", 8000, "--weight-decay", 0.001, "--name", "torchaudio defaults",
                  "--notes", "128 bands, 4 empty")  # fmt: skip
    f = c.feature_config
    assert (f.n_fft, f.win_length, f.hop_length, f.n_mels, f.f_max) == (400, 400, 200, 128, 8000.0)
    assert c.weight_decay == 0.001 and c.name == "torchaudio defaults" and c.notes == "128 bands, 4 empty"
    m5 = config_of("--model", "m5-tutorial", "--data", small_synth, "--sample-rate", 4000, "--augment", "recipe")
    assert (m5.model, m5.sample_rate, m5.batch_size, m5.scheduler) == ("m5", 4000, 256, "step")
    assert m5.model_kwargs["stride"] == 8  # stride 16 needs 6,848 samples: at 4 kHz it adapts so that 1 s fits
    assert isinstance(m5.augment, dict) and m5.augment["name"] == "recipe"
    with pytest.raises(KwsError, match="--n-mels set the Mel front end of the cnn"):
        config_of("--model", "m5", "--data", small_synth, "--n-mels", 64)


def test_one_list_of_recipes_and_models():
    assert set(RECIPE_KEYS) == set(RECIPES)
    assert {recipe_model(k) for k in RECIPE_KEYS} == set(MODEL_NAMES)
    t = RECIPES["m5tutorial"]  # the PyTorch tutorial's M5, exactly
    assert (t["model_kwargs"], t["sample_rate"], t["lr"], t["weight_decay"], t["scheduler"], t["batch_size"]) == (
        {"n_channel": 32, "stride": 16}, 8000, 0.01, 1e-4, "step", 256)


def test_cli_finds_a_run_by_suffix_and_refuses_an_ambiguous_prefix(tmp_path):
    runs = tmp_path / "runs"
    for run_id, name in (("20260101-100000-m5-46e218", "slow"), ("20260101-110000-m5-46f000", "")):
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "config.json").write_text(json.dumps({"model": "m5", "name": name}))
    env = {**os.environ, "KWS_RUNS_DIR": str(runs)}

    def kwscore(*args):
        return subprocess.run([sys.executable, "-m", "kwscore.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip

    found = kwscore("cancel", "46e218")
    assert found.returncode == 0 and "20260101-100000-m5-46e218" in found.stdout, found.stderr
    ambiguous = kwscore("cancel", "20260101")
    assert ambiguous.returncode == 2 and "matches 2 runs" in ambiguous.stderr
    assert "46e218 (slow)" in ambiguous.stderr and "Traceback" not in ambiguous.stderr
    listing = kwscore("runs")
    assert listing.returncode == 0 and "slow" in listing.stdout and "name" in listing.stdout
