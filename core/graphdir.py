"""The graph directory format: a graph on disk that every stage memory-maps, never loads whole.

Layout (format version 1), beside the bundle format and written the same way (staged, then
renamed into place; ``graph.json`` last, sealed by a digest)::

    GRAPH_DIR/
      graph.json      format + version, name, n, undirected edges, CSR entries, index dtype,
                      id kind, class names, splits, how it was made, size + sha256 of every
                      file, digest
      indptr.npy      int64 [n + 1]       CSR row pointers (row v lists v's neighbours)
      indices.npy     int32 [nnz] if n < 2^31, else int64   neighbours, sorted within a row;
                      symmetric, no self-loops, no duplicates
      labels.npy      int64 [n], -1 where unlabelled            (optional)
      mask_train.npy, mask_val.npy, mask_test.npy   bool [n]    (optional)
      ids_*.npy       the users' own node ids (hashembed.core.idmap), when not 0 .. n-1

Torch-free. :func:`open_graph` checks the header, its digest and every file's size (and, with
``verify=True``, sha256) and memory-maps the arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashembed import __version__
from hashembed.core.artifact import ArtifactFormat, ArtifactWriter, utc_now
from hashembed.core.errors import GraphInputError
from hashembed.core.idmap import ID_FILES, ID_KINDS, IdMap

GRAPH_FORMAT = ArtifactFormat("hashembed-graph", 1, "graph.json", "graph directory",
                              error=GraphInputError, remake="build the graph again")
HEADER_NAME = GRAPH_FORMAT.header
INDPTR_FILE = "indptr.npy"
INDICES_FILE = "indices.npy"
LABELS_FILE = "labels.npy"
SPLIT_NAMES = ("train", "val", "test")
INT32_LIMIT = 2**31 - 1


def mask_file(split: str) -> str:
    return f"mask_{split}.npy"


def index_dtype(num_nodes: int) -> np.dtype:
    """The dtype of ``indices``: int32 while every row number fits, else int64."""
    return np.dtype(np.int32) if num_nodes <= INT32_LIMIT else np.dtype(np.int64)


@dataclass(frozen=True)
class GraphHeader:
    """What ``graph.json`` says.

    Attributes:
        name: where the graph came from.
        num_nodes: ``n``; num_edges: undirected edges; num_csr_entries: ``2 × edges``.
        id_kind: ``dense``, ``int`` or ``str`` (:mod:`hashembed.core.idmap`).
        class_names: label names when labels had names; splits: the masks stored.
        source: how it was made (command, inputs), free-form.
        files: file name -> ``{"bytes", "sha256"}``.
    """

    name: str
    num_nodes: int
    num_edges: int
    num_csr_entries: int
    id_kind: str = "dense"
    has_labels: bool = False
    class_names: tuple[str, ...] | None = None
    splits: tuple[str, ...] = ()
    source: dict = field(default_factory=dict)
    package_version: str = __version__
    created: str = ""
    files: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_nodes < 1 or self.num_csr_entries != 2 * self.num_edges or \
                self.id_kind not in ID_KINDS or not set(self.splits) <= set(SPLIT_NAMES):
            raise GraphInputError(f"inconsistent graph header: n={self.num_nodes}, edges="
                                  f"{self.num_edges}, csr={self.num_csr_entries}, ids="
                                  f"{self.id_kind!r}, splits={self.splits}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "num_nodes": self.num_nodes, "num_edges": self.num_edges,
                "num_csr_entries": self.num_csr_entries,
                "index_dtype": index_dtype(self.num_nodes).name, "id_kind": self.id_kind,
                "has_labels": self.has_labels,
                "class_names": None if self.class_names is None else list(self.class_names),
                "splits": list(self.splits), "source": self.source,
                "package_version": self.package_version, "created": self.created,
                "files": self.files}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "GraphHeader":
        try:
            names = data["class_names"]
            return cls(name=str(data["name"]), num_nodes=int(data["num_nodes"]),
                       num_edges=int(data["num_edges"]),
                       num_csr_entries=int(data["num_csr_entries"]),
                       id_kind=str(data["id_kind"]), has_labels=bool(data["has_labels"]),
                       class_names=None if names is None else tuple(map(str, names)),
                       splits=tuple(data["splits"]), source=dict(data["source"]),
                       package_version=str(data["package_version"]),
                       created=str(data["created"]), files=dict(data["files"]))
        except (KeyError, TypeError, ValueError) as e:
            raise GraphInputError(f"{where} lacks or mistypes a field: {e}") from None


class GraphWriter(ArtifactWriter):
    """Stage a graph directory; write arrays with :meth:`save_array` or :meth:`open_array`,
    then :meth:`write_header` (last) and :meth:`commit`."""

    def __init__(self, out_dir: str | os.PathLike, overwrite: bool = False, inputs=()):
        super().__init__(GRAPH_FORMAT, out_dir, overwrite=overwrite, inputs=inputs)

    def write_header(self, header: GraphHeader) -> GraphHeader:  # type: ignore[override]
        content = super().write_header({**header.to_dict(), "created": utc_now()})
        return GraphHeader.from_dict(content, str(self.path / HEADER_NAME))


@dataclass(frozen=True)
class GraphDir:
    """An opened graph directory: the header and memory-mapped arrays.

    Attributes:
        indptr: ``int64 [n + 1]``; indices: ``int32|int64 [nnz]``.
        labels: ``int64 [n]`` or ``None``; masks: split -> ``bool [n]``.
        ids: the id map of the rows.
    """

    path: Path
    header: GraphHeader
    digest: str
    indptr: np.ndarray
    indices: np.ndarray
    labels: np.ndarray | None
    masks: dict
    ids: IdMap

    @property
    def num_nodes(self) -> int:
        return self.header.num_nodes

    def degrees(self) -> np.ndarray:
        """``int64 [n]`` neighbours per node."""
        return np.diff(self.indptr)


def read_slice(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]`` of a 1-D array as a fresh in-memory copy. From a memory map it is
    read from the file (``pread``), not through the mapping, so a pass over a graph's CSR does
    not leave every page it read counted in the process's resident memory."""
    itemsize = array.dtype.itemsize
    # only a whole .npy array read by np.load (its data runs to the end of the file): a view
    # of a memory map keeps the map's offset, which would not be the view's
    if (isinstance(array, np.memmap) and array.ndim == 1 and array.filename is not None
            and array.offset + array.shape[0] * itemsize == os.path.getsize(array.filename)):
        with open(array.filename, "rb") as f:
            return np.fromfile(f, dtype=array.dtype, count=max(0, stop - start),
                               offset=array.offset + start * itemsize)
    return np.array(array[start:stop])


def _array(path: Path, dtype, length: int | None) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GraphInputError(f"{path} is not a readable .npy array: {e}") from None
    if array.dtype != np.dtype(dtype) or array.ndim != 1 or (
            length is not None and array.shape[0] != length):
        raise GraphInputError(f"{path} holds {array.dtype} {list(array.shape)}, the header "
                              f"implies {np.dtype(dtype)} [{length if length is not None else '*'}]")
    return array


def open_graph(graph_dir: str | os.PathLike, verify: bool = False) -> GraphDir:
    """Check and memory-map a graph directory (sizes always; sha256 too with ``verify``)."""
    path = Path(graph_dir)
    content = GRAPH_FORMAT.read_header(path)
    header = GraphHeader.from_dict(content, str(path / HEADER_NAME))
    GRAPH_FORMAT.check_files(path, header.files, hashed=verify)
    n = header.num_nodes
    indptr = _array(path / INDPTR_FILE, np.int64, n + 1)
    indices = _array(path / INDICES_FILE, index_dtype(n), header.num_csr_entries)
    if indptr[0] != 0 or indptr[n] != header.num_csr_entries:
        raise GraphInputError(f"{path / INDPTR_FILE} does not span the CSR entries")
    labels = _array(path / LABELS_FILE, np.int64, n) if header.has_labels else None
    masks = {s: _array(path / mask_file(s), np.bool_, n) for s in header.splits}
    ids = IdMap.load(header.id_kind, n, path) if ID_FILES[header.id_kind] else IdMap.dense(n)
    return GraphDir(path, header, content["digest"], indptr, indices, labels, masks, ids)
