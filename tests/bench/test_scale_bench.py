import json

import pytest

from hashembed.app.cli import main


@pytest.mark.slow
def test_bench_scale_runs_every_stage_and_fits_a_slope(tmp_path, capsys):
    out = tmp_path / "scale.json"
    assert main(["bench", "scale", "--num-nodes", "2000", "4000", "--queries", "20",
                 "--work", str(tmp_path / "work"), "--out", str(out), "--bit-flip", "0.05"]) == 0
    assert "| 4,000 |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    stages = [row["stage"] for row in result["rows"]]
    assert stages == ["synth", "build", "codes", "train", "export", "open", "predict"] * 2
    by = {(row["n"], row["stage"]): row for row in result["rows"]}
    assert by[(4000, "synth")]["edges"] > by[(2000, "synth")]["edges"]  # twice the graph
    assert all(row["peak_rss_gib"] > 0 and row["seconds"] > 0 for row in result["rows"])
    assert by[(2000, "predict")]["p99_ms"] >= by[(2000, "predict")]["p50_ms"]
    assert set(result["fits"]) == set(stages[:7])
    # the training stage flips at the rate asked; the JSON and the run say so
    assert result["config"]["bit_flip"] == 0.05
    run = json.loads((tmp_path / "work" / "n2000" / "run" / "metrics.json").read_text())
    assert run["config"]["run"]["bit_flip"] == 0.05
    # --resume reuses every stage's saved result instead of running it again
    saved = tmp_path / "work" / "n2000" / "synth.result.json"
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "seconds": 12345.0}))
    args = ["bench", "scale", "--num-nodes", "2000", "--work", str(tmp_path / "work"),
            "--out", str(out), "--resume"]
    assert main(args + ["--bit-flip", "0.05"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["seconds"] for row in rows if row["stage"] == "synth"] == [12345.0]
    # a training stage of another flip rate is not passed off as this call's
    assert main(args) == 2
    assert "trained with --bit-flip 0.05, this call asks for 0.1" in capsys.readouterr().err
