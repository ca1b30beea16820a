"""Export parity: ONNX Runtime through the bundle equals PyTorch on the full graph."""

import json

import numpy as np
import pytest
import torch

from hashembed.core.bundle import MANIFEST_NAME, open_bundle
from hashembed.core.errors import BundleExistsError, ConfigError, ShapeMismatchError, ToleranceError
from hashembed.export import exporter
from hashembed.export.exporter import check_bundle, export_run
from helpers import full_graph_outputs
from hashembed.export.validate import compare_outputs
from hashembed.serve import Predictor
from hashembed.train.checkpoint import load_run

from helpers import train_small


def test_bundle_manifest_describes_the_run(sage_run, sage_bundle):
    manifest = json.loads((sage_bundle / MANIFEST_NAME).read_text())
    assert manifest["code_spec"]["bits"] == 64 and manifest["code_spec"]["num_codebooks"] == 8
    assert manifest["model"]["edge_hops"] == 2 and manifest["graph"]["num_nodes"] == 2708
    assert len(manifest["thresholds"]) == 64
    assert set(manifest["files"]) == {"model.onnx", "codes.npy", "indptr.npy", "indices.npy"}
    np.testing.assert_array_equal(open_bundle(sage_bundle).codes, load_run(sage_run).codes.packed)


def test_every_node_matches_pytorch(sage_run, sage_bundle):
    run = load_run(sage_run)
    diffs = check_bundle(sage_bundle, run, np.arange(run.graph.num_nodes), atol=1e-4)
    assert set(diffs) == {"logits", "embeddings"}


@pytest.mark.parametrize("gnn, layers", [("gcn", 2), ("sage", 1), ("sage", 3)])
def test_other_models_export_with_parity(cora, tmp_path, gnn, layers):
    train_small(cora, tmp_path / "run", gnn=gnn, epochs=5, layers=layers)
    manifest = export_run(tmp_path / "run", tmp_path / "bundle", probe_nodes=300)
    assert manifest["model"]["edge_hops"] == layers + (gnn == "gcn")
    assert max(manifest["parity"].values()) <= 1e-4


def test_failed_check_leaves_no_bundle(sage_run, tmp_path, monkeypatch):
    real = exporter.subgraph_outputs

    def broken_reference(run, nodes, fanout_cap=None):
        out = real(run, nodes, fanout_cap)
        out["logits"] = out["logits"] + 1.0
        return out

    monkeypatch.setattr(exporter, "subgraph_outputs", broken_reference)
    with pytest.raises(ToleranceError, match=r"logits: max \|diff\| 1"):
        export_run(sage_run, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_needs_overwrite(sage_run, sage_bundle):
    with pytest.raises(BundleExistsError):
        export_run(sage_run, sage_bundle)


def test_table_runs_do_not_export(cora, tmp_path):
    train_small(cora, tmp_path / "run", scheme="none", epochs=2)
    with pytest.raises(ConfigError, match="--coding none"):
        export_run(tmp_path / "run", tmp_path / "bundle")


def test_compare_outputs_reports_shapes_and_values():
    a = {"x": np.zeros((2, 3)), "y": np.zeros(2)}
    with pytest.raises(ShapeMismatchError, match=r"x: PyTorch \[2, 3\], ONNX Runtime \[3, 2\]"):
        compare_outputs(a, {"x": np.zeros((3, 2)), "y": np.zeros(2)}, 1e-4)
    with pytest.raises(ToleranceError, match="y: max"):
        compare_outputs(a, {"x": np.zeros((2, 3)), "y": np.array([0, np.nan])}, 1e-4)
    assert compare_outputs(a, {"x": np.full((2, 3), 5e-5), "y": np.zeros(2)}, 1e-4)["x"] == 5e-5


def test_reloaded_bundle_decodes_bit_for_bit_the_same(sage_bundle):
    ids = np.arange(0, 2708, 7)
    first = Predictor(sage_bundle).predict(ids)
    second = Predictor(sage_bundle).predict(ids)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    np.testing.assert_array_equal(first.logits, second.logits)


def test_edge_order_does_not_change_outputs(sage_run):
    run = load_run(sage_run)
    ei = torch.from_numpy(run.graph.edge_index)
    perm = torch.randperm(ei.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, _ = run.model(run.node_input(), ei)
        b, _ = run.model(run.node_input(), ei[:, perm])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_exported_decode_has_no_per_node_loop(sage_bundle):
    """The decode is traced as Gather + ReduceSum: no Loop (embedding_bag's lowering) and no
    GatherND (advanced indexing's), both measured slower in ONNX Runtime."""
    import onnx

    ops = {node.op_type for node in onnx.load(sage_bundle / "model.onnx").graph.node}
    assert {"Gather", "ReduceSum"} <= ops
    assert not ops & {"Loop", "GatherND"}


def test_folded_decoder_exports_with_parity_and_gathers_folded_rows(cora, tmp_path):
    """With h = 8 <= d_c = 16 the decoder folds W1 into the codebooks: the exported graph
    gathers 8-wide rows of C_i W1^T (a MatMul ONNX Runtime folds at load) and still matches
    PyTorch."""
    import onnx

    train_small(cora, tmp_path / "run", epochs=5, decoder_hidden=8)
    assert load_run(tmp_path / "run").model.encoder.fold_first_linear
    manifest = export_run(tmp_path / "run", tmp_path / "bundle", probe_nodes=300)
    assert max(manifest["parity"].values()) <= 1e-4
    graph = onnx.load(tmp_path / "bundle" / "model.onnx").graph
    producer = {out: node for node in graph.node for out in node.output}
    gather = next(node for node in graph.node if node.op_type == "Gather"
                  and producer.get(node.input[0]) is not None
                  and producer[node.input[0]].op_type == "Reshape")
    assert producer[producer[gather.input[0]].input[0]].op_type == "MatMul"


def test_a_fresh_process_exports_a_4_bit_run(cora, tmp_path):
    """`hashembed export` of a b = 4 run, in a process that has decoded nothing before: the
    byte tables are made while torch.export traces, and must not leak into the eager
    parity check afterwards (they once did, through a cache, as FakeTensors)."""
    import subprocess
    import sys

    train_small(cora, tmp_path / "run", epochs=3, bits_per_index=4)
    done = subprocess.run([sys.executable, "-m", "hashembed", "export", str(tmp_path / "run"),
                           "--out", str(tmp_path / "bundle")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "bundle" / MANIFEST_NAME).read_text())
    assert manifest["code_spec"]["bits_per_index"] == 4
    run = load_run(tmp_path / "run")
    diffs = check_bundle(tmp_path / "bundle", run, np.arange(0, run.graph.num_nodes, 7),
                         atol=1e-4)
    assert max(diffs.values()) <= 1e-4


def test_the_subgraph_reference_equals_the_full_graph_output(sage_run):
    """Export checks ONNX Runtime against PyTorch on the probes' k-hop neighbourhood; that
    PyTorch output is the full-graph output at those nodes."""
    from hashembed.export.exporter import subgraph_outputs

    run = load_run(sage_run)
    nodes = np.sort(np.random.default_rng(0).choice(run.graph.num_nodes, 50, replace=False))
    full = full_graph_outputs(run)
    sub = subgraph_outputs(run, nodes)
    for name in full:
        np.testing.assert_allclose(sub[name], full[name][nodes], atol=1e-5)


def test_a_fanout_cap_is_recorded_and_checked_against_pytorch(sage_run, tmp_path):
    from hashembed.serve import Predictor

    manifest = export_run(sage_run, tmp_path / "bundle", probe_nodes=128, fanout_cap=3)
    assert manifest["serving"]["fanout_cap"] == 3
    assert max(manifest["parity"].values()) <= 1e-4  # ONNX Runtime vs PyTorch, same subgraph
    capped = Predictor(tmp_path / "bundle").predict(np.arange(200))
    exact = full_graph_outputs(load_run(sage_run))["logits"][:200]
    assert np.abs(capped.logits - exact).max() > 1e-3  # a cap of 3 is an approximation
