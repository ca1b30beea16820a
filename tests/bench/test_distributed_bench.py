import json

import pytest

from hashembed.app.cli import main


@pytest.mark.slow
def test_bench_distributed_codes_and_trains_with_one_and_two_workers(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["bench", "distributed", "--num-nodes", "3000", "--bits", "32", "--hops", "2",
                 "--batch-size", "16", "--work", str(tmp_path / "w"), "--out", str(out)]) == 0
    assert "| codes (dask) | 2 |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    stages = result["stages"]
    for w in (1, 2):  # the Dask tables equal the single-process one, bit for bit
        assert stages[f"codes-dask-{w}"]["identical_to_local"] is True
        assert len(stages[f"codes-dask-{w}"]["worker_peak_rss_bytes"]) == w
        assert stages[f"train-{w}"]["world_size"] == w
    # with two ranges or more, the hops read rows of other ranges
    assert stages["codes-dask-2"]["bytes_across_ranges"] > 0
    assert stages["train-2"]["seeds_per_rank"] == 8 and stages["train-2"]["allreduce_bytes_computed"] > 0
    # --resume keeps what ran
    saved = tmp_path / "w" / "train-2.result.json"
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "run_seconds": 999.0}))
    assert main(["bench", "distributed", "--num-nodes", "3000", "--bits", "32", "--hops", "2",
                 "--batch-size", "16", "--work", str(tmp_path / "w"), "--out", str(out),
                 "--resume"]) == 0
    assert json.loads(out.read_text())["stages"]["train-2"]["run_seconds"] == 999.0


def test_bench_string_build_reports_the_distinct_ids(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["bench", "string-build", "--num-nodes", "500", "--edges", "3000",
                 "--memory-gb", "0.0001", "--work", str(tmp_path / "w"), "--out",
                 str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["edges"] == 3000 and 450 < row["ids"] <= 500  # ids user-0 … user-499 drawn
    assert row["buckets"] > 1 and row["peak_gib"] > 0
    assert "| distinct ids |" in capsys.readouterr().out
