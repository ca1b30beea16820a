"""The exported form of the model (segment sums) equals PyG's convs, and exports without the
``[E, F]`` scatter that made ONNX Runtime slow."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch_geometric.nn import SAGEConv

from hashembed.core.errors import ConfigError
from hashembed.export.onnx_model import export_onnx
from hashembed.export.serving_model import ServingModel, in_degree, segment_sum
from hashembed.train.decoder import DecoderConfig
from hashembed.train.model import ModelConfig, build_model


def _model(gnn: str, layers: int, hidden: int = 24, classes: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(gnn, layers, hidden_dim=hidden, num_classes=classes),
                       DecoderConfig(bits=64, bits_per_index=4, codebook_dim=16,
                                     hidden_dim=32, embedding_dim=16), 1, 16).eval()


def _inputs(num_nodes: int, num_edges: int, seed: int = 0):
    """Random codes and a loop-free edge list in random order, with duplicate edges and
    nodes that have no in-edge (the last ten)."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 256, (num_nodes, 8), dtype=torch.uint8, generator=gen)
    edges = torch.randint(0, num_nodes - 10, (2, num_edges), generator=gen)
    edges = edges[:, edges[0] != edges[1]]
    return codes, torch.cat([edges, edges[:, :5]], dim=1)


def test_segment_sum_equals_a_scatter_add():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 40, (500,), generator=gen)
    messages = torch.randn(500, 7, generator=gen)
    expected = torch.zeros(45, 7).index_add(0, target, messages)  # nodes 40..44: no edges
    got = segment_sum(messages, target, in_degree(target, 45))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not got[40:].any()


@pytest.mark.parametrize("gnn, layers, classes", [("sage", 2, 5), ("sage", 3, 40),
                                                  ("gcn", 2, 5), ("sage", 1, 3)])
def test_serving_model_equals_the_pyg_model(gnn, layers, classes):
    """Both orders of a SAGE layer (map before aggregating when the output is narrower: 5
    classes < 24 hidden; after when it is wider: 40), GCN's normalisation, one layer."""
    model = _model(gnn, layers, classes=classes)
    codes, edges = _inputs(300, 2000)
    with torch.no_grad():
        expected = model(codes, edges)
        got = ServingModel(model)(codes, edges)
        shuffled = ServingModel(model)(codes, edges[:, torch.randperm(edges.shape[1])])
    for e, g, s in zip(expected, got, shuffled):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(s, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gnn", ["sage", "gcn"])
def test_exported_graph_sums_by_segments_and_matches_onnx_runtime(tmp_path, gnn):
    model = _model(gnn, 2)
    export_onnx(model, 8, tmp_path / "model.onnx")
    ops = [node.op_type for node in onnx.load(tmp_path / "model.onnx").graph.node]
    assert "CumSum" in ops and "TopK" in ops
    session = ort.InferenceSession(str(tmp_path / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    for num_edges in (2000, 0):  # a subgraph may have no edges at all
        codes, edges = _inputs(300, num_edges, seed=1)
        edges = edges[:, :num_edges]
        with torch.no_grad():
            expected = model(codes, edges)
        got = session.run(None, {"codes": codes.numpy(), "edge_index": edges.numpy()})
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-5, rtol=1e-5)


def test_a_conv_with_other_settings_is_refused():
    model = _model("sage", 2)
    model.convs[0] = SAGEConv(16, 24, aggr="max")
    with pytest.raises(ConfigError, match="SAGEConv with the defaults"):
        ServingModel(model)
