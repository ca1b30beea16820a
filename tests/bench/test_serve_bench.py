import json

import pytest

from hashembed.app.cli import main


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
    soak = result["soak"]
    assert soak["requests"] >= 200 and soak["rss_end_bytes"] > 0
    series = soak["rss_series"]  # one sample at the start, one after each round
    assert len(series) == soak["requests"] // 200 + 1 and series[0][0] == 0
    assert soak["rss_max_bytes"] == max(b for _, b in series)
    assert "13/13 got a 4xx" in capsys.readouterr().out


def test_rss_summary_reads_the_sample_after_warm_up():
    from hashembed.bench.serve import rss_summary

    got = rss_summary([(0.0, 100), (30.0, 150), (61.0, 200), (90.0, 210)], warmup_seconds=60)
    assert (got["rss_start_bytes"], got["rss_after_warmup_bytes"], got["rss_end_bytes"],
            got["rss_max_bytes"]) == (100, 200, 210, 210)
    assert got["rss_change_after_warmup"] == pytest.approx(0.05)
    assert got["rss_change_from_start"] == pytest.approx(1.1)
    short = rss_summary([(0.0, 100), (5.0, 120)], warmup_seconds=60)  # soak shorter
    assert short["rss_after_warmup_bytes"] is None and short["rss_change_after_warmup"] is None
    assert short["rss_change_from_start"] == pytest.approx(0.2)
