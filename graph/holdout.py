"""Held-out nodes: take labelled nodes out of the graph before coding and training, so that
serving can later embed them as unseen nodes (``Predictor.predict_new``) and score them.

``hold_out(graph, 0.1, seed)`` removes 10 % of the labelled nodes (seeded) and every edge that
touches them; the remaining rows are numbered afresh and keep their own ids through an id map
(so the bundle answers to the original ids). The run saves, in ``holdout.json``, each held-out
node's id, label and its neighbours among the remaining nodes (their original ids).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hashembed.core.errors import ConfigError
from hashembed.core.idmap import IdMap
from hashembed.graph.memory import Graph

HOLDOUT_FILE = "holdout.json"


@dataclass(frozen=True)
class HeldOut:
    """Nodes taken out of the graph: ``ids`` (original external ids), ``labels`` (class
    indices), ``neighbors`` (each node's neighbours that remain in the graph, by id)."""

    ids: list
    labels: list[int]
    neighbors: list[list]

    def to_dict(self) -> dict:
        return {"ids": self.ids, "labels": self.labels, "neighbors": self.neighbors}

    @classmethod
    def from_dict(cls, data: dict) -> "HeldOut":
        return cls(list(data["ids"]), [int(y) for y in data["labels"]],
                   [list(n) for n in data["neighbors"]])


def hold_out(graph: Graph, fraction: float, seed: int) -> tuple[Graph, HeldOut]:
    """``graph`` without ``fraction`` of its labelled nodes, and those nodes (module docstring).

    The graph's split and shipped splits, if any, are restricted to the remaining nodes.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"--holdout-nodes {fraction} must lie in (0, 1)")
    if graph.labels is None:
        raise ConfigError(f"{graph.name} is multi-label; --holdout-nodes takes graphs with one "
                          "class per node" if graph.multilabels is not None else
                          f"{graph.name} has no labels to hold out")
    labelled = np.nonzero(graph.labels >= 0)[0]
    count = int(round(fraction * labelled.size))
    if count == 0:
        raise ConfigError(f"--holdout-nodes {fraction} holds out no node of {labelled.size}")
    rng = np.random.default_rng([seed, 7])
    out = np.sort(rng.choice(labelled, size=count, replace=False))
    keep = np.ones(graph.num_nodes, dtype=bool)
    keep[out] = False
    new_row = np.cumsum(keep) - 1
    src, dst = graph.edges()
    inside = keep[src] & keep[dst]
    edges = np.stack([new_row[src[inside]], new_row[dst[inside]]])
    ids = graph.ids
    kept_rows = np.nonzero(keep)[0]
    kept_ids = ids.external(kept_rows)
    if ids.kind == "str":
        id_map = IdMap.from_strings(kept_ids)
    else:
        id_map = IdMap.from_ints(np.array(kept_ids, dtype=np.int64))

    def kept(masks: dict | None) -> dict | None:
        return None if masks is None else {k: v[keep] for k, v in masks.items()}

    splits = None if graph.splits is None else \
        {name: kept(masks) for name, masks in graph.splits.items()}
    reduced = replace(graph, num_nodes=int(keep.sum()), edge_index=edges,
                      labels=graph.labels[keep], masks=kept(graph.masks), splits=splits,
                      id_map=id_map, csr_arrays=None, source_dir=None)
    # neighbours of each held-out node that remain in the graph
    touching = np.isin(dst, out) & keep[src]
    by_node = {int(v): [] for v in out}
    for u, v in zip(src[touching], dst[touching]):
        by_node[int(v)].append(int(u))
    neighbor_ids = [ids.external(np.array(sorted(by_node[int(v)]), dtype=np.int64))
                    if by_node[int(v)] else [] for v in out]
    held = HeldOut(ids.external(out), [int(y) for y in graph.labels[out]], neighbor_ids)
    return reduced, held
