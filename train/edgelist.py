"""Reading users' own graphs: ``--edges FILE`` and ``--labels FILE``.

Edge files: delimited text (comma, tab or whitespace, detected from the first data line; an
optional header line; ``#`` comments and blank lines skipped), ``.npy`` of shape ``[E, 2]`` or
``[2, E]``, or Parquet (the first two integer columns). Label files: delimited text with
``node label`` rows, same rules; labels may be integers or names.

Every problem is reported as :class:`GraphInputError` naming the file and the line (text) or
row (binary) at fault.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hashembed.errors import GraphInputError
from hashembed.train.graph import Graph, check_node_ids, symmetrize

_INT = re.compile(r"[+-]?\d+\Z")


def _detect_delimiter(line: str) -> str | None:
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return None  # any whitespace


def _read_rows(path: Path, columns: int) -> tuple[list[tuple[int, list[str]]], bool]:
    """Data rows of a delimited text file as ``(line_number, fields)``, header dropped.

    Returns the rows and whether a header line was found.
    """
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GraphInputError(f"{path} is not a text file (and not .npy or .parquet)") from None
    rows: list[tuple[int, list[str]]] = []
    delimiter = None
    header = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if delimiter is None and not rows:
            delimiter = _detect_delimiter(line)
        fields = [f.strip() for f in (line.split(delimiter) if delimiter else line.split())]
        if not rows and not header and not _INT.match(fields[0]):
            header = True  # the first data line names its columns
            continue
        if len(fields) < columns:
            raise GraphInputError(
                f"{path}, line {lineno}: expected {columns} fields, got {len(fields)}: {raw!r}"
            )
        rows.append((lineno, fields[:columns]))
    if not rows:
        raise GraphInputError(f"{path} has no data rows")
    return rows, header


def _parse_id(path: Path, lineno: int, token: str) -> int:
    if not _INT.match(token):
        raise GraphInputError(f"{path}, line {lineno}: node id {token!r} is not an integer")
    value = int(token)
    if value < 0:
        raise GraphInputError(f"{path}, line {lineno}: node id {value} is negative")
    return value


def read_edges(path: str | Path, num_nodes: int | None = None) -> np.ndarray:
    """Read an edge list file.

    Args:
        path: ``.npy``, ``.parquet`` or delimited text.
        num_nodes: if given, ids must be below it.

    Returns:
        ``int64 [E, 2]`` as stored (not yet symmetrised).
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"edge file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        edges = _edges_from_array(path, _load_npy(path))
        where = "row"
    elif suffix in (".parquet", ".pq"):
        edges = _edges_from_array(path, _load_parquet(path))
        where = "row"
    else:
        rows, _ = _read_rows(path, 2)
        edges = np.array([[_parse_id(path, n, a), _parse_id(path, n, b)] for n, (a, b) in rows],
                         dtype=np.int64)
        lines = np.array([n for n, _ in rows])
        where = "line"
    if where == "row":
        negative = np.nonzero((edges < 0).any(axis=1))[0]
        if negative.size:
            raise GraphInputError(f"{path}, row {negative[0]}: negative node id "
                                  f"{int(edges[negative[0]].min())}")
    if num_nodes is not None:
        beyond = np.nonzero((edges >= num_nodes).any(axis=1))[0]
        if beyond.size:
            i = int(beyond[0])
            at = f"line {lines[i]}" if where == "line" else f"row {i}"
            raise GraphInputError(
                f"{path}, {at}: node id {int(edges[i].max())} is beyond --num-nodes {num_nodes}"
            )
    return edges


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GraphInputError(f"{path} is not a readable .npy array: {e}") from None


def _load_parquet(path: Path) -> np.ndarray:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise GraphInputError(
            f"reading {path} needs pyarrow: pip install 'hashembed[parquet]'"
        ) from None
    table = pq.read_table(path)
    columns = [c for c in table.column_names
               if np.issubdtype(table.column(c).type.to_pandas_dtype(), np.integer)]
    if len(columns) < 2:
        raise GraphInputError(f"{path} needs two integer columns, has {table.column_names}")
    return np.stack([table.column(c).to_numpy() for c in columns[:2]], axis=1)


def _edges_from_array(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim != 2 or 2 not in array.shape:
        raise GraphInputError(f"{path}: edges must have shape [E, 2] or [2, E], got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            flat = np.nonzero(np.mod(array, 1) != 0) if array.dtype.kind == "f" else ([0],)
            raise GraphInputError(f"{path}: node ids must be integers ({array.dtype}; first "
                                  f"non-integer at row {int(flat[0][0])})")
    if array.shape[1] != 2:
        array = array.T
    return array.astype(np.int64)


def read_labels(path: str | Path, num_nodes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a ``node label`` file.

    Returns:
        ``nodes int64 [L]``, ``labels int64 [L]`` and the class names when labels were not
        integers (class ``i`` is ``names[i]``, sorted), else ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"label file {path} does not exist")
    rows, _ = _read_rows(path, 2)
    nodes = np.array([_parse_id(path, n, node) for n, (node, _) in rows], dtype=np.int64)
    tokens = [label for _, (_, label) in rows]
    names = None
    if all(_INT.match(t) for t in tokens):
        labels = np.array([int(t) for t in tokens], dtype=np.int64)
        negative = np.nonzero(labels < 0)[0]
        if negative.size:
            raise GraphInputError(f"{path}, line {rows[negative[0]][0]}: label "
                                  f"{labels[negative[0]]} is negative")
    else:
        names = sorted(set(tokens))
        lookup = {name: i for i, name in enumerate(names)}
        labels = np.array([lookup[t] for t in tokens], dtype=np.int64)
    seen, first = np.unique(nodes, return_index=True)
    if seen.size != nodes.size:
        dup = np.setdiff1d(np.arange(nodes.size), first)[0]
        raise GraphInputError(f"{path}, line {rows[dup][0]}: node {nodes[dup]} is labelled twice")
    if num_nodes is not None:
        beyond = np.nonzero(nodes >= num_nodes)[0]
        if beyond.size:
            raise GraphInputError(f"{path}, line {rows[beyond[0]][0]}: node id "
                                  f"{nodes[beyond[0]]} is beyond the graph's {num_nodes} nodes")
    return nodes, labels, names


def load_edge_list_graph(edges_path: str | Path, labels_path: str | Path | None = None,
                         num_nodes: int | None = None) -> Graph:
    """A :class:`Graph` from user files; ``n`` is ``num_nodes`` or the largest id + 1."""
    edges = read_edges(edges_path, num_nodes)
    nodes = labels = names = None
    if labels_path is not None:
        nodes, labels, names = read_labels(labels_path, num_nodes)
    if num_nodes is None:
        candidates = [edges.max() if edges.size else -1]
        if nodes is not None:
            candidates.append(nodes.max())
        num_nodes = int(max(candidates)) + 1
    if num_nodes <= 0:
        raise GraphInputError(f"{edges_path} describes an empty graph")
    check_node_ids(edges, num_nodes, str(edges_path))
    node_labels = None
    if labels is not None:
        node_labels = np.full(num_nodes, -1, dtype=np.int64)
        node_labels[nodes] = labels
    return Graph(name=Path(edges_path).stem, num_nodes=num_nodes,
                 edge_index=symmetrize(edges, num_nodes), labels=node_labels, class_names=names)
