"""Node ids from a command line or a file, in the graph's own kind of id (torch-free).

Shared by ``hashembed predict`` and, later, other front ends: the parsing of what a user typed
lives here, not in the CLI. Integer ids (``dense``/``int`` graphs) are separated by commas or
white space and may be of any size (one beyond 64 bits is then "not in the graph"); string
ids are separated by commas on the command line and written one per line in a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashembed.core.errors import NodeIdTypeError
from hashembed.core.idmap import parse_id_tokens


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


def read_unseen_nodes(path: Path, kind: str) -> tuple[list[list], list | None]:
    """Unseen nodes from a JSON file: a list of ``{"neighbors": [ids…], "id": optional}``
    objects (or one such object per line). Returns the neighbour lists and the ids (``None``
    when no node has one; every node needs one if any does)."""
    import json

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise NodeIdTypeError(f"--new-node-neighbors {path} cannot be read: {e}") from None
    try:
        stripped = text.strip()
        items = json.loads(stripped) if stripped.startswith("[") else [
            json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError as e:
        raise NodeIdTypeError(f"--new-node-neighbors {path} is not JSON: {e}") from None
    neighbours, ids = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("neighbors"), list):
            raise NodeIdTypeError(f"--new-node-neighbors {path}, node {i}: expected an object "
                                  'with a "neighbors" list')
        want = str if kind == "str" else int
        for value in item["neighbors"] + ([item["id"]] if "id" in item else []):
            if isinstance(value, bool) or not isinstance(value, want):
                raise NodeIdTypeError(f"--new-node-neighbors {path}, node {i}: {value!r} is "
                                      f"not {'a string' if kind == 'str' else 'an integer'} id")
        neighbours.append(item["neighbors"])
        ids.append(item.get("id"))
    if any(i is not None for i in ids) and any(i is None for i in ids):
        raise NodeIdTypeError(f"--new-node-neighbors {path}: give every node an id, or none")
    return neighbours, (ids if ids and ids[0] is not None else None)
