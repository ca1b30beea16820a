"""Serve a bundle with ONNX Runtime: node ids in, class scores and embeddings out.

Torch-free: this module needs numpy, onnxruntime and :mod:`hashembed.core.bundle` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashembed.core.bundle import (INPUT_CODES, INPUT_EDGES, OUTPUT_EMBEDDINGS, OUTPUT_LOGITS,
                              open_bundle)
from hashembed.core.codeformat import take_codes
from hashembed.core.errors import BundleCorruptError, ConfigError, UnknownNodeError
from hashembed.core.integrity import LazyVerifiedArray
from hashembed.serve.providers import create_session
from hashembed.serve.subgraph import k_hop_subgraph
from hashembed.serve.unseen import UnseenNode, default_key, unseen_inputs

DEFAULT_MAX_NEIGHBORS = 10_000


@dataclass(frozen=True)
class Prediction:
    """Outputs for the queried ids, row ``i`` for ``node_ids[i]``.

    Attributes:
        node_ids: ``[Q]`` the queried ids as given (users' own ids; duplicates kept).
        logits: ``float32 [Q, K]`` class scores.
        embeddings: ``float32 [Q, d]`` decoded node embeddings (what a table would hold).
        labels: ``int64 [Q]`` arg-max class.
        class_names: the ``K`` label names when the training labels had names, else ``None``.
    """

    node_ids: np.ndarray
    logits: np.ndarray
    embeddings: np.ndarray
    class_names: tuple[str, ...] | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    def to_json(self) -> list[dict]:
        """One dict per queried node: ``node``, ``label`` (class index), ``class`` (its name,
        when the labels had names) and ``logits``."""
        rows = []
        for n, y, row in zip(self.node_ids, self.labels, self.logits):
            entry = {"node": n.item() if isinstance(n, np.generic) else n, "label": int(y)}
            if self.class_names is not None:
                entry["class"] = self.class_names[int(y)]
            entry["logits"] = row.tolist()
            rows.append(entry)
        return rows


class Predictor:
    """Predictions for given node ids from a bundle written by ``hashembed export``.

    Opening verifies the manifest and every file's checksum and memory-maps the code table.
    :meth:`predict` builds the queried nodes' k-hop neighbourhood from the bundle's CSR,
    gathers their codes and runs the ONNX model; the result equals the PyTorch model's
    full-graph output at those nodes.

    Args:
        bundle_dir: directory written by ``hashembed export``.
        provider: ``"auto"`` (CUDA where present, else CPU), ``"cuda"`` or ``"cpu"``.
        verify: ``"full"`` hashes every file on open; ``"lazy"`` checks sizes on open and
            hashes each 4 MiB piece of the code table and the graph the first time a query
            reads it (for tables too large to hash at start-up). Either way no answer is
            computed from bytes that do not match the manifest.
        batch_size: query nodes per ONNX Runtime call (at least 1).
        max_neighbors: most neighbours accepted for one unseen node (:meth:`predict_new`).

    Example:
        >>> predictor = Predictor("runs/demo/bundle")          # doctest: +SKIP
        >>> predictor.predict([3, 17, 42]).labels              # doctest: +SKIP
        array([2, 0, 4])
    """

    def __init__(self, bundle_dir: str | Path, provider: str = "auto", verify: str = "full",
                 batch_size: int = 1024, max_neighbors: int = DEFAULT_MAX_NEIGHBORS):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be a positive integer")
        self.bundle = open_bundle(bundle_dir, verify=verify)
        self.manifest = self.bundle.manifest
        self.edge_hops = self.manifest.model.edge_hops
        self.batch_size = int(batch_size)
        self.max_neighbors = int(max_neighbors)
        self._row_keys: np.ndarray | None = None
        self.session = create_session(self.bundle.model, provider, str(self.bundle.model_path))
        self._check_signature()

    def _check_signature(self) -> None:
        """The ONNX graph's inputs and outputs must be the bundle format's, with the widths
        the manifest states (c/8 code bytes, K classes, d dims)."""
        model = self.manifest.model
        want = {INPUT_CODES: self.manifest.code_spec.bytes_per_node,
                OUTPUT_LOGITS: model.num_classes, OUTPUT_EMBEDDINGS: model.embedding_dim}
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        path = self.bundle.model_path
        if set(inputs) != {INPUT_CODES, INPUT_EDGES} or \
                list(outputs) != [OUTPUT_LOGITS, OUTPUT_EMBEDDINGS]:
            raise BundleCorruptError(f"{path} has inputs {sorted(inputs)} and outputs "
                                     f"{list(outputs)}, not the bundle format's")
        shapes = {**inputs, **outputs}
        wrong = [f"{name} has width {shapes[name][1]}, the manifest says {width}"
                 for name, width in want.items()
                 if len(shapes[name]) != 2 or isinstance(shapes[name][1], int)
                 and shapes[name][1] != width]
        if wrong:
            raise BundleCorruptError(f"{path} does not match its manifest: " + "; ".join(wrong))

    @property
    def num_nodes(self) -> int:
        return self.bundle.num_nodes

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def __repr__(self) -> str:
        return (f"Predictor({str(self.bundle.path)!r}, n={self.num_nodes}, "
                f"c={self.manifest.code_spec.bits}, provider={self.provider})")

    def _run(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = k_hop_subgraph(self.bundle.indptr, self.bundle.indices, seeds, self.edge_hops,
                             self.manifest.fanout_cap)
        table = self.bundle.codes
        codes = table.take(sub.nodes) if isinstance(table, LazyVerifiedArray) \
            else take_codes(table, sub.nodes)
        logits, embeddings = self.session.run(
            [OUTPUT_LOGITS, OUTPUT_EMBEDDINGS],
            {INPUT_CODES: codes, INPUT_EDGES: sub.edge_index})
        return logits[: sub.num_seeds], embeddings[: sub.num_seeds]

    def _keys_of_rows(self, rows: np.ndarray) -> np.ndarray:
        if self._row_keys is None:  # built once, on the first unseen node
            self._row_keys = self.bundle.ids.keys()
        return self._row_keys[rows]

    def predict_new(self, neighbors, ids=None) -> Prediction:
        """Outputs for nodes that were not in the graph, from their neighbours.

        Args:
            neighbors: one list of existing node ids (the graph's own) per unseen node.
            ids: optionally one id per unseen node (the graph's kind of id, not one of its
                nodes): the key of its own projection term. Without it the key is derived
                from its sorted neighbours (:mod:`hashembed.serve.unseen`).

        Returns:
            a :class:`Prediction` whose ``node_ids`` are ``ids`` (or ``None`` each). Each node
            is computed alone: its answer does not depend on the rest of the request.

        Raises:
            UnknownNodeError: a neighbour is not in the graph; NodeIdTypeError: a bad id;
            ConfigError: an id that already names a node, or too many neighbours.
        """
        neighbors = list(neighbors)
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(neighbors):
                raise ConfigError(f"{len(ids)} ids for {len(neighbors)} unseen nodes")
        logits, embeddings = [], []
        for i, nbrs in enumerate(neighbors):
            nbrs = list(nbrs) if not isinstance(nbrs, (str, bytes)) else [nbrs]
            if len(nbrs) > self.max_neighbors:
                raise ConfigError(f"unseen node {i} has {len(nbrs)} neighbours; at most "
                                  f"{self.max_neighbors} are accepted")
            rows = np.unique(self.bundle.ids.rows(nbrs)) if nbrs else np.zeros(0, np.int64)
            if ids is not None:
                try:
                    self.bundle.ids.rows([ids[i]])
                except UnknownNodeError:
                    pass
                else:
                    raise ConfigError(f"unseen node id {ids[i]!r} already names a node of the "
                                      "graph; use predict() for it")
                key = self.bundle.ids.key_of([ids[i]])[0]
            else:
                key = default_key(self._keys_of_rows(rows))
            codes, edge_index, x = unseen_inputs(self.bundle, UnseenNode(rows, key),
                                                 self._keys_of_rows)
            lg, em = self.session.run([OUTPUT_LOGITS, OUTPUT_EMBEDDINGS],
                                      {INPUT_CODES: codes, INPUT_EDGES: edge_index})
            logits.append(lg[x])
            embeddings.append(em[x])
        k, d = self.manifest.model.num_classes, self.manifest.model.embedding_dim
        node_ids = np.array(ids if ids is not None else [None] * len(neighbors), dtype=object)
        return Prediction(node_ids, np.array(logits, np.float32).reshape(-1, k),
                          np.array(embeddings, np.float32).reshape(-1, d),
                          self.manifest.class_names)

    @property
    def id_kind(self) -> str:
        """How the bundle's nodes are named: ``"dense"`` (rows), ``"int"`` or ``"str"``."""
        return self.manifest.id_kind

    def predict(self, node_ids) -> Prediction:
        """Outputs for ``node_ids``: the graph's own ids (integers, or strings when the
        graph's ids were strings); duplicates allowed, order kept.

        Raises:
            NodeIdTypeError: an id of the wrong type (bool, float, a string for integer ids…).
            UnknownNodeError: an id that is not in the graph (the first one is named).
        """
        if not isinstance(node_ids, (np.ndarray, list, tuple, str, int, np.integer)):
            node_ids = list(node_ids)  # a generator or other iterable: read it once
        if np.ndim(node_ids) == 0:
            node_ids = np.asarray(node_ids).reshape(1) if isinstance(node_ids, np.ndarray) \
                else [node_ids]
        rows = self.bundle.ids.rows(node_ids)
        ids = np.asarray(node_ids)
        if ids.dtype.kind in "iu":
            ids = ids.astype(np.int64) if ids.dtype != np.uint64 else ids
        unique, inverse = np.unique(rows, return_inverse=True)
        logits, embeddings = [], []
        for start in range(0, unique.size, self.batch_size):
            lg, em = self._run(unique[start: start + self.batch_size])
            logits.append(lg)
            embeddings.append(em)
        names = self.manifest.class_names
        if not logits:
            k, d = self.manifest.model.num_classes, self.manifest.model.embedding_dim
            return Prediction(ids, np.zeros((0, k), np.float32), np.zeros((0, d), np.float32),
                              names)
        return Prediction(ids, np.concatenate(logits)[inverse],
                          np.concatenate(embeddings)[inverse], names)
