"""Atomic single-file writes: write a temporary sibling, fsync, rename over the target.

A crash leaves either the old file or the new one, never a truncated one. (Whole bundles are
staged as directories by :class:`hashembed.bundle.BundleWriter`.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` (bytes, or a function writing to a binary file) to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        if callable(content):
            content(f)
        else:
            f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
