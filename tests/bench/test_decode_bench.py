"""The decode benchmark runs end to end on a tiny case and reports every path (no timing asserts)."""

import json

from hashembed.bench.decode import run_decode_bench
from hashembed.kernels.reference import ONNX_FORMULATIONS


def test_decode_bench_writes_every_method(tmp_path):
    out = tmp_path / "decode.json"
    payload = run_decode_bench(num_nodes=500, batch=300, bits=32, dim=8, onnx_chunk=128,
                               repeats=1, out=out, print_table=False)
    saved = json.loads(out.read_text())
    methods = [r["method"] for r in saved["results"]]
    assert methods[:3] == ["fp32 table gather", "torch reference", "torch embedding_bag"]
    assert [f"onnx {f}" for f in ONNX_FORMULATIONS] == methods[3:5]
    for row in saved["results"]:
        assert row["nodes_per_s"] > 0 and row["memory_bytes"] > 0
        if row["method"].startswith("onnx"):  # the exported decode computes the same sum
            assert row["max_abs_err"] < 1e-5
    assert saved["results"][0]["memory_bytes"] == 500 * 8 * 4
    assert payload["config"]["num_codebooks"] == 4 and saved["env"]["onnxruntime"]


def test_decode_bench_times_the_folded_decoder_against_the_unfolded(tmp_path):
    payload = run_decode_bench(num_nodes=400, batch=200, bits=32, dim=8, onnx_chunk=64,
                               repeats=1, hidden=4, print_table=False)
    rows = {r["method"]: r for r in payload["results"]}
    for label in ("unfolded", "folded"):
        row = rows[f"onnx decoder h=4 {label}"]
        assert row["max_abs_err"] < 1e-5 and row["nodes_per_s"] > 0
    # h > d: folding would widen the rows, so only the unfolded decoder is timed
    wide = run_decode_bench(num_nodes=400, batch=200, bits=32, dim=8, onnx_chunk=64,
                            repeats=1, hidden=16, print_table=False)
    assert [r["method"] for r in wide["results"] if "decoder" in r["method"]] == [
        "onnx decoder h=16 unfolded"]
