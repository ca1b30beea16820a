"""`bench summary` builds the README's table from several accuracy results, later ones winning."""

import json

import pytest

from hashembed.bench.summary import collect, markdown
from hashembed.core.errors import ConfigError


def _results(path, b, rows, **config):
    path.mkdir()
    summary = [{"dataset": d, "metric": "accuracy", "method": m, "bits": bits,
                "test_mean": score, "test_std": 0.0, "seeds": seeds, "bytes_per_node": 1.0}
               for d, m, bits, score, seeds in rows]
    (path / "results.json").write_text(json.dumps(
        {"benchmark": "accuracy", "config": {"bits_per_index": b, **config},
         "summary": summary}))
    return path


def test_later_results_override_and_b_gets_its_own_column(tmp_path):
    full = _results(tmp_path / "full", 8, [
        ("cora", "table", None, 0.84, 3), ("cora", "hash", 128, 0.80, 3),
        ("cora", "hash", 64, 0.70, 3), ("ddi", "table", None, 0.07, 2),
        ("ddi", "degree", None, 0.10, 2)])
    b4 = _results(tmp_path / "b4", 4, [("cora", "hash", 128, 0.82, 3)])
    rerun = _results(tmp_path / "rerun", 8, [("ddi", "table", None, 0.50, 1)])
    datasets, columns, cells, _ = collect([full, b4, rerun], 128)
    assert datasets == ["cora", "ddi"]
    assert columns == ["table", "hash b=8", "hash b=4", "degree"]
    assert cells[("ddi", "table")]["test_mean"] == 0.50
    assert cells[("cora", "hash b=8")]["test_mean"] == 0.80  # not the 64-bit run
    text = markdown([full, b4, rerun])
    assert "| cora (accuracy) | 0.840 | 0.800 | 0.820 | — |" in text
    assert "| ddi (accuracy) | 0.500 | — | — | 0.100 |" in text
    assert f"- `{rerun}`: ddi: table (1 seed)" in text
    assert "| cora (accuracy) | 0.840 | 0.700 | — |" in markdown([full, b4], bits=64)


def test_codes_trained_with_bit_flips_get_their_own_column(tmp_path):
    """Results from before bit flips (no ``bit_flip``) keep their column; codes trained with
    flips sit beside them, after, labelled with the rate; methods without codes are shared."""
    plain = _results(tmp_path / "plain", 4, [("cora", "table", None, 0.84, 3),
                                             ("cora", "hash", 128, 0.83, 3)], hops="auto")
    flipped = _results(tmp_path / "flipped", 4, [("cora", "hash", 128, 0.85, 3)], hops="auto",
                       bit_flip=0.1)
    _, columns, cells, _ = collect([plain, flipped], 128)
    assert columns == ["table", "hash b=4 K=auto", "hash b=4 K=auto q=0.1"]
    assert cells[("cora", "hash b=4 K=auto")]["test_mean"] == 0.83
    assert "| cora (accuracy) | 0.840 | 0.830 | 0.850 |" in markdown([plain, flipped])


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ConfigError, match="missing does not exist"):
        collect([tmp_path / "missing"], 128)
    (tmp_path / "decode.json").write_text(json.dumps({"benchmark": "decode"}))
    with pytest.raises(ConfigError, match="not the output of `hashembed bench accuracy`"):
        collect([tmp_path / "decode.json"], 128)
    full = _results(tmp_path / "full", 8, [("cora", "table", None, 0.84, 3),
                                           ("cora", "hash", 128, 0.80, 3)])
    with pytest.raises(ConfigError, match=r"no results at 7 bits .* they have \[128\]"):
        collect([full], 7)


def test_summary_command_prints_the_table_and_fails_in_one_line(tmp_path, capsys):
    from hashembed.app.cli import main

    full = _results(tmp_path / "full", 8, [("cora", "table", None, 0.84, 3),
                                           ("cora", "hash", 128, 0.80, 3)])
    assert main(["bench", "summary", str(full)]) == 0
    assert "| cora (accuracy) | 0.840 | 0.800 |" in capsys.readouterr().out
    assert main(["bench", "summary", str(full), "--bits", "64"]) == 2
    assert "hashembed: error: no results at 64 bits" in capsys.readouterr().err


def test_a_node_graph_a_later_run_adds_comes_before_the_link_graphs(tmp_path):
    """Rows keep the order first seen, link prediction last: Twitch-ENGB, added by a later
    run, sits with the node graphs, before ogbl-ddi (the quick suite's names alike)."""
    def spec(name, task):
        return {"name": name, "task": task}

    first = _results(tmp_path / "first", 8, [
        ("cora", "table", None, 0.8, 3), ("ogbl-ddi", "table", None, 0.1, 1),
        ("planetoid-cora", "table", None, 0.8, 3)],
        datasets=[spec("cora", "node"), spec("ogbl-ddi", "link"), spec("planetoid-cora", "node")])
    later = _results(tmp_path / "later", 8, [("twitch-ENGB", "hash", 128, 0.6, 3)],
                     datasets=[spec("twitch-ENGB", "node")])
    datasets, *_ = collect([first, later], 128)
    assert datasets == ["cora", "planetoid-cora", "twitch-ENGB", "ogbl-ddi"]
