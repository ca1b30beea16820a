"""bench synth-accuracy: every method trains on one synthetic graph through the CLI."""

import json

import pytest

from hashembed.app.cli import main
from hashembed.bench.synth_accuracy import run_synth_accuracy_bench
from hashembed.core.errors import ConfigError
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
    assert result["config"]["bit_flip"] == BIT_FLIP  # the coded methods flip by default
    # --resume reads finished runs back instead of training again
    metrics = work / "run-qr-s0" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "test": 0.123}))
    assert main(args + ["--resume"]) == 0
    again = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert again["qr"]["test_mean"] == 0.123
    assert "| hashing-trick |" in capsys.readouterr().out


@pytest.mark.slow
def test_bit_flip_reaches_every_coded_run_and_resume_refuses_another_rate(tmp_path):
    """``--bit-flip`` is the rate each coded run trains with and the one the JSON records; a
    finished run trained at another rate is refused on ``--resume``, a rate out of range
    before any graph is made."""
    out, work = tmp_path / "acc.json", tmp_path / "work"
    args = ["bench", "synth-accuracy", "--num-nodes", "2000", "--seeds", "0", "--epochs", "1",
            "--bits", "32", "--methods", "hash", "random", "--work", str(work), "--out",
            str(out)]
    assert main(args + ["--bit-flip", "0.05"]) == 0
    assert json.loads(out.read_text())["config"]["bit_flip"] == 0.05
    for method in ("hash", "random"):
        run = json.loads((work / f"run-{method}-s0" / "metrics.json").read_text())
        assert run["config"]["run"]["bit_flip"] == 0.05
    with pytest.raises(ConfigError, match=r"run-hash-s0 was trained with --bit-flip 0.05, "
                                          r"this call asks for 0.1"):
        run_synth_accuracy_bench(2000, methods=["hash"], seeds=[0], bits=32, epochs=1,
                                 work=work, resume=True, out=out, bit_flip=0.1)
    fresh = tmp_path / "fresh"
    with pytest.raises(ConfigError, match="bit_flip=0.5 must be in"):
        run_synth_accuracy_bench(2000, methods=["hash"], work=fresh, bit_flip=0.5)
    assert not (fresh / "graph").exists()
