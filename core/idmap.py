"""Users' own node ids: the one definition of how external ids map to rows ``0 .. n-1``.

Three kinds:

* ``dense``: ids are the rows themselves (``0 .. n-1``); nothing is stored.
* ``int``: any 64-bit signed integers. Stored as ``ids_sorted.npy int64 [n]`` (ascending) and
  ``ids_rows.npy int64 [n]`` (the row of each sorted id): a lookup is a binary search.
* ``str``: UTF-8 strings. Stored compactly by row as ``ids_offsets.npy int64 [n+1]`` and
  ``ids_bytes.npy uint8 [total]`` (row ``r`` is ``bytes[offsets[r]:offsets[r+1]]``), plus
  ``ids_hash.npy uint64 [n]`` (ascending 64-bit BLAKE2b of each id) and ``ids_rows.npy``:
  a lookup is a binary search on the hash, confirmed on the bytes.

A node's **projection key** (:mod:`hashembed.core.projection`) is a stable 64-bit hash of its
external id: ``mix64(id)`` for integer and dense ids, the BLAKE2b-64 of the UTF-8 bytes for
strings. So a node's code depends on the graph and on the ids, never on the order in which
nodes were numbered or listed; and an unseen node can be keyed from its id alone.

Torch-free: the run directory, the bundle and the server all read it through this module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hashembed.core.errors import ConfigError, NodeIdTypeError, UnknownNodeError
from hashembed.core.projection import mix64, node_keys
from hashembed.core.sortedsets import search_sorted

ID_KINDS = ("dense", "int", "str")
# an integer id as text: ASCII digits only (no "1_0", no other scripts' digits)
INT_TOKEN = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
IDS_SORTED_FILE = "ids_sorted.npy"
IDS_ROWS_FILE = "ids_rows.npy"
IDS_HASH_FILE = "ids_hash.npy"
IDS_OFFSETS_FILE = "ids_offsets.npy"
IDS_BYTES_FILE = "ids_bytes.npy"
ID_FILES = {"dense": (), "int": (IDS_SORTED_FILE, IDS_ROWS_FILE),
            "str": (IDS_HASH_FILE, IDS_ROWS_FILE, IDS_OFFSETS_FILE, IDS_BYTES_FILE)}
# file -> (dtype, length as a function of n; None: any length)
ID_ARRAY_SPECS = {IDS_SORTED_FILE: (np.int64, lambda n: n), IDS_ROWS_FILE: (np.int64, lambda n: n),
                  IDS_HASH_FILE: (np.uint64, lambda n: n),
                  IDS_OFFSETS_FILE: (np.int64, lambda n: n + 1),
                  IDS_BYTES_FILE: (np.uint8, lambda n: None)}


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise NodeIdTypeError(f"node id {value!r} is not valid UTF-8 text") from None


def string_keys(ids: Sequence[str]) -> np.ndarray:
    """``uint64 [k]``: BLAKE2b-64 of each id's UTF-8 bytes (little-endian)."""
    return np.array([_blake2b64(_utf8(s)) for s in ids], dtype=np.uint64)


def _blake2b64(encoded) -> int:
    return int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "little")


def _utf8_keys(offsets: np.ndarray, data: np.ndarray, piece: int = 1 << 18) -> np.ndarray:
    """``uint64 [k]``: :func:`string_keys` of byte strings ``data[offsets[i]:offsets[i+1]]``,
    without decoding them (one BLAKE2b call each; offsets read a piece at a time)."""
    view = memoryview(np.ascontiguousarray(data, dtype=np.uint8))
    keys = np.empty(len(offsets) - 1, dtype=np.uint64)
    for start in range(0, keys.size, piece):
        bounds = np.asarray(offsets[start:start + piece + 1], dtype=np.int64).tolist()
        keys[start:start + len(bounds) - 1] = [
            _blake2b64(view[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return keys


_FINGERPRINT_SEED = np.uint64(0x69642D66696E6765)  # "id-finge"
LONG_ID_BYTES = 256  # longer ids are fingerprinted one by one


def utf8_fingerprints(offsets: np.ndarray, data: np.ndarray, piece: int = 1 << 20) -> np.ndarray:
    """``uint64 [k]``: a fast 64-bit fingerprint of each byte string
    ``data[offsets[i]:offsets[i+1]]`` (``offsets int64 [k+1]``, ascending; ``data uint8``).

    Vectorised over the strings, 8 bytes per step (``h <- mix64(h ^ word)``, seeded with the
    length), so the cost is the total bytes; strings longer than :data:`LONG_ID_BYTES` are
    hashed one by one (BLAKE2b), so one very long id does not make every step run. Equal
    strings get equal fingerprints; distinct ones may collide (about ``k^2 / 2^65`` pairs), so
    a lookup resolves equal fingerprints on the bytes (:class:`Utf8RowIndex`). Not the
    projection key: that is :func:`string_keys`, one BLAKE2b call per id. Strings are taken
    ``piece`` at a time, so temporaries stay bounded however many there are.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    data = np.asarray(data, dtype=np.uint8)
    if offsets.size - 1 > piece:
        return np.concatenate([utf8_fingerprints(offsets[start:start + piece + 1], data, piece)
                               for start in range(0, offsets.size - 1, piece)])
    starts, lengths = offsets[:-1], np.diff(offsets)
    h = mix64(lengths.view(np.uint64) ^ _FINGERPRINT_SEED)
    long_ids = np.nonzero(lengths > LONG_ID_BYTES)[0]
    for i in long_ids.tolist():
        h[i] = _blake2b64(data[starts[i]:starts[i] + lengths[i]].tobytes()) ^ int(h[i])
    live = np.nonzero((lengths > 0) & (lengths <= LONG_ID_BYTES))[0]
    step = 0
    while live.size:  # the strings longer than `step` bytes
        word = np.zeros(live.size, dtype=np.uint64)
        begin, length = starts[live], lengths[live]
        for b in range(8):
            has = length > step + b
            byte = data[np.where(has, begin + step + b, 0)]
            word |= np.where(has, byte, 0).astype(np.uint64) << np.uint64(8 * b)
        h[live] = mix64(h[live] ^ word)
        step += 8
        live = live[length > step]
    return h


class Utf8RowIndex:
    """Rows of many byte strings at once, by fingerprint: the graph builder's lookup.

    Built from ``n`` distinct strings in row order (``offsets int64 [n+1]``, ``data uint8``);
    :meth:`rows` maps ``k`` strings given the same way to ``int64 [k]`` rows in one
    vectorised pass. Strings whose fingerprints collide are looked up on their bytes. A string
    that is not one of the ``n`` gets ``-1`` unless it shares a fingerprint with one that is
    (chance about ``n / 2^64``): callers look up only ids they have already seen.
    """

    def __init__(self, offsets: np.ndarray, data: np.ndarray):
        fingerprints = utf8_fingerprints(offsets, data)
        self._order = np.argsort(fingerprints, kind="stable")
        self._sorted = fingerprints[self._order]
        repeated = self._sorted[1:] == self._sorted[:-1]
        self._collided = np.unique(self._sorted[1:][repeated])
        self._by_bytes = {}
        for row in np.nonzero(np.isin(fingerprints, self._collided))[0].tolist():
            self._by_bytes[bytes(data[offsets[row]:offsets[row + 1]])] = row

    def rows(self, offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
        fingerprints = utf8_fingerprints(offsets, data)
        pos = np.minimum(search_sorted(self._sorted, fingerprints), max(self._sorted.size - 1, 0))
        rows = np.full(fingerprints.size, -1, dtype=np.int64)
        if self._sorted.size:
            found = self._sorted[pos] == fingerprints
            rows[found] = self._order[pos[found]]
        for i in np.nonzero(np.isin(fingerprints, self._collided))[0].tolist():
            rows[i] = self._by_bytes.get(bytes(data[offsets[i]:offsets[i + 1]]), -1)
        return rows


@dataclass(frozen=True)
class IdMap:
    """External ids <-> rows. Build with :meth:`dense`, :meth:`from_ints`, :meth:`from_strings`.

    Attributes:
        kind: ``"dense"``, ``"int"`` or ``"str"``.
        num_nodes: ``n``.
        arrays: file name -> array (possibly memory-mapped), per :data:`ID_FILES`.

    Example:
        >>> m = IdMap.from_ints(np.array([900, -7, 2**40]))
        >>> m.rows([2**40, 900]).tolist()
        [2, 0]
    """

    kind: str
    num_nodes: int
    arrays: dict

    def __post_init__(self) -> None:
        if self.kind not in ID_KINDS:
            raise ConfigError(f"id kind {self.kind!r} is not one of {ID_KINDS}")
        missing = set(ID_FILES[self.kind]) - set(self.arrays)
        if missing:
            raise ConfigError(f"id map of kind {self.kind} lacks {sorted(missing)}")

    def __repr__(self) -> str:
        return f"IdMap(kind={self.kind!r}, n={self.num_nodes})"

    # --- building ---------------------------------------------------------------------
    @classmethod
    def dense(cls, num_nodes: int) -> "IdMap":
        return cls("dense", int(num_nodes), {})

    @classmethod
    def from_ints(cls, ids_by_row: np.ndarray) -> "IdMap":
        """From ``int64 [n]`` distinct ids, row ``r`` holding ``ids_by_row[r]``."""
        ids = np.asarray(ids_by_row, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        if sorted_ids.size > 1 and (np.diff(sorted_ids) == 0).any():
            raise ConfigError("node ids of an id map must be distinct")
        return cls("int", int(ids.size), {IDS_SORTED_FILE: sorted_ids, IDS_ROWS_FILE: order})

    @classmethod
    def from_strings(cls, ids_by_row: Sequence[str]) -> "IdMap":
        """From ``n`` distinct strings, row ``r`` holding ``ids_by_row[r]``."""
        encoded = [_utf8(s) for s in ids_by_row]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return cls.from_utf8(offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8))

    @classmethod
    def from_utf8(cls, offsets: np.ndarray, data: np.ndarray) -> "IdMap":
        """From ``n`` distinct UTF-8 strings by row: row ``r`` holds
        ``data[offsets[r]:offsets[r+1]]`` (``offsets int64 [n+1]`` ascending, ``data uint8``),
        the layout of the stored map, so large maps never become Python strings."""
        offsets = np.asarray(offsets, dtype=np.int64)
        data = np.ascontiguousarray(data[offsets[0]:offsets[-1]], dtype=np.uint8)
        offsets = offsets - offsets[0]
        hashes = _utf8_keys(offsets, data)
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        tied = np.nonzero(sorted_hashes[1:] == sorted_hashes[:-1])[0]
        seen = set()  # rows of equal keys: the same id twice, or a 64-bit collision
        for row in np.unique(np.concatenate([order[tied], order[tied + 1]])).tolist():
            encoded = bytes(data[offsets[row]:offsets[row + 1]])
            if encoded in seen:
                raise ConfigError("node ids of an id map must be distinct")
            seen.add(encoded)
        return cls("str", offsets.size - 1, {IDS_HASH_FILE: sorted_hashes, IDS_ROWS_FILE: order,
                                              IDS_OFFSETS_FILE: offsets, IDS_BYTES_FILE: data})

    # --- storing ----------------------------------------------------------------------
    def save(self, save_array: Callable[[str, np.ndarray], object]) -> list[str]:
        """Write the arrays through ``save_array(name, array)``; returns the file names."""
        for name in ID_FILES[self.kind]:
            save_array(name, self.arrays[name])
        return list(ID_FILES[self.kind])

    @classmethod
    def load(cls, kind: str, num_nodes: int, folder: Path,
             load_array: Callable[[Path], np.ndarray] | None = None) -> "IdMap":
        """Read the arrays of a map of ``kind`` from ``folder`` (memory-mapped by default)."""
        if kind not in ID_KINDS:
            raise ConfigError(f"id kind {kind!r} is not one of {ID_KINDS}")
        load_array = load_array or (lambda p: np.load(p, mmap_mode="r", allow_pickle=False))
        arrays = {name: load_array(Path(folder) / name) for name in ID_FILES[kind]}
        return cls(kind, int(num_nodes), arrays)

    # --- using ------------------------------------------------------------------------
    def keys(self) -> np.ndarray:
        """``uint64 [n]``: the projection key of every row (see module docstring)."""
        if self.kind == "dense":
            return node_keys(np.arange(self.num_nodes, dtype=np.int64))
        if self.kind == "int":
            keys = np.empty(self.num_nodes, dtype=np.uint64)
            keys[self.arrays[IDS_ROWS_FILE]] = node_keys(self.arrays[IDS_SORTED_FILE])
            return keys
        keys = np.empty(self.num_nodes, dtype=np.uint64)
        keys[self.arrays[IDS_ROWS_FILE]] = self.arrays[IDS_HASH_FILE]
        return keys

    def key_of(self, ids) -> np.ndarray:
        """``uint64 [k]`` projection keys of ids that need not be in the graph (unseen nodes),
        by the same rule as :meth:`keys`; the ids must be of this map's kind."""
        if self.kind == "str":
            values = [ids] if isinstance(ids, str) else list(ids)
            for value in values:
                if not isinstance(value, str):
                    raise NodeIdTypeError(f"this graph's node ids are strings, got {value!r}")
            return string_keys(values)
        values = list(ids) if np.ndim(ids) else [ids]
        for value in values:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise NodeIdTypeError(f"node ids must be integers, got {value!r}")
            if not -2**63 <= int(value) < 2**63:
                raise NodeIdTypeError(f"node id {value} does not fit in 64 bits")
        return node_keys(np.array(values, dtype=np.int64))

    def external(self, rows: np.ndarray) -> list:
        """The external ids of ``rows`` (Python ints or strings)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_nodes):
            raise ConfigError(f"rows must lie in [0, {self.num_nodes})")
        if self.kind == "dense":
            return rows.tolist()
        if self.kind == "int":
            where = np.empty(self.num_nodes, dtype=np.int64)
            where[self.arrays[IDS_ROWS_FILE]] = np.arange(self.num_nodes)
            return np.asarray(self.arrays[IDS_SORTED_FILE])[where[rows]].tolist()
        offsets, data = self.arrays[IDS_OFFSETS_FILE], self.arrays[IDS_BYTES_FILE]
        return [bytes(data[offsets[r]:offsets[r + 1]]).decode("utf-8") for r in rows]

    def rows(self, ids) -> np.ndarray:
        """``int64 [k]`` rows of external ``ids``; :class:`UnknownNodeError` names the first id
        not in the graph, :class:`NodeIdTypeError` an id of the wrong type."""
        if self.kind == "str":
            return self._string_rows(ids)
        values = _as_int64(ids, self.num_nodes)
        if self.kind == "dense":
            bad = np.nonzero((values < 0) | (values >= self.num_nodes))[0]
            if bad.size:
                raise _unknown(int(values[bad[0]]), self.num_nodes, dense=True)
            return values
        sorted_ids = self.arrays[IDS_SORTED_FILE]
        pos = search_sorted(sorted_ids, values)
        found = pos < self.num_nodes
        found[found] = np.asarray(sorted_ids[pos[found]]) == values[found]
        if not found.all():
            raise _unknown(int(values[np.argmin(found)]), self.num_nodes)
        return np.asarray(self.arrays[IDS_ROWS_FILE][pos], dtype=np.int64)

    def _string_rows(self, ids) -> np.ndarray:
        ids = [ids] if isinstance(ids, str) or np.ndim(ids) == 0 else list(np.asarray(
            ids, dtype=object).reshape(-1)) if isinstance(ids, np.ndarray) else list(ids)
        for value in ids:
            if not isinstance(value, str):
                raise NodeIdTypeError(f"this graph's node ids are strings, got {value!r}")
        hashes = string_keys(ids)
        table, rows = self.arrays[IDS_HASH_FILE], self.arrays[IDS_ROWS_FILE]
        left = np.searchsorted(table, hashes, side="left")
        right = np.searchsorted(table, hashes, side="right")
        offsets, data = self.arrays[IDS_OFFSETS_FILE], self.arrays[IDS_BYTES_FILE]
        out = np.empty(len(ids), dtype=np.int64)
        for i, (value, lo, hi) in enumerate(zip(ids, left, right)):
            encoded = _utf8(value)
            match = [int(rows[p]) for p in range(lo, hi)
                     if bytes(data[offsets[rows[p]]:offsets[rows[p] + 1]]) == encoded]
            if not match:
                raise UnknownNodeError(f"node id {value!r} is not in the graph "
                                       f"(n = {self.num_nodes})")
            out[i] = match[0]
        return out


def _unknown(value: int, num_nodes: int, dense: bool = False) -> UnknownNodeError:
    why = "is negative" if dense and value < 0 else f"is not in the graph (n = {num_nodes})"
    return UnknownNodeError(f"node id {value} {why}")


def _as_int64(ids, num_nodes: int) -> np.ndarray:
    """Integer ids as ``int64 [k]``; booleans, floats and strings are :class:`NodeIdTypeError`,
    integers beyond 64 bits :class:`UnknownNodeError`."""
    if isinstance(ids, np.ndarray):
        flat = ids.reshape(-1) if ids.ndim <= 1 else None  # a 0-d array is one id
        if flat is None:
            raise NodeIdTypeError(f"node ids must be 1-D, got shape {list(ids.shape)}")
        if flat.size and (flat.dtype == np.bool_ or not np.issubdtype(flat.dtype, np.integer)):
            raise NodeIdTypeError(f"node ids must be integers, got dtype {flat.dtype}")
        if flat.dtype == np.uint64:
            big = np.nonzero(flat > np.uint64(2**63 - 1))[0]
            if big.size:
                raise _unknown(int(flat[big[0]]), num_nodes)
        return flat.astype(np.int64)
    ids = list(ids) if not isinstance(ids, (list, tuple, str, bytes, int, np.integer)) \
        and np.ndim(ids) == 0 and hasattr(ids, "__iter__") else ids  # generators, iterators
    values = [ids] if np.ndim(ids) == 0 else list(ids) if np.ndim(ids) == 1 else None
    if values is None:
        raise NodeIdTypeError(f"node ids must be 1-D, got shape {list(np.shape(ids))}")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise NodeIdTypeError(f"node ids must be integers, got {value!r}")
        if not -2**63 <= value < 2**63:
            raise _unknown(int(value), num_nodes)
    return np.array(values, dtype=np.int64).reshape(-1)


def parse_id_tokens(tokens: Sequence[str], kind: str, where: str) -> list:
    """Text tokens as ids of ``kind``: ints for dense/int (any size, so that a huge one is
    named as unknown rather than mis-parsed), the tokens themselves for strings."""
    if kind == "str":
        return list(tokens)
    out = []
    for token in tokens:
        if not INT_TOKEN.match(token):
            raise NodeIdTypeError(f"{where}: {token[:40]!r} is not an integer node id")
        out.append(int(token))
    return out
