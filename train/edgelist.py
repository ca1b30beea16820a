"""Reading users' own graphs: ``--edges FILE`` and ``--labels FILE``.

Edge files:

* delimited text: comma, tab or whitespace (detected from the first data line), UTF-8 with
  or without a byte-order mark, ``#`` comments and blank lines skipped. The first line is a
  header only when **none** of its fields is an integer (the log says when one was skipped).
  With a header the edge ends are chosen **by name** (below); without one they are the first
  two fields (further fields, e.g. weights, are ignored).
* ``.npy``: integer ``[E, 2]`` or ``[2, E]``.
* Parquet: the two columns chosen by name.

Choosing columns by name: ``--src-col``/``--dst-col`` if given; otherwise the one pair of
:data:`EDGE_COLUMN_PAIRS` the file has (case-insensitive); otherwise, for a file of exactly two
columns, those two. Anything else (``[edge_id, a, b]``, or two known pairs at once) is refused
as ambiguous rather than guessed.

Label files: ``node label`` rows, same text rules; the label is the rest of the line (names
with spaces stay whole). One rule per file: every label an integer (class ids ``0 .. K-1``),
or every label a name (classes numbered by sorted name; the mapping travels with the run and
the bundle). A file mixing the two is refused.

Node ids are row numbers ``0 .. n-1``; ``n`` is ``--num-nodes`` or the largest id + 1. Ids that
would make ``n`` far larger than the ids present (e.g. one id of 2⁴⁰) are refused before
anything is allocated. Every problem is a :class:`GraphInputError` naming the file and the line
(text) or row (binary).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from hashembed.errors import GraphInputError
from hashembed.train.graph import Graph, check_node_ids, symmetrize

log = logging.getLogger(__name__)

_INT = re.compile(r"[+-]?\d+\Z")
INT64_MAX = 2**63 - 1
# column-name pairs recognised for the two ends of an edge, in no order of preference
EDGE_COLUMN_PAIRS = (("src", "dst"), ("source", "target"), ("id_1", "id_2"), ("from", "to"),
                     ("u", "v"))
# n larger than this many times the distinct ids present (and than DENSE_SLACK) is refused:
# ids are row numbers here, and a stray huge id would allocate per-node arrays for nothing
SPARSE_ID_FACTOR = 16
DENSE_SLACK = 1 << 20
# bytes that coding and training keep per node (labels, masks, codes, CSR, degrees, …)
BYTES_PER_NODE_ESTIMATE = 64
MAX_CLASSES = 10_000


def _detect_delimiter(line: str) -> str | None:
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return None  # any whitespace


def _split(line: str, delimiter: str | None, maxsplit: int = -1) -> list[str]:
    parts = line.split(delimiter, maxsplit) if delimiter else line.split(None, maxsplit)
    return [f.strip() for f in parts]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # strips a byte-order mark
    except UnicodeDecodeError:
        raise GraphInputError(f"{path} is not a UTF-8 text file (nor .npy or .parquet)") from None


def _data_lines(path: Path):
    """``(line_number, stripped_line)`` of every non-blank, non-comment line."""
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def _is_header(fields: list[str]) -> bool:
    """A first line is a header only when none of its fields could be a node id or label."""
    return not any(_INT.match(f) for f in fields)


def choose_columns(names: list[str], src_col: str | None, dst_col: str | None,
                   where: str) -> tuple[int, int]:
    """Positions of the source and target columns among ``names`` (see module docstring)."""
    lowered = [n.strip().lower() for n in names]
    if src_col or dst_col:
        if not (src_col and dst_col):
            raise GraphInputError("give both --src-col and --dst-col, or neither")
        chosen = []
        for flag, col in (("--src-col", src_col), ("--dst-col", dst_col)):
            if col.lower() not in lowered:
                raise GraphInputError(f"{where}: {flag} {col!r} is not a column; columns: "
                                      f"{names}")
            chosen.append(lowered.index(col.lower()))
        return chosen[0], chosen[1]
    found = [(lowered.index(a), lowered.index(b)) for a, b in EDGE_COLUMN_PAIRS
             if a in lowered and b in lowered]
    if len(found) == 1:
        return found[0]
    if not found and len(names) == 2:
        return 0, 1
    why = "several known pairs" if found else "no known pair"
    raise GraphInputError(
        f"{where}: cannot tell which columns of {names} are the edge ends ({why}); pass "
        f"--src-col and --dst-col (known pairs: "
        f"{', '.join('/'.join(p) for p in EDGE_COLUMN_PAIRS)})")


def _parse_id(path: Path, lineno: int, token: str) -> int:
    if not _INT.match(token):
        raise GraphInputError(f"{path}, line {lineno}: node id {token[:40]!r} is not an integer")
    value = int(token)
    if value < 0:
        raise GraphInputError(f"{path}, line {lineno}: node id {value} is negative")
    if value > INT64_MAX:
        raise GraphInputError(f"{path}, line {lineno}: node id {value} does not fit in 64 bits")
    return value


def _read_text_edges(path: Path, src_col: str | None, dst_col: str | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``int64 [E, 2]`` edges and ``int64 [E]`` their line numbers."""
    edges, lines = [], []
    delimiter, columns = None, None
    for lineno, line in _data_lines(path):
        if columns is None:
            delimiter = _detect_delimiter(line)
            fields = _split(line, delimiter)
            if _is_header(fields):
                columns = choose_columns(fields, src_col, dst_col, str(path))
                log.info("%s: line %d is a header (%s); edges are columns %r -> %r", path,
                         lineno, line[:80], fields[columns[0]], fields[columns[1]])
                continue
            if src_col or dst_col:
                raise GraphInputError(f"{path} has no header line, so --src-col/--dst-col "
                                      "cannot name its columns")
            columns = (0, 1)
        fields = _split(line, delimiter)
        if len(fields) <= max(columns):
            raise GraphInputError(f"{path}, line {lineno}: expected {max(columns) + 1} fields, "
                                  f"got {len(fields)}: {line[:80]!r}")
        edges.append((_parse_id(path, lineno, fields[columns[0]]),
                      _parse_id(path, lineno, fields[columns[1]])))
        lines.append(lineno)
    if not edges:
        raise GraphInputError(f"{path} has no data rows")
    return np.array(edges, dtype=np.int64), np.array(lines, dtype=np.int64)


def read_edges(path: str | Path, num_nodes: int | None = None, src_col: str | None = None,
               dst_col: str | None = None) -> np.ndarray:
    """Read an edge list file (see module docstring).

    Args:
        path: ``.npy``, ``.parquet`` or delimited text.
        num_nodes: if given, ids must be below it.
        src_col, dst_col: column names of the edge ends (Parquet, or text with a header).

    Returns:
        ``int64 [E, 2]`` as stored (not yet symmetrised).
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"edge file {path} does not exist")
    suffix = path.suffix.lower()
    lines = None
    if suffix == ".npy":
        edges = _edges_from_array(path, _load_npy(path))
    elif suffix in (".parquet", ".pq"):
        edges = _edges_from_array(path, _load_parquet(path, src_col, dst_col))
    else:
        edges, lines = _read_text_edges(path, src_col, dst_col)
    if num_nodes is not None:
        beyond = np.nonzero((edges >= num_nodes).any(axis=1))[0]
        if beyond.size:
            i = int(beyond[0])
            at = f"line {lines[i]}" if lines is not None else f"row {i}"
            raise GraphInputError(
                f"{path}, {at}: node id {int(edges[i].max())} is beyond --num-nodes {num_nodes}"
            )
    return edges


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GraphInputError(f"{path} is not a readable .npy array: {e}") from None


def _load_parquet(path: Path, src_col: str | None, dst_col: str | None) -> np.ndarray:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GraphInputError(
            f"reading {path} needs pyarrow: pip install 'hashembed[parquet]'"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        src, dst = choose_columns(names, src_col, dst_col, str(path))
        table = parquet.read(columns=[names[src], names[dst]])
    except (pa.ArrowException, OSError) as e:
        raise GraphInputError(f"{path} is not a readable Parquet file: {e}") from None
    for column in table.column_names:
        if not pa.types.is_integer(table.schema.field(column).type):
            raise GraphInputError(f"{path}: column {column!r} holds "
                                  f"{table.schema.field(column).type}, not integer node ids")
        if table.column(column).null_count:
            raise GraphInputError(f"{path}: column {column!r} has missing values")
    log.info("%s: edges are columns %r -> %r", path, names[src], names[dst])
    return np.stack([table.column(c).to_numpy() for c in table.column_names], axis=1)


def _edges_from_array(path: Path, array: np.ndarray) -> np.ndarray:
    """Validate an ``[E, 2]`` or ``[2, E]`` array of ids; ``int64 [E, 2]``."""
    if array.ndim != 2 or 2 not in array.shape:
        raise GraphInputError(f"{path}: edges must have shape [E, 2] or [2, E], got {array.shape}")
    if array.shape[1] != 2:
        array = array.T
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating):
            bad = np.nonzero(~np.isfinite(array).all(axis=1) | (np.mod(array, 1) != 0).any(axis=1)
                             | (np.abs(array) > INT64_MAX).any(axis=1))[0]
            if bad.size:
                raise GraphInputError(f"{path}: node ids must be integers ({array.dtype}; first "
                                      f"non-integer at row {int(bad[0])})")
        else:
            raise GraphInputError(f"{path}: node ids must be integers, got {array.dtype}")
    elif array.dtype == np.uint64:
        big = np.nonzero((array > np.uint64(INT64_MAX)).any(axis=1))[0]
        if big.size:
            raise GraphInputError(f"{path}, row {int(big[0])}: node id "
                                  f"{int(array[big[0]].max())} does not fit in 64 bits")
    array = array.astype(np.int64)
    negative = np.nonzero((array < 0).any(axis=1))[0]
    if negative.size:
        raise GraphInputError(f"{path}, row {negative[0]}: negative node id "
                              f"{int(array[negative[0]].min())}")
    return array


def read_labels(path: str | Path, num_nodes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a ``node label`` file (see module docstring).

    Returns:
        ``nodes int64 [L]``, ``labels int64 [L]`` and the class names when labels are names
        (class ``i`` is ``names[i]``, sorted), else ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"label file {path} does not exist")
    rows: list[tuple[int, str, str]] = []
    delimiter = None
    for lineno, line in _data_lines(path):
        if not rows and delimiter is None:
            delimiter = _detect_delimiter(line)
            if _is_header(_split(line, delimiter)):
                log.info("%s: line %d is a header (%s)", path, lineno, line[:80])
                continue
        fields = _split(line, delimiter, maxsplit=1)
        if len(fields) < 2 or not fields[1]:
            raise GraphInputError(f"{path}, line {lineno}: expected 'node label', got "
                                  f"{line[:80]!r}")
        rows.append((lineno, fields[0], fields[1]))
    if not rows:
        raise GraphInputError(f"{path} has no data rows")
    nodes = np.array([_parse_id(path, n, node) for n, node, _ in rows], dtype=np.int64)
    seen, first = np.unique(nodes, return_index=True)
    if seen.size != nodes.size:
        dup = np.setdiff1d(np.arange(nodes.size), first)[0]
        raise GraphInputError(f"{path}, line {rows[dup][0]}: node {nodes[dup]} is labelled twice")
    is_int = [bool(_INT.match(label)) for _, _, label in rows]
    names = None
    if all(is_int):
        labels = np.array([int(label) for _, _, label in rows], dtype=object)
        negative = [i for i, v in enumerate(labels) if v < 0]
        if negative:
            raise GraphInputError(f"{path}, line {rows[negative[0]][0]}: label "
                                  f"{labels[negative[0]]} is negative")
        top = int(np.argmax(labels))
        num_classes = int(labels[top]) + 1
        if num_classes > min(MAX_CLASSES, len(rows)):
            raise GraphInputError(
                f"{path}, line {rows[top][0]}: label {labels[top]} makes {num_classes:,} "
                f"classes for {len(rows):,} labelled nodes; integer labels must be class ids "
                f"0 .. K-1 with K at most {MAX_CLASSES:,} (are the node and label columns "
                "swapped? write labels as names to number them densely)")
        labels = labels.astype(np.int64)
    elif not any(is_int):
        names = sorted({label for _, _, label in rows})
        if len(names) > min(MAX_CLASSES, max(len(rows) // 2, 2)):
            raise GraphInputError(
                f"{path}: {len(names):,} distinct label names for {len(rows):,} labelled "
                f"nodes; is the label column an id (node and label swapped)?")
        lookup = {name: i for i, name in enumerate(names)}
        labels = np.array([lookup[label] for _, _, label in rows], dtype=np.int64)
        log.info("%s: %d classes by name (%s)", path, len(names),
                 ", ".join(names[:5]) + (", …" if len(names) > 5 else ""))
    else:
        first_int, first_name = is_int.index(True), is_int.index(False)
        raise GraphInputError(
            f"{path}: labels mix integers (line {rows[first_int][0]}: "
            f"{rows[first_int][2]!r}) and names (line {rows[first_name][0]}: "
            f"{rows[first_name][2]!r}); use one kind throughout")
    if num_nodes is not None:
        beyond = np.nonzero(nodes >= num_nodes)[0]
        if beyond.size:
            raise GraphInputError(f"{path}, line {rows[beyond[0]][0]}: node id "
                                  f"{nodes[beyond[0]]} is beyond the graph's {num_nodes} nodes")
    return nodes, labels, names


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_num_nodes(num_nodes: int, distinct_ids: int, largest: int, where: str,
                    given: bool) -> None:
    """Refuse an ``n`` that per-node arrays could not hold, or that a stray id inflated.

    Args:
        num_nodes: ``n`` (``--num-nodes``, or the largest id + 1).
        distinct_ids: how many different ids the files name.
        largest: the largest id, for the message.
        given: ``n`` came from ``--num-nodes`` (only the memory bound applies).
    """
    if not given and num_nodes > max(DENSE_SLACK, SPARSE_ID_FACTOR * distinct_ids):
        raise GraphInputError(
            f"{where}: node id {largest:,} would make the graph {num_nodes:,} nodes, but only "
            f"{distinct_ids:,} distinct ids appear; ids must be row numbers 0 .. n-1 here "
            "(renumber them, or pass --num-nodes if the graph really is that large)")
    memory = _physical_memory()
    need = num_nodes * BYTES_PER_NODE_ESTIMATE
    if memory is not None and need > memory:
        raise GraphInputError(
            f"{where}: n = {num_nodes:,} nodes needs about {need / 2**30:,.0f} GiB for per-node "
            f"arrays; this machine has {memory / 2**30:,.0f} GiB")


def load_edge_list_graph(edges_path: str | Path, labels_path: str | Path | None = None,
                         num_nodes: int | None = None, src_col: str | None = None,
                         dst_col: str | None = None) -> Graph:
    """A :class:`Graph` from user files; ``n`` is ``num_nodes`` or the largest id + 1."""
    if num_nodes is not None and num_nodes < 1:
        raise GraphInputError(f"--num-nodes {num_nodes} must be positive")
    if num_nodes is not None:
        check_num_nodes(num_nodes, 0, num_nodes - 1, "--num-nodes", given=True)
    edges = read_edges(edges_path, num_nodes, src_col, dst_col)
    nodes = labels = names = None
    if labels_path is not None:
        nodes, labels, names = read_labels(labels_path, num_nodes)
    if num_nodes is None:
        ids = np.unique(edges) if nodes is None else np.union1d(np.unique(edges), nodes)
        if ids.size == 0:
            raise GraphInputError(f"{edges_path} describes an empty graph")
        num_nodes = int(ids[-1]) + 1
        check_num_nodes(num_nodes, int(ids.size), int(ids[-1]), str(edges_path), given=False)
    check_node_ids(edges, num_nodes, str(edges_path))
    node_labels = None
    if labels is not None:
        node_labels = np.full(num_nodes, -1, dtype=np.int64)
        node_labels[nodes] = labels
    return Graph(name=Path(edges_path).stem, num_nodes=num_nodes,
                 edge_index=symmetrize(edges, num_nodes), labels=node_labels, class_names=names)
