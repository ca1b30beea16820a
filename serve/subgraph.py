"""k-hop neighbourhoods from a CSR graph (numpy only), the input a bundle's model needs.

For query nodes ``Q`` and ``hops = h`` the subgraph holds every in-edge ``u -> v`` of every
node ``v`` within ``h - 1`` hops of ``Q``, and the nodes those edges touch (up to ``h`` hops).
That is exactly what an ``h``-layer message-passing model needs for the outputs at ``Q`` to
equal its full-graph outputs (see :attr:`hashembed.train.model.ModelConfig.edge_hops`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashembed.core.projection import mix64, node_keys
from hashembed.core.sortedsets import isin_sorted, sorted_unique


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


def _neighbours(indptr: np.ndarray, indices: np.ndarray, frontier: np.ndarray,
                cap: int | None = None, seed: int = 0):
    """CSR entries of ``frontier``: ``(neighbour int64 [k], owner int64 [k])``.

    With ``cap``, a node of degree ``deg > cap`` keeps ``cap`` neighbours at evenly spaced
    positions of its (id-sorted) row, from an offset that is a hash of (seed, node): the same
    choice for that node in every request, whatever else the request asks for.
    """
    starts = np.asarray(indptr[frontier], dtype=np.int64)
    degree = np.asarray(indptr[frontier + 1], dtype=np.int64) - starts
    counts = degree if cap is None else np.minimum(degree, cap)
    total = int(counts.sum())
    # entry t of row r, built without a Python loop
    first = np.repeat(np.cumsum(counts) - counts, counts)
    step = np.arange(total, dtype=np.int64) - first
    if cap is not None and (degree > cap).any():
        big = np.repeat(degree > cap, counts)
        deg = np.repeat(degree, counts)
        offset = (mix64(node_keys(frontier) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
                  % np.maximum(degree, 1).astype(np.uint64)).astype(np.int64)
        spaced = (np.repeat(offset, counts) + step * deg // cap) % np.maximum(deg, 1)
        step = np.where(big, spaced, step)
    positions = step + np.repeat(starts, counts)
    return np.asarray(indices[positions], dtype=np.int64), np.repeat(frontier, counts)


def k_hop_subgraph(indptr: np.ndarray, indices: np.ndarray, seeds: np.ndarray,
                   hops: int, fanout_cap: int | None = None, seed: int = 0) -> Subgraph:
    """Neighbourhood of ``seeds`` (distinct ``int64 [Q]``) needed by ``hops`` layers of edges.

    The graph is undirected, so the CSR row of ``v`` lists the sources of ``v``'s in-edges.
    With ``fanout_cap`` every node keeps at most that many in-edges (a deterministic choice,
    see :func:`_neighbours`): the output is then an approximation whose size no longer
    explodes around hubs, and it is the same for a node whatever the request.
    """
    visited = np.sort(seeds)  # ascending, distinct
    frontier = seeds
    sources, targets = [], []
    for _ in range(hops):
        if frontier.size == 0:
            break
        src, dst = _neighbours(indptr, indices, frontier, fanout_cap, seed)
        sources.append(src)
        targets.append(dst)
        reached = sorted_unique(src.copy())
        new = reached[~isin_sorted(reached, visited)]
        visited = np.sort(np.concatenate([visited, new]))
        frontier = new
    others = visited[~isin_sorted(visited, np.sort(seeds))]
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
