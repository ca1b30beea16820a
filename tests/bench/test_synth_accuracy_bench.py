"""bench synth-accuracy: every method trains on one synthetic graph through the CLI."""

import json

import pytest

from hashembed.app.cli import main
from hashembed.train.defaults import BIT_FLIP


@pytest.mark.slow
def test_every_method_runs_and_resume_reuses_finished_runs(tmp_path, capsys):
    out, work = tmp_path / "acc.json", tmp_path / "work"
    args = ["bench", "synth-accuracy", "--num-nodes", "3000", "--seeds", "0", "--epochs", "2",
            "--bits", "32", "--work", str(work), "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert [r["method"] for r in result["rows"]] == ["hash", "random", "table", "qr",
                                                     "hashing-trick"]
    by = {r["method"]: r for r in result["rows"]}
    # QR and the hashing trick cost about what the codes cost; the table costs n x d floats
    assert by["table"]["bytes_total"] > 4 * by["hashing-trick"]["bytes_total"]
    assert result["config"]["chance"] == 1 / 16
    # the coded methods train with the default bit flips, each run and the JSON say so
    assert result["config"]["bit_flip"] == BIT_FLIP
    run_config = json.loads((work / "run-hash-s0" / "metrics.json").read_text())["config"]["run"]
    assert run_config["bit_flip"] == BIT_FLIP
    # --resume reads finished runs back instead of training again
    metrics = work / "run-qr-s0" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "test": 0.123}))
    assert main(args + ["--resume"]) == 0
    again = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert again["qr"]["test_mean"] == 0.123
    assert "| hashing-trick |" in capsys.readouterr().out


@pytest.mark.slow
def test_bit_flip_reaches_the_coded_runs(tmp_path):
    out, work = tmp_path / "acc.json", tmp_path / "work"
    assert main(["bench", "synth-accuracy", "--num-nodes", "2000", "--seeds", "0", "--epochs",
                 "1", "--bits", "32", "--methods", "hash", "--bit-flip", "0", "--work",
                 str(work), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["bit_flip"] == 0.0
    run_config = json.loads((work / "run-hash-s0" / "metrics.json").read_text())["config"]["run"]
    assert run_config["bit_flip"] == 0.0
