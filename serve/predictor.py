"""Serve a bundle with ONNX Runtime: node ids in, class scores and embeddings out.

Torch-free: this module needs numpy, onnxruntime and :mod:`hashembed.bundle` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashembed.bundle import (INPUT_CODES, INPUT_EDGES, OUTPUT_EMBEDDINGS, OUTPUT_LOGITS,
                              open_bundle)
from hashembed.codeformat import take_codes
from hashembed.errors import BundleCorruptError, NodeIdTypeError, UnknownNodeError
from hashembed.serve.providers import create_session
from hashembed.serve.subgraph import k_hop_subgraph


@dataclass(frozen=True)
class Prediction:
    """Outputs for the queried ids, row ``i`` for ``node_ids[i]``.

    Attributes:
        node_ids: ``int64 [Q]`` as queried (duplicates kept).
        logits: ``float32 [Q, K]`` class scores.
        embeddings: ``float32 [Q, d]`` decoded node embeddings (what a table would hold).
        labels: ``int64 [Q]`` arg-max class.
    """

    node_ids: np.ndarray
    logits: np.ndarray
    embeddings: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    def to_json(self) -> list[dict]:
        return [{"node": int(n), "label": int(y), "logits": row.tolist()}
                for n, y, row in zip(self.node_ids, self.labels, self.logits)]


def as_node_ids(node_ids, num_nodes: int) -> np.ndarray:
    """Validate query ids: ``int64 [Q]`` within ``[0, n)``, else a named error."""
    ids = np.asarray(node_ids)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim != 1:
        raise NodeIdTypeError(f"node ids must be 1-D, got shape {list(ids.shape)}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise NodeIdTypeError(f"node ids must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    bad = np.nonzero((ids < 0) | (ids >= num_nodes))[0]
    if bad.size:
        value = int(ids[bad[0]])
        why = "is negative" if value < 0 else f"is not in the graph (n = {num_nodes})"
        raise UnknownNodeError(f"node id {value} {why}")
    return ids


class Predictor:
    """Predictions for given node ids from a bundle written by ``hashembed export``.

    Opening verifies the manifest and every file's checksum and memory-maps the code table.
    :meth:`predict` builds the queried nodes' k-hop neighbourhood from the bundle's CSR,
    gathers their codes and runs the ONNX model; the result equals the PyTorch model's
    full-graph output at those nodes.

    Args:
        bundle_dir: directory written by ``hashembed export``.
        provider: ``"auto"`` (CUDA where present, else CPU), ``"cuda"`` or ``"cpu"``.
        checksums: verify sha256 of every file on open (``False``: sizes only).
        batch_size: query nodes per ONNX Runtime call.

    Example:
        >>> predictor = Predictor("runs/demo/bundle")          # doctest: +SKIP
        >>> predictor.predict([3, 17, 42]).labels              # doctest: +SKIP
        array([2, 0, 4])
    """

    def __init__(self, bundle_dir: str | Path, provider: str = "auto", checksums: bool = True,
                 batch_size: int = 1024):
        self.bundle = open_bundle(bundle_dir, checksums=checksums)
        manifest = self.bundle.manifest
        try:
            self.edge_hops = int(manifest["model"]["edge_hops"])
        except (KeyError, TypeError, ValueError):
            raise BundleCorruptError(f"manifest of {bundle_dir} lacks model.edge_hops") from None
        self.batch_size = batch_size
        self.session = create_session(str(self.bundle.model_path), provider)
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != {INPUT_CODES, INPUT_EDGES} or outputs != [OUTPUT_LOGITS, OUTPUT_EMBEDDINGS]:
            raise BundleCorruptError(f"{self.bundle.model_path} has inputs {sorted(inputs)} and "
                                     f"outputs {outputs}, not the bundle format's")

    @property
    def num_nodes(self) -> int:
        return self.bundle.num_nodes

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def __repr__(self) -> str:
        spec = self.bundle.manifest["code_spec"]
        return (f"Predictor({str(self.bundle.path)!r}, n={self.num_nodes}, c={spec['bits']}, "
                f"provider={self.provider})")

    def _run(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = k_hop_subgraph(self.bundle.indptr, self.bundle.indices, seeds, self.edge_hops)
        codes = take_codes(self.bundle.codes, sub.nodes)
        logits, embeddings = self.session.run(
            [OUTPUT_LOGITS, OUTPUT_EMBEDDINGS],
            {INPUT_CODES: codes, INPUT_EDGES: sub.edge_index})
        return logits[: sub.num_seeds], embeddings[: sub.num_seeds]

    def predict(self, node_ids) -> Prediction:
        """Outputs for ``node_ids`` (``int [Q]``; duplicates allowed, order kept)."""
        ids = as_node_ids(node_ids, self.num_nodes)
        unique, inverse = np.unique(ids, return_inverse=True)
        logits, embeddings = [], []
        for start in range(0, unique.size, self.batch_size):
            lg, em = self._run(unique[start: start + self.batch_size])
            logits.append(lg)
            embeddings.append(em)
        if not logits:
            k = self.bundle.manifest["model"]["num_classes"]
            d = self.bundle.manifest["decoder"]["embedding_dim"]
            return Prediction(ids, np.zeros((0, k), np.float32), np.zeros((0, d), np.float32))
        return Prediction(ids, np.concatenate(logits)[inverse],
                          np.concatenate(embeddings)[inverse])
