"""bench fanout: accuracy served with each fan-out cap (no timing asserts)."""

import json

from hashembed.app.cli import main


def test_exact_serving_reproduces_the_runs_test_accuracy_and_caps_are_reported(
        sage_run, cora, tmp_path, capsys):
    out = tmp_path / "fanout.json"
    test_nodes = int(cora.masks["test"].sum())
    assert main(["bench", "fanout", str(sage_run), "--caps", "0", "2", "--nodes", "100000",
                 "--queries", "5", "--out", str(out)]) == 0
    assert "| exact |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    exact, capped = result["rows"]
    assert (exact["cap"], capped["cap"]) == ("exact", "2")
    assert result["config"]["nodes"] == test_nodes
    # exact neighbourhoods serve what the full graph computed at training time
    metrics = json.loads((sage_run / "metrics.json").read_text())
    assert abs(exact["accuracy"] - metrics["test"]) < 1e-9
    assert exact["agreement_with_exact"] == 1.0
    # two in-edges a node change some answers on Cora (hubs of degree up to 168)
    assert capped["agreement_with_exact"] < 1.0
    assert capped["p99_ms"] >= capped["p50_ms"]
    # each timed node served again as unseen, from its own neighbours: mostly its own label
    # (its code differs from the stored one only by its own projection term)
    for row in (exact, capped):
        assert row["new_p99_ms"] >= row["new_p50_ms"] > 0
    assert exact["new_agreement"] >= 0.6
    assert "new agrees" in result["table"] and result["config"]["hops"] == 1
