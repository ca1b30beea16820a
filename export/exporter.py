"""``hashembed export``: a training run -> a verified serving bundle, written atomically."""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from hashembed import __version__
from hashembed.core.bundle import (CODES_FILE, INDICES_FILE, INDPTR_FILE, MODEL_FILE,
                              OUTPUT_EMBEDDINGS, OUTPUT_LOGITS, BundleWriter, GraphInfo, Manifest,
                              ModelInfo)
from hashembed.core.errors import ConfigError
from hashembed.export.onnx_model import (DEFAULT_OPSET, MIN_OPSET, declared_opset, export_onnx,
                                         max_opset)
from hashembed.export.validate import compare_outputs
from hashembed.core.codeformat import take_codes
from hashembed.core.graphdir import index_dtype
from hashembed.serve.predictor import Predictor
from hashembed.serve.subgraph import k_hop_subgraph
from hashembed.train.checkpoint import Run, load_run

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-4


def subgraph_outputs(run: Run, nodes: np.ndarray, fanout_cap: int | None = None
                     ) -> dict[str, np.ndarray]:
    """PyTorch outputs at ``nodes`` (distinct rows, sorted), computed on their k-hop
    neighbourhood (:func:`~hashembed.serve.subgraph.k_hop_subgraph`) as serving builds it:
    exact by default, which equals the full-graph output there and costs only the
    neighbourhood, whatever ``n``; or capped at ``fanout_cap`` in-edges per node."""
    indptr, indices = run.graph.csr()
    sub = k_hop_subgraph(indptr, indices, nodes, run.model_config.edge_hops, fanout_cap)
    codes = take_codes(run.codes.packed, sub.nodes)
    with torch.no_grad():
        logits, embeddings = run.model(torch.from_numpy(codes),
                                       torch.from_numpy(sub.edge_index))
    return {OUTPUT_LOGITS: logits[: sub.num_seeds].numpy(),
            OUTPUT_EMBEDDINGS: embeddings[: sub.num_seeds].numpy()}


def _write_csr(writer: BundleWriter, graph) -> int:
    """Put the graph's CSR into the bundle: hard links to a graph directory's files (a copy
    across file systems), else arrays written in the bundle's dtypes. Returns ``nnz``."""
    indptr, indices = graph.csr()
    if graph.source_dir is not None:
        for name in (INDPTR_FILE, INDICES_FILE):
            source = Path(graph.source_dir.path) / name
            try:
                os.link(source, writer.file(name))
            except OSError:
                shutil.copyfile(source, writer.file(name))
            writer.add_file(name)
    else:
        writer.save_array(INDPTR_FILE, indptr)
        writer.save_array(INDICES_FILE, np.asarray(indices).astype(index_dtype(graph.num_nodes)))
    return int(indptr[-1])


def check_bundle(bundle_dir: str | Path, run: Run, nodes: np.ndarray, atol: float,
                 provider: str = "auto", fanout_cap: int | None = None) -> dict[str, float]:
    """Serve ``nodes`` (rows) from the bundle with ONNX Runtime, asked for by their external
    ids, and compare with PyTorch.

    Returns the max absolute difference per output; raises ``ShapeMismatchError`` or
    ``ToleranceError`` (see :func:`~hashembed.export.validate.compare_outputs`).
    """
    expected = subgraph_outputs(run, nodes, fanout_cap)
    served = Predictor(bundle_dir, provider=provider).predict(run.graph.ids.external(nodes))
    actual = {OUTPUT_LOGITS: served.logits, OUTPUT_EMBEDDINGS: served.embeddings}
    return compare_outputs(expected, actual, atol)


def _check_export_options(probe_nodes: int, tolerance: float, opset: int) -> None:
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ConfigError(f"--tolerance {tolerance} must be a positive finite number")
    if probe_nodes < 0:
        raise ConfigError(f"--probe-nodes {probe_nodes} must be 0 (skip the check) or more")
    if not MIN_OPSET <= opset <= max_opset():
        raise ConfigError(f"--opset {opset} is not supported: the exporter writes opsets "
                          f"{MIN_OPSET} to {max_opset()}")


def export_run(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False,
               probe_nodes: int = 256, tolerance: float = DEFAULT_TOLERANCE,
               opset: int = DEFAULT_OPSET, seed: int = 0,
               fanout_cap: int | None = None) -> dict:
    """Write the serving bundle of a training run.

    The bundle is staged beside ``out_dir``, checked (ONNX Runtime through
    :class:`~hashembed.serve.Predictor` against PyTorch's full-graph outputs on
    ``probe_nodes`` sampled nodes, max abs diff ``<= tolerance``; ``0`` skips the check) and
    only then renamed into place; on any failure nothing appears at ``out_dir``. ``overwrite``
    replaces only an existing bundle, never the run itself or a folder holding it.
    ``fanout_cap`` (recorded in the manifest) bounds the in-edges per node that serving
    gathers, for graphs whose hubs make exact neighbourhoods too large.

    Returns:
        The manifest's JSON form, with ``parity`` (max abs diff per output, or ``None`` when
        skipped) and ``path`` added.
    """
    _check_export_options(probe_nodes, tolerance, opset)
    if fanout_cap is not None and fanout_cap < 1:
        raise ConfigError(f"--fanout-cap {fanout_cap} must be at least 1")
    with BundleWriter(out_dir, overwrite=overwrite, inputs=[run_dir]) as writer:
        run = load_run(run_dir)
        if run.codes is None:
            raise ConfigError(f"{run_dir} trained an encoder of node ids (--coding none, qr or "
                              "hashing-trick), a baseline; only coded runs export to a bundle")
        codes, graph = run.codes, run.graph
        spec = codes.spec
        if graph.labels is None:
            raise ConfigError(f"{run_dir} trained a {run.metrics.get('metric')} task "
                              f"({graph.name}); bundles serve one class per node, so it does "
                              "not export yet")
        export_onnx(run.model, spec.bytes_per_node, writer.file(MODEL_FILE), opset)
        writer.add_file(MODEL_FILE)
        written_opset = declared_opset(writer.file(MODEL_FILE))
        if written_opset != opset:
            log.warning("asked for ONNX opset %d, the exporter wrote %d; the manifest records "
                        "%d", opset, written_opset, written_opset)
        writer.save_array(CODES_FILE, np.asarray(codes.packed))
        nnz = _write_csr(writer, graph)
        graph.ids.save(writer.save_array)
        config = run.model_config
        manifest = writer.write_manifest(Manifest(
            code_spec=spec,
            thresholds=None if codes.thresholds is None else tuple(codes.thresholds.tolist()),
            hop_shifts=None if codes.hop_shifts is None else tuple(
                tuple(int(s) for s in row) for row in codes.hop_shifts),
            graph=GraphInfo(graph.name, graph.num_nodes, graph.num_edges // 2, nnz),
            model=ModelInfo(num_classes=config.num_classes,
                            embedding_dim=run.decoder_config.embedding_dim,
                            num_layers=config.num_layers, edge_hops=config.edge_hops,
                            config=config.to_dict(), decoder=run.decoder_config.to_dict()),
            opset=written_opset, tolerance=tolerance,
            class_names=None if graph.class_names is None else tuple(graph.class_names),
            id_kind=graph.ids.kind, fanout_cap=fanout_cap, run_id=run.run_id,
            package_version=__version__))
        parity = None
        if probe_nodes:
            rng = np.random.default_rng(seed)
            nodes = np.sort(rng.choice(graph.num_nodes, min(probe_nodes, graph.num_nodes),
                                       replace=False))
            parity = check_bundle(writer.path, run, nodes, tolerance,
                                  fanout_cap=fanout_cap)
        else:  # still make sure ONNX Runtime loads what was written
            Predictor(writer.path)
            log.warning("--probe-nodes 0: the ONNX Runtime vs PyTorch check was skipped")
        path = writer.commit()
    return {**manifest.to_dict(), "parity": parity, "path": str(path)}
