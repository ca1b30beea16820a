"""Atomic writes: a single file through a temporary sibling, a directory through a staged one.

A crash leaves either the old artifact or the new one, never a truncated or mixed one:

* :func:`atomic_write` writes a temporary sibling file, fsyncs it and renames it over the target.
* :class:`StagedDirectory` builds a whole directory (a run, a bundle) in a hidden sibling
  ``.NAME.staging-HOST-PID-TOKEN`` and renames it into place on :meth:`~StagedDirectory.commit`.
  Replacing an existing directory is allowed only when the caller recognises it as an artifact
  of the same kind (``--overwrite`` never deletes a user's unrelated folder, nor a folder that
  holds one of the inputs). Siblings left behind by a killed writer on this host are cleaned
  up by the next writer of the same target; a previous version moved aside
  (``.NAME.old-…``) just before the crash is put back when the new one never arrived.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from hashembed.core.errors import OutputPathError

log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_file(path: str | os.PathLike, what: str = "--output", overwrite: bool = True,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Raise :class:`OutputPathError` unless ``path`` can be written as a file.

    Checked before any work starts: not an existing directory, not an existing file unless
    ``overwrite``, not one of ``inputs`` nor inside one of them, and the parent directory
    exists and is writable.
    """
    path = Path(path)
    for source in inputs:
        if _is_inside(path.resolve(), Path(source).resolve()):
            raise OutputPathError(f"{what} {path} would overwrite an input ({source})")
    if path.exists() and not path.is_dir() and not overwrite:
        raise OutputPathError(f"{what} {path} already exists; choose another name or pass "
                              "--overwrite")
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"{what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path}: directory {parent} is not writable")
    return path


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    On any failure the temporary file is removed and ``path`` is untouched.
    """
    path = check_output_file(path, "output file")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_dir(target: str | os.PathLike, kind: str,
                     recognise: Callable[[Path], str | None], overwrite: bool = False,
                     inputs: Iterable[str | os.PathLike] = (),
                     exists_error: type[Exception] = OutputPathError) -> Path:
    """Raise unless directory ``target`` may be written (see :class:`StagedDirectory`).

    Cheap and side-effect free, so commands call it before any work starts. Returns the
    absolute target.
    """
    target = Path(target).absolute()
    real = target.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if _is_inside(source, real):
            raise OutputPathError(
                f"{target} {'is' if source == real else 'contains'} {source}, an "
                f"input of this {kind}; write the {kind} somewhere else")
    if _is_inside(Path.cwd().resolve(), real):
        raise OutputPathError(f"{target} is or contains the current directory; write the "
                              f"{kind} into a new folder instead")
    if target.is_symlink():
        raise OutputPathError(f"{target} is a symbolic link; give the real path of the {kind}")
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{target} is a file, not a {kind} directory")
    if target.exists() and os.path.ismount(target):
        raise OutputPathError(f"{target} is a mount point and cannot be replaced; write the "
                              f"{kind} into a folder inside it")
    if target.exists() and any(target.iterdir()):
        why_not = recognise(target)
        if why_not is not None:
            raise OutputPathError(
                f"{target} {why_not}; refusing to {'replace' if overwrite else 'write into'} "
                "it (choose a new path)")
        if not overwrite:
            raise exists_error(f"{target} already holds a {kind}; choose another path or pass "
                               "--overwrite")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write the {kind} {target}: {ancestor} is not a "
                              "writable directory")
    return target


def only_listed_files(path: Path, manifest_name: str, listed: Iterable[str],
                      kind: str) -> str | None:
    """``None`` when ``path`` holds nothing but ``manifest_name`` and the ``listed`` files,
    else why not: what ``--overwrite`` may replace is exactly what the artifact wrote."""
    extra = sorted(p.name for p in path.iterdir()
                   if p.name != manifest_name and p.name not in set(listed))
    if extra:
        shown = ", ".join(extra[:3]) + (", …" if len(extra) > 3 else "")
        return f"holds files that are not part of its {kind} ({shown})"
    return None


def replaceable_artifact(manifest_name: str, format_name: str, kind: str
                         ) -> Callable[[Path], str | None]:
    """The ``recognise`` function of an artifact whose sealed JSON header ``manifest_name``
    has ``"format": format_name`` and lists its ``files``: ``None`` (replaceable) when the
    folder holds exactly that, else why not."""
    def recognise(path: Path) -> str | None:
        try:
            content = json.loads((Path(path) / manifest_name).read_text())
        except (OSError, ValueError):
            content = None
        if not isinstance(content, dict) or content.get("format") != format_name:
            return f"exists and is not a hashembed {kind}"
        files = content.get("files") if isinstance(content.get("files"), dict) else {}
        return only_listed_files(Path(path), manifest_name, files, kind)
    return recognise


# renameat2(2) flags (Linux >= 3.15): fail if the target exists / swap two paths atomically
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False where the call or the flag is unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if call(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # e.g. a filesystem without the flag: the caller falls back
    raise OSError(err, os.strerror(err), str(dst))


def _stale_siblings(target: Path) -> list[tuple[str, Path]]:
    """``("staging"|"old", path)`` of siblings left by dead writers on this host, old first."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(staging|old)-{_HOST}-(\d+)-"
                         r"[0-9a-f]{8}\Z")
    found = []
    if target.parent.is_dir():
        for entry in target.parent.iterdir():
            match = pattern.match(entry.name)
            if match and not _pid_alive(int(match.group(2))):
                found.append((match.group(1), entry))
    return sorted(found, key=lambda f: f[0] == "staging")


def _restore(old: Path, target: Path) -> None:
    os.rename(old, target)
    log.warning("restored %s from %s (a writer was killed while replacing it)", target,
                old.name)


def recover(target: str | os.PathLike) -> bool:
    """Put back ``target`` if a killed writer moved it aside and died before replacing it.

    Readers call this when ``target`` is missing; returns True when it was restored.
    """
    target = Path(target).absolute()
    if target.exists():
        return False
    for state, entry in _stale_siblings(target):
        if state == "old":
            try:
                _restore(entry, target)
            except OSError:  # a read-only location, or another reader was first
                return target.exists()
            return True
    return False


class StagedDirectory:
    """Build directory ``target`` beside it and move it into place only on :meth:`commit`.

    Args:
        target: the directory to create (or replace).
        kind: what it is, for messages (``"bundle"``, ``"run directory"``).
        recognise: ``recognise(path) -> str | None``: ``None`` when an existing ``target`` is
            an artifact of this kind holding nothing else, so it may be replaced; else why
            not (for the error).
        overwrite: allow replacing a recognised ``target``.
        inputs: paths this write reads from; ``target`` may not be one of them or contain one.
        exists_error: the exception type for "``target`` exists and overwrite is off".

    Raises (at construction, before any work):
        OutputPathError: ``target`` is a file, holds an input, is not recognised, or its parent
            is not writable.
        exists_error: ``target`` exists and ``overwrite`` is off.

    Example:
        >>> with StagedDirectory(out, "bundle", FORMAT.recognise) as staged:  # doctest: +SKIP
        ...     write_everything(staged.path)
        ...     staged.commit()          # an exception before this leaves nothing at `out`
    """

    def __init__(self, target: str | os.PathLike, kind: str,
                 recognise: Callable[[Path], str | None], overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike] = (),
                 exists_error: type[Exception] = OutputPathError):
        recover(target)  # a target a killed writer moved aside counts as existing
        self.target = check_output_dir(target, kind, recognise, overwrite, inputs, exists_error)
        self.kind = kind
        self._recognise = recognise
        self.overwrite = overwrite
        self._exists_error = exists_error
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputPathError(f"cannot create {parent} for the {kind}: {e.strerror}") from None
        self._clean_stale()
        stem = f".{self.target.name}.staging-{_HOST}-{os.getpid()}-"
        try:
            self.path = parent / (stem + uuid.uuid4().hex[:8])
            self.path.mkdir()
        except OSError as e:
            raise OutputPathError(f"cannot write the {kind} in {parent}: {e.strerror}") from None
        self._committed = False

    def _clean_stale(self) -> None:
        """Remove siblings of killed writers on this host; restore a target moved aside."""
        for state, entry in _stale_siblings(self.target):
            if state == "old" and not self.target.exists():
                _restore(entry, self.target)
            else:
                shutil.rmtree(entry, ignore_errors=True)
                log.info("removed %s, left by a killed writer", entry)

    def __enter__(self) -> "StagedDirectory":
        return self

    def __exit__(self, *exc) -> None:
        if not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Atomically move the staged directory to ``target``, replacing a recognised one.

        On Linux the replacement is one ``renameat2`` call (``RENAME_EXCHANGE``, or
        ``RENAME_NOREPLACE`` for a new target), so there is no moment without a target and a
        target that appears meanwhile is never replaced without ``overwrite``. Elsewhere the old
        target is first moved aside (``.NAME.old-…``, restored if the writer dies). If the move
        fails, the staged result is kept and the error says where.
        """
        # it may have appeared or changed while we worked
        check_output_dir(self.target, self.kind, self._recognise, self.overwrite,
                         exists_error=self._exists_error)
        try:
            self._move_into_place()
        except OSError as e:
            self._committed = True  # keep the staged copy: it is the finished work
            raise OutputPathError(f"could not move the finished {self.kind} to {self.target} "
                                  f"({e.strerror}); it is kept at {self.path}") from None
        self._committed = True
        _fsync_dir(self.target.parent)
        return self.target

    def _move_into_place(self) -> None:
        target = self.target
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # an empty folder holds nothing; replace it like a new target
        if not target.exists() or not self.overwrite:
            # never replace without overwrite, even a target that appeared after the check
            if _renameat2(self.path, target, _RENAME_NOREPLACE):
                return
            if target.exists():
                raise OSError(errno.EEXIST, "it appeared meanwhile", str(target))
            os.rename(self.path, target)
            return
        if _renameat2(self.path, target, _RENAME_EXCHANGE):  # target now at self.path
            shutil.rmtree(self.path, ignore_errors=True)
            return
        old = target.parent / f".{target.name}.old-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(self.path, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
