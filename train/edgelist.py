"""Reading users' own graphs: ``--edges FILE`` and ``--labels FILE``.

Edge files:

* delimited text: comma, tab or whitespace (detected from the first data line), UTF-8 with
  or without a byte-order mark, ``#`` comments and blank lines skipped. The first line is a
  header only when **none** of its fields is an integer and either the next line has an
  integer field or it names known columns (so a first line of string ids stays data); the log
  says when one was skipped.
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

import csv
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashembed.errors import GraphInputError
from hashembed.idmap import INT_TOKEN, IdMap
from hashembed.train.graph import Graph, symmetrize

log = logging.getLogger(__name__)

_INT = INT_TOKEN
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
    """Fields of a line: CSV rules (quotes) for comma and tab, runs of white space otherwise."""
    if delimiter is None:
        return [f.strip() for f in line.split(None, maxsplit)]
    if maxsplit >= 0 and '"' not in line:
        return [f.strip() for f in line.split(delimiter, maxsplit)]
    fields = next(csv.reader([line], delimiter=delimiter))
    if maxsplit >= 0 and len(fields) > maxsplit + 1:
        fields = fields[:maxsplit] + [delimiter.join(fields[maxsplit:])]
    return [f.strip() for f in fields]


def _data_lines(path: Path):
    """``(line_number, stripped_line)`` of every non-blank, non-comment line, read line by
    line (``graph build`` reads the first few lines of files of any size); lines end at
    ``\n``, ``\r\n`` or ``\r``, as for pyarrow's CSV reader (not at the form feeds and
    Unicode separators where ``str.splitlines`` also breaks)."""
    try:
        with open(path, encoding="utf-8-sig") as text:  # strips a byte-order mark
            for lineno, raw in enumerate(text, start=1):
                line = raw.strip()
                if line and not line.startswith("#"):
                    yield lineno, line
    except UnicodeDecodeError:
        raise GraphInputError(f"{path} is not a UTF-8 text file (nor .npy or .parquet)") from None
    except OSError as e:
        raise GraphInputError(f"{path} cannot be read: {e.strerror}") from None


# first fields of a label file's header (lower case)
NODE_COLUMN_NAMES = ("node", "nodes", "node_id", "id", "vertex", "user", "user_id", "item")


def _is_header(fields: list[str], following: list[str] | None, known: set[str],
               string_ids: bool = False) -> bool:
    """Whether a first line names its columns rather than holding data.

    Never when one of its fields is an integer (it could be an id). Otherwise yes when it names
    known columns (``known``, lower case), or — unless ids are strings (``--id-type str``) —
    when the next line has an integer field (names above numbers). So a first line of string
    ids is kept as data.
    """
    if any(_INT.match(f) for f in fields):
        return False
    if any(f.lower() in known for f in fields):
        return True
    return not string_ids and following is not None and any(_INT.match(f) for f in following)


def choose_columns(names: list[str], src_col: str | None, dst_col: str | None,
                   where: str) -> tuple[int, int]:
    """Positions of the source and target columns among ``names`` (see module docstring)."""
    lowered = [n.strip().lower() for n in names]
    if src_col or dst_col:
        if not (src_col and dst_col):
            raise GraphInputError("give both --src-col and --dst-col, or neither")
        if src_col.lower() == dst_col.lower():
            raise GraphInputError(f"--src-col and --dst-col both name {src_col!r}; name the "
                                  "two ends of an edge")
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


def _read_text_edges(path: Path, src_col: str | None, dst_col: str | None,
                     string_ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Id tokens ``object [E, 2]`` (strings, as written) and ``int64 [E]`` their line numbers."""
    edges, lines = [], []
    delimiter, columns = None, None
    data = list(_data_lines(path))
    known = {name for pair in EDGE_COLUMN_PAIRS for name in pair}
    known |= {c.lower() for c in (src_col, dst_col) if c}
    for lineno, line in data:
        if columns is None:
            delimiter = _detect_delimiter(line)
            fields = _split(line, delimiter)
            following = _split(data[1][1], delimiter) if len(data) > 1 else None
            if _is_header(fields, following, known, string_ids):
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
        edges.append((fields[columns[0]], fields[columns[1]]))
        lines.append(lineno)
    if not edges:
        raise GraphInputError(f"{path} has no data rows")
    tokens = np.empty((len(edges), 2), dtype=object)
    tokens[:] = edges
    return tokens, np.array(lines, dtype=np.int64)


@dataclass
class IdColumn:
    """Node ids as read from one file, before they are mapped to rows.

    Attributes:
        values: ``int64`` (binary files) or ``object`` strings (text tokens), any shape.
        path: the file.
        lines: ``int64`` line number of each leading-axis entry (text), or ``None`` (rows).
    """

    values: np.ndarray
    path: Path
    lines: np.ndarray | None = None

    def where(self, flat_index: int) -> str:
        """"FILE, line L" / "FILE, row R" of entry ``flat_index`` of ``values.ravel()``."""
        per = int(np.prod(self.values.shape[1:])) if self.values.ndim > 1 else 1
        i = flat_index // per
        return f"{self.path}, line {self.lines[i]}" if self.lines is not None \
            else f"{self.path}, row {i}"


def read_edge_ids(path: str | Path, src_col: str | None = None,
                  dst_col: str | None = None, string_ids: bool = False) -> IdColumn:
    """The edge list of ``path`` as unmapped ids ``[E, 2]`` (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"edge file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return IdColumn(_edges_from_array(path, _load_npy(path)), path)
    if suffix in (".parquet", ".pq"):
        return IdColumn(_load_parquet(path, src_col, dst_col), path)
    tokens, lines = _read_text_edges(path, src_col, dst_col, string_ids)
    return IdColumn(tokens, path, lines)


def read_edges(path: str | Path, num_nodes: int | None = None, src_col: str | None = None,
               dst_col: str | None = None) -> np.ndarray:
    """Read an edge list of row numbers ``0 .. n-1`` (dense ids).

    Args:
        path: ``.npy``, ``.parquet`` or delimited text.
        num_nodes: if given, ids must be below it.
        src_col, dst_col: column names of the edge ends (Parquet, or text with a header).

    Returns:
        ``int64 [E, 2]`` as stored (not yet symmetrised).
    """
    column = _as_ints(read_edge_ids(path, src_col, dst_col), "dense")
    _check_dense(column, num_nodes)
    return column.values


def _as_ints(column: IdColumn, kind: str) -> IdColumn:
    """``column`` with int64 values; text tokens are parsed, each problem named by its line."""
    if column.values.dtype != object:
        return column
    flat = column.values.ravel()
    out = np.empty(flat.size, dtype=np.int64)
    for i, token in enumerate(flat):
        if not _INT.match(token):
            raise GraphInputError(f"{column.where(i)}: node id {token[:40]!r} is not an integer"
                                  + ("" if kind == "dense" else " (pass --id-type str for "
                                     "string ids)"))
        value = int(token)
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise GraphInputError(f"{column.where(i)}: node id {value} does not fit in 64 bits "
                                  "(pass --id-type str to read ids as strings)")
        out[i] = value
    return IdColumn(out.reshape(column.values.shape), column.path, column.lines)


def _check_dense(column: IdColumn, num_nodes: int | None) -> None:
    """Dense ids are rows: non-negative, and below ``num_nodes`` when it is given."""
    flat = column.values.ravel()
    negative = np.nonzero(flat < 0)[0]
    if negative.size:
        raise GraphInputError(f"{column.where(int(negative[0]))}: node id "
                              f"{int(flat[negative[0]])} is negative")
    if num_nodes is not None:
        beyond = np.nonzero(flat >= num_nodes)[0]
        if beyond.size:
            raise GraphInputError(f"{column.where(int(beyond[0]))}: node id "
                                  f"{int(flat[beyond[0]])} is beyond --num-nodes {num_nodes}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GraphInputError(f"{path} is not a readable .npy array: {e}") from None


def _load_parquet(path: Path, src_col: str | None, dst_col: str | None) -> np.ndarray:
    """A Parquet file's edges, whole (:func:`parquet_chunks` joined)."""
    chunks = list(parquet_chunks(path, src_col, dst_col))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def parquet_chunks(path: Path, src_col: str | None, dst_col: str | None,
                   rows: int = 1 << 22) -> Iterator[np.ndarray]:
    """A Parquet file's edges in chunks of at most ``rows`` rows, read batch by batch (never
    the whole file): ``int64 [k, 2]`` for integer columns, else ``object [k, 2]`` of
    stripped strings. Errors name the file, the column and, for a bad id, the row."""
    for first, columns in parquet_batches(path, src_col, dst_col, rows):
        if pa_is_integer(columns[0]):
            yield _edges_from_array(path, np.stack([c.to_numpy() for c in columns], axis=1),
                                    first)
        else:
            stacked = np.empty((len(columns[0]), 2), dtype=object)
            stacked[:, 0], stacked[:, 1] = [c.to_numpy(zero_copy_only=False) for c in columns]
            yield np.vectorize(str.strip, otypes=[object])(stacked) if stacked.size \
                else stacked


def pa_is_integer(column) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(column.type)


def parquet_batches(path: Path, src_col: str | None, dst_col: str | None,
                    rows: int = 1 << 22) -> Iterator[tuple[int, list]]:
    """``(first_row, [source, target])`` pyarrow arrays of a Parquet file's edge columns (both
    integers or both strings, no missing value), at most ``rows`` rows a batch."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GraphInputError(
            f"reading {path} needs pyarrow (a dependency of hashembed: reinstall the package)"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        src, dst = choose_columns(names, src_col, dst_col, str(path))
        chosen = [names[src], names[dst]]
        types = [parquet.schema_arrow.field(c).type for c in chosen]
    except (pa.ArrowException, OSError) as e:
        raise GraphInputError(f"{path} is not a readable Parquet file: {e}") from None
    for column, kind in zip(chosen, types):
        if not (pa.types.is_integer(kind) or pa.types.is_string(kind)
                or pa.types.is_large_string(kind)):
            raise GraphInputError(f"{path}: column {column!r} holds {kind}, not integer or "
                                  "string node ids")
    if len({pa.types.is_integer(kind) for kind in types}) > 1:
        raise GraphInputError(f"{path}: one edge column holds integers, the other strings")
    log.info("%s: edges are columns %r -> %r", path, *chosen)
    first = 0
    try:
        for batch in parquet.iter_batches(batch_size=rows, columns=chosen):
            for column, values in zip(chosen, batch.columns):
                if values.null_count:
                    row = first + int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
                    raise GraphInputError(f"{path}: column {column!r} has a missing value at "
                                          f"row {row}")
            yield first, list(batch.columns)
            first += batch.num_rows
    except (pa.ArrowException, OSError) as e:
        raise GraphInputError(f"{path} is not a readable Parquet file: {e}") from None


def _edges_from_array(path: Path, array: np.ndarray, first_row: int = 0) -> np.ndarray:
    """Validate an ``[E, 2]`` or ``[2, E]`` array of ids; ``int64 [E, 2]``. ``first_row``:
    the file row of ``array[0]``, for error messages about a chunk of a file."""
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
                                      f"non-integer at row {first_row + int(bad[0])})")
        else:
            raise GraphInputError(f"{path}: node ids must be integers, got {array.dtype}")
    elif array.dtype == np.uint64:
        big = np.nonzero((array > np.uint64(INT64_MAX)).any(axis=1))[0]
        if big.size:
            raise GraphInputError(f"{path}, row {first_row + int(big[0])}: node id "
                                  f"{int(array[big[0]].max())} does not fit in 64 bits")
    return array.astype(np.int64)


def read_label_rows(path: str | Path, string_ids: bool = False
                    ) -> tuple[IdColumn, np.ndarray, list[str] | None]:
    """A ``node label`` file as unmapped node ids (tokens), labels and class names.

    Returns:
        the node ids ``[L]`` as an :class:`IdColumn`, ``labels int64 [L]`` and the class
        names when labels are names (class ``i`` is ``names[i]``, sorted), else ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"label file {path} does not exist")
    rows: list[tuple[int, str, str]] = []
    delimiter = None
    data = list(_data_lines(path))
    for lineno, line in data:
        if not rows and delimiter is None:
            delimiter = _detect_delimiter(line)
            following = _split(data[1][1], delimiter, maxsplit=1) if len(data) > 1 else None
            # a header names the node column, or sits above an integer node id
            following = following[:1] if following else None
            if _is_header(_split(line, delimiter), following, set(NODE_COLUMN_NAMES),
                          string_ids):
                log.info("%s: line %d is a header (%s)", path, lineno, line[:80])
                continue
        fields = _split(line, delimiter, maxsplit=1)
        if len(fields) < 2 or not fields[1]:
            raise GraphInputError(f"{path}, line {lineno}: expected 'node label', got "
                                  f"{line[:80]!r}")
        rows.append((lineno, fields[0], fields[1]))
    if not rows:
        raise GraphInputError(f"{path} has no data rows")
    nodes = np.empty(len(rows), dtype=object)
    nodes[:] = [node for _, node, _ in rows]
    column = IdColumn(nodes, path, np.array([n for n, _, _ in rows], dtype=np.int64))
    _check_labelled_once(nodes, column)  # as written; again once mapped ("01" is 1)
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
    return column, labels, names


def _check_labelled_once(rows: np.ndarray, column: IdColumn) -> None:
    seen, first = np.unique(rows, return_index=True)
    if seen.size != rows.size:
        dup = int(np.setdiff1d(np.arange(rows.size), first)[0])
        raise GraphInputError(f"{column.where(dup)}: node {column.values[dup]} is labelled "
                              "twice")


def read_labels(path: str | Path, num_nodes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a ``node label`` file whose node ids are rows ``0 .. n-1`` (dense ids).

    Returns:
        ``nodes int64 [L]``, ``labels int64 [L]`` and the class names (or ``None``).
    """
    column, labels, names = read_label_rows(path)
    column = _as_ints(column, "dense")
    _check_dense(column, num_nodes)
    _check_labelled_once(column.values, column)
    return column.values, labels, names


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


ID_TYPES = ("auto", "dense", "int", "str")


def _id_kind(columns: list[IdColumn], id_type: str) -> str:
    """``"dense"``, ``"int"`` or ``"str"`` for ids read from ``columns`` (module docstring)."""
    if id_type not in ID_TYPES:
        raise GraphInputError(f"--id-type {id_type!r} is not one of {ID_TYPES}")
    if id_type != "auto":
        return id_type
    texts = [c for c in columns if c.values.dtype == object]
    if not texts:
        return "int"
    first_int = first_name = None
    for column in texts:
        for i, token in enumerate(column.values.ravel()):
            if _INT.match(token):
                first_int = first_int or column.where(i) + f" ({token[:40]!r})"
            else:
                first_name = first_name or column.where(i) + f" ({token[:40]!r})"
            if first_int and first_name:
                raise GraphInputError(
                    f"node ids mix integers ({first_int}) and names ({first_name}); pass "
                    "--id-type str to read every id as a string")
    binary = len(texts) < len(columns)
    if first_name and binary:
        raise GraphInputError("the edge file has integer ids and the label file string ids")
    return "str" if first_name else "int"


def map_ids(columns: list[IdColumn], kind: str, num_nodes: int | None = None
            ) -> tuple[IdMap, list[np.ndarray]]:
    """Map the ids of ``columns`` to rows; returns the id map and each column's rows (int64).

    ``dense``: ids are rows (``n`` = ``num_nodes`` or the largest + 1, refused when a stray id
    would inflate it). ``int``/``str``: rows number the distinct ids in sorted order; integer
    ids that already are exactly ``0 .. n-1`` stay dense (nothing to store).
    """
    if kind == "str":  # integers from .npy or Parquet become their decimal text
        from hashembed.train.stringids import StringRows, as_large_strings, distinct_strings

        values = [np.vectorize(str, otypes=[object])(c.values) if c.values.size
                  else np.asarray(c.values, dtype=object) for c in columns]
        arrays = [as_large_strings(v.ravel()) for v in values]
        string_rows = StringRows(distinct_strings(arrays, sort=True))
        return string_rows.id_map, [string_rows(a)[:, 0].reshape(v.shape)
                                    for a, v in zip(arrays, values)]
    columns = [_as_ints(c, kind) for c in columns]
    if kind == "dense":
        for column in columns:
            _check_dense(column, num_nodes)
        if num_nodes is None:
            distinct = np.unique(np.concatenate([c.values.ravel() for c in columns]))
            if distinct.size == 0:
                raise GraphInputError(f"{columns[0].path} describes an empty graph")
            num_nodes = int(distinct[-1]) + 1
            check_num_nodes(num_nodes, int(distinct.size), int(distinct[-1]),
                            str(columns[0].path), given=False)
        return IdMap.dense(num_nodes), [c.values for c in columns]
    distinct = np.unique(np.concatenate([c.values.ravel() for c in columns]))
    if distinct.size and distinct[0] == 0 and distinct[-1] == distinct.size - 1:
        return IdMap.dense(int(distinct.size)), [c.values for c in columns]
    return IdMap.from_ints(distinct), [np.searchsorted(distinct, c.values).astype(np.int64)
                                       for c in columns]


def load_edge_list_graph(edges_path: str | Path, labels_path: str | Path | None = None,
                         num_nodes: int | None = None, src_col: str | None = None,
                         dst_col: str | None = None, id_type: str = "auto") -> Graph:
    """A :class:`Graph` from user files, its rows numbering the users' own ids.

    Args:
        id_type: ``auto`` (integers if every id is one, strings if none is; a mix is
            refused), ``int`` (any 64-bit integers), ``str``, or ``dense`` (ids are rows
            ``0 .. n-1``). ``num_nodes`` implies ``dense``.
    """
    if num_nodes is not None:
        if num_nodes < 1:
            raise GraphInputError(f"--num-nodes {num_nodes} must be positive")
        check_num_nodes(num_nodes, 0, num_nodes - 1, "--num-nodes", given=True)
        if id_type not in ("auto", "dense"):
            raise GraphInputError(f"--num-nodes means ids are rows 0 .. n-1; it does not go "
                                  f"with --id-type {id_type}")
        id_type = "dense"
    string_ids = id_type == "str"
    columns = [read_edge_ids(edges_path, src_col, dst_col, string_ids)]
    labels = names = None
    if labels_path is not None:
        label_nodes, labels, names = read_label_rows(labels_path, string_ids)
        columns.append(label_nodes)
    kind = _id_kind(columns, id_type)
    id_map, rows = map_ids(columns, kind, num_nodes)
    n = id_map.num_nodes
    if id_map.kind != "dense":
        log.info("%s: %d nodes with %s ids, mapped to rows", edges_path, n, id_map.kind)
    node_labels = None
    if labels is not None:
        _check_labelled_once(rows[1], columns[1])
        node_labels = np.full(n, -1, dtype=np.int64)
        node_labels[rows[1]] = labels
    return Graph(name=Path(edges_path).stem, num_nodes=n, edge_index=symmetrize(rows[0], n),
                 labels=node_labels, class_names=names,
                 id_map=None if id_map.kind == "dense" else id_map)
