import json

from hashembed.app.cli import main


def test_bench_ids_reports_every_kind_and_its_memory(tmp_path, capsys):
    out = tmp_path / "ids.json"
    assert main(["bench", "ids", "--num-nodes", "3000", "--queries", "640", "--repeats", "1",
                 "--out", str(out)]) == 0
    assert "| int | 3,000 | 16.0 |" in capsys.readouterr().out
    rows = {row["kind"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"dense", "int", "str"}
    # dense stores nothing; int ids: 8 bytes of sorted id + 8 of row; strings store more
    assert rows["dense"]["bytes_per_node"] == 0 and rows["int"]["bytes_per_node"] == 16
    assert rows["str"]["bytes_per_node"] > rows["int"]["bytes_per_node"]
    assert all(row["num_nodes"] == 3000 and row["ids_per_s"] > 0 for row in rows.values())
