"""Neighbour sampling over a memory-mapped CSR, as a PyG sampler (no pyg-lib, no torch-sparse).

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, which do not install from the
registry this project uses. :class:`CSRNeighborSampler` implements PyG's
:class:`~torch_geometric.sampler.BaseSampler` with numpy over the CSR arrays of a graph
directory (or any ``indptr``/``indices``), so PyG's :class:`~torch_geometric.loader.NodeLoader`
drives it and batches are ordinary :class:`~torch_geometric.data.Data` objects that PyG's
convolutions take unchanged.

Per hop ``h`` with fan-out ``k_h``, every frontier node ``v`` keeps all its neighbours when
``deg(v) <= k_h`` and otherwise ``k_h`` positions drawn uniformly with replacement, duplicates
dropped (so at most ``k_h``, and no per-node Python loop, hubs included). Sampled edges point
from the neighbour (``row``, source) to the frontier node (``col``, target); nodes are numbered
locally hop by hop — the batch's seeds first, in their order, then each hop's new nodes in
ascending id order. Draws come from a generator seeded by
``seed`` and the batch's seed ids, so the same batch always samples the same subgraph.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput

from hashembed.core.errors import ConfigError
from hashembed.core.sortedsets import sorted_unique


class CSRNeighborSampler(BaseSampler):
    """Sample ``len(fanout)`` hops of neighbours of seed nodes from a CSR graph.

    Args:
        indptr: ``int64 [n + 1]`` (may be a memory map).
        indices: ``int32|int64 [nnz]`` (may be a memory map).
        fanout: neighbours kept per node at each hop (``-1``: all).
        seed: seeds every batch's draws (with the batch's seed ids).

    Example:
        >>> sampler = CSRNeighborSampler(indptr, indices, (15, 10))       # doctest: +SKIP
        >>> loader = NodeLoader(data, sampler, input_nodes=train_idx,
        ...                     batch_size=1024, shuffle=True)             # doctest: +SKIP
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, fanout: tuple[int, ...],
                 seed: int = 0):
        if not fanout or any(k == 0 or k < -1 for k in fanout):
            raise ConfigError(f"fanout {fanout}: each hop keeps -1 (all) or a positive count")
        self.indptr = indptr
        self.indices = indices
        self.fanout = tuple(int(k) for k in fanout)
        self.seed = int(seed)
        self.num_nodes = int(indptr.shape[0]) - 1

    def __repr__(self) -> str:
        return f"CSRNeighborSampler(n={self.num_nodes}, fanout={self.fanout})"

    def _rng(self, seeds: np.ndarray) -> np.random.Generator:
        digest = hashlib.blake2b(seeds.tobytes(), digest_size=8, key=self.seed.to_bytes(
            8, "little", signed=True)).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def sample(self, seeds: np.ndarray) -> SamplerOutput:
        """Sample around ``seeds`` (``int64 [B]``, distinct); see the module docstring."""
        seeds = np.asarray(seeds, dtype=np.int64)
        rng = self._rng(seeds)
        nodes = [seeds]
        known = np.sort(seeds)
        known_local = np.argsort(seeds, kind="stable")
        count = seeds.size
        frontier, frontier_local = seeds, np.arange(seeds.size, dtype=np.int64)
        rows, cols, per_hop_nodes, per_hop_edges = [], [], [seeds.size], []
        for k in self.fanout:
            starts = np.asarray(self.indptr[frontier], dtype=np.int64)
            degree = np.asarray(self.indptr[frontier + 1], dtype=np.int64) - starts
            take = degree if k < 0 else np.minimum(degree, k)
            whole = take == degree
            # every neighbour of the nodes that keep all of them ...
            owners_all = np.repeat(np.nonzero(whole)[0], degree[whole])
            first = np.repeat(np.cumsum(degree[whole]) - degree[whole], degree[whole])
            offsets_all = np.arange(owners_all.size, dtype=np.int64) - first
            # ... and k uniform draws (with replacement, de-duplicated) for the others
            many = np.nonzero(~whole)[0]
            owners_some = np.repeat(many, k if k > 0 else 0)
            offsets_some = (rng.random(owners_some.size) * degree[owners_some]).astype(np.int64)
            if owners_some.size:
                pair = np.unique(np.stack([owners_some, offsets_some]), axis=1)
                owners_some, offsets_some = pair[0], pair[1]
            owners = np.concatenate([owners_all, owners_some])
            positions = starts[owners] + np.concatenate([offsets_all, offsets_some])
            neighbours = np.asarray(self.indices[positions], dtype=np.int64)
            # number the neighbours seen for the first time
            where = np.searchsorted(known, neighbours)
            where_c = np.minimum(where, known.size - 1)
            seen = known[where_c] == neighbours
            new = sorted_unique(neighbours[~seen])
            new_local = np.arange(count, count + new.size, dtype=np.int64)
            count += new.size
            local = np.empty(neighbours.size, dtype=np.int64)
            local[seen] = known_local[where_c[seen]]
            local[~seen] = new_local[np.searchsorted(new, neighbours[~seen])]
            rows.append(local)
            cols.append(frontier_local[owners])
            merged = np.concatenate([known, new])
            order = np.argsort(merged, kind="stable")
            known, known_local = merged[order], np.concatenate([known_local, new_local])[order]
            nodes.append(new)
            frontier, frontier_local = new, new_local
            per_hop_nodes.append(int(new.size))
            per_hop_edges.append(int(neighbours.size))
        return SamplerOutput(
            node=torch.from_numpy(np.concatenate(nodes)),
            row=torch.from_numpy(np.concatenate(rows) if rows else np.zeros(0, np.int64)),
            col=torch.from_numpy(np.concatenate(cols) if cols else np.zeros(0, np.int64)),
            edge=None, num_sampled_nodes=per_hop_nodes, num_sampled_edges=per_hop_edges)

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        seeds = index.node.numpy()
        if np.unique(seeds).size != seeds.size:  # batch_size counts seeds: they must be distinct
            raise ConfigError("a batch names a seed node twice; NodeLoader input nodes must be "
                              "distinct")
        out = self.sample(seeds)
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(self, index, neg_sampling=None):
        raise NotImplementedError("CSRNeighborSampler samples from nodes only")
