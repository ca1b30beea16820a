"""k-hop neighbourhoods from a CSR graph (numpy only), the input a bundle's model needs.

For query nodes ``Q`` and ``hops = h`` the subgraph holds every in-edge ``u -> v`` of every
node ``v`` within ``h - 1`` hops of ``Q``, and the nodes those edges touch (up to ``h`` hops).
That is exactly what an ``h``-layer message-passing model needs for the outputs at ``Q`` to
equal its full-graph outputs (see :attr:`hashembed.train.model.ModelConfig.edge_hops`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Subgraph:
    """A query's neighbourhood.

    Attributes:
        nodes: ``int64 [N]`` global ids; the query's distinct nodes come first, in order.
        edge_index: ``int64 [2, E]`` local ids (row = source, row 1 = target).
        num_seeds: how many of ``nodes`` are query nodes.
    """

    nodes: np.ndarray
    edge_index: np.ndarray
    num_seeds: int


def _neighbours(indptr: np.ndarray, indices: np.ndarray, frontier: np.ndarray):
    """All CSR entries of ``frontier``: ``(neighbour int64 [k], owner int64 [k])``."""
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    # position of entry t of row r = starts[r] + t, built without a Python loop
    first = np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.arange(total, dtype=np.int64) - first + np.repeat(starts, counts)
    return np.asarray(indices[positions], dtype=np.int64), np.repeat(frontier, counts)


def k_hop_subgraph(indptr: np.ndarray, indices: np.ndarray, seeds: np.ndarray,
                   hops: int) -> Subgraph:
    """Neighbourhood of ``seeds`` (distinct ``int64 [Q]``) needed by ``hops`` layers of edges.

    The graph is undirected, so the CSR row of ``v`` lists the sources of ``v``'s in-edges.
    """
    visited = np.sort(seeds)
    frontier = seeds
    sources, targets = [], []
    for _ in range(hops):
        if frontier.size == 0:
            break
        src, dst = _neighbours(indptr, indices, frontier)
        sources.append(src)
        targets.append(dst)
        new = np.setdiff1d(src, visited, assume_unique=False)
        visited = np.union1d(visited, new)
        frontier = new
    others = np.setdiff1d(visited, seeds)
    nodes = np.concatenate([seeds, others]).astype(np.int64)
    # global -> local: sort once, look up with searchsorted
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]

    def local(ids: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(sorted_nodes, ids)]

    if sources:
        edge_index = np.stack([local(np.concatenate(sources)), local(np.concatenate(targets))])
    else:
        edge_index = np.zeros((2, 0), dtype=np.int64)
    return Subgraph(nodes, edge_index.astype(np.int64), int(seeds.size))
