"""One protocol for every artifact directory hashembed writes: staged writer, sealed reader.

An artifact is a directory of files plus one JSON *header* that names its format and version,
lists every file with its size and sha256 (:func:`~hashembed.core.integrity.file_record`) and
is sealed by a digest of itself. The four formats (graph directory, codes directory, run
directory, bundle) each declare an :class:`ArtifactFormat`; what they share is done here once:

* :class:`ArtifactWriter` stages the directory beside its target
  (:class:`~hashembed.core.atomic.StagedDirectory`), writes and registers files, writes the
  header **last** (temporary file, fsync, rename) and refuses to commit without it; only
  :meth:`~hashembed.core.atomic.StagedDirectory.commit` renames the whole directory into place.
  So a crash at any moment leaves either the previous artifact or the new one, never a
  half-written directory that loads.
* :meth:`ArtifactFormat.read_header` puts back a directory a killed writer moved aside, checks
  the header's format name, version and digest, and :meth:`ArtifactFormat.check_files` checks
  every listed file's size and (optionally) sha256, each failure raising the format's own
  named error.

A fifth format declares an :class:`ArtifactFormat` and subclasses :class:`ArtifactWriter` (or
uses it as is) and gets all of this for free. Torch-free.

Example:
    >>> NOTES = ArtifactFormat("hashembed-notes", 1, "notes.json", "notes directory",
    ...                        error=ValueError)                      # doctest: +SKIP
    >>> with ArtifactWriter(NOTES, "out/notes") as writer:             # doctest: +SKIP
    ...     writer.save_array("x.npy", x)
    ...     writer.write_header({"what": "an example"})
    ...     writer.commit()
    >>> header = NOTES.read_header("out/notes")                       # doctest: +SKIP
    >>> NOTES.check_files("out/notes", header["files"])               # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hashembed.core.atomic import (StagedDirectory, check_output_dir, recover,
                                   replaceable_artifact)
from hashembed.core.errors import OutputPathError
from hashembed.core.integrity import check_files, file_record, read_sealed, seal


def utc_now() -> str:
    """The ``created`` stamp of a header: UTC, to the second, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ArtifactFormat:
    """What one on-disk format is: its header, version, names for messages and its errors.

    Args:
        name: the header's ``format`` value (``"hashembed-bundle"``).
        version: the ``format_version`` this hashembed writes and reads.
        header: the header file's name, written last (``"manifest.json"``).
        kind: what the directory is called in messages (``"bundle"``).
        error: raised for an unreadable, inconsistent or corrupt artifact.
        exists_error: raised when the target holds this kind of artifact and overwrite is off.
        missing_error: raised when the directory or its header is missing (default ``error``).
        version_error: raised for another ``format_version`` (default ``error``).
        digest_error: raised when the header does not match its digest (default ``error``).
        checksum_error: raised when a file does not match its record (default ``error``).
        remake: what to do about a version mismatch or a missing header, for messages
            (``"export the run again"``).
        chunked: files recorded with a sha256 per 4 MiB piece as well (lazily verified).
    """

    name: str
    version: int
    header: str
    kind: str
    error: type[Exception]
    exists_error: type[Exception] = OutputPathError
    missing_error: type[Exception] | None = None
    version_error: type[Exception] | None = None
    digest_error: type[Exception] | None = None
    checksum_error: type[Exception] | None = None
    remake: str = ""
    chunked: frozenset[str] = field(default_factory=frozenset)

    def recognise(self, path: Path) -> str | None:
        """``None`` when ``path`` holds exactly an artifact of this format (so ``--overwrite``
        may replace it), else why not."""
        return replaceable_artifact(self.header, self.name, self.kind)(path)

    def check_target(self, target: str | os.PathLike, overwrite: bool = False,
                     inputs: Iterable[str | os.PathLike] = ()) -> Path:
        """Raise unless ``target`` may receive this artifact; cheap, so commands call it
        before any work starts. Returns the absolute target."""
        return check_output_dir(target, self.kind, self.recognise, overwrite, inputs,
                                self.exists_error)

    def read_header(self, directory: str | os.PathLike) -> dict[str, Any]:
        """The sealed header of the artifact at ``directory``, checked: format name, version,
        digest and a ``files`` table (each failure raises this format's named error)."""
        path = Path(directory)
        missing = self.missing_error or self.error
        hint = f" ({self.remake})" if self.remake else ""
        if not path.is_dir() and not recover(path):
            raise missing(f"{self.kind} {path} does not exist")
        header = path / self.header
        if not header.is_file():
            raise missing(f"{header} is missing: {path} is not a complete hashembed "
                          f"{self.kind} (the header is written last){hint}")
        return read_sealed(header, self.name, self.version, self.error, hint,
                           version_error=self.version_error, digest_error=self.digest_error)

    def check_files(self, directory: str | os.PathLike, files: dict[str, dict],
                    hashed: bool = True, hint: str = "") -> None:
        """Every listed file lies in ``directory``, exists, and has its recorded size and (if
        ``hashed``) sha256."""
        check_files(Path(directory), files, self.checksum_error or self.error, self.header,
                    hashed=hashed, hint=hint)


class ArtifactWriter(StagedDirectory):
    """Stage an artifact of format ``fmt`` at ``target``; write files, the header last, commit.

    Args:
        fmt: the format written.
        target: the directory to create (or, with ``overwrite``, replace if it holds an
            artifact of the same format and nothing else).
        inputs: paths the artifact is made from; ``target`` may not be one or contain one.

    Raises (at construction, before any work): ``OutputPathError`` or ``fmt.exists_error``.
    """

    def __init__(self, fmt: ArtifactFormat, target: str | os.PathLike, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike] = ()):
        super().__init__(target, fmt.kind, fmt.recognise, overwrite=overwrite, inputs=inputs,
                         exists_error=fmt.exists_error)
        self.format = fmt
        self._files: list[str] = []
        self._header: dict[str, Any] | None = None

    @property
    def _missing(self) -> type[Exception]:
        return self.format.missing_error or self.format.error

    def file(self, name: str) -> Path:
        """Where file ``name`` is staged (for writers that need a path, e.g. ONNX export)."""
        if Path(name).name != name or name == self.format.header:
            raise ValueError(f"{name!r} cannot be a file of a {self.format.kind}")
        return self.path / name

    def add_file(self, name: str) -> Path:
        """Register a file the caller wrote at :meth:`file` (``name``)."""
        if not self.file(name).is_file():
            raise self._missing(f"staged file {name} of the {self.format.kind} was not "
                                "written")
        if name not in self._files:
            self._files.append(name)
        return self.file(name)

    def save_array(self, name: str, array: np.ndarray) -> Path:
        """Write ``array`` as ``.npy`` (memory-mappable, no pickles) and register it."""
        with open(self.file(name), "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        return self.add_file(name)

    def open_array(self, name: str, dtype, shape: tuple) -> np.memmap:
        """A writable ``.npy`` memory map to fill in place (arrays larger than RAM); registered
        at once, hashed when the header is written (flush and drop it before)."""
        array = np.lib.format.open_memmap(self.file(name), mode="w+", dtype=dtype, shape=shape)
        self.add_file(name)
        return array

    def save_bytes(self, name: str, data: bytes) -> Path:
        self.file(name).write_bytes(data)
        return self.add_file(name)

    def save_json(self, name: str, content: Any) -> Path:
        """Write ``content`` as JSON (no NaN: JSON has none) and register it."""
        return self.save_bytes(name, (json.dumps(content, indent=2, allow_nan=False)
                                      + "\n").encode())

    def write_header(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Write the header last: ``fields`` plus the format name and version and the record
        of every registered file (each fsynced), sealed by a digest; written to a temporary
        file, fsynced and renamed. Returns the sealed content."""
        fmt = self.format
        files = {name: file_record(self.file(name), chunks=name in fmt.chunked)
                 for name in self._files}
        content = seal({**fields, "format": fmt.name, "format_version": fmt.version,
                        "files": files})
        tmp = self.path / f".{fmt.header}.tmp"
        tmp.write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n")
        file_record(tmp)  # fsync
        os.replace(tmp, self.path / fmt.header)
        self._header = content
        return content

    def commit(self) -> Path:
        """Move the finished artifact into place; refused before :meth:`write_header`."""
        if self._header is None:
            raise self._missing(f"the {self.format.kind} at {self.target} was committed "
                                "before its header was written")
        return super().commit()
