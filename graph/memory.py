"""The in-memory graph every stage works on (numpy, torch-free).

A :class:`Graph` is undirected: ``edge_index`` holds both directions of every edge, sorted,
without duplicates or self-loops. Node ids are ``0 .. n-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hashembed.core.errors import ConfigError

from hashembed.core.idmap import IdMap

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Graph:
    """A featureless graph with optional node labels and split.

    Attributes:
        name: where it came from (dataset name or file).
        num_nodes: ``n``.
        edge_index: ``int64 [2, E]``, symmetric, de-duplicated, no self-loops, sorted by
            (source, target); or ``None`` for a graph read from a graph directory, whose
            memory-mapped CSR is ``csr_arrays`` (:meth:`csr` gives either form as CSR,
            :meth:`edges` as an edge index).
        labels: ``int64 [n]`` class per node, ``-1`` where unlabelled; or ``None``.
        masks: the split training uses, ``{"train"|"val"|"test": bool [n]}``, set by
            :func:`~hashembed.graph.datasets.apply_split`; ``None`` before.
        splits: the split(s) a dataset ships, by name (``{"official": masks}``, or
            ``{"0": masks, …}`` for Tolokers' ten), each ``{"train"|"val"|"test": bool [n]}``;
            ``None`` when it ships none.
        class_names: label names when the input labels were strings, else ``None``.
        multilabels: ``bool [n, L]`` for multi-label data (BlogCatalog), else ``None``.
        id_map: the users' own node ids of the rows (:class:`~hashembed.core.idmap.IdMap`);
            ``None`` means the ids are the rows (dense).
    """

    name: str
    num_nodes: int
    edge_index: np.ndarray
    labels: np.ndarray | None = None
    masks: dict | None = None
    class_names: list[str] | None = field(default=None)
    multilabels: np.ndarray | None = field(default=None, repr=False)
    id_map: IdMap | None = field(default=None, repr=False)
    splits: dict | None = field(default=None, repr=False)
    csr_arrays: tuple | None = field(default=None, repr=False)
    source_dir: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.edge_index is None and self.csr_arrays is None:
            raise ValueError("a Graph needs edge_index or csr_arrays")

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``indptr int64 [n + 1]``, ``indices int32|int64 [E]`` (memory-mapped if so read)."""
        if self.csr_arrays is not None:
            return self.csr_arrays
        return to_csr(self.edge_index, self.num_nodes)

    def edges(self) -> np.ndarray:
        """``int64 [2, E]`` edge index, built from the CSR when the graph has only that."""
        if self.edge_index is not None:
            return self.edge_index
        indptr, indices = self.csr_arrays
        src = np.repeat(np.arange(self.num_nodes, dtype=np.int64), np.diff(indptr))
        return np.stack([src, np.asarray(indices, dtype=np.int64)])

    @property
    def ids(self) -> IdMap:
        """The id map of the rows (dense when none was given)."""
        return self.id_map if self.id_map is not None else IdMap.dense(self.num_nodes)

    @property
    def num_edges(self) -> int:
        """Directed edge count ``E`` (twice the undirected count)."""
        if self.edge_index is None:
            return int(self.csr_arrays[0][-1])
        return int(self.edge_index.shape[1])

    @property
    def num_classes(self) -> int:
        """Classes of ``labels``, or the label count ``L`` of a multi-label graph (0: none)."""
        if self.labels is None:
            return 0 if self.multilabels is None else int(self.multilabels.shape[1])
        return int(self.labels.max()) + 1

    def targets(self) -> np.ndarray:
        """What training predicts: ``int64 [n]`` classes, or for a multi-label graph
        ``float32 [n, L]`` multi-hot rows."""
        if self.labels is None and self.multilabels is not None:
            return self.multilabels.astype(np.float32)
        if self.labels is None:
            raise ConfigError(f"{self.name} has no node labels")
        return self.labels

    def degrees(self) -> np.ndarray:
        """``int64 [n]`` number of neighbours of each node."""
        if self.edge_index is None:
            return np.diff(self.csr_arrays[0])
        return np.bincount(self.edge_index[0], minlength=self.num_nodes).astype(np.int64)

    def __repr__(self) -> str:
        labelled = "" if self.labels is None else f", classes={self.num_classes}"
        return (f"Graph({self.name!r}, n={self.num_nodes}, "
                f"undirected_edges={self.num_edges // 2}{labelled})")


def graph_from_dir(graph_dir) -> Graph:
    """A :class:`Graph` over a graph directory (:mod:`hashembed.core.graphdir`): its CSR stays
    memory-mapped (``csr_arrays``); labels and its stored split (``splits["official"]``)
    are read into memory."""
    header = graph_dir.header
    masks = {k: np.array(v) for k, v in graph_dir.masks.items()} or None
    return Graph(header.name, graph_dir.num_nodes, None,
                 None if graph_dir.labels is None else np.array(graph_dir.labels),
                 class_names=None if header.class_names is None else list(header.class_names),
                 splits=None if masks is None else {"official": masks},
                 id_map=None if graph_dir.ids.kind == "dense" else graph_dir.ids,
                 csr_arrays=(graph_dir.indptr, graph_dir.indices), source_dir=graph_dir)


def symmetrize(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    """Undirected, de-duplicated, loop-free edge index from any edge list.

    Shapes:
        edges: integer ``[E, 2]`` (pairs; direction ignored).
        returns: ``int64 [2, E']`` sorted by (source, target), both directions present.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    edges = edges[edges[:, 0] != edges[:, 1]]
    both = np.concatenate([edges, edges[:, ::-1]], axis=0)
    # One int64 key per pair sorts and de-duplicates in a single pass.
    keys = np.unique(both[:, 0] * np.int64(num_nodes) + both[:, 1])
    return np.stack([keys // num_nodes, keys % num_nodes]).astype(np.int64)


def to_csr(edge_index: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency: neighbours of ``v`` are ``indices[indptr[v]:indptr[v+1]]``.

    Shapes:
        edge_index: ``int64 [2, E]`` (row = source).
        returns: ``indptr int64 [n + 1]``, ``indices int64 [E]``.
    """
    src, dst = edge_index
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=num_nodes)
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, dst[order].astype(np.int64)
