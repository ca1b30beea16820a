"""scripts/gpu-check and hashembed.bench.gpu on a machine without CUDA: the one-line refusal,
and a smoke run of every step at toy sizes with the kernels interpreted (no timing asserts)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hashembed.bench import gpu
from hashembed.bench.gpu import gpu_test_paths, main, run_step

REPO = Path(__file__).resolve().parents[2]


def test_without_cuda_it_says_so_in_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpu-check: no CUDA device")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_script_installs_nothing_here_and_refuses_without_cuda(tmp_path):
    assert os.access(REPO / "scripts" / "gpu-check", os.X_OK)
    done = subprocess.run([str(REPO / "scripts" / "gpu-check"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line, no installs
    assert "no CUDA device" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_script_refuses_before_installing_anything(tmp_path):
    """Offline, on a machine without CUDA, the package not importable: the refusal comes first
    and pip is never run (a stand-in interpreter logs any pip call and hides hashembed)."""
    log = tmp_path / "pip.log"
    shim = tmp_path / "python"
    shim.write_text(f"""#!/bin/sh
case "$*" in
    *"-m pip"*) echo "$*" >> {log}; exit 1 ;;
    *"import hashembed"*) exit 1 ;;
esac
exec {sys.executable} "$@"
""")
    shim.chmod(0o755)
    done = subprocess.run([str(REPO / "scripts" / "gpu-check"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": str(shim)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("gpu-check: no CUDA device") and not log.exists()


def test_gpu_tests_are_collected_only_from_files_that_have_them(tmp_path, monkeypatch):
    for rel, body in (("kernels/test_a.py", "@pytest.mark.gpu"), ("serve/test_b.py",
                      "@pytest.mark.gpu"), ("serve/test_c.py", "def test_c(): pass")):
        (tmp_path / "tests" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tests" / rel).write_text(body)
    monkeypatch.setattr(gpu, "REPO", tmp_path)
    assert gpu_test_paths() == ["tests/serve/test_b.py"]  # tests/kernels runs whole anyway


def test_a_step_is_stopped_at_the_deadline(tmp_path):
    """Each step runs in a subprocess killed when the check's budget ends."""
    started = time.time()
    result, why = run_step("train", {"device": "cpu", "num_nodes": 10, "batch": 4, "bits": 16,
                                     "bits_per_index": 8, "dim": 4, "hidden": 4},
                           tmp_path / "train.json", deadline=started + 0.5)
    assert result is None and why.startswith("stopped at the time budget")
    assert time.time() - started < 30 and not (tmp_path / "train.json").exists()


@pytest.mark.slow
def test_small_cpu_run_writes_json_and_markdown(tmp_path):
    out = tmp_path / "check"
    code = main(["--small", "--allow-cpu", "--skip-tests", "--out", str(out),
                 "--bits-per-index", "4", "--num-nodes", "300", "--batch", "64",
                 "--bits", "16", "--repeats", "1"])
    assert code == 0
    report = json.loads((out / "gpu-check.json").read_text())
    assert set(report["decode"]) == {"4"} and report["skipped"] == []
    rows = report["decode"]["4"]["results"]
    assert {(r["pass"], r["dtype"]) for r in rows if "triton" in r["method"]} == {
        (p, d) for p in ("fwd", "bwd") for d in ("fp32", "bf16")}
    assert (out / "decode-b4.json").exists() and (out / "train-b4.json").exists()
    methods = [r["method"] for r in report["train"]]
    assert methods == ["fp32 nn.Embedding + SparseAdam", "CodeDecoder triton + Adam",
                       "CodeDecoder reference + Adam"]
    # the table: n·d fp32 weights and SparseAdam's two moments (n = 300, d = 8)
    assert report["train"][0]["memory_bytes"] == 300 * 8 * 4 * 3
    markdown = (out / "gpu-check.md").read_text()
    assert "### decode, b = 4" in markdown and "CodeDecoder triton + Adam" in markdown
