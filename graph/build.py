"""``hashembed graph build``: edge files -> a graph directory, out of core.

Memory stays within ``memory_gb`` whatever the number of edges, as long as edges spread over
source rows about evenly (buckets are row ranges: a range holding many hubs overruns the
budget by its excess), plus the id map of a mapped graph (8 bytes per integer id; for string
ids their UTF-8 bytes and 40 bytes of offset, key, row and fingerprint index), the one thing
held whole:

1. **Scan** every file in chunks (delimited text through pyarrow's C CSV reader, ``.npy``
   memory-mapped, Parquet row groups): validate ids, count edges, find ``n`` (dense ids) or the
   distinct ids (mapped ids, :mod:`hashembed.core.idmap`). String ids stay pyarrow arrays,
   bucketed by fingerprint range into temporary files and de-duplicated bucket by bucket
   (:class:`hashembed.graph.stringids.DistinctStringBuckets`), then sorted once; they are
   looked up by a vectorised 64-bit fingerprint (:class:`hashembed.core.idmap.Utf8RowIndex`),
   never as Python strings.
2. **Bucket**: map each chunk to rows and append both directions of every non-loop edge to one
   of ``B`` temporary files by source row range, ``B`` chosen so a bucket fits the budget.
3. **Sort** each bucket by (source, target), drop duplicates, count row lengths, and write
   the targets into ``indices.npy``; ``indptr.npy`` is the running sum of the counts.

The result equals :func:`hashembed.graph.memory.symmetrize` + :func:`~hashembed.graph.memory.to_csr`
of the same edges (tested). Progress is reported in edges per second.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from hashembed.core.errors import GraphInputError
from hashembed.core.graphdir import (INDICES_FILE, INDPTR_FILE, LABELS_FILE, GraphHeader,
                                GraphWriter, index_dtype)
from hashembed.core.idmap import IdMap
from hashembed.core.sortedsets import sorted_unique
from hashembed.graph.ids import IdColumn, as_ints, check_dense, check_num_nodes, id_kind, map_ids
from hashembed.graph.labels import read_label_rows
from hashembed.graph.readers import (EDGE_COLUMN_PAIRS, choose_columns, data_lines,
                                     detect_delimiter, is_header, split_fields)
from hashembed.graph.stringids import DistinctStringBuckets, StringRows, as_large_strings

log = logging.getLogger(__name__)

SAMPLE_LINES = 1000  # data lines of each text file that decide the id kind
CHUNK_EDGES = 1 << 22  # edges per chunk read (about 64 MiB of int64 pairs)
PAIR_BYTES_IN_SORT = 48  # bytes per directed pair while a bucket is sorted (key, copies)


def _text_layout(path: Path, src_col, dst_col, string_ids: bool = False
                 ) -> tuple[str, int, tuple[int, int], int]:
    """Delimiter, lines before the data (comments + header), the edge columns and the number
    of fields of a text file."""
    lines = []
    for lineno, line in data_lines(path):
        lines.append((lineno, line))
        if len(lines) == 2:
            break
    if not lines:
        raise GraphInputError(f"{path} has no data rows")
    delimiter = detect_delimiter(lines[0][1]) or " "
    fields = split_fields(lines[0][1], delimiter)
    following = split_fields(lines[1][1], delimiter) if len(lines) > 1 else None
    known = {name for pair in EDGE_COLUMN_PAIRS for name in pair}
    known |= {c.lower() for c in (src_col, dst_col) if c}
    if is_header(fields, following, known, string_ids):
        columns = choose_columns(fields, src_col, dst_col, str(path))
        width = len(following) if following else len(fields)
        return delimiter, lines[0][0], columns, width
    if src_col or dst_col:
        raise GraphInputError(f"{path} has no header line, so --src-col/--dst-col cannot "
                              "name its columns")
    if len(fields) < 2:
        raise GraphInputError(f"{path}, line {lines[0][0]}: expected 2 fields, got "
                              f"{len(fields)}: {lines[0][1][:80]!r}")
    return delimiter, lines[0][0] - 1, (0, 1), len(fields)


def _text_chunks(path: Path, src_col, dst_col, as_strings: bool) -> Iterator[np.ndarray]:
    """``[k, 2]`` id chunks of a delimited text file (int64, or object strings)."""
    for a, b in _text_columns(path, src_col, dst_col, as_strings):
        yield np.stack([a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)],
                       axis=1)


def _text_columns(path: Path, src_col, dst_col, as_strings: bool) -> Iterator[tuple]:
    """``(source, target)`` pyarrow arrays (int64, or strings) of a delimited text file, a
    block of about 16 MiB at a time, missing ids refused with their row.

    Read as the in-memory reader reads lines: string ids are stripped of white space, and a
    line whose first field starts with ``#`` is a comment wherever it stands.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as csv

    delimiter, skip, (src, dst), width = _text_layout(path, src_col, dst_col, as_strings)
    kind = pa.string() if as_strings else pa.int64()
    names = [f"c{i}" for i in range(width)]
    try:
        reader = csv.open_csv(
            path, read_options=csv.ReadOptions(skip_rows=skip, column_names=names,
                                               block_size=1 << 24, encoding="utf-8"),
            parse_options=csv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True,
                                           invalid_row_handler=_skip_comment_rows),
            convert_options=csv.ConvertOptions(column_types={names[src]: kind,
                                                             names[dst]: kind},
                                               include_columns=[names[src], names[dst]]))
        first_field = {src: 0, dst: 1}.get(0)  # which of the two columns is the line's start
        seen = 0
        for batch in reader:
            columns = [batch.column(0), batch.column(1)]
            if as_strings:
                columns = [pc.utf8_trim_whitespace(c) for c in columns]
                if first_field is not None:
                    keep = pc.invert(pc.starts_with(columns[first_field], "#"))
                    columns = [c.filter(keep) for c in columns]
            for column in columns:
                missing = column.is_null() if column.null_count else (
                    pc.equal(pc.utf8_length(column), 0) if as_strings else None)
                if missing is not None and pc.any(missing).as_py():
                    # an empty field (pyarrow would make an integer NaN, a string "")
                    row = seen + int(np.nonzero(missing.to_numpy(zero_copy_only=False))[0][0])
                    raise GraphInputError(f"{path}, data row {row + 1}: a node id is missing")
            seen += batch.num_rows
            yield columns[0], columns[1]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        if "invalid utf8" in str(e).lower():
            raise GraphInputError(f"{path} is not a UTF-8 text file (nor .npy or .parquet)"
                                  ) from None
        hint = "" if as_strings else " (pass --id-type str for string ids)"
        raise GraphInputError(f"{path}: {str(e).splitlines()[0]}{hint}") from None


def _skip_comment_rows(row) -> str:
    """pyarrow's handler of a row with too few or too many fields: skip a comment line."""
    return "skip" if (row.text or "").lstrip().startswith("#") else "error"


def _edge_chunks(path: Path, src_col, dst_col, as_strings: bool) -> Iterator[np.ndarray]:
    """Chunks ``[k, 2]`` of the edges of one file."""
    from hashembed.graph.readers import edges_from_array, parquet_chunks

    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise GraphInputError(f"{path} is not a readable .npy array: {e}") from None
        if array.ndim != 2 or 2 not in array.shape:
            raise GraphInputError(f"{path}: edges must have shape [E, 2] or [2, E], got "
                                  f"{array.shape}")
        edges = array if array.shape[1] == 2 else array.T
        for start in range(0, edges.shape[0], CHUNK_EDGES):
            yield edges_from_array(path, np.asarray(edges[start:start + CHUNK_EDGES]), start)
    elif suffix in (".parquet", ".pq"):
        yield from parquet_chunks(path, src_col, dst_col, CHUNK_EDGES)
    else:
        yield from _text_chunks(path, src_col, dst_col, as_strings)


def _string_chunks(path: Path, src_col, dst_col) -> Iterator[tuple]:
    """Chunks of one file's edges as ``(source, target)`` pyarrow ``large_string`` arrays:
    string ids (integer ids of ``.npy`` or Parquet files become their decimal text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from hashembed.graph.readers import pa_is_integer, parquet_batches

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        for _, columns in parquet_batches(path, src_col, dst_col, CHUNK_EDGES):
            if not pa_is_integer(columns[0]):  # stripped, as parquet_chunks strips them
                columns = [pc.utf8_trim_whitespace(c) for c in columns]
            yield tuple(c.cast(pa.large_string()) for c in columns)
    elif suffix == ".npy":
        for chunk in _edge_chunks(path, src_col, dst_col, as_strings=True):
            yield tuple(as_large_strings(chunk[:, i]) for i in (0, 1))
    else:
        for a, b in _text_columns(path, src_col, dst_col, as_strings=True):
            yield a.cast(pa.large_string()), b.cast(pa.large_string())


# bytes the scan holds per byte of string ids in one bucket: the ids, pyarrow's hash table,
# the sorted copy (a conservative rule: a bucket of text ids is at most its files' share)
STRING_SCAN_BYTES_PER_BYTE = 8
MAX_STRING_BUCKETS = 1024


def string_id_buckets(files: list[Path], memory_gb: float) -> int:
    """Buckets of the string-id scan: the least power of two that puts at most a budget's
    worth of id bytes (the input files' size, an upper bound) in one bucket."""
    size = sum(Path(f).stat().st_size for f in files)
    need = math.ceil(size * STRING_SCAN_BYTES_PER_BYTE / (memory_gb * 2**30))
    buckets = 1
    while buckets < min(need, MAX_STRING_BUCKETS):
        buckets *= 2
    return buckets


def _merge_pending(parts: list, merge) -> None:
    """Merge the sets of distinct ids in place once the sets waiting hold as many ids as the
    merged pool ``parts[0]``: each id waits to be merged once and the pool is re-read at most
    as often as it doubles or the ids read since match it, so the work is linear in the ids
    read (merging every few chunks re-reads the whole pool each time: quadratic in the
    number of chunks)."""
    if len(parts) > 1 and sum(len(p) for p in parts[1:]) >= len(parts[0]):
        parts[:] = [merge(parts)]


def _sorted_union(parts: list) -> np.ndarray:
    return sorted_unique(np.concatenate(parts))


def _files(edge_paths: list[Path]) -> list[Path]:
    """Edge files: the paths given, a directory standing for its files (sorted)."""
    files = []
    for path in edge_paths:
        path = Path(path)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise GraphInputError(f"edge file {path} does not exist")
    if not files:
        raise GraphInputError(f"no edge files in {', '.join(map(str, edge_paths))}")
    return files


def _sample_kind(files: list[Path], id_type: str, src_col, dst_col,
                 label_column: IdColumn | None) -> str:
    """The id kind, decided on the first data lines of text files (binary files hold integers
    in ``.npy``, integers or strings in Parquet); a later line of another kind fails the read
    with a named error."""
    columns = []
    for path in files:
        if path.suffix.lower() in (".npy", ".parquet", ".pq"):
            chunk = next(_edge_chunks(path, src_col, dst_col, as_strings=False),
                         np.empty((0, 2), np.int64))  # an empty file has no chunk
            columns.append(IdColumn(chunk[:1], path))
            continue
        delimiter, skip, (src, dst), _ = _text_layout(path, src_col, dst_col)
        sample = []
        for lineno, line in data_lines(path):
            fields = split_fields(line, delimiter)
            if lineno > skip and len(fields) > max(src, dst):
                sample.append((lineno, fields[src], fields[dst]))
            if len(sample) >= SAMPLE_LINES:
                break
        tokens = np.empty((len(sample), 2), dtype=object)
        tokens[:] = [(a, b) for _, a, b in sample]
        columns.append(IdColumn(tokens, path, np.array([s[0] for s in sample])))
    if label_column is not None:
        columns.append(label_column)
    return id_kind(columns, id_type)


def build_graph(edge_paths: list[str | Path], out_dir: str | Path,
                labels_path: str | Path | None = None, num_nodes: int | None = None,
                id_type: str = "auto", src_col: str | None = None, dst_col: str | None = None,
                memory_gb: float = 4.0, name: str | None = None, overwrite: bool = False,
                progress: bool = True) -> GraphHeader:
    """Build a graph directory from edge files (see module docstring).

    Args:
        edge_paths: edge files, or directories of part files (text, ``.npy``, Parquet).
        labels_path: optional ``node label`` file in the same ids.
        num_nodes: ids are rows ``0 .. num_nodes-1`` (implies ``id_type="dense"``).
        id_type: as for ``hashembed train --edges``
            (:func:`~hashembed.graph.edgelist.load_edge_list_graph`).
        memory_gb: budget for the sort buckets.

    Returns:
        the header written to ``out_dir/graph.json``.
    """
    started = time.perf_counter()
    if memory_gb <= 0 or not math.isfinite(memory_gb):
        raise GraphInputError(f"--memory-gb {memory_gb} must be a positive number")
    files = _files([Path(p) for p in edge_paths])
    inputs = files + ([Path(labels_path)] if labels_path else [])
    with GraphWriter(out_dir, overwrite=overwrite, inputs=inputs) as writer:
        if num_nodes is not None:
            check_num_nodes(num_nodes, 0, num_nodes - 1, "--num-nodes", given=True)
            id_type = "dense"
        label_column = label_values = class_names = None
        if labels_path is not None:
            label_column, label_values, class_names = read_label_rows(labels_path)
        kind = _sample_kind(files, id_type, src_col, dst_col, label_column)
        as_strings = kind == "str"

        # 1. scan: count, validate, distinct ids
        total, distinct, distinct_dense, largest = 0, [], [], -1
        bar = tqdm(desc="scan edges", unit="edge", unit_scale=True, disable=not progress)
        scratch = tempfile.TemporaryDirectory(dir=writer.path, prefix=".ids-")
        if as_strings:  # string ids: bucketed by fingerprint, each bucket de-duplicated alone
            string_ids = DistinctStringBuckets(Path(scratch.name),
                                               string_id_buckets(files, memory_gb))
        for path in files:
            if as_strings:
                for pair in _string_chunks(path, src_col, dst_col):
                    string_ids.add(*pair)
                    total += len(pair[0])
                    bar.update(len(pair[0]))
                continue
            for chunk in _edge_chunks(path, src_col, dst_col, as_strings):
                column = as_ints(IdColumn(chunk, path), kind)
                if kind == "dense":
                    check_dense(column, num_nodes)
                    largest = max(largest, int(column.values.max(initial=-1)))
                    if num_nodes is None:
                        distinct_dense.append(sorted_unique(column.values.ravel().copy()))
                else:
                    distinct.append(sorted_unique(column.values.ravel().copy()))
                total += chunk.shape[0]
                bar.update(chunk.shape[0])
                _merge_pending(distinct, _sorted_union)
                _merge_pending(distinct_dense, _sorted_union)
        bar.close()
        if total == 0:
            raise GraphInputError("the edge files hold no edges")
        extra = [] if label_column is None else [label_column]
        if kind == "dense":
            if extra:
                lab = as_ints(label_column, "dense")
                check_dense(lab, num_nodes)
                largest = max(largest, int(lab.values.max()))
            n = num_nodes if num_nodes is not None else largest + 1
            if num_nodes is None:  # ids are rows: refuse a stray id that would inflate n
                pool = sorted_unique(np.concatenate(distinct_dense)) if distinct_dense else []
                check_num_nodes(n, len(pool), largest, str(files[0]), given=False)
            id_map = IdMap.dense(n)
        elif as_strings:
            if extra:
                string_ids.add(as_large_strings(label_column.values.ravel()))
            string_rows = StringRows(string_ids.distinct())
            id_map = string_rows.id_map
        else:
            pool = sorted_unique(np.concatenate(distinct)) if distinct else np.zeros(0)
            id_map, _ = map_ids([IdColumn(pool, files[0])] + extra, kind)
        scratch.cleanup()
        n = id_map.num_nodes
        lookup = _row_lookup(id_map, kind)

        # 2. + 3. bucket, sort, de-duplicate, write the CSR

        def row_chunks():
            for path in files:
                if as_strings:
                    for pair in _string_chunks(path, src_col, dst_col):
                        yield string_rows(*pair)
                    continue
                for chunk in _edge_chunks(path, src_col, dst_col, as_strings):
                    yield lookup(chunk)

        nnz = write_csr(writer, row_chunks, n, total, memory_gb, progress)
        has_labels = label_column is not None
        if has_labels and as_strings:
            label_rows = string_rows(as_large_strings(label_column.values.ravel()))[:, 0]
        elif has_labels:
            label_rows = lookup(np.asarray(label_column.values).reshape(-1, 1))[:, 0]
        if has_labels:
            node_labels = np.full(n, -1, dtype=np.int64)
            node_labels[label_rows] = label_values
            writer.save_array(LABELS_FILE, node_labels)
        id_map.save(writer.save_array)
        seconds = time.perf_counter() - started
        header = writer.write_header(GraphHeader(
            name=name or files[0].stem, num_nodes=n, num_edges=nnz // 2, num_csr_entries=nnz,
            id_kind=id_map.kind, has_labels=has_labels,
            class_names=None if class_names is None else tuple(class_names),
            source={"edges": [str(f) for f in files],
                    "labels": None if labels_path is None else str(labels_path),
                    "edges_read": total, "seconds": round(seconds, 3)}))
        writer.commit()
    log.info("graph %s: n=%d, %d undirected edges, %.0f edges/s", out_dir, n, nnz // 2,
             total / max(seconds, 1e-9))
    return header


def write_csr(writer: GraphWriter, row_chunks, num_nodes: int, total_edges: int,
              memory_gb: float, progress: bool = True) -> int:
    """Write ``indptr.npy``/``indices.npy`` of the undirected, loop-free, de-duplicated graph of
    the edges ``row_chunks()`` yields (``int64 [k, 2]`` rows), within ``memory_gb``.

    Both directions of every edge go to ``B`` bucket files by source row range; each bucket is
    sorted by (source, target) and de-duplicated on its own. Returns ``nnz``.
    """
    n = num_nodes
    itype = index_dtype(n)
    budget = int(memory_gb * 2**30)
    rows_per_bucket = -(-n // max(1, math.ceil(2 * total_edges * PAIR_BYTES_IN_SORT / budget)))
    buckets = -(-n // rows_per_bucket)  # every bucket starts below n
    with tempfile.TemporaryDirectory(dir=writer.path, prefix=".buckets-") as tmp:
        parts = [open(Path(tmp) / f"b{b}.bin", "wb") for b in range(buckets)]
        bar = tqdm(total=total_edges, desc="bucket edges", unit="edge", unit_scale=True,
                   disable=not progress)
        for rows in row_chunks():
            bar.update(rows.shape[0])
            rows = rows[rows[:, 0] != rows[:, 1]]
            both = np.concatenate([rows, rows[:, ::-1]]).astype(itype)
            which = both[:, 0] // rows_per_bucket
            order = np.argsort(which, kind="stable")
            both, which = both[order], which[order]
            cuts = np.searchsorted(which, np.arange(buckets + 1))
            for b in range(buckets):
                if cuts[b + 1] > cuts[b]:
                    parts[b].write(both[cuts[b]:cuts[b + 1]].tobytes())
        bar.close()
        for f in parts:
            f.close()
        counts = np.zeros(n, dtype=np.int64)
        deduped = []
        for b in tqdm(range(buckets), desc="sort buckets", unit="bucket",
                      disable=not progress or buckets == 1):
            pairs = np.fromfile(Path(tmp) / f"b{b}.bin", dtype=itype).reshape(-1, 2)
            (Path(tmp) / f"b{b}.bin").unlink()
            first = b * rows_per_bucket
            keys = sorted_unique((pairs[:, 0].astype(np.int64) - first) * n + pairs[:, 1])
            del pairs
            width = min(rows_per_bucket, n - first)
            counts[first:first + width] = np.bincount(keys // n, minlength=width)
            out = Path(tmp) / f"d{b}.bin"
            (keys % n).astype(itype).tofile(out)
            deduped.append(out)
        nnz = int(counts.sum())
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        writer.save_array(INDPTR_FILE, indptr)
        indices = writer.open_array(INDICES_FILE, itype, (nnz,))
        at = 0
        for out in deduped:
            part = np.fromfile(out, dtype=itype)
            indices[at:at + part.size] = part
            at += part.size
            out.unlink()
        indices.flush()
        del indices
    return nnz


def _row_lookup(id_map: IdMap, kind: str):
    """``ids [k, c] -> rows int64 [k, c]`` for chunks of dense or integer ids (string ids:
    :class:`~hashembed.graph.stringids.StringRows`)."""
    if kind == "dense" or id_map.kind == "dense":
        def dense(chunk):
            if chunk.dtype == object:
                chunk = as_ints(IdColumn(chunk, Path("?")), "dense").values
            return np.asarray(chunk, dtype=np.int64)
        return dense

    def ints(chunk):
        if chunk.dtype == object:
            chunk = as_ints(IdColumn(chunk, Path("?")), "int").values
        return id_map.rows(np.asarray(chunk, np.int64).reshape(-1)).reshape(chunk.shape)
    return ints
