"""The CSR neighbour sampler against brute force, and mini-batch training end to end."""

import numpy as np
import pytest
import torch

from hashembed.graph.memory import to_csr
from hashembed.train.minibatch import node_loader
from hashembed.train.runconfig import parse_fanout
from hashembed.train.sampler import CSRNeighborSampler


@pytest.fixture(scope="module")
def csr(power_law_graph):
    return to_csr(power_law_graph.edge_index, power_law_graph.num_nodes)


def neighbours(indptr, indices, v):
    return set(indices[indptr[v]:indptr[v + 1]].tolist())


@pytest.mark.parametrize("fanout", [(5, 3), (-1, 2), (1,), (50, 50, 50)])
def test_batches_match_a_brute_force_reading_of_the_graph(csr, fanout):
    indptr, indices = csr
    seeds = np.array([0, 1, 17, 999, 3998])  # hubs first: Chung-Lu ids are by weight
    out = CSRNeighborSampler(indptr, indices, fanout, seed=3).sample(seeds)
    node = out.node.numpy()
    assert node[:seeds.size].tolist() == seeds.tolist() and len(set(node)) == node.size
    src, dst = node[out.row.numpy()], node[out.col.numpy()]
    for u, v in zip(src, dst):  # every sampled edge exists (u -> v: u is a neighbour of v)
        assert u in neighbours(indptr, indices, v)
    assert len(set(zip(src.tolist(), dst.tolist()))) == src.size  # no edge twice
    # hop by hop: each frontier node keeps all neighbours or at most its fan-out
    counts = np.bincount(out.col.numpy(), minlength=node.size)
    start = 0
    for hop, k in enumerate(fanout):
        frontier = range(start, start + out.num_sampled_nodes[hop])
        for local in frontier:
            degree = len(neighbours(indptr, indices, node[local]))
            if k < 0 or degree <= k:
                assert counts[local] == degree
            else:
                assert 1 <= counts[local] <= k
        start += out.num_sampled_nodes[hop]
    again = CSRNeighborSampler(indptr, indices, fanout, seed=3).sample(seeds)
    assert torch.equal(again.node, out.node) and torch.equal(again.row, out.row)
    other = CSRNeighborSampler(indptr, indices, fanout, seed=4).sample(seeds)  # hubs: draws
    assert not (torch.equal(other.node, out.node) and torch.equal(other.row, out.row))


def test_node_loader_yields_pyg_batches_with_only_their_codes(csr):
    indptr, indices = csr
    n = indptr.size - 1
    codes = np.arange(n * 2, dtype=np.int64).reshape(n, 2).astype(np.uint8)
    labels = np.arange(n) % 3
    loader = node_loader(indptr, indices, codes, labels, np.arange(0, n, 7), (4, 2), 64,
                         shuffle=True, seed=0)
    seen = []
    for batch in loader:
        assert batch.codes.shape == (batch.n_id.numel(), 2)
        np.testing.assert_array_equal(np.asarray(batch.codes), codes[batch.n_id.numpy()])
        assert torch.equal(batch.y, torch.from_numpy(labels)[batch.n_id])
        assert batch.edge_index.max() < batch.n_id.numel()
        seen += batch.n_id[: batch.batch_size].tolist()
    assert sorted(seen) == list(range(0, n, 7))


def test_fanout_flag_is_validated():
    from hashembed.core.errors import ConfigError

    assert parse_fanout("15,10") == (15, 10) and parse_fanout("-1") == (-1,)
    for bad in ("", "0,5", "a", "-2"):
        with pytest.raises(ConfigError):
            parse_fanout(bad)


def test_mini_batch_training_learns_cora_and_exports_with_parity(cora, tmp_path):
    from hashembed.export.exporter import export_run
    from hashembed.train.run import train_run
    from hashembed.train.runconfig import RunConfig

    config = RunConfig(coding="hash", bits=64, bits_per_index=4, codebook_dim=32, dim=32,
                       hidden=64, epochs=15, patience=15, batch_size=256, fanout=(10, 5))
    metrics = train_run(cora, config, tmp_path / "run", progress=False)
    assert metrics["test"] > 0.6 and metrics["config"]["batch"]["fanout"] == [10, 5]
    manifest = export_run(tmp_path / "run", tmp_path / "bundle", probe_nodes=64)
    assert max(manifest["parity"].values()) <= 1e-4


@pytest.mark.parametrize("kind", ["table", "qr", "hashing_trick"])
def test_id_encoders_train_in_mini_batches_and_reload(cora, tmp_path, kind):
    """The baselines train with the same loader as codes: tables with sparse gradients and
    SparseAdam (only a batch's rows move), and the run rebuilds the same encoder on load."""
    from hashembed.train.checkpoint import load_run
    from hashembed.train.encoders import IdEncoderConfig
    from hashembed.train.run import train_run
    from hashembed.train.runconfig import RunConfig

    encoder = IdEncoderConfig.for_budget(kind, cora.num_nodes, 32, bits=128)
    config = RunConfig(coding={"table": "none"}.get(kind, kind.replace("_", "-")), dim=32,
                       hidden=64, epochs=3, patience=3, batch_size=256, fanout=(10, 5))
    metrics = train_run(cora, config, tmp_path / "run", progress=False)
    assert metrics["coding"] == {"table": "none"}.get(kind, kind)
    params = sum(p.numel() for p in load_run(tmp_path / "run").model.encoder.parameters())
    rows = {"table": lambda: cora.num_nodes,
            "qr": lambda: -(-cora.num_nodes // encoder.rows) + encoder.rows,
            "hashing_trick": lambda: encoder.rows}[kind]()
    assert params == rows * 32
    assert load_run(tmp_path / "run").model.encoder.id_config == encoder


def test_sparse_tables_get_sparse_adam_and_only_a_batch_rows_move():
    from hashembed.train.encoders import IdEncoderConfig
    from hashembed.train.trainer import make_optimizers
    from hashembed.train.trainer import TrainConfig

    table = IdEncoderConfig("table", 100, 4).build(sparse=True)
    head = torch.nn.Linear(4, 2)
    model = torch.nn.ModuleDict({"table": table, "head": head})
    optimizers = make_optimizers(model, TrainConfig(lr=0.1))
    assert [type(o).__name__ for o in optimizers] == ["Adam", "SparseAdam"]
    before = table.weight.detach().clone()
    head(table(torch.tensor([3, 7]))).sum().backward()
    for optimizer in optimizers:
        optimizer.step()
    moved = (table.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 7]
