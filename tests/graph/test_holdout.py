"""Held-out nodes leave the graph whole: no edge of theirs stays, every other node keeps its id."""

import numpy as np
import pytest

from hashembed.graph.holdout import hold_out


def test_hold_out_removes_nodes_and_their_edges_and_keeps_ids(cora):
    reduced, held = hold_out(cora, 0.1, seed=0)
    labelled = int((cora.labels >= 0).sum())
    assert len(held.ids) == round(0.1 * labelled) == cora.num_nodes - reduced.num_nodes
    assert not set(held.ids) & set(reduced.ids.external(np.arange(reduced.num_nodes)))
    # every remaining edge is an edge of the original graph between remaining nodes
    src, dst = reduced.edges()
    names = np.array(reduced.ids.external(np.arange(reduced.num_nodes)))
    original = set(zip(*cora.edge_index.tolist()))
    assert all((int(a), int(b)) in original for a, b in zip(names[src], names[dst]))
    out = set(held.ids)
    kept_edges = sum(1 for a, b in original if a not in out and b not in out)
    assert src.size == kept_edges
    # neighbours: exactly the original neighbours that remain
    v = held.ids[0]
    expected = sorted(int(u) for u in cora.edge_index[0][cora.edge_index[1] == v] if u not in out)
    assert held.neighbors[0] == expected and held.labels[0] == cora.labels[v]
    np.testing.assert_array_equal(reduced.labels, np.delete(cora.labels, held.ids))


@pytest.mark.slow
def test_bench_inductive_reports_each_method(tmp_path, capsys):
    import json

    from hashembed.app.cli import main

    out = tmp_path / "inductive.json"
    assert main(["bench", "inductive", "--datasets", "cora", "--methods", "hash", "degree",
                 "--bits", "64", "--quiet", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["method"] for row in rows] == ["hash", "degree"]
    hash_row = rows[0]
    assert hash_row["held_out_nodes"] == 271 and 0.3 < hash_row["held_out"] <= 1
    assert abs(hash_row["gap"] - (hash_row["held_out"] - hash_row["transductive_test"])) < 1e-12
    assert "| cora | hash |" in capsys.readouterr().out


def test_train_holdout_nodes_saves_them_with_the_run(tmp_path):
    import json

    from hashembed.app.cli import main

    assert main(["train", "--dataset", "cora", "--holdout-nodes", "0.05", "--bits", "32",
                 "--epochs", "3", "--quiet", "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "holdout.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(saved["ids"]) == metrics["holdout_nodes"] == 135
    assert metrics["num_nodes"] == 2708 - 135
