"""The decode benchmark runs end to end on a tiny case; its JSON has every path and the byte
accounting follows from the shapes (no timing asserts)."""

import json
import time

import pytest

from hashembed.bench import decode as decode_bench
from hashembed.bench.decode import run_decode_bench
from hashembed.kernels.reference import ONNX_FORMULATIONS

ROW_KEYS = {"method", "pass", "dtype", "device", "nodes_per_s", "seconds_median", "seconds_min",
            "seconds_max", "dram_GBps", "onchip_GBps", "memory_bytes", "max_abs_err"}


def per_node(row, key):
    """Bytes per node behind a GB/s figure."""
    return row[key] * 1e9 / row["nodes_per_s"]


def test_decode_bench_writes_every_host_method(tmp_path):
    out = tmp_path / "decode.json"
    payload = run_decode_bench(num_nodes=500, batch=300, bits=32, bits_per_index=4, dim=8,
                               onnx_chunk=128, repeats=1, out=out, print_table=False,
                               device="none", onnx_providers=["cpu"])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(payload))
    assert set(saved) == {"benchmark", "config", "env", "results", "skipped"}
    assert saved["skipped"] == []
    methods = [r["method"] for r in saved["results"]]
    assert methods == ["fp32 table gather", "torch reference", "torch embedding_bag"] + [
        f"onnx {f}" for f in ONNX_FORMULATIONS]
    for row in saved["results"]:
        assert set(row) == ROW_KEYS and row["pass"] == "fwd" and row["device"] == "cpu"
        if row["method"].startswith("onnx"):  # the exported decode computes the same sum
            assert row["max_abs_err"] < 1e-5
    rows = {r["method"]: r for r in saved["results"]}
    # b = 4, c = 32: the reference gathers c/8 = 4 byte-table rows of d = 8 fp32 per node
    # (not m = 8 rows), and embedding_bag reads those 4 int64 indices and writes its output.
    assert saved["config"]["rows_per_node"] == 4
    assert per_node(rows["torch reference"], "onchip_GBps") == pytest.approx(4 * 8 * 4)
    assert per_node(rows["torch embedding_bag"], "dram_GBps") == pytest.approx(4 * 8 + 8 * 4)
    assert per_node(rows["torch reference"], "dram_GBps") == pytest.approx(8 + 4 + 8 * 4)
    assert rows["fp32 table gather"]["memory_bytes"] == 500 * 8 * 4
    assert saved["config"]["num_codebooks"] == 8 and saved["env"]["onnxruntime"]


def test_device_rows_time_forward_and_backward_of_every_path(tmp_path):
    """The GPU rows' code, run on the CPU (Triton interpreted): every path, both passes,
    both dtypes, and ONNX Runtime bound to tensors on the device."""
    payload = run_decode_bench(num_nodes=300, batch=70, bits=32, bits_per_index=4, dim=8,
                               repeats=1, print_table=False, host_rows=False, device="cpu",
                               onnx_providers=["cuda"], onnx_device_chunk=32)
    rows = {(r["method"], r["pass"], r["dtype"]): r for r in payload["results"]}
    expected = {("cpu fp32 table gather", p, "fp32") for p in ("fwd", "bwd")}
    for dtype in ("fp32", "bf16"):
        for method in ("torch embedding_bag", "torch reference", "triton index",
                       "triton bytes"):
            expected |= {(f"cpu {method}", p, dtype) for p in ("fwd", "bwd")}
        expected.add(("cpu triton deterministic", "bwd", dtype))
    expected |= {(f"cpu onnx {f}", "fwd", "fp32") for f in ONNX_FORMULATIONS}
    assert set(rows) == expected and payload["skipped"] == []
    for (method, _, dtype), row in rows.items():
        if row["max_abs_err"] is not None:  # values, and gradients for bwd, vs fp32 reference
            assert row["max_abs_err"] < (1e-5 if dtype == "fp32" else 0.1), method
    # the byte-table path reads half the codebook rows of the index path at b = 4
    index, tables = rows["cpu triton index", "fwd", "fp32"], rows["cpu triton bytes", "fwd", "fp32"]
    assert per_node(index, "onchip_GBps") == pytest.approx(8 * 8 * 4)
    assert per_node(tables, "onchip_GBps") == pytest.approx(4 * 8 * 4)
    # bf16 codebooks: the index path reads bf16 rows, the byte path its fp32-merged tables
    assert per_node(rows["cpu triton index", "fwd", "bf16"], "onchip_GBps") == pytest.approx(
        8 * 8 * 2)
    bf16 = rows["cpu triton bytes", "fwd", "bf16"]
    assert per_node(bf16, "onchip_GBps") == pytest.approx(4 * 8 * 4)
    # the table's backward row is SparseAdam's step: weights and both moments (n = 300, d = 8)
    sparse = rows["cpu fp32 table gather", "bwd", "fp32"]
    assert sparse["memory_bytes"] == 3 * 300 * 8 * 4
    assert per_node(sparse, "dram_GBps") == pytest.approx(8 + 9 * 8 * 4)


def test_missing_onnx_cuda_provider_and_deadline_are_recorded_as_skipped(monkeypatch):
    """Rows that cannot run are named in ``skipped``, not silently left out: the CUDA provider
    refused (as with the CPU onnxruntime wheel) and rows past the deadline."""
    def refuse(*args, **kwargs):
        raise decode_bench.ProviderUnavailable("ONNX Runtime did not start CUDAExecutionProvider")

    monkeypatch.setattr(decode_bench, "_onnx_session", refuse)
    payload = run_decode_bench(num_nodes=300, batch=40, bits=16, bits_per_index=8, dim=4,
                               repeats=1, print_table=False, host_rows=False, device="cpu",
                               dtypes=("fp32",), onnx_providers=["cuda"],
                               deadline=time.time() - 1)
    assert payload["results"] == []
    assert payload["skipped"][0] == (
        "onnx cuda rows: ONNX Runtime did not start CUDAExecutionProvider")
    assert "cpu fp32 table gather fwd fp32: out of time" in payload["skipped"]
    assert "cpu triton deterministic bwd fp32: out of time" in payload["skipped"]


def test_decode_bench_times_the_folded_decoder_against_the_unfolded(tmp_path):
    payload = run_decode_bench(num_nodes=400, batch=200, bits=32, dim=8, onnx_chunk=64,
                               repeats=1, hidden=4, print_table=False, device="none",
                               onnx_providers=["cpu"])
    rows = {r["method"]: r for r in payload["results"]}
    for label in ("unfolded", "folded"):
        row = rows[f"onnx decoder h=4 {label}"]
        assert row["max_abs_err"] < 1e-5 and row["nodes_per_s"] > 0
    # h > d: folding would widen the rows, so only the unfolded decoder is timed
    wide = run_decode_bench(num_nodes=400, batch=200, bits=32, dim=8, onnx_chunk=64,
                            repeats=1, hidden=16, print_table=False, device="none",
                            onnx_providers=["cpu"])
    assert [r["method"] for r in wide["results"] if "decoder" in r["method"]] == [
        "onnx decoder h=16 unfolded"]
