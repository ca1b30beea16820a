"""Test helpers shared across test modules (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def heavy_tailed_graph(n: int = 4000, edges: int = 24000, seed: int = 0):
    """Chung-Lu graph with power-law expected degrees (exponent about 2.5)."""
    from hashembed.graph.memory import Graph, symmetrize

    rng = np.random.default_rng(seed)
    weights = (np.arange(1, n + 1) ** (-1 / 1.5)).astype(np.float64)
    p = weights / weights.sum()
    pairs = np.stack([rng.choice(n, edges, p=p), rng.choice(n, edges, p=p)], axis=1)
    return Graph("chung-lu", n, symmetrize(pairs, n))


def train_small(graph, out_dir: Path, gnn: str = "sage", scheme: str = "hash", epochs: int = 30,
                bits: int = 64, layers: int = 2, decoder_hidden: int = 32,
                bits_per_index: int = 8, hops: int | str = 1, degree_field: bool = False):
    """A quick run: enough epochs for non-trivial weights, not for accuracy. 1-hop codes
    unless ``hops`` says otherwise: the session's shared run (``sage_run``) is the one the
    1-hop properties of serving are checked on (multi-hop ones have tests of their own)."""
    from hashembed.train.run import train_run
    from hashembed.train.runconfig import RunConfig

    config = RunConfig(coding=scheme, bits=bits, bits_per_index=bits_per_index,
                       codebook_dim=16, decoder_hidden=decoder_hidden, dim=16, gnn=gnn,
                       layers=layers, hidden=32, epochs=epochs, patience=epochs, seed=1,
                       hops=1 if scheme == "random" else hops, degree_field=degree_field)
    return train_run(graph, config, out_dir, progress=False)


def toy_manifest(num_nodes: int = 3, bits: int = 32):
    """A consistent :class:`~hashembed.core.bundle.Manifest` for a hand-built bundle (2 CSR
    entries)."""
    from hashembed.core.bundle import GraphInfo, Manifest, ModelInfo
    from hashembed.core.codeformat import CodeSpec

    return Manifest(code_spec=CodeSpec("hash", bits=bits, bits_per_index=8),
                    thresholds=tuple(float(i) for i in range(bits)),
                    graph=GraphInfo("toy", num_nodes, 1, 2),
                    model=ModelInfo(num_classes=2, embedding_dim=4, num_layers=2, edge_hops=2),
                    opset=20, tolerance=1e-4, class_names=("a", "b"), run_id="toy",
                    package_version="0", created="2026-01-01T00:00:00+00:00")


def write_toy_bundle(path, overwrite=False, fail_before_commit=False, n=3, manifest=None):
    """A bundle of ``n`` nodes with a placeholder model file; returns its codes."""
    from hashembed.core.bundle import (CODES_FILE, INDICES_FILE, INDPTR_FILE, MODEL_FILE,
                                       BundleWriter)

    codes = (np.arange(n * 4) % 251).astype(np.uint8).reshape(n, 4)
    with BundleWriter(path, overwrite=overwrite) as w:
        w.save_array(CODES_FILE, codes)
        w.save_array(INDPTR_FILE, np.array([0, 1, 2] + [2] * (n - 2), np.int64))
        w.save_array(INDICES_FILE, np.array([1, 0], np.int32))
        w.save_bytes(MODEL_FILE, b"not really onnx")
        w.write_manifest(manifest or toy_manifest(num_nodes=n))
        if fail_before_commit:
            raise RuntimeError("crash")
        w.commit()
    return codes


def two_cliques_split(n: int = 40):
    """A link split with a planted answer: two cliques of ``n / 2``; held-out intra-clique pairs
    are the positives, cross-clique pairs the negatives."""
    from hashembed.train.linkpred import LinkSplit

    rng = np.random.default_rng(0)
    half = n // 2
    pairs = np.array([(u, v) for u in range(n) for v in range(u + 1, n)
                      if (u < half) == (v < half)])
    rng.shuffle(pairs)
    cross = np.array([(u, v) for u in range(half) for v in range(half, n)])
    return LinkSplit(train=pairs[:300], valid_pos=pairs[300:340], valid_neg=cross[:200],
                     test_pos=pairs[340:], test_neg=cross[200:])


def random_edges(seed=0, n=400, e=3000):
    """``[E, 2]`` random edges of ``n`` nodes with duplicates, reversed duplicates and loops."""
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, n, (e, 2))
    loops = np.stack([np.arange(5), np.arange(5)], 1)
    return np.concatenate([edges, edges[:200], edges[:100, ::-1], loops])  # dups, loops


def adjacency_with_self_loops(graph):
    """``Â = A + I`` as a float32 scipy CSR matrix ``[n, n]``: the dense oracle of the coder."""
    import scipy.sparse as sp

    n = graph.num_nodes
    src, dst = graph.edges()
    loops = np.arange(n, dtype=np.int64)
    rows, cols = np.concatenate([src, loops]), np.concatenate([dst, loops])
    return sp.csr_matrix((np.ones(rows.shape[0], dtype=np.float32), (rows, cols)), shape=(n, n))


def full_graph_outputs(run) -> dict:
    """PyTorch outputs for every node on the whole graph: what a bundle must match."""
    import torch

    from hashembed.core.bundle import OUTPUT_EMBEDDINGS, OUTPUT_LOGITS

    with torch.no_grad():
        logits, embeddings = run.model(run.node_input(), torch.from_numpy(run.graph.edges()))
    return {OUTPUT_LOGITS: logits.numpy(), OUTPUT_EMBEDDINGS: embeddings.numpy()}


def walk_projection_reference(edges: np.ndarray, n: int, keys: np.ndarray, spec,
                              shifts: np.ndarray | None = None):
    """``Â^K R`` in exact integers (int64, checked never to come near overflow), an edge at
    a time: the multi-hop coder's oracle.

    Between hops every column is floored by ``2^s``: ``shifts [K - 1, c]`` if given, else the
    coder's rule recomputed here (the least ``s`` keeping ``(max degree + 1) · max |p_j| /
    2^s`` below ``2^52``). Returns ``(p int64 [n, c], shifts int64 [K - 1, c])``.
    """
    from hashembed.core.projection import projection_fixed

    src, dst = np.asarray(edges[0]), np.asarray(edges[1])
    max_degree = int(np.bincount(dst, minlength=n).max())
    p = projection_fixed(keys, 0, spec.bits, spec.seed, spec.projection).astype(np.int64)
    used = np.zeros((max(spec.hops - 1, 0), spec.bits), dtype=np.int64)
    for hop in range(spec.hops):
        if hop:
            for j in range(spec.bits):
                bound = (max_degree + 1) * int(np.abs(p[:, j]).max())
                used[hop - 1, j] = (max(0, bound.bit_length() - 52) if shifts is None
                                    else shifts[hop - 1, j])
            p = p >> used[hop - 1]  # floor(p / 2^s), column by column
        assert (max_degree + 1) * int(np.abs(p).max()) < 2**62, "the oracle would overflow"
        walked = p.copy()
        np.add.at(walked, dst, p[src])
        p = walked
    return p, used


def bits_at_median(p) -> np.ndarray:
    """``p > median`` per column of exact integers ``p`` (``bool [n, c]``); asserts that no
    two values tie at a median (for odd ``n`` the median value itself occurs once), so the
    coder's tie-breaking plays no part."""
    n = p.shape[0]
    column = np.sort(p, axis=0)
    twice_median = 2 * column[n // 2] if n % 2 else column[n // 2 - 1] + column[n // 2]
    at_median = (2 * p == twice_median).sum(axis=0)
    assert (at_median <= n % 2).all(), f"values tie at a median: {at_median}"
    return 2 * p > twice_median
