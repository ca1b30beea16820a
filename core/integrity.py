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
from typing import Any, BinaryIO, Callable

import numpy as np

CHUNK_BYTES = 1 << 22  # 4 MiB: the read size of every hash here, and the lazy-check unit
DIGEST_KEY = "digest"


def sha256_file(file: str | os.PathLike | BinaryIO, chunk_digests: list[str] | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file (a path, or an open binary file read from its start), read in
    ``chunk_bytes`` pieces.

    Args:
        chunk_digests: if given, the hex sha256 of every piece is appended to it.
    """
    if not hasattr(file, "read"):
        with open(file, "rb") as f:
            return sha256_file(f, chunk_digests, chunk_bytes)
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(chunk_bytes):
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
                              "sha256": sha256_file(path, pieces, CHUNK_BYTES)}
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


def read_sealed(path: Path, format_name: str, version: int, error: Callable[[str], Exception],
                hint: str = "", version_error: Callable[[str], Exception] | None = None,
                digest_error: Callable[[str], Exception] | None = None) -> dict[str, Any]:
    """Read a sealed JSON header and check its format name, version and digest.

    Every problem raises ``error(message)`` naming ``path`` — a version mismatch
    ``version_error`` and a digest mismatch ``digest_error`` where given; ``hint`` is added to
    a version mismatch (what to do about it).
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise error(f"{path} is not valid JSON: {e}") from None
    if not isinstance(content, dict) or content.get("format") != format_name:
        raise error(f"{path} is not a {format_name} header")
    if content.get("format_version") != version:
        raise (version_error or error)(
            f"{path}: {format_name} format version {content.get('format_version')!r}; this "
            f"hashembed reads version {version}{hint}")
    if not digest_matches(content):
        raise (digest_error or error)(f"{path} does not match its digest: edited or corrupt")
    if not isinstance(content.get("files"), dict):
        raise error(f"{path} lists no files")
    return content


def check_files(folder: Path, files: dict[str, dict], error: Callable[[str], Exception],
                header_name: str, hashed: bool = True, hint: str = "") -> None:
    """Every file a sealed header lists lies in ``folder``, exists, and has its size and (if
    ``hashed``) its sha256; else ``error`` naming the file."""
    for name, record in files.items():
        file = Path(folder) / name
        if Path(name).name != name or not file.is_file():
            raise error(f"file {file}, listed in {header_name}, is missing")
        if file.stat().st_size != record.get("bytes") or (
                hashed and sha256_file(file) != record.get("sha256")):
            raise error(f"{file} does not match its size and sha256 in {header_name}{hint}")


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
    """A memory-mapped array whose rows are checked against per-piece sha256 on first use.

    Indexing with an integer, an integer or boolean array, a slice (or a tuple starting with
    one of those) first hashes every not-yet-verified piece of the file that holds the rows
    asked for, then reads them from the memory map. The pieces are read through the same open
    file the map was made from, so what is checked is what is served, even if the path has
    been replaced since. A mismatch raises ``on_mismatch(message)`` and the array stays
    unusable. Thread-safe: pieces are verified once, under a lock.

    Args:
        array: the memory map of the data, C-contiguous, ``[R, ...]``.
        handle: the open binary file it maps (kept open for the checks).
        path: the file's name, for messages.
        chunk_sha256: the file's per-piece digests (:func:`file_record` with ``chunks=True``).
        chunk_bytes: the piece size those digests were made with.
        data_offset: where row 0 starts in the file (after the ``.npy`` header).
        on_mismatch: exception factory for a corrupt piece.
    """

    def __init__(self, array: np.ndarray, handle: BinaryIO, path: Path, chunk_sha256: list[str],
                 chunk_bytes: int, data_offset: int, on_mismatch: Callable[[str], Exception]):
        self.array = array
        self.path = Path(path)
        self._handle = handle
        self._digests = list(chunk_sha256)
        self._chunk = int(chunk_bytes)
        self._verified = np.zeros(len(self._digests), dtype=bool)
        self._row_bytes = int(array.itemsize * (np.prod(array.shape[1:]) if array.ndim > 1 else 1))
        self._offset = int(data_offset)
        self._size = os.fstat(handle.fileno()).st_size
        self._lock = threading.Lock()
        self._on_mismatch = on_mismatch
        self._failed: str | None = None
        if self._chunk <= 0 or self._row_bytes > self._chunk:
            raise on_mismatch(f"{self.path}: pieces of {self._chunk} bytes cannot hold rows of "
                              f"{self._row_bytes} bytes")
        if len(self._digests) != -(-self._size // self._chunk):
            raise on_mismatch(f"{self.path}: {len(self._digests)} chunk digests do not cover "
                              f"its {self._size} bytes")

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
        if isinstance(key, tuple):
            key = key[0] if key else slice(None)
        if key is Ellipsis or key is None:
            key = slice(None)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if len(range(start, stop, step)) == 0:
                return np.zeros(0, np.int64)
            first, last = (start, stop - 1) if step > 0 else (stop + 1, start)
            lo = (self._offset + first * self._row_bytes) // self._chunk
            hi = (self._offset + (last + 1) * self._row_bytes - 1) // self._chunk
            return np.arange(lo, hi + 1)
        rows = np.asarray(key)
        if rows.dtype == np.bool_:
            rows = np.nonzero(rows.reshape(-1))[0]
        elif rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise TypeError(f"rows must be integers, booleans or a slice, got {rows.dtype}")
        rows = rows.astype(np.int64).reshape(-1)
        rows = rows[(rows >= -n) & (rows < n)]  # numpy itself reports the others
        rows = np.where(rows < 0, rows + n, rows)
        # a row is at most one piece long, so it lies in its first piece and its last one
        starts = (self._offset + rows * self._row_bytes) // self._chunk
        ends = (self._offset + (rows + 1) * self._row_bytes - 1) // self._chunk
        return np.unique(np.concatenate([starts, ends]))

    def verify(self, key) -> None:
        """Verify the pieces holding the rows ``key`` selects."""
        if self._failed:
            raise self._on_mismatch(self._failed)
        span = self._chunks(key)
        todo = span[~self._verified[span]]
        if todo.size == 0:
            return
        with self._lock:
            for chunk in todo:
                if self._verified[chunk]:
                    continue
                start = int(chunk) * self._chunk
                data = os.pread(self._handle.fileno(), self._chunk, start)
                if hashlib.sha256(data).hexdigest() != self._digests[chunk]:
                    self._failed = (f"{self.path}: bytes {start}-{start + len(data) - 1} do not "
                                    "match their sha256 in the manifest (corrupt)")
                    raise self._on_mismatch(self._failed)
                self._verified[chunk] = True

    def __getitem__(self, key):
        self.verify(key)
        return self.array[key]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """``np.take(array, rows, axis=0)`` after verifying the rows' pieces."""
        self.verify(rows)
        return np.asarray(np.take(self.array, rows, axis=0))
