"""Multi-label node classification is a task of ``hashembed train``: one sigmoid per label,
scored by micro-F1 (and macro-F1 on test), full batch or mini-batch, saved and reloaded."""

from dataclasses import replace

import numpy as np
import pytest

from hashembed.app.cli import main
from hashembed.core.errors import ConfigError
from hashembed.export.exporter import export_run
from hashembed.train.checkpoint import load_run
from hashembed.graph.datasets import apply_split, load_dataset
from hashembed.train.run import train_run
from hashembed.train.runconfig import RunConfig


@pytest.fixture(scope="module")
def two_label_cora():
    """Cora whose nodes carry two labels each: their class ``y`` and ``(y + 1) mod 7``, so
    the labels are learnt as well as the classes are (single-label accuracy about 0.8)."""
    cora = load_dataset("cora")
    multi = np.zeros((cora.num_nodes, 7), dtype=bool)
    rows = np.arange(cora.num_nodes)
    multi[rows, cora.labels] = True
    multi[rows, (cora.labels + 1) % 7] = True
    return apply_split(replace(cora, labels=None, masks=None, multilabels=multi), None, seed=0)


def _train(graph, out, batch_size=None, fanout=None, metric="micro_f1", epochs=40):
    config = RunConfig(coding="hash", bits=64, bits_per_index=8, codebook_dim=16, dim=16,
                       hidden=32, decoder_hidden=32, epochs=epochs, patience=epochs, seed=1,
                       metric=metric, batch_size=batch_size, fanout=fanout)
    return train_run(graph, config, out, progress=False)


def test_split_covers_the_labelled_nodes(two_label_cora):
    masks = two_label_cora.masks
    assert sum(int(m.sum()) for m in masks.values()) == two_label_cora.num_nodes
    assert not (masks["train"] & masks["test"]).any()


def test_full_batch_run_learns_the_labels_and_reloads(two_label_cora, tmp_path):
    metrics = _train(two_label_cora, tmp_path / "run")
    assert metrics["metric"] == "micro_f1" and metrics["majority_class_test"] is None
    # chance for two labels out of seven is 2/7; the labels follow the class
    assert metrics["test"] > 0.6 and 0 < metrics["test_macro_f1"] <= 1
    run = load_run(tmp_path / "run")
    assert run.graph.labels is None
    np.testing.assert_array_equal(run.graph.multilabels, two_label_cora.multilabels)
    with pytest.raises(ConfigError, match="micro_f1 task"):
        export_run(tmp_path / "run", tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_mini_batch_run_trains_the_same_task(two_label_cora, tmp_path):
    metrics = _train(two_label_cora, tmp_path / "run", 256, (10, 5), epochs=6)
    assert metrics["metric"] == "micro_f1" and metrics["config"]["batch"]["batch_size"] == 256
    assert metrics["test"] > 2 / 7  # above guessing two labels at random


def test_task_and_labels_must_agree(two_label_cora, cora, tmp_path):
    with pytest.raises(ConfigError, match="multi-label: train it with --metric micro_f1"):
        _train(two_label_cora, tmp_path / "a", metric="accuracy")
    with pytest.raises(ConfigError, match="one class per node"):
        _train(cora, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_trains_blogcatalog_with_micro_f1_by_default(data_root, tmp_path, capsys):
    """The real multi-label graph (10,312 nodes, 39 labels), a few epochs."""
    assert main(["train", "--dataset", "blogcatalog", "--data-root", str(data_root),
                 "--epochs", "3", "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert '"metric": "micro_f1"' in out and '"test_macro_f1"' in out
