"""A labelled graph in memory from the users' own files (``hashembed train --edges FILE
--labels FILE``): edges read by :mod:`~hashembed.graph.readers`, labels by
:mod:`~hashembed.graph.labels`, ids mapped to rows by :mod:`~hashembed.graph.ids`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hashembed.core.errors import GraphInputError
from hashembed.graph.ids import check_num_nodes, id_kind, map_ids
from hashembed.graph.labels import check_labelled_once, read_label_rows
from hashembed.graph.memory import Graph, symmetrize
from hashembed.graph.readers import read_edge_ids

log = logging.getLogger(__name__)


def load_edge_list_graph(edges_path: str | Path, labels_path: str | Path | None = None,
                         num_nodes: int | None = None, src_col: str | None = None,
                         dst_col: str | None = None, id_type: str = "auto") -> Graph:
    """A :class:`Graph` from user files, its rows numbering the users' own ids.

    Args:
        id_type: ``auto`` (integers if every id is one, strings if none is; a mix is
            refused), ``int`` (any 64-bit integers), ``str``, or ``dense`` (ids are rows
            ``0 .. n-1``). ``num_nodes`` implies ``dense``.
    """
    if num_nodes is not None:
        if num_nodes < 1:
            raise GraphInputError(f"--num-nodes {num_nodes} must be positive")
        check_num_nodes(num_nodes, 0, num_nodes - 1, "--num-nodes", given=True)
        if id_type not in ("auto", "dense"):
            raise GraphInputError(f"--num-nodes means ids are rows 0 .. n-1; it does not go "
                                  f"with --id-type {id_type}")
        id_type = "dense"
    string_ids = id_type == "str"
    columns = [read_edge_ids(edges_path, src_col, dst_col, string_ids)]
    labels = names = None
    if labels_path is not None:
        label_nodes, labels, names = read_label_rows(labels_path, string_ids)
        columns.append(label_nodes)
    kind = id_kind(columns, id_type)
    id_map, rows = map_ids(columns, kind, num_nodes)
    n = id_map.num_nodes
    if id_map.kind != "dense":
        log.info("%s: %d nodes with %s ids, mapped to rows", edges_path, n, id_map.kind)
    node_labels = None
    if labels is not None:
        check_labelled_once(rows[1], columns[1])
        node_labels = np.full(n, -1, dtype=np.int64)
        node_labels[rows[1]] = labels
    return Graph(name=Path(edges_path).stem, num_nodes=n, edge_index=symmetrize(rows[0], n),
                 labels=node_labels, class_names=names,
                 id_map=None if id_map.kind == "dense" else id_map)
