import json

import pytest

from hashembed.cli import main


@pytest.mark.slow
def test_bench_serve_loads_faults_and_soaks_a_live_server(sage_bundle, tmp_path, capsys):
    out = tmp_path / "serve.json"
    assert main(["bench", "serve", str(sage_bundle), "--concurrency", "1", "4", "--requests",
                 "12", "--nodes-per-request", "8", "--soak-seconds", "1", "--out",
                 str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["concurrency"] for row in result["load"]] == [1, 4]
    for row in result["load"]:
        assert row["statuses"] == {"200": 12} and row["errors_5xx"] == 0 and row["lost"] == 0
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert all(f["4xx"] and f["still_answering"] for f in result["faults"])
    assert result["soak"]["requests"] >= 200 and result["soak"]["rss_end_bytes"] > 0
    assert "13/13 got a 4xx" in capsys.readouterr().out
