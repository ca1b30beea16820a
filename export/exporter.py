"""``hashembed export``: a training run -> a verified serving bundle, written atomically."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import torch

from hashembed import __version__
from hashembed.bundle import (CODES_FILE, INDICES_FILE, INDPTR_FILE, MODEL_FILE,
                              OUTPUT_EMBEDDINGS, OUTPUT_LOGITS, BundleWriter)
from hashembed.errors import ConfigError
from hashembed.export.onnx_model import DEFAULT_OPSET, export_onnx
from hashembed.export.validate import compare_outputs
from hashembed.serve.predictor import Predictor
from hashembed.train.checkpoint import Run, load_run
from hashembed.train.graph import to_csr

DEFAULT_TOLERANCE = 1e-4


def full_graph_outputs(run: Run) -> dict[str, np.ndarray]:
    """PyTorch outputs for every node on the whole graph: the reference the bundle must match."""
    with torch.no_grad():
        logits, embeddings = run.model(run.node_input(), torch.from_numpy(run.graph.edge_index))
    return {OUTPUT_LOGITS: logits.numpy(), OUTPUT_EMBEDDINGS: embeddings.numpy()}


def check_bundle(bundle_dir: str | Path, run: Run, nodes: np.ndarray, atol: float,
                 provider: str = "auto") -> dict[str, float]:
    """Serve ``nodes`` from the bundle with ONNX Runtime and compare with PyTorch.

    Returns the max absolute difference per output; raises ``ShapeMismatchError`` or
    ``ToleranceError`` (see :func:`~hashembed.export.validate.compare_outputs`).
    """
    reference = full_graph_outputs(run)
    served = Predictor(bundle_dir, provider=provider).predict(nodes)
    expected = {name: out[nodes] for name, out in reference.items()}
    actual = {OUTPUT_LOGITS: served.logits, OUTPUT_EMBEDDINGS: served.embeddings}
    return compare_outputs(expected, actual, atol)


def export_run(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False,
               probe_nodes: int = 256, tolerance: float = DEFAULT_TOLERANCE,
               opset: int = DEFAULT_OPSET, seed: int = 0) -> dict:
    """Write the serving bundle of a training run.

    The bundle is staged beside ``out_dir``, checked (ONNX Runtime through
    :class:`~hashembed.serve.Predictor` against PyTorch's full-graph outputs on
    ``probe_nodes`` sampled nodes, max abs diff ``<= tolerance``) and only then renamed into
    place; on any failure nothing appears at ``out_dir``.

    Returns:
        The manifest, with ``parity`` (max abs diff per output) added.
    """
    run = load_run(run_dir)
    if run.code_spec is None or run.codes is None:
        raise ConfigError(f"{run_dir} trained a plain embedding table (--coding none); only "
                          "coded runs export to a bundle")
    spec, graph = run.code_spec, run.graph
    indptr, indices = to_csr(graph.edge_index, graph.num_nodes)
    rng = np.random.default_rng(seed)
    nodes = np.sort(rng.choice(graph.num_nodes, min(probe_nodes, graph.num_nodes), replace=False))

    with BundleWriter(out_dir, overwrite=overwrite) as writer:
        export_onnx(run.model, spec.bytes_per_node, writer.path(MODEL_FILE), opset)
        writer.add_file(MODEL_FILE)
        writer.save_array(CODES_FILE, np.asarray(run.codes))
        writer.save_array(INDPTR_FILE, indptr)
        writer.save_array(INDICES_FILE, indices)
        manifest = writer.write_manifest({
            "package_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "code_spec": {**spec.to_dict(), "num_codebooks": spec.num_codebooks},
            "thresholds": None if run.thresholds is None else run.thresholds.tolist(),
            "decoder": run.decoder_config.to_dict(),
            "model": {**run.model_config.to_dict(), "edge_hops": run.model_config.edge_hops},
            "graph": {"name": graph.name, "num_nodes": graph.num_nodes,
                      "num_edges": graph.num_edges // 2, "num_csr_entries": int(indices.size)},
            "onnx": {"opset": opset, "file": MODEL_FILE},
            "tolerance": tolerance,
        })
        parity = check_bundle(writer.staging_dir, run, nodes, tolerance)
        writer.commit()
    return {**manifest, "parity": parity, "path": str(Path(out_dir).resolve())}
