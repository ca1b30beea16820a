"""Users' own node ids: the one definition of how external ids map to rows ``0 .. n-1``.

Three kinds:

* ``dense``: ids are the rows themselves (``0 .. n-1``); nothing is stored.
* ``int``: any 64-bit signed integers. Stored as ``ids_sorted.npy int64 [n]`` (ascending) and
  ``ids_rows.npy int64 [n]`` (the row of each sorted id): a lookup is a binary search.
* ``str``: UTF-8 strings. Stored compactly by row as ``ids_offsets.npy int64 [n+1]`` and
  ``ids_bytes.npy uint8 [total]`` (row ``r`` is ``bytes[offsets[r]:offsets[r+1]]``), plus
  ``ids_hash.npy uint64 [n]`` (ascending 64-bit BLAKE2b of each id) and ``ids_rows.npy``:
  a lookup is a binary search on the hash, confirmed on the bytes.

A node's **projection key** (:mod:`hashembed.projection`) is a stable 64-bit hash of its
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

from hashembed.errors import ConfigError, NodeIdTypeError, UnknownNodeError
from hashembed.projection import node_keys

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
    return np.array([int.from_bytes(hashlib.blake2b(_utf8(s), digest_size=8).digest(),
                                    "little") for s in ids], dtype=np.uint64)


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
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        hashes = string_keys(ids_by_row)
        order = np.argsort(hashes, kind="stable")
        if len(set(encoded)) != len(encoded):
            raise ConfigError("node ids of an id map must be distinct")
        return cls("str", len(encoded), {IDS_HASH_FILE: hashes[order], IDS_ROWS_FILE: order,
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
        pos = np.searchsorted(sorted_ids, values)
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
