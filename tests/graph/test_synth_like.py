"""``synth --like``: copies of a real graph, a share of edges moved to twins in other copies."""

import numpy as np
import pytest

from hashembed.core.errors import ConfigError
from hashembed.core.graphdir import open_graph
from hashembed.graph.memory import Graph, symmetrize, to_csr
from hashembed.graph.synth_like import LikeConfig, synth_like


def base_graph(n: int = 300, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    pairs = rng.integers(0, n, (1200, 2))
    return Graph("base", n, symmetrize(pairs, n), labels)


def edge_pairs(graph_dir) -> np.ndarray:
    g = open_graph(graph_dir)
    src = np.repeat(np.arange(g.num_nodes), np.diff(np.asarray(g.indptr)))
    return np.stack([src, np.asarray(g.indices, np.int64)], axis=1)


def test_without_rewiring_the_copies_are_the_graph_again(tmp_path):
    base = base_graph()
    synth_like(base, LikeConfig(copies=3, rewire=0.0), tmp_path / "g", progress=False)
    g = open_graph(tmp_path / "g")
    n0 = base.num_nodes
    indptr, indices = to_csr(base.edge_index, n0)
    for k in range(3):
        np.testing.assert_array_equal(np.diff(np.asarray(g.indptr))[k * n0:(k + 1) * n0],
                                      np.diff(indptr))
    np.testing.assert_array_equal(np.asarray(g.labels), np.tile(base.labels, 3))
    pairs = edge_pairs(tmp_path / "g")
    assert (pairs[:, 0] // n0 == pairs[:, 1] // n0).all()  # no edge between copies


def test_rewired_edges_join_the_same_classes_across_copies(tmp_path):
    base = base_graph()
    config = LikeConfig(copies=4, rewire=0.3, seed=2)
    synth_like(base, config, tmp_path / "g", progress=False)
    synth_like(base, config, tmp_path / "again", progress=False)
    pairs, labels = edge_pairs(tmp_path / "g"), np.asarray(open_graph(tmp_path / "g").labels)
    np.testing.assert_array_equal(pairs, edge_pairs(tmp_path / "again"))  # seeded
    n0 = base.num_nodes
    across = pairs[:, 0] // n0 != pairs[:, 1] // n0
    assert 0.25 < across.mean() < 0.35  # about the rewired share
    # an edge keeps its ends' roles: (u, v) in the base graph, wherever v's copy is
    base_pairs = set(map(tuple, base.edge_index.T.tolist()))
    assert {(int(u % n0), int(v % n0)) for u, v in pairs} <= base_pairs
    same = (labels[pairs[:, 0]] == labels[pairs[:, 1]]).mean()
    base_same = (base.labels[base.edge_index[0]] == base.labels[base.edge_index[1]]).mean()
    assert abs(same - base_same) < 0.02  # homophily kept (duplicates dropped aside)


def test_bad_settings_are_named():
    for kwargs, message in (({"copies": 0}, "--copies"), ({"copies": 2, "rewire": 1.5},
                                                          "--rewire"),
                            ({"copies": 1, "rewire": 0.1}, "needs --copies 2")):
        with pytest.raises(ConfigError, match=message):
            LikeConfig(**kwargs)


def test_the_cli_makes_copies_of_a_named_dataset(tmp_path, capsys):
    from hashembed.app.cli import main

    assert main(["synth", "--like", "cora", "--out", str(tmp_path / "g")]) == 2
    assert "--like needs --copies" in capsys.readouterr().err
    assert main(["synth", "--like", "cora", "--num-nodes", "10", "--copies", "2", "--out",
                 str(tmp_path / "g")]) == 2
    assert "one of the two" in capsys.readouterr().err
    assert main(["synth", "--like", "cora", "--copies", "2", "--rewire", "0.5", "--quiet",
                 "--out", str(tmp_path / "g")]) == 0
    g = open_graph(tmp_path / "g")
    assert g.num_nodes == 2 * 2708 and g.header.source["rewire"] == 0.5
