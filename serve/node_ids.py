"""Node ids from a command line or a file, in the graph's own kind of id (torch-free).

Shared by ``hashembed predict`` and, later, other front ends: the parsing of what a user typed
lives here, not in the CLI. Integer ids (``dense``/``int`` graphs) are separated by commas or
white space and may be of any size (one beyond 64 bits is then "not in the graph"); string
ids are separated by commas on the command line and written one per line in a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashembed.errors import NodeIdTypeError
from hashembed.idmap import parse_id_tokens


def split_ids(text: str, kind: str, one_per_line: bool = False) -> list[str]:
    """The id tokens of ``text`` for a graph whose ids are of ``kind``."""
    if kind == "str":
        parts = text.splitlines() if one_per_line else text.split(",")
        return [p.strip() for p in parts if p.strip()]
    return text.replace(",", " ").split()


def parse_ids_text(text: str, kind: str, where: str, one_per_line: bool = False) -> list:
    """Ids in ``text`` as Python values of ``kind`` (ints, or strings)."""
    return parse_id_tokens(split_ids(text, kind, one_per_line), kind, where)


def read_ids_file(path: Path, kind: str):
    """Ids from ``path``: a ``.npy`` integer array, or text (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise NodeIdTypeError(f"--nodes-file {path} does not exist")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise NodeIdTypeError(f"--nodes-file {path} is not a readable .npy array: "
                                  f"{e}") from None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise NodeIdTypeError(f"--nodes-file {path} is not a text file of node ids (nor "
                              ".npy)") from None
    return parse_ids_text(text, kind, f"--nodes-file {path}", one_per_line=True)
