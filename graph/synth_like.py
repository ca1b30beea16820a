"""``hashembed synth --like DATASET``: a large graph made of copies of a real one.

A second large-graph model beside :mod:`hashembed.graph.synth`, so that no claim at scale
rests on one generator: it keeps a real graph's clustering, degree distribution and
homophily while growing it to any size. Copy ``k`` of node ``v`` (``n0`` nodes, ``K``
copies) is node ``k · n0 + v`` with ``v``'s label. Every undirected edge ``(u, v)`` of every
copy is kept inside its copy, except a share ``rewire`` of them (drawn per copy from
``seed``) whose ``v`` end moves to ``v``'s twin in another copy (uniform among the other
copies)::

    (k·n0 + u, k·n0 + v)   ->   (k·n0 + u, k'·n0 + v),   k' != k

So a rewired edge joins two nodes of the same classes as the original did (homophily kept,
and every node keeps its degree in expectation) while the copies stop being separate
components: with ``rewire = 0`` they are ``K`` disjoint copies, each node's neighbourhood
the real one. Triangles through a rewired edge are broken, so clustering falls about
linearly in ``rewire``. Node ids are ``0 .. n - 1`` (dense); the graph is streamed to a graph
directory a few copies at a time (:func:`~hashembed.graph.build.write_csr`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hashembed.core.errors import ConfigError
from hashembed.core.graphdir import LABELS_FILE, GraphHeader, GraphWriter
from hashembed.graph.build import write_csr
from hashembed.graph.memory import Graph

EDGES_PER_CHUNK = 1 << 22  # undirected edges generated at once (64 MiB of int64 pairs)


@dataclass(frozen=True)
class LikeConfig:
    """Parameters of :func:`synth_like` (module docstring).

    Attributes:
        copies: ``K``, copies of the real graph (``n = K · n0``).
        rewire: share of each copy's edges whose far end moves to another copy, in [0, 1].
        seed: draws which edges move and where.
    """

    copies: int
    rewire: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 1:
            raise ConfigError(f"--copies {self.copies!r} must be a positive integer")
        if not 0 <= self.rewire <= 1:
            raise ConfigError(f"--rewire {self.rewire} must be in [0, 1]")
        if self.copies == 1 and self.rewire > 0:
            raise ConfigError("--rewire moves edges between copies: it needs --copies 2 or more")


def _pairs(graph: Graph) -> np.ndarray:
    """``int64 [e0, 2]``: each undirected edge of ``graph`` once (``u < v``)."""
    src, dst = graph.edges()
    keep = src < dst
    return np.stack([src[keep], dst[keep]], axis=1).astype(np.int64)


def like_edge_chunks(base: np.ndarray, n0: int, config: LikeConfig):
    """``int64 [k, 2]`` edges of the copies graph, a few copies at a time (module docstring);
    ``base`` are the real graph's undirected edges ``[e0, 2]``."""
    per_chunk = max(1, EDGES_PER_CHUNK // max(1, base.shape[0]))
    for first in range(0, config.copies, per_chunk):
        copies = np.arange(first, min(first + per_chunk, config.copies), dtype=np.int64)
        rng = np.random.default_rng([config.seed, 7, first])
        own = np.repeat(copies, base.shape[0])                         # copy of each edge
        u = own * n0 + np.tile(base[:, 0], copies.size)
        far = own.copy()
        moved = rng.random(own.size) < config.rewire
        if moved.any():  # another copy, uniform: k + 1 .. k + K - 1 (mod K)
            far[moved] = (own[moved] + rng.integers(1, config.copies, int(moved.sum()))) \
                % config.copies
        v = far * n0 + np.tile(base[:, 1], copies.size)
        yield np.stack([u, v], axis=1)


def synth_like(graph: Graph, config: LikeConfig, out_dir: str | Path, memory_gb: float = 4.0,
               overwrite: bool = False, progress: bool = True) -> GraphHeader:
    """Write ``config.copies`` copies of ``graph`` (single-label, dense rows) as a graph
    directory with labels (module docstring); returns its header."""
    if graph.labels is None:
        raise ConfigError(f"{graph.name} is multi-label; --like copies single-label graphs")
    started = time.perf_counter()
    n0 = graph.num_nodes
    n = n0 * config.copies
    base = _pairs(graph)
    with GraphWriter(out_dir, overwrite=overwrite) as writer:
        nnz = write_csr(writer, lambda: like_edge_chunks(base, n0, config), n,
                        base.shape[0] * config.copies, memory_gb, progress)
        writer.save_array(LABELS_FILE, np.tile(np.asarray(graph.labels, np.int64),
                                               config.copies))
        header = writer.write_header(GraphHeader(
            name=f"{graph.name}-x{config.copies}-r{config.rewire:g}-s{config.seed}",
            num_nodes=n, num_edges=nnz // 2, num_csr_entries=nnz, has_labels=True,
            class_names=None if graph.class_names is None else tuple(graph.class_names),
            source={"like": graph.name, **asdict(config), "base_nodes": n0,
                    "base_edges": int(base.shape[0]),
                    "seconds": round(time.perf_counter() - started, 3)}))
        writer.commit()
    return header
