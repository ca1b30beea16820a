"""One run configuration: ``hashembed train``'s flags come from :class:`RunConfig`'s fields, a
run saves it whole, and ``--config`` starts a run from a saved one."""

import argparse
import json
from dataclasses import fields

import pytest

from hashembed.app.cli import build_parser, main
from hashembed.core.errors import ConfigError
from hashembed.train.checkpoint import load_run
from hashembed.train.defaults import BIT_FLIP
from hashembed.train.model import GNN_TYPES
from hashembed.train.runconfig import (GNNS, RunConfig, add_run_flags, read_config_file,
                                       run_config_from_args)


def _parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    return run_config_from_args(parser.parse_args(argv))


def test_every_field_is_a_flag_and_only_given_flags_change_it():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {option for action in train._actions for option in action.option_strings}
    for f in fields(RunConfig):
        assert f"--{f.name.replace('_', '-')}" in flags
    assert _parse() == RunConfig()
    config = _parse("--bits", "64", "--decoder-hidden", "256", "--hidden", "32",
                    "--batch-size", "512", "--fanout", "10,5")
    assert (config.bits, config.decoder_hidden, config.hidden) == (64, 256, 32)
    assert config.fanout == (10, 5) and config.coding == "hash"
    # the decoder's hidden width and the GNN's are separate settings
    assert config.decoder_config().hidden_dim == 256 and config.model_config(7).hidden_dim == 32
    assert RunConfig(hidden=48).decoder_config().hidden_dim == 48  # default: the GNN's
    assert set(GNNS) == set(GNN_TYPES)


def test_derived_parts_follow_the_settings():
    config = RunConfig(coding="random", bits=64, bits_per_index=8, seed=3, epochs=7)
    spec = config.code_spec()
    assert (spec.scheme, spec.bits, spec.bits_per_index, spec.seed) == ("random", 64, 8, 3)
    assert config.train_config().epochs == 7 and config.batch_config() is None
    assert RunConfig(batch_size=256, layers=3).batch_config().fanout == (15, 10, 5)
    assert RunConfig(coding="none").code_spec() is None
    assert RunConfig().decoder_config().bit_flip == BIT_FLIP > 0  # on by default
    assert RunConfig(bit_flip=0.0).decoder_config().bit_flip == 0.0
    assert RunConfig(coding="qr").id_encoder(10_000).kind == "qr"
    link = RunConfig(epochs=40).link_config()
    assert (link.epochs, link.eval_every) == (40, 2)


@pytest.mark.parametrize("bad, message", [
    (dict(coding="pca"), "coding 'pca' is not one of"),
    (dict(fanout=(10, 5)), "--fanout goes with --batch-size"),
    (dict(batch_size=64, fanout=(10,)), "1 hops for a 2-layer GNN"),
    (dict(dropout=1.0), "dropout=1.0"),
    (dict(bit_flip=0.5), "bit_flip=0.5 must be in"),
    (dict(split="random:0.5"), "random"),
    (dict(hidden=0), "hidden=0 must be at least 1"),
])
def test_bad_settings_name_the_problem(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**bad)


def test_each_task_refuses_the_other_task_settings():
    with pytest.raises(ConfigError, match="does not take --holdout-nodes.*--metric"):
        RunConfig(holdout_nodes=0.1, metric="accuracy").check_task(link=True)
    with pytest.raises(ConfigError, match="node classification does not take "
                                          "--link-batch-size"):
        RunConfig(link_batch_size=128).check_task(link=False)
    with pytest.raises(ConfigError, match="hits@20 scores link prediction"):
        RunConfig(metric="hits@20").check_task(link=False)
    with pytest.raises(ConfigError, match="--eval-batch-size goes with --batch-size"):
        RunConfig(eval_batch_size=64)
    RunConfig(coding="qr").check_task(link=True)  # budgeted tables train links too


def test_flag_errors_keep_their_message_and_file_types_are_checked(capsys):
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fanout", "0"])
    assert "each hop keeps -1 (all) or a positive count" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--split", "bogus"])
    assert "expected random:TRAIN,VAL,TEST" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="bits='128' must be a number"):
        RunConfig.from_dict({"bits": "128"})


def test_a_run_saves_its_config_whole_and_train_config_repeats_it(tmp_path, capsys):
    common = ["--dataset", "cora", "--quiet", "--epochs", "3", "--bits", "32",
              "--codebook-dim", "16", "--dim", "16", "--hidden", "16", "--decoder-hidden",
              "24", "--seed", "2", "--bit-flip", "0.2"]
    assert main(["train", *common, "--out", str(tmp_path / "a")]) == 0
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())["config"]["run"]
    config = RunConfig.from_dict(saved)
    assert (config.decoder_hidden, config.hidden, config.seed, config.epochs) == (24, 16, 2, 3)
    assert load_run(tmp_path / "a").config == config
    assert config.bit_flip == load_run(tmp_path / "a").decoder_config.bit_flip == 0.2
    # --config starts from the saved settings; a flag beside it overrides one of them
    assert main(["train", "--dataset", "cora", "--quiet", "--config",
                 str(tmp_path / "a" / "metrics.json"), "--epochs", "2",
                 "--out", str(tmp_path / "b")]) == 0
    again = load_run(tmp_path / "b").config
    assert again.epochs == 2 and again.decoder_hidden == 24 and again.seed == 2
    capsys.readouterr()


def test_flags_are_laid_over_a_config_file_before_it_is_checked(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"fanout": [15, 10], "batch_size": 64}))
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    config = run_config_from_args(parser.parse_args(["--layers", "3", "--fanout", "5,5,5"]),
                                  read_config_file(path))
    assert (config.layers, config.fanout, config.batch_size) == (3, (5, 5, 5), 64)


def test_a_bad_config_file_is_refused_by_name(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"bitz": 64}))
    assert main(["train", "--dataset", "cora", "--config", str(path),
                 "--out", str(tmp_path / "run")]) != 0
    assert f"--config {path}: unknown run settings ['bitz']" in capsys.readouterr().err
    path.write_text(json.dumps({"run_id": "x", "config": {"model": {}}, "test": 0.5}))
    assert main(["train", "--dataset", "cora", "--config", str(path),
                 "--out", str(tmp_path / "run")]) != 0
    assert "predates saved run configs" in capsys.readouterr().err
    path.write_text("[1, 2")
    assert main(["train", "--dataset", "cora", "--config", str(path),
                 "--out", str(tmp_path / "run")]) != 0
    assert "cannot read a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_codes_made_with_other_settings_are_refused(tmp_path, capsys):
    """The saved config must remake the run's codes, so --codes must match it."""
    from hashembed.graph.synth import SynthConfig, synth_graph

    synth_graph(SynthConfig(2000, seed=0), tmp_path / "g", progress=False)
    assert main(["codes", str(tmp_path / "g"), "--bits", "64", "--seed", "3", "--quiet",
                 "--out", str(tmp_path / "c")]) == 0
    assert main(["train", "--graph", str(tmp_path / "g"), "--codes", str(tmp_path / "c"),
                 "--bits", "64", "--batch-size", "64", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) != 0
    assert "seed 3 (the run: 0)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
