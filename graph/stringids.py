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
from hashembed.core.idmap import IDS_BYTES_FILE, IDS_OFFSETS_FILE, IdMap, Utf8RowIndex


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
    return merged.take(pc.sort_indices(merged)) if sort else merged


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
