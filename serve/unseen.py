"""Nodes that were not in the graph at training time: their code and their neighbourhood.

A learnable table cannot embed a node it never saw; a hash code can, because a node's code is
a function of its neighbours (:mod:`hashembed.core.projection`). Given an unseen node ``x`` with
neighbours ``N(x)`` (existing nodes) and a key:

* its code is what the coder would have given it: ``p = R[key(x)] + sum_{u in N(x)} R[key(u)]``
  thresholded at the per-bit medians stored in the bundle (random codes: the keyed random
  bits), then, with the degree field, the bucket of ``|N(x)|``; existing nodes' codes (their
  degree bytes included) and the thresholds stay as they are. For multi-hop codes
  (``K = hops``) ``p`` is row ``x`` of ``Â'^K R`` on the graph with ``x`` and its edges
  added, with the coder's stored per-hop shifts: the walks of up to ``K`` steps from ``x``
  lie within ``K - 1`` hops of ``N(x)``, so ``p`` is computed exactly on that neighbourhood
  (:func:`multi_hop_projection`). With a serving fan-out cap the neighbourhood is capped as
  for the model's input and each kept neighbour sum is weighted up to estimate the full one
  (:func:`capped_sum_weights`): the code is then an approximation of the uncapped one;
* its output is the model's on the graph with ``x`` and its edges added: the in-edges of every
  node within ``edge_hops - 1`` hops of ``x`` — the neighbourhood of ``N(x)`` the bundle's CSR
  gives, plus ``u -> x`` and ``x -> u`` for every ``u`` in ``N(x)``.

Each unseen node is computed on its own, so its answer never depends on the other nodes of a
request. Its key is its id when the caller gives one (the same rule as the graph's ids:
``mix64`` of an integer, BLAKE2b-64 of a string), else a BLAKE2b-64 of its sorted neighbours'
keys, so the same neighbours always give the same code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from hashembed.core.codeformat import degree_buckets, pack_codes, take_codes
from hashembed.core.projection import (FIXED_POINT_SCALE, new_node_bits, projection_fixed,
                                       random_bits)
from hashembed.serve.subgraph import Subgraph, k_hop_subgraph


@dataclass(frozen=True)
class UnseenNode:
    """One unseen node of a request: its neighbours' rows and its key."""

    neighbour_rows: np.ndarray   # int64 [k], distinct
    key: np.uint64


def default_key(neighbour_keys: np.ndarray) -> np.uint64:
    """The key of an unseen node given without an id: BLAKE2b-64 of its sorted neighbours'
    keys (little-endian uint64 bytes)."""
    data = np.sort(np.asarray(neighbour_keys, dtype=np.uint64)).astype("<u8").tobytes()
    return np.uint64(int.from_bytes(hashlib.blake2b(b"unseen:" + data, digest_size=8).digest(),
                                    "little"))


def unseen_code(node: UnseenNode, keys_of_rows, manifest, indptr=None, indices=None,
                neighbourhood: tuple[Subgraph, int] | None = None) -> np.ndarray:
    """``uint8 [1, bytes_per_node]``: the packed code of an unseen node (module docstring),
    its degree byte last with the degree field (every given neighbour counts, the fan-out
    cap does not apply to it). Multi-hop
    codes need the graph's CSR (``indptr``, ``indices``), or ``neighbourhood``: the node's
    :func:`unseen_subgraph` with ``edge_hops = hops`` when the caller has built it already."""
    spec = manifest.code_spec
    if spec.scheme == "random":
        bits = random_bits(np.array([node.key]), 0, spec.bits, spec.seed)[0]
    elif spec.hops == 1:
        bits = new_node_bits(int(node.key), keys_of_rows(node.neighbour_rows),
                             np.asarray(manifest.thresholds), spec.seed, spec.projection)
    else:
        p = multi_hop_projection(indptr, indices, node, keys_of_rows, manifest, neighbourhood)
        bits = p > np.asarray(manifest.thresholds, dtype=np.float64) * FIXED_POINT_SCALE
    code = pack_codes(bits[None, :])
    if spec.degree_field:
        degree = degree_buckets(np.array([node.neighbour_rows.size]))
        code = np.concatenate([code, degree[None, :]], axis=1)
    return code


def multi_hop_projection(indptr, indices, node: UnseenNode, keys_of_rows, manifest,
                         neighbourhood: tuple[Subgraph, int] | None = None) -> np.ndarray:
    """``int64 [c]`` (``float64`` where a fan-out cap binds): row ``x`` of ``Â'^K R`` for the
    unseen node ``x``, with the coder's hop shifts, ``Â'`` the adjacency (plus self-loops)
    with ``x`` and its edges added. ``indptr`` is needed whenever the manifest has a cap
    (the weights read the nodes' full degrees).

    Hop ``h`` needs hop ``h - 1``'s sums at nodes one step closer to ``x``, so iterating on
    the subgraph of in-edges of the nodes within ``K - 2`` hops of ``N(x)`` (plus ``x``'s
    edges) gives ``x`` its exact value even though the nodes at its rim get partial sums
    (they are read only at hop 0, as ``R``). Integer arithmetic in int64 (the coder's shifts
    keep a sum near ``2^52``, far inside int64 even with ``x``'s extra edge), so the order of
    the sums does not matter. Where a fan-out cap binds, the sums are weighted estimates in
    float64 (:func:`capped_sum_weights`) and the result is rounded like them.
    """
    spec = manifest.code_spec
    sub, x = neighbourhood or unseen_subgraph(indptr, indices, node, spec.hops,
                                              manifest.fanout_cap)
    keys = np.concatenate([keys_of_rows(sub.nodes), np.array([node.key], dtype=np.uint64)])
    p = projection_fixed(keys, 0, spec.bits, spec.seed, spec.projection).astype(np.int64)
    src, dst = sub.edge_index
    shifts = np.asarray(manifest.hop_shifts, dtype=np.int64)
    weights = (None if manifest.fanout_cap is None
               else capped_sum_weights(indptr, sub, x, node.neighbour_rows.size))
    if weights is not None:  # a cap binds somewhere: an estimate, in float64
        adjacency = csr_matrix((weights, (dst, src)), shape=(p.shape[0], p.shape[0]))
        estimate = p.astype(np.float64)
        for hop in range(spec.hops):
            if hop:
                estimate = np.floor(estimate / np.exp2(shifts[hop - 1]))
            estimate = estimate + adjacency @ estimate
        return estimate[x]
    # A[v, u] = number of edges u -> v (duplicates summed); an int64 product, so exact
    adjacency = csr_matrix((np.ones(src.size, dtype=np.int64), (dst, src)),
                           shape=(p.shape[0], p.shape[0]))
    for hop in range(spec.hops):
        if hop:
            p >>= shifts[hop - 1]  # floor(p / 2^s): the coder's rescaling, exactly
        p = p + adjacency @ p
    return p[x]


def capped_sum_weights(indptr, sub: Subgraph, x: int, degree_x: int) -> np.ndarray | None:
    """``float64 [E]``: a weight per edge of the unseen node's capped neighbourhood that makes
    each node's capped neighbour sum estimate its full one, or ``None`` where no cap binds.

    A fan-out cap keeps ``k_v`` of node ``v``'s ``d_v`` in-edges; ``(d_v / k_v) * sum over
    the kept`` estimates ``sum over all d_v`` (the Horvitz-Thompson weight of evenly spaced
    kept edges), so a multi-hop sum over capped walks keeps the scale of the coder's sums
    and of the thresholds they were cut at. Without the weights every capped sum shrinks
    (fewer walks), and on graphs with hubs most of the unseen node's bits fall to one side
    of their thresholds. The unseen node's own in-edges weigh ``degree_x / k_x``; its edges
    to its neighbours weigh 1 (each neighbour gains exactly that one edge).
    """
    src, dst = sub.edge_index
    graph_edge = (src != x) & (dst != x)
    kept = np.bincount(dst[graph_edge], minlength=x + 1).astype(np.float64)
    degree = np.zeros(x + 1, dtype=np.float64)
    degree[:x] = indptr[sub.nodes + 1] - indptr[sub.nodes]  # rows only: the CSR is mapped
    degree[x] = degree_x
    kept[x] = np.count_nonzero(dst == x)
    # nodes at the rim have no in-edges here (only read as R): weight 1, never used
    scale = np.where(kept > 0, degree / np.maximum(kept, 1), 1.0)
    weights = np.where(src == x, 1.0, scale[dst])
    return None if np.all(weights == 1.0) else weights


def unseen_subgraph(indptr, indices, node: UnseenNode, edge_hops: int,
                    fanout_cap: int | None = None) -> tuple[Subgraph, int]:
    """The subgraph for the unseen node's output: ``(subgraph over existing rows, local index
    of the unseen node)``; the unseen node is the last local node, its edges included."""
    rows = node.neighbour_rows
    if fanout_cap is not None and rows.size > fanout_cap:  # the cap binds the new node too:
        # evenly spaced over its sorted neighbours, from an offset its key fixes
        offset = int(node.key % np.uint64(rows.size))
        rows = np.sort(rows)[(offset + np.arange(fanout_cap) * rows.size // fanout_cap)
                             % rows.size]
    if rows.size and edge_hops > 1:
        sub = k_hop_subgraph(indptr, indices, rows, edge_hops - 1, fanout_cap)
    else:
        sub = Subgraph(rows.astype(np.int64), np.zeros((2, 0), np.int64), int(rows.size))
    x = int(sub.nodes.size)
    local = np.arange(rows.size, dtype=np.int64)  # the neighbours are the seeds, first
    new_edges = np.concatenate([np.stack([local, np.full_like(local, x)]),
                                np.stack([np.full_like(local, x), local])], axis=1)
    edge_index = np.concatenate([sub.edge_index, new_edges], axis=1)
    return Subgraph(sub.nodes, edge_index, sub.num_seeds), x


def unseen_inputs(bundle, node: UnseenNode, keys_of_rows) -> tuple[np.ndarray, np.ndarray, int]:
    """ONNX inputs for one unseen node: ``codes uint8 [N+1, bytes_per_node]``, ``edge_index
    int64 [2, E]`` and the row of the unseen node in them."""
    manifest = bundle.manifest
    sub, x = unseen_subgraph(bundle.indptr, bundle.indices, node, manifest.model.edge_hops,
                             manifest.fanout_cap)
    table = bundle.codes
    existing = table.take(sub.nodes) if hasattr(table, "verify") else take_codes(table, sub.nodes)
    # the model's neighbourhood is the code's when the GNN has as many layers as the code hops
    same = (sub, x) if manifest.code_spec.hops == manifest.model.edge_hops else None
    codes = np.concatenate([existing, unseen_code(node, keys_of_rows, manifest, bundle.indptr,
                                                  bundle.indices, same)])
    return codes, sub.edge_index, x
