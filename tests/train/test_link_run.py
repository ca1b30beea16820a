"""Link prediction is a task of ``hashembed train``: a run directory like node classification's,
with Hits@20 on the split's held-out edges and the scorer's weights in the checkpoint."""

import pytest
import torch

from hashembed.app.cli import main
from hashembed.core.errors import ConfigError
from hashembed.export.exporter import export_run
from hashembed.train.checkpoint import CHECKPOINT_FILE, load_run
from hashembed.graph.memory import Graph, symmetrize
from hashembed.train.run import train_link_run
from hashembed.train.runconfig import RunConfig

from helpers import two_cliques_split


def test_link_run_learns_held_out_edges_and_saves_its_scorer(tmp_path):
    split = two_cliques_split()
    graph = Graph("planted", 40, symmetrize(split.train, 40))
    config = RunConfig(coding="hash", bits=32, bits_per_index=8, codebook_dim=8, dim=8,
                       hidden=16, dropout=0.0, epochs=40, link_batch_size=128, lr=0.01)
    metrics = train_link_run(graph, split, config, tmp_path / "run", progress=False)
    assert metrics["metric"] == "hits@20" and metrics["coding"] == "hash"
    assert metrics["config"]["run"]["hops"] == "auto" and metrics["hops"] == 1  # no labels
    assert metrics["test"] > 0.5 and metrics["best_epoch"] > 0
    assert metrics["config"]["link"]["epochs"] == 40
    run = load_run(tmp_path / "run")  # the model reloads alone, codes and all
    assert run.codes.packed.shape == (40, 4) and run.graph.labels is None
    checkpoint = torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)
    assert "linears.0.weight" in checkpoint["link_scorer"]
    with pytest.raises(ConfigError, match="hits@20 task"):
        export_run(tmp_path / "run", tmp_path / "bundle")


def test_node_only_flags_are_refused_for_link_prediction(data_root, tmp_path, capsys):
    assert main(["train", "--dataset", "ogbl-ddi", "--data-root", str(data_root),
                 "--batch-size", "64", "--patience", "5", "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "does not take" in err and "--batch-size" in err and "--patience" in err
    assert main(["train", "--dataset", "cora", "--metric", "hits@20", "--out",
                 str(tmp_path / "run")]) != 0
    assert "hits@20 scores link prediction" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_trains_ogbl_ddi_on_its_official_split(data_root, tmp_path, capsys):
    assert main(["train", "--dataset", "ogbl-ddi", "--data-root", str(data_root),
                 "--epochs", "1", "--bits", "32", "--dim", "16", "--hidden", "16",
                 "--codebook-dim", "16", "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert '"metric": "hits@20"' in out and '"best_epoch": 1' in out
