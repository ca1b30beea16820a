"""Training on real graphs beats a majority-class predictor by a clear margin."""

import json

import pytest

from hashembed.train.checkpoint import load_run
from hashembed.graph.datasets import apply_split, load_dataset

from helpers import train_small


@pytest.mark.parametrize("scheme", ["hash", "random", "none"])
def test_email_eu_core_beats_majority(data_root, tmp_path, scheme):
    graph = apply_split(load_dataset("email-eu-core", data_root), None, seed=0)
    metrics = train_small(graph, tmp_path, scheme=scheme, epochs=150)
    assert metrics["test"] > metrics["majority_class_test"] + 0.25, metrics
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("train", "val", "test", "metric", "bits_per_node"):
        assert saved[key] == metrics[key]
    assert saved["bytes"]["fp32_table_same_n_d"] == graph.num_nodes * 16 * 4


def test_checkpoint_reloads_alone(cora, sage_run):
    import torch

    run = load_run(sage_run)
    assert run.codes.spec.bits == 64 and run.model_config.num_classes == 7
    with torch.no_grad():
        logits, _ = run.model(run.node_input(), torch.from_numpy(run.graph.edge_index))
    acc = (logits.argmax(1).numpy() == cora.labels)[cora.masks["train"]].mean()
    assert acc == pytest.approx(run.metrics["train"], abs=1e-6)


def test_device_choice_never_falls_back_silently():
    import pytest
    import torch

    from hashembed.core.errors import ConfigError
    from hashembed.train.trainer import TrainConfig, resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="device 'tpu'"):
        TrainConfig(device="tpu")
