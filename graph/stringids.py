"""String node ids as pyarrow arrays: distinct ids and their rows, never Python strings.

The rows of string ids number the distinct ids in sorted order (by UTF-8 bytes, which is
code-point order). :class:`StringRows` builds the id map (:class:`hashembed.core.idmap.IdMap`) from
the distinct ids and maps chunks of ids to rows by fingerprint
(:class:`hashembed.core.idmap.Utf8RowIndex`): ``graph build`` over files of any size and the
in-memory reader (:func:`hashembed.graph.ids.map_ids`) both number string ids here.
"""

from __future__ import annotations

import numpy as np

from hashembed.core.errors import GraphInputError
from hashembed.core.idmap import (IDS_BYTES_FILE, IDS_OFFSETS_FILE, IdMap, Utf8RowIndex,
                                  utf8_fingerprints)


def as_large_strings(values):
    """Ids (``object`` strings, or integers) as one pyarrow ``large_string`` array."""
    import pyarrow as pa

    values = np.asarray(values)
    if values.dtype != object:
        return pa.array(values).cast(pa.large_string())
    return pa.array(values, type=pa.large_string())


def utf8_buffers(strings) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets int64 [k+1], data uint8)`` of a pyarrow ``large_string`` array, zero-copy
    (offsets index ``data``; they need not start at 0)."""
    validity, offsets, data = strings.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[strings.offset:strings.offset + len(strings) + 1]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None
                     else np.zeros(0, dtype=np.uint8))


def distinct_strings(parts: list, sort: bool = False):
    """The distinct values of some pyarrow ``large_string`` arrays; ``sort``: ascending by
    UTF-8 bytes, which is code-point order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    merged = pc.unique(pa.concat_arrays(parts)) if parts else pa.array([], pa.large_string())
    return sorted_strings(merged) if sort else merged


def sorted_strings(strings):
    """A pyarrow string array sorted by UTF-8 bytes (code-point order)."""
    import pyarrow.compute as pc

    return strings.take(pc.sort_indices(strings))


class DistinctStringBuckets:
    """The distinct string ids of many chunks, out of core: each chunk's distinct ids go to
    one of ``buckets`` files by the range of their 64-bit fingerprint
    (:func:`~hashembed.core.idmap.utf8_fingerprints`), so an id always lands in the same
    bucket; each bucket is then de-duplicated alone and the buckets, disjoint, are joined and
    sorted once. Memory: one chunk, then one bucket's ids and their hash table, then the
    distinct ids themselves — never the hash table of every id at once (the pool merged
    chunk by chunk held 7.7 GB at 5.5·10^7 ids).

    Args:
        folder: where the bucket files go (Arrow IPC streams, one per bucket).
        buckets: a power of two.

    Example:
        >>> scan = DistinctStringBuckets(tmp, 16)          # doctest: +SKIP
        >>> for src, dst in chunks: scan.add(src, dst)      # doctest: +SKIP
        >>> ids = scan.distinct()                           # sorted large_string array
    """

    def __init__(self, folder, buckets: int):
        import pyarrow as pa

        if buckets < 1 or buckets & (buckets - 1):
            raise ValueError(f"buckets={buckets} must be a power of two")
        self.buckets = buckets
        self._shift = np.uint64(64 - (buckets.bit_length() - 1))
        self._schema = pa.schema([("id", pa.large_string())])
        self._paths = [folder / f"ids-{b}.arrows" for b in range(buckets)]
        self._files = [open(path, "wb") for path in self._paths]
        self._writers = [pa.ipc.new_stream(f, self._schema) for f in self._files]

    def add(self, *columns) -> None:
        """Add the ids of some pyarrow ``large_string`` arrays."""
        import pyarrow as pa

        ids = distinct_strings(list(columns))
        if len(ids) == 0:
            return
        if self.buckets == 1:
            which = np.zeros(len(ids), dtype=np.int64)
        else:
            which = (utf8_fingerprints(*utf8_buffers(ids)) >> self._shift).astype(np.int64)
        order = np.argsort(which, kind="stable")
        ids, which = ids.take(pa.array(order)), which[order]
        cuts = np.searchsorted(which, np.arange(self.buckets + 1))
        for b in np.nonzero(np.diff(cuts))[0]:
            part = ids.slice(int(cuts[b]), int(cuts[b + 1] - cuts[b]))
            self._writers[b].write_batch(pa.record_batch([part], schema=self._schema))

    @property
    def batches(self) -> list[int]:
        """Chunks written to each bucket so far."""
        return [writer.stats.num_record_batches for writer in self._writers]

    def distinct(self):
        """Every distinct id added, sorted (a ``large_string`` array); closes the files."""
        import pyarrow as pa

        for writer, f in zip(self._writers, self._files):
            writer.close()
            f.close()
        parts = []
        for path in self._paths:
            with pa.ipc.open_stream(path) as reader:
                table = reader.read_all()
            path.unlink()
            if table.num_rows:
                parts.append(distinct_strings(table.column(0).chunks))
        merged = pa.concat_arrays(parts) if parts else pa.array([], pa.large_string())
        return sorted_strings(merged)


class StringRows:
    """String ids -> rows, the distinct ids ``distinct`` (a ``large_string`` array, sorted)
    numbered in order; lookups are vectorised on fingerprints, never Python strings."""

    def __init__(self, distinct):
        self.id_map = IdMap.from_utf8(*utf8_buffers(distinct))
        self._index = Utf8RowIndex(self.id_map.arrays[IDS_OFFSETS_FILE],
                                   self.id_map.arrays[IDS_BYTES_FILE])

    def __call__(self, *columns) -> np.ndarray:
        """``int64 [k, len(columns)]`` rows of ``large_string`` columns of ``k`` ids each."""
        rows = np.stack([self._index.rows(*utf8_buffers(c)) for c in columns], axis=1)
        if (rows < 0).any():  # the files changed between the scan and this read
            i, j = np.argwhere(rows < 0)[0]
            missing = columns[j][int(i)].as_py()
            raise GraphInputError(f"node id {missing!r} was not in the edge files when they "
                                  "were scanned: did a file change during the build?")
        return rows
