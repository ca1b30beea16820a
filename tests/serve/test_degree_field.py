"""The degree field end to end: a run trained with ``--degree-field`` exports (ONNX parity),
serves its nodes, and codes an unseen node's degree byte as the coder would."""

import numpy as np
import pytest
import torch

from hashembed.core.codeformat import degree_buckets
from hashembed.export.exporter import export_run
from hashembed.serve import Predictor
from hashembed.serve.unseen import UnseenNode, unseen_code
from hashembed.train.checkpoint import load_run
from helpers import train_small


@pytest.fixture(scope="module")
def degree_run(cora, tmp_path_factory):
    out = tmp_path_factory.mktemp("degree_run")
    metrics = train_small(cora, out, epochs=10, bits_per_index=4, hops=2, degree_field=True)
    assert metrics["config"]["code_spec"]["degree_field"] is True
    return out


def test_a_degree_field_run_exports_and_serves_its_nodes(degree_run, tmp_path):
    run = load_run(degree_run)
    assert run.codes.packed.shape[1] == 9 and run.model.encoder.degree_rows is not None
    # training moved the degree rows away from zero: the field is in use
    assert run.model.encoder.degree_rows.abs().sum() > 0
    manifest = export_run(degree_run, tmp_path / "bundle", probe_nodes=64)
    assert manifest["code_spec"]["degree_field"] is True
    assert max(manifest["parity"].values()) < 1e-4
    predictor = Predictor(tmp_path / "bundle")
    nodes = np.arange(0, run.graph.num_nodes, 97)
    with torch.no_grad():
        logits, _ = run.model(run.node_input(), torch.from_numpy(run.graph.edges()))
    np.testing.assert_allclose(predictor.predict(nodes).logits, logits[nodes].numpy(),
                               atol=1e-4)


def test_an_unseen_node_gets_the_degree_byte_of_its_neighbours_count(degree_run, tmp_path):
    export_run(degree_run, tmp_path / "bundle", probe_nodes=16)
    predictor = Predictor(tmp_path / "bundle")
    bundle, manifest = predictor.bundle, predictor.manifest
    keys = bundle.ids.keys()
    for neighbours in ([5], [5, 17, 900, 2000], list(range(100, 140))):
        code = unseen_code(UnseenNode(np.array(neighbours), np.uint64(12345)),
                           lambda r: keys[r], manifest, bundle.indptr, bundle.indices)
        assert code.shape == (1, 9)
        assert code[0, 8] == degree_buckets(np.array([len(neighbours)]))[0]
    # an existing node recoded from its neighbours gets its own degree byte back
    v = 11
    rows = np.asarray(bundle.indices[bundle.indptr[v]:bundle.indptr[v + 1]], np.int64)
    code = unseen_code(UnseenNode(rows, keys[v]), lambda r: keys[r], manifest, bundle.indptr,
                       bundle.indices)
    assert code[0, 8] == bundle.codes[v, 8]
    out = predictor.predict_new([[5, 17, 900, 2000]], ids=[10**6])
    assert out.logits.shape == (1, 7) and np.isfinite(out.logits).all()
