"""Reading label files (``--labels FILE``).

Label files: ``node label`` rows, same text rules; the label is the rest of the line (names
with spaces stay whole). One rule per file: every label an integer (class ids ``0 .. K-1``),
or every label a name (classes numbered by sorted name; the mapping travels with the run and
the bundle). A file mixing the two is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hashembed.core.errors import GraphInputError
from hashembed.core.idmap import INT_TOKEN
from hashembed.graph.ids import IdColumn, as_ints, check_dense
from hashembed.graph.readers import (NODE_COLUMN_NAMES, data_lines, detect_delimiter, is_header,
                                    split_fields)

log = logging.getLogger(__name__)

MAX_CLASSES = 10_000


def read_label_rows(path: str | Path, string_ids: bool = False
                    ) -> tuple[IdColumn, np.ndarray, list[str] | None]:
    """A ``node label`` file as unmapped node ids (tokens), labels and class names.

    Returns:
        the node ids ``[L]`` as an :class:`IdColumn`, ``labels int64 [L]`` and the class
        names when labels are names (class ``i`` is ``names[i]``, sorted), else ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphInputError(f"label file {path} does not exist")
    rows: list[tuple[int, str, str]] = []
    delimiter = None
    data = list(data_lines(path))
    for lineno, line in data:
        if not rows and delimiter is None:
            delimiter = detect_delimiter(line)
            following = split_fields(data[1][1], delimiter, maxsplit=1) if len(data) > 1 else None
            # a header names the node column, or sits above an integer node id
            following = following[:1] if following else None
            if is_header(split_fields(line, delimiter), following, set(NODE_COLUMN_NAMES),
                          string_ids):
                log.info("%s: line %d is a header (%s)", path, lineno, line[:80])
                continue
        fields = split_fields(line, delimiter, maxsplit=1)
        if len(fields) < 2 or not fields[1]:
            raise GraphInputError(f"{path}, line {lineno}: expected 'node label', got "
                                  f"{line[:80]!r}")
        rows.append((lineno, fields[0], fields[1]))
    if not rows:
        raise GraphInputError(f"{path} has no data rows")
    nodes = np.empty(len(rows), dtype=object)
    nodes[:] = [node for _, node, _ in rows]
    column = IdColumn(nodes, path, np.array([n for n, _, _ in rows], dtype=np.int64))
    check_labelled_once(nodes, column)  # as written; again once mapped ("01" is 1)
    is_int = [bool(INT_TOKEN.match(label)) for _, _, label in rows]
    names = None
    if all(is_int):
        labels = np.array([int(label) for _, _, label in rows], dtype=object)
        negative = [i for i, v in enumerate(labels) if v < 0]
        if negative:
            raise GraphInputError(f"{path}, line {rows[negative[0]][0]}: label "
                                  f"{labels[negative[0]]} is negative")
        top = int(np.argmax(labels))
        num_classes = int(labels[top]) + 1
        if num_classes > min(MAX_CLASSES, len(rows)):
            raise GraphInputError(
                f"{path}, line {rows[top][0]}: label {labels[top]} makes {num_classes:,} "
                f"classes for {len(rows):,} labelled nodes; integer labels must be class ids "
                f"0 .. K-1 with K at most {MAX_CLASSES:,} (are the node and label columns "
                "swapped? write labels as names to number them densely)")
        labels = labels.astype(np.int64)
    elif not any(is_int):
        names = sorted({label for _, _, label in rows})
        if len(names) > min(MAX_CLASSES, max(len(rows) // 2, 2)):
            raise GraphInputError(
                f"{path}: {len(names):,} distinct label names for {len(rows):,} labelled "
                f"nodes; is the label column an id (node and label swapped)?")
        lookup = {name: i for i, name in enumerate(names)}
        labels = np.array([lookup[label] for _, _, label in rows], dtype=np.int64)
        log.info("%s: %d classes by name (%s)", path, len(names),
                 ", ".join(names[:5]) + (", …" if len(names) > 5 else ""))
    else:
        first_int, first_name = is_int.index(True), is_int.index(False)
        raise GraphInputError(
            f"{path}: labels mix integers (line {rows[first_int][0]}: "
            f"{rows[first_int][2]!r}) and names (line {rows[first_name][0]}: "
            f"{rows[first_name][2]!r}); use one kind throughout")
    return column, labels, names


def check_labelled_once(rows: np.ndarray, column: IdColumn) -> None:
    seen, first = np.unique(rows, return_index=True)
    if seen.size != rows.size:
        dup = int(np.setdiff1d(np.arange(rows.size), first)[0])
        raise GraphInputError(f"{column.where(dup)}: node {column.values[dup]} is labelled "
                              "twice")


def read_labels(path: str | Path, num_nodes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a ``node label`` file whose node ids are rows ``0 .. n-1`` (dense ids).

    Returns:
        ``nodes int64 [L]``, ``labels int64 [L]`` and the class names (or ``None``).
    """
    column, labels, names = read_label_rows(path)
    column = as_ints(column, "dense")
    check_dense(column, num_nodes)
    check_labelled_once(column.values, column)
    return column.values, labels, names
