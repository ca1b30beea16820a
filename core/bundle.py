"""The bundle format: one directory that serving needs, written atomically, read with checks.

Layout (format version 1)::

    BUNDLE/
      manifest.json   what is in the bundle, how to read it, sha256 and size of every file
      model.onnx      packed codes uint8 [N, c/8] + edge_index int64 [2, E] -> logits, embeddings
      codes.npy       uint8 [n, c/8], the packed code table (memory-mapped at serving time)
      indptr.npy      int64 [n + 1], CSR row pointers of the graph (row v = v's neighbours)
      indices.npy     int64 [nnz], CSR column indices

Writing goes through :class:`BundleWriter`: everything lands in a hidden staging directory
beside the target, the manifest is written last, the caller may validate the staged bundle,
and only :meth:`BundleWriter.commit` renames it into place. A crash at any point leaves no
directory under the target name, so a half-written bundle can never be loaded.

Reading goes through :func:`open_bundle`, which checks the format name and version, that
every listed file exists with the listed size and sha256, and that arrays have the dtype and
shape the manifest promises. Torch-free: serving imports this module only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashembed.errors import (
    BundleChecksumError,
    BundleCorruptError,
    BundleExistsError,
    BundleMissingFileError,
    BundleVersionError,
)

FORMAT_NAME = "hashembed-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_FILE = "model.onnx"
CODES_FILE = "codes.npy"
INDPTR_FILE = "indptr.npy"
INDICES_FILE = "indices.npy"
REQUIRED_FILES = (MODEL_FILE, CODES_FILE, INDPTR_FILE, INDICES_FILE)

# The ONNX model's signature (N nodes of a subgraph, E edges, both dynamic).
INPUT_CODES = "codes"              # uint8 [N, c/8]
INPUT_EDGES = "edge_index"         # int64 [2, E], local ids, row 0 = source
OUTPUT_LOGITS = "logits"           # float32 [N, K]
OUTPUT_EMBEDDINGS = "embeddings"   # float32 [N, d], decoded node embeddings

_CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class BundleWriter:
    """Stage a bundle next to ``out_dir`` and move it into place only on :meth:`commit`.

    Example:
        >>> with BundleWriter(out_dir) as writer:          # doctest: +SKIP
        ...     writer.save_array(CODES_FILE, codes)
        ...     writer.save_bytes(MODEL_FILE, onnx_bytes)
        ...     writer.write_manifest({"graph": {...}})
        ...     check(writer.staging_dir)                   # raise here -> nothing written
        ...     writer.commit()
    """

    def __init__(self, out_dir: str | os.PathLike, overwrite: bool = False):
        self.out_dir = Path(out_dir).resolve()
        self.overwrite = overwrite
        if self.out_dir.exists() and not overwrite:
            raise BundleExistsError(
                f"{self.out_dir} already exists; choose another path or pass overwrite"
            )
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        self.staging_dir = self.out_dir.parent / f".{self.out_dir.name}.staging-{token}"
        self.staging_dir.mkdir()
        self._files: list[str] = []
        self._committed = False

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, *exc) -> None:
        if not self._committed:
            shutil.rmtree(self.staging_dir, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Where file ``name`` is staged (for writers that need a path, e.g. ONNX export)."""
        return self.staging_dir / name

    def add_file(self, name: str) -> Path:
        """Register a file the caller wrote at :meth:`path` (``name``)."""
        if not self.path(name).is_file():
            raise BundleMissingFileError(f"staged file {name} was not written")
        self._files.append(name)
        return self.path(name)

    def save_array(self, name: str, array: np.ndarray) -> Path:
        """Write ``array`` as ``.npy`` (memory-mappable) and register it."""
        with open(self.path(name), "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        return self.add_file(name)

    def save_bytes(self, name: str, data: bytes) -> Path:
        self.path(name).write_bytes(data)
        return self.add_file(name)

    def write_manifest(self, content: dict[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json`` last: ``content`` plus format header and file checksums."""
        files = {}
        for name in self._files:
            p = self.path(name)
            _fsync_file(p)
            files[name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **content,
                    "files": files}
        tmp = self.path(MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _fsync_file(tmp)
        os.replace(tmp, self.path(MANIFEST_NAME))
        return manifest

    def commit(self) -> Path:
        """Atomically move the staged bundle to ``out_dir`` (replacing it if allowed)."""
        if not self.path(MANIFEST_NAME).is_file():
            raise BundleMissingFileError("commit called before write_manifest")
        old = None
        if self.out_dir.exists():
            if not self.overwrite:
                raise BundleExistsError(f"{self.out_dir} appeared while the bundle was written")
            old = self.out_dir.parent / f".{self.out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(self.out_dir, old)
        os.rename(self.staging_dir, self.out_dir)
        self._committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out_dir


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk.

    Attributes:
        path: the bundle directory.
        manifest: the parsed ``manifest.json``.
        codes: ``uint8 [n, c/8]`` memory-mapped code table.
        indptr: ``int64 [n + 1]`` CSR row pointers.
        indices: ``int64 [nnz]`` CSR neighbours.
    """

    path: Path
    manifest: dict[str, Any]
    codes: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def num_nodes(self) -> int:
        return int(self.manifest["graph"]["num_nodes"])


def read_manifest(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """Parse and check the header of ``manifest.json`` (format name and version)."""
    path = Path(bundle_dir)
    if not path.is_dir():
        raise BundleMissingFileError(f"bundle directory {path} does not exist")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleMissingFileError(f"{manifest_path} is missing: not a hashembed bundle")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleCorruptError(f"{manifest_path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleCorruptError(f"{manifest_path} is not a {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleVersionError(
            f"bundle format version {version!r} in {manifest_path}; this hashembed reads "
            f"version {FORMAT_VERSION}"
        )
    for key in ("files", "graph", "code_spec", "model"):
        if not isinstance(manifest.get(key), dict):
            raise BundleCorruptError(f"{manifest_path} has no '{key}' section")
    return manifest


def verify_files(bundle_dir: str | os.PathLike, manifest: dict[str, Any],
                 checksums: bool = True) -> None:
    """Check every listed file exists with its size and (if ``checksums``) sha256."""
    path = Path(bundle_dir)
    files = manifest["files"]
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleCorruptError(f"manifest of {path} does not list {name}")
    for name, info in files.items():
        file = path / name
        if Path(name).name != name:
            raise BundleCorruptError(f"manifest lists a file outside the bundle: {name!r}")
        if not file.is_file():
            raise BundleMissingFileError(f"bundle file {file} is missing")
        size = file.stat().st_size
        if size != info.get("bytes"):
            raise BundleChecksumError(
                f"{file} has {size} bytes, the manifest says {info.get('bytes')} (truncated or "
                "replaced)"
            )
        if checksums and sha256_file(file) != info.get("sha256"):
            raise BundleChecksumError(f"{file} does not match its sha256 in the manifest (corrupt)")


def _load_array(path: Path, dtype: np.dtype, shape: tuple) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise BundleCorruptError(f"{path} is not a readable .npy array: {e}") from None
    if array.dtype != dtype or len(array.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape)
    ):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise BundleCorruptError(
            f"{path} holds {array.dtype} {list(array.shape)}, the manifest implies {dtype} {want}"
        )
    return array


def open_bundle(bundle_dir: str | os.PathLike, checksums: bool = True) -> Bundle:
    """Verify a bundle and memory-map its arrays.

    Args:
        bundle_dir: the directory written by ``hashembed export``.
        checksums: hash every file against the manifest (reads each file once). With
            ``False`` only sizes are checked, for very large code tables.

    Raises:
        BundleMissingFileError, BundleVersionError, BundleChecksumError, BundleCorruptError.
    """
    path = Path(bundle_dir)
    manifest = read_manifest(path)
    verify_files(path, manifest, checksums=checksums)
    try:
        n = int(manifest["graph"]["num_nodes"])
        nnz = int(manifest["graph"]["num_csr_entries"])
        code_bytes = int(manifest["code_spec"]["bits"]) // 8
    except (KeyError, TypeError, ValueError) as e:
        raise BundleCorruptError(f"manifest of {path} lacks a field: {e}") from None
    codes = _load_array(path / CODES_FILE, np.dtype(np.uint8), (n, code_bytes))
    indptr = _load_array(path / INDPTR_FILE, np.dtype(np.int64), (n + 1,))
    indices = _load_array(path / INDICES_FILE, np.dtype(np.int64), (nnz,))
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise BundleCorruptError(f"{path / INDPTR_FILE} does not span the {nnz} CSR entries")
    return Bundle(path=path, manifest=manifest, codes=codes, indptr=indptr, indices=indices)
