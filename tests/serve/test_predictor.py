import numpy as np
import pytest

from hashembed.core.errors import (BundleChecksumError, BundleCorruptError, NodeIdTypeError,
                              ProviderError, UnknownNodeError)
from helpers import full_graph_outputs
from hashembed.serve import Predictor
from hashembed.serve.providers import select_providers
from hashembed.train.checkpoint import load_run


@pytest.fixture(scope="module")
def predictor(sage_bundle):
    return Predictor(sage_bundle, provider="cpu")


def test_predictions_equal_pytorch_full_graph(sage_run, predictor):
    reference = full_graph_outputs(load_run(sage_run))
    ids = np.array([3, 17, 42, 42, 2707, 0])
    out = predictor.predict(ids)
    np.testing.assert_array_equal(out.node_ids, ids)
    np.testing.assert_allclose(out.logits, reference["logits"][ids], atol=1e-4)
    np.testing.assert_allclose(out.embeddings, reference["embeddings"][ids], atol=1e-5)
    np.testing.assert_array_equal(out.labels, reference["logits"][ids].argmax(1))


def test_small_batches_give_the_same_answer(sage_bundle, predictor):
    ids = np.arange(100)
    small = Predictor(sage_bundle, provider="cpu", batch_size=7).predict(ids)
    np.testing.assert_allclose(small.logits, predictor.predict(ids).logits, atol=1e-5)


@pytest.mark.parametrize("ids, error, message", [
    ([5, -1], UnknownNodeError, "node id -1 is negative"),
    ([2708], UnknownNodeError, r"node id 2708 is not in the graph \(n = 2708\)"),
    ([1.5], NodeIdTypeError, "must be integers, got 1.5"),
    (np.array([1.5]), NodeIdTypeError, "must be integers, got dtype float64"),
    (np.array([2**63], dtype=np.uint64), UnknownNodeError, "node id 9223372036854775808 is not in"),
    ([2**70], UnknownNodeError, "node id 1180591620717411303424 is not in the graph"),
    ([True], NodeIdTypeError, "must be integers, got True"),
    (["7"], NodeIdTypeError, "must be integers"),
    ([[1, 2]], NodeIdTypeError, "must be 1-D"),
])
def test_bad_node_ids_are_named(predictor, ids, error, message):
    with pytest.raises(error, match=message):
        predictor.predict(ids)


def test_corrupt_code_table_fails_to_load(sage_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(sage_bundle, copy)
    path = copy / "codes.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleChecksumError, match="codes.npy"):
        Predictor(copy)


def test_provider_choice_without_a_gpu():
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    from hashembed.serve.providers import cuda_driver_loads

    if not cuda_driver_loads():
        assert select_providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(ProviderError, match="available: "):
            select_providers("cuda")
    with pytest.raises(ProviderError, match="not one of"):
        select_providers("tpu")


def test_single_node_without_edges_runs(sage_run, predictor):
    """N = 1 and E = 0 (an isolated node) are valid dynamic sizes for the ONNX graph."""
    import torch

    run = load_run(sage_run)
    codes = np.array(run.codes.packed[:1])
    edges = np.zeros((2, 0), np.int64)
    logits, embeddings = predictor.session.run(None, {"codes": codes, "edge_index": edges})
    with torch.no_grad():
        ref_logits, ref_emb = run.model(torch.from_numpy(codes), torch.from_numpy(edges))
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(embeddings, ref_emb.numpy(), atol=1e-5)


def test_a_model_onnx_runtime_cannot_load_is_named(tmp_path):
    from helpers import write_toy_bundle

    write_toy_bundle(tmp_path / "b")  # checksums match, but model.onnx is not ONNX
    with pytest.raises(BundleCorruptError, match=r"ONNX Runtime .* cannot load .*model\.onnx"):
        Predictor(tmp_path / "b")


def test_cuda_sessions_keep_full_fp32_and_find_pip_cuda_libraries(monkeypatch):
    from hashembed.serve import providers

    assert providers.provider_options([providers.CUDA, providers.CPU]) == [{"use_tf32": "0"},
                                                                          {}]
    assert providers.provider_options([providers.CPU]) == [{}]
    called = []
    monkeypatch.setattr(providers.ort, "preload_dlls", lambda: called.append(True),
                        raising=False)
    providers.prepare_cuda()
    assert called == [True]
