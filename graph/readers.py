"""Reading users' edge files (``--edges FILE``), and the text layout label files share.

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

Every problem is a :class:`GraphInputError` naming the file and the line (text) or row
(binary).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hashembed.core.errors import GraphInputError
from hashembed.core.idmap import INT_TOKEN
from hashembed.graph.ids import INT64_MAX, IdColumn, as_ints, check_dense

log = logging.getLogger(__name__)

# column-name pairs recognised for the two ends of an edge, in no order of preference
EDGE_COLUMN_PAIRS = (("src", "dst"), ("source", "target"), ("id_1", "id_2"), ("from", "to"),
                     ("u", "v"))


# first fields of a label file's header (lower case)
NODE_COLUMN_NAMES = ("node", "nodes", "node_id", "id", "vertex", "user", "user_id", "item")


def detect_delimiter(line: str) -> str | None:
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return None  # any whitespace


def split_fields(line: str, delimiter: str | None, maxsplit: int = -1) -> list[str]:
    """Fields of a line: CSV rules (quotes) for comma and tab, runs of white space otherwise."""
    if delimiter is None:
        return [f.strip() for f in line.split(None, maxsplit)]
    if maxsplit >= 0 and '"' not in line:
        return [f.strip() for f in line.split(delimiter, maxsplit)]
    fields = next(csv.reader([line], delimiter=delimiter))
    if maxsplit >= 0 and len(fields) > maxsplit + 1:
        fields = fields[:maxsplit] + [delimiter.join(fields[maxsplit:])]
    return [f.strip() for f in fields]


def data_lines(path: Path):
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


def is_header(fields: list[str], following: list[str] | None, known: set[str],
               string_ids: bool = False) -> bool:
    """Whether a first line names its columns rather than holding data.

    Never when one of its fields is an integer (it could be an id). Otherwise yes when it names
    known columns (``known``, lower case), or — unless ids are strings (``--id-type str``) —
    when the next line has an integer field (names above numbers). So a first line of string
    ids is kept as data.
    """
    if any(INT_TOKEN.match(f) for f in fields):
        return False
    if any(f.lower() in known for f in fields):
        return True
    return not string_ids and following is not None and any(INT_TOKEN.match(f) for f in following)


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
    data = list(data_lines(path))
    known = {name for pair in EDGE_COLUMN_PAIRS for name in pair}
    known |= {c.lower() for c in (src_col, dst_col) if c}
    for lineno, line in data:
        if columns is None:
            delimiter = detect_delimiter(line)
            fields = split_fields(line, delimiter)
            following = split_fields(data[1][1], delimiter) if len(data) > 1 else None
            if is_header(fields, following, known, string_ids):
                columns = choose_columns(fields, src_col, dst_col, str(path))
                log.info("%s: line %d is a header (%s); edges are columns %r -> %r", path,
                         lineno, line[:80], fields[columns[0]], fields[columns[1]])
                continue
            if src_col or dst_col:
                raise GraphInputError(f"{path} has no header line, so --src-col/--dst-col "
                                      "cannot name its columns")
            columns = (0, 1)
        fields = split_fields(line, delimiter)
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


def read_edge_ids(path: str | Path, src_col: str | None = None,
                  dst_col: str | None = None, string_ids: bool = False) -> IdColumn:
    """The edge list of ``path`` as unmapped ids ``[E, 2]`` (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"edge file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return IdColumn(edges_from_array(path, _load_npy(path)), path)
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
    column = as_ints(read_edge_ids(path, src_col, dst_col), "dense")
    check_dense(column, num_nodes)
    return column.values


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
            yield edges_from_array(path, np.stack([c.to_numpy() for c in columns], axis=1),
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


def edges_from_array(path: Path, array: np.ndarray, first_row: int = 0) -> np.ndarray:
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
