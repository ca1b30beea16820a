"""Node ids as files give them, and their rows: parsing, the dense-id checks, the id kind of a
graph and the mapping of ids to rows (:class:`~hashembed.core.idmap.IdMap`).

Node ids are row numbers ``0 .. n-1`` when dense; ``n`` is ``--num-nodes`` or the largest id + 1.
Ids that would make ``n`` far larger than the ids present (e.g. one id of 2⁴⁰) are refused
before anything is allocated. Every problem is a :class:`GraphInputError` naming the file and
the line (text) or row (binary).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashembed.core.errors import GraphInputError
from hashembed.core.idmap import INT_TOKEN, IdMap

INT64_MAX = 2**63 - 1


# n larger than this many times the distinct ids present (and than DENSE_SLACK) is refused:
# ids are row numbers here, and a stray huge id would allocate per-node arrays for nothing
SPARSE_ID_FACTOR = 16


DENSE_SLACK = 1 << 20


# bytes that coding and training keep per node (labels, masks, codes, CSR, degrees, …)
BYTES_PER_NODE_ESTIMATE = 64


@dataclass
class IdColumn:
    """Node ids as read from one file, before they are mapped to rows.

    Attributes:
        values: ``int64`` (binary files) or ``object`` strings (text tokens), any shape.
        path: the file.
        lines: ``int64`` line number of each leading-axis entry (text), or ``None`` (rows).
    """

    values: np.ndarray
    path: Path
    lines: np.ndarray | None = None

    def where(self, flat_index: int) -> str:
        """"FILE, line L" / "FILE, row R" of entry ``flat_index`` of ``values.ravel()``."""
        per = int(np.prod(self.values.shape[1:])) if self.values.ndim > 1 else 1
        i = flat_index // per
        return f"{self.path}, line {self.lines[i]}" if self.lines is not None \
            else f"{self.path}, row {i}"


def as_ints(column: IdColumn, kind: str) -> IdColumn:
    """``column`` with int64 values; text tokens are parsed, each problem named by its line."""
    if column.values.dtype != object:
        return column
    flat = column.values.ravel()
    out = np.empty(flat.size, dtype=np.int64)
    for i, token in enumerate(flat):
        if not INT_TOKEN.match(token):
            raise GraphInputError(f"{column.where(i)}: node id {token[:40]!r} is not an integer"
                                  + ("" if kind == "dense" else " (pass --id-type str for "
                                     "string ids)"))
        value = int(token)
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise GraphInputError(f"{column.where(i)}: node id {value} does not fit in 64 bits "
                                  "(pass --id-type str to read ids as strings)")
        out[i] = value
    return IdColumn(out.reshape(column.values.shape), column.path, column.lines)


def check_dense(column: IdColumn, num_nodes: int | None) -> None:
    """Dense ids are rows: non-negative, and below ``num_nodes`` when it is given."""
    flat = column.values.ravel()
    negative = np.nonzero(flat < 0)[0]
    if negative.size:
        raise GraphInputError(f"{column.where(int(negative[0]))}: node id "
                              f"{int(flat[negative[0]])} is negative")
    if num_nodes is not None:
        beyond = np.nonzero(flat >= num_nodes)[0]
        if beyond.size:
            raise GraphInputError(f"{column.where(int(beyond[0]))}: node id "
                                  f"{int(flat[beyond[0]])} is beyond --num-nodes {num_nodes}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_num_nodes(num_nodes: int, distinct_ids: int, largest: int, where: str,
                    given: bool) -> None:
    """Refuse an ``n`` that per-node arrays could not hold, or that a stray id inflated.

    Args:
        num_nodes: ``n`` (``--num-nodes``, or the largest id + 1).
        distinct_ids: how many different ids the files name.
        largest: the largest id, for the message.
        given: ``n`` came from ``--num-nodes`` (only the memory bound applies).
    """
    if not given and num_nodes > max(DENSE_SLACK, SPARSE_ID_FACTOR * distinct_ids):
        raise GraphInputError(
            f"{where}: node id {largest:,} would make the graph {num_nodes:,} nodes, but only "
            f"{distinct_ids:,} distinct ids appear; ids must be row numbers 0 .. n-1 here "
            "(renumber them, or pass --num-nodes if the graph really is that large)")
    memory = _physical_memory()
    need = num_nodes * BYTES_PER_NODE_ESTIMATE
    if memory is not None and need > memory:
        raise GraphInputError(
            f"{where}: n = {num_nodes:,} nodes needs about {need / 2**30:,.0f} GiB for per-node "
            f"arrays; this machine has {memory / 2**30:,.0f} GiB")


ID_TYPES = ("auto", "dense", "int", "str")


def id_kind(columns: list[IdColumn], id_type: str) -> str:
    """``"dense"``, ``"int"`` or ``"str"`` for ids read from ``columns`` (module docstring)."""
    if id_type not in ID_TYPES:
        raise GraphInputError(f"--id-type {id_type!r} is not one of {ID_TYPES}")
    if id_type != "auto":
        return id_type
    texts = [c for c in columns if c.values.dtype == object]
    if not texts:
        return "int"
    first_int = first_name = None
    for column in texts:
        for i, token in enumerate(column.values.ravel()):
            if INT_TOKEN.match(token):
                first_int = first_int or column.where(i) + f" ({token[:40]!r})"
            else:
                first_name = first_name or column.where(i) + f" ({token[:40]!r})"
            if first_int and first_name:
                raise GraphInputError(
                    f"node ids mix integers ({first_int}) and names ({first_name}); pass "
                    "--id-type str to read every id as a string")
    binary = len(texts) < len(columns)
    if first_name and binary:
        raise GraphInputError("the edge file has integer ids and the label file string ids")
    return "str" if first_name else "int"


def map_ids(columns: list[IdColumn], kind: str, num_nodes: int | None = None
            ) -> tuple[IdMap, list[np.ndarray]]:
    """Map the ids of ``columns`` to rows; returns the id map and each column's rows (int64).

    ``dense``: ids are rows (``n`` = ``num_nodes`` or the largest + 1, refused when a stray id
    would inflate it). ``int``/``str``: rows number the distinct ids in sorted order; integer
    ids that already are exactly ``0 .. n-1`` stay dense (nothing to store).
    """
    if kind == "str":  # integers from .npy or Parquet become their decimal text
        from hashembed.graph.stringids import StringRows, as_large_strings, distinct_strings

        values = [np.vectorize(str, otypes=[object])(c.values) if c.values.size
                  else np.asarray(c.values, dtype=object) for c in columns]
        arrays = [as_large_strings(v.ravel()) for v in values]
        string_rows = StringRows(distinct_strings(arrays, sort=True))
        return string_rows.id_map, [string_rows(a)[:, 0].reshape(v.shape)
                                    for a, v in zip(arrays, values)]
    columns = [as_ints(c, kind) for c in columns]
    if kind == "dense":
        for column in columns:
            check_dense(column, num_nodes)
        if num_nodes is None:
            distinct = np.unique(np.concatenate([c.values.ravel() for c in columns]))
            if distinct.size == 0:
                raise GraphInputError(f"{columns[0].path} describes an empty graph")
            num_nodes = int(distinct[-1]) + 1
            check_num_nodes(num_nodes, int(distinct.size), int(distinct[-1]),
                            str(columns[0].path), given=False)
        return IdMap.dense(num_nodes), [c.values for c in columns]
    distinct = np.unique(np.concatenate([c.values.ravel() for c in columns]))
    if distinct.size and distinct[0] == 0 and distinct[-1] == distinct.size - 1:
        return IdMap.dense(int(distinct.size)), [c.values for c in columns]
    return IdMap.from_ints(distinct), [np.searchsorted(distinct, c.values).astype(np.int64)
                                       for c in columns]
