"""Checksums of artifacts: one home for how files and manifests are hashed and verified.

Both artifacts this package writes (the run directory of ``hashembed train`` and the bundle
of ``hashembed export``) list their files in a JSON manifest with a :func:`file_record` each,
and protect the manifest itself with :func:`manifest_digest`:

* ``sha256`` of the whole file and its size in ``bytes``;
* optionally ``chunk_sha256``: the sha256 of each consecutive :data:`CHUNK_BYTES` piece, so a
  reader can verify only the pieces it touches (:class:`LazyVerifiedArray`);
* ``digest``: the sha256 of the manifest's canonical JSON (sorted keys, no whitespace,
  ASCII) without the ``digest`` key. Editing any field (say ``edge_hops``) breaks it.

The digest detects corruption and hand edits, not an attacker who recomputes it. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

CHUNK_BYTES = 1 << 22  # 4 MiB: the read size of every hash here, and the lazy-check unit
DIGEST_KEY = "digest"


def sha256_file(path: str | os.PathLike, chunk_digests: list[str] | None = None) -> str:
    """Hex sha256 of a file, read in :data:`CHUNK_BYTES` pieces.

    Args:
        chunk_digests: if given, the hex sha256 of every piece is appended to it.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if chunk_digests is not None:
                chunk_digests.append(hashlib.sha256(chunk).hexdigest())
    return digest.hexdigest()


def file_record(path: str | os.PathLike, chunks: bool = False) -> dict[str, Any]:
    """``{"bytes", "sha256"}`` of a file (fsynced first), plus ``chunk_sha256`` if ``chunks``."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    pieces: list[str] | None = [] if chunks else None
    record: dict[str, Any] = {"bytes": Path(path).stat().st_size,
                              "sha256": sha256_file(path, pieces)}
    if chunks:
        record["chunk_bytes"] = CHUNK_BYTES
        record["chunk_sha256"] = pieces
    return record


def _canonical(content: dict[str, Any]) -> bytes:
    body = {k: v for k, v in content.items() if k != DIGEST_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def manifest_digest(content: dict[str, Any]) -> str:
    """sha256 of ``content``'s canonical JSON form, ignoring its ``digest`` key."""
    return hashlib.sha256(_canonical(content)).hexdigest()


def seal(content: dict[str, Any]) -> dict[str, Any]:
    """``content`` with its ``digest`` set (see module docstring)."""
    return {**content, DIGEST_KEY: manifest_digest(content)}


def digest_matches(content: dict[str, Any]) -> bool:
    """True when ``content["digest"]`` is the digest of the rest of ``content``."""
    try:
        return content.get(DIGEST_KEY) == manifest_digest(content)
    except (TypeError, ValueError):  # not JSON-serialisable, or NaN smuggled in
        return False


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class LazyVerifiedArray:
    """A memory-mapped ``.npy`` array whose rows are checked against per-chunk sha256 on first use.

    Indexing with integers, an integer array or a slice first hashes every not-yet-verified
    :data:`CHUNK_BYTES` piece of the file that holds the requested rows, then reads them from
    the memory map. A mismatch raises ``on_mismatch(message)`` and the array stays unusable.
    Thread-safe: pieces are verified once, under a lock.

    Args:
        array: the memory map (``np.load(..., mmap_mode="r")``), C-contiguous.
        path: the file it maps.
        chunk_sha256: the file's per-piece digests (:func:`file_record` with ``chunks=True``).
        on_mismatch: exception factory for a corrupt piece.

    Shapes:
        any ``[R, ...]`` array; row ``r`` occupies bytes ``offset + r·row_bytes`` onwards.
    """

    def __init__(self, array: np.ndarray, path: Path, chunk_sha256: list[str],
                 on_mismatch: Callable[[str], Exception]):
        self.array = array
        self.path = Path(path)
        self._digests = list(chunk_sha256)
        self._verified = np.zeros(len(self._digests), dtype=bool)
        self._row_bytes = int(array.itemsize * (np.prod(array.shape[1:]) if array.ndim > 1 else 1))
        self._offset = int(array.offset) if isinstance(array, np.memmap) else 0
        if self._row_bytes > CHUNK_BYTES:
            raise ValueError(f"{self.path}: rows of {self._row_bytes} bytes exceed a chunk")
        self._lock = threading.Lock()
        self._on_mismatch = on_mismatch
        self._failed: str | None = None
        if len(self._digests) != -(-(self._offset + self.array.nbytes) // CHUNK_BYTES):
            raise on_mismatch(f"{self.path}: {len(self._digests)} chunk digests do not cover "
                              f"its {self._offset + self.array.nbytes} bytes")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        return len(self.array)

    def _chunks(self, key) -> np.ndarray:
        """The pieces of the file that hold the rows ``key`` selects."""
        n = self.array.shape[0]
        if isinstance(key, slice):
            start, stop, _ = key.indices(n)
            if stop <= start:
                return np.zeros(0, np.int64)
            first = (self._offset + start * self._row_bytes) // CHUNK_BYTES
            last = (self._offset + stop * self._row_bytes - 1) // CHUNK_BYTES
            return np.arange(first, last + 1)
        rows = np.asarray(key, dtype=np.int64).reshape(-1)
        rows = rows[(rows >= -n) & (rows < n)]  # numpy itself reports the others
        rows = np.where(rows < 0, rows + n, rows)
        # a row is at most CHUNK_BYTES long, so it lies in its first piece and its last one
        starts = (self._offset + rows * self._row_bytes) // CHUNK_BYTES
        ends = (self._offset + (rows + 1) * self._row_bytes - 1) // CHUNK_BYTES
        return np.unique(np.concatenate([starts, ends]))

    def verify(self, key) -> None:
        """Verify the pieces holding the rows ``key`` selects (integer(s) or a slice)."""
        if self._failed:
            raise self._on_mismatch(self._failed)
        span = self._chunks(key)
        todo = span[~self._verified[span]]
        if todo.size == 0:
            return
        with self._lock, open(self.path, "rb") as f:
            for chunk in todo:
                if self._verified[chunk]:
                    continue
                f.seek(int(chunk) * CHUNK_BYTES)
                if hashlib.sha256(f.read(CHUNK_BYTES)).hexdigest() != self._digests[chunk]:
                    self._failed = (f"{self.path}: bytes {int(chunk) * CHUNK_BYTES}-"
                                    f"{(int(chunk) + 1) * CHUNK_BYTES - 1} do not match their "
                                    "sha256 in the manifest (corrupt)")
                    raise self._on_mismatch(self._failed)
                self._verified[chunk] = True

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step not in (None, 1):
            raise TypeError("LazyVerifiedArray supports contiguous slices only")
        self.verify(key)
        return self.array[key]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """``np.take(array, rows, axis=0)`` after verifying the rows' pieces."""
        self.verify(rows)
        return np.asarray(np.take(self.array, rows, axis=0))
