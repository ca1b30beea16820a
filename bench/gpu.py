"""``scripts/gpu-check`` (``python -m hashembed.bench.gpu``): what to measure on a GPU, in one go.

Steps, each in a subprocess killed at the time budget (default 9 minutes, for the whole
check), so no step can overrun it; a step that does not start, or is stopped, is noted in
``skipped``:

1. devices and versions, printed and saved;
2. the kernel tests compiled for the GPU (``pytest tests/kernels`` without the interpreter),
   then any other test file with ``gpu``-marked tests (:func:`gpu_test_paths`; none today);
3. ``bench decode`` at n = 10 M, B = 4 M, c = 128, d = 64 for b = 4 and 8: forward and
   backward, fp32 and bf16 codebooks, the Triton paths, the PyTorch paths and ONNX Runtime's
   CUDA provider (:func:`hashembed.bench.decode.run_decode_bench`, host rows off; it stops
   starting rows shortly before the budget ends and notes the rest, and notes the ONNX
   rows when ONNX Runtime has no CUDA provider, e.g. the CPU wheel);
4. one training step of the input stage, ``CodeDecoder`` (decode + MLP) with Adam, against an
   fp32 ``nn.Embedding(n, d, sparse=True)`` with ``SparseAdam`` (:func:`time_input_stage`).

Everything lands in one folder: ``gpu-check.json`` (and the JSON of each decode and training
step) and ``gpu-check.md``, the tables for ``docs/benchmarks.md``. Without CUDA it prints one
line and exits with status 2. ``--small --allow-cpu`` runs the same steps at toy sizes on the
CPU, the Triton kernels under their interpreter: a smoke test of this script, not a
measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 9 * 60
# a decode step stops starting rows this long before the budget ends, to write its JSON
STEP_GRACE_S = 20
FULL = {"num_nodes": 10_000_000, "batch": 4_000_000, "bits": 128, "dim": 64, "hidden": 128}
SMALL = {"num_nodes": 3000, "batch": 200, "bits": 32, "dim": 8, "hidden": 16}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help="output folder")
    p.add_argument("--small", action="store_true", help="toy sizes (a smoke test)")
    for name in FULL:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {FULL[name]:,}")
    p.add_argument("--bits-per-index", type=int, nargs="+", default=[4, 8])
    p.add_argument("--repeats", type=int, default=3, help="timed calls on the CPU path")
    p.add_argument("--budget-s", type=float, default=BUDGET_S,
                   help="the whole check's limit; steps still running then are stopped")
    p.add_argument("--skip-tests", action="store_true", help="leave out the kernel tests")
    p.add_argument("--allow-cpu", action="store_true",
                   help="without CUDA, run on the CPU with Triton's interpreter (for tests)")
    # internal: only refuse a machine without CUDA (scripts/gpu-check runs this file so, before
    # it installs anything; this module imports nothing but the standard library at the top)
    p.add_argument("--only-check-cuda", action="store_true", help=argparse.SUPPRESS)
    # internal: run one step in this process (the check starts each step so, under a timeout)
    p.add_argument("--step", choices=("decode", "train"), help=argparse.SUPPRESS)
    p.add_argument("--step-config", help=argparse.SUPPRESS)
    p.add_argument("--step-out", type=Path, help=argparse.SUPPRESS)
    return p


def devices_and_versions() -> dict:
    """Versions of what is measured, and every CUDA device with its compute capability."""
    import onnxruntime
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "onnxruntime": onnxruntime.__version__,
            "ort_providers": onnxruntime.get_available_providers(), "devices": []}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        info["devices"].append({"index": i, "name": props.name,
                                "capability": f"{props.major}.{props.minor}",
                                "memory_GiB": round(props.total_memory / 2**30, 1),
                                "multiprocessors": props.multi_processor_count})
    return info


def gpu_test_paths() -> list[str]:
    """Test files outside ``tests/kernels`` that hold ``gpu``-marked tests (collecting the
    whole suite for ``-m gpu`` would import every test module, servers included)."""
    tests = REPO / "tests"
    return sorted(str(path.relative_to(REPO)) for path in tests.rglob("test_*.py")
                  if path.relative_to(tests).parts[0] != "kernels"
                  and "pytest.mark.gpu" in path.read_text())


def run_tests(timeout_s: float) -> list[dict]:
    """The kernel tests, then the ``gpu`` tests of :func:`gpu_test_paths`, compiled (no
    interpreter)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    end = time.monotonic() + timeout_s
    runs = []
    suites = [("tests/kernels", ["tests/kernels"])]
    others = gpu_test_paths()
    if others:
        suites.append(("-m gpu", ["-m", "gpu", *others]))
    for label, args in suites:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=max(end - started, 1))
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as e:
            out = e.stdout or ""
            code = "timeout"
            output = out.decode(errors="replace") if isinstance(out, bytes) else out
        tail = output.strip().splitlines()[-1:] or [""]
        ok = code == 0
        runs.append({"tests": label, "exit_code": code, "ok": ok, "summary": tail[0],
                     "seconds": time.monotonic() - started})
        print(f"[gpu-check] pytest {label}: {tail[0]}", flush=True)
    return runs


def time_input_stage(device: str, num_nodes: int, batch: int, bits: int, bits_per_index: int,
                     dim: int, hidden: int, seed: int = 0, repeats: int = 3) -> list[dict]:
    """One optimiser step of the input stage per call, for ``batch`` random node ids.

    Rows: ``fp32 nn.Embedding + SparseAdam`` (an ``n × d`` table, sparse gradient) and
    ``CodeDecoder <backend> + Adam`` (codes ``uint8 [n, c/8]`` on the device, the decode +
    MLP ``d -> h -> d``, dense Adam on its few parameters) with the Triton and the reference
    codebook sum. Loss: mean squared error to a fixed random target ``[B, d]``.
    """
    import torch
    import torch.nn.functional as F

    from hashembed.bench.harness import time_call
    from hashembed.train.decoder import CodeDecoder, DecoderConfig

    gen = torch.Generator(device=device).manual_seed(seed)
    codes = torch.randint(0, 256, (num_nodes, bits // 8), dtype=torch.uint8, generator=gen,
                          device=device)
    ids = torch.randint(0, num_nodes, (batch,), generator=gen, device=device)
    target = torch.randn(batch, dim, generator=gen, device=device)
    on_gpu = torch.device(device).type == "cuda"
    rows = []

    def measure(name, module, optimizer, embed, state_floats):
        def step():
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(embed(), target).backward()
            optimizer.step()
        step()  # compile, tune, create the optimiser's state
        timing = time_call(step, warmup=1, repeats=repeats, cuda=on_gpu)
        params = sum(p.numel() for p in module.parameters())
        rows.append({"method": name, "nodes_per_s": batch / timing.median,
                     "seconds_median": timing.median, "seconds_min": timing.min,
                     "seconds_max": timing.max,
                     "memory_bytes": 4 * params * (1 + state_floats) + (
                         codes.numel() if isinstance(module, CodeDecoder) else 0)})
        print(f"[gpu-check] train step {name}: {batch / timing.median:,.0f} nodes/s", flush=True)

    table = torch.nn.Embedding(num_nodes, dim, sparse=True, device=device)
    measure("fp32 nn.Embedding + SparseAdam", table, torch.optim.SparseAdam(table.parameters()),
            lambda: table(ids), 2)
    table = None
    config = DecoderConfig(bits, bits_per_index, codebook_dim=dim, hidden_dim=hidden,
                           embedding_dim=dim)
    for backend in ("triton", "reference"):
        torch.manual_seed(seed)
        decoder = CodeDecoder(config, backend=backend).to(device)
        measure(f"CodeDecoder {backend} + Adam", decoder, torch.optim.Adam(decoder.parameters()),
                lambda d=decoder: d(codes[ids]), 2)
    return rows


def run_step(name: str, config: dict, out: Path, deadline: float) -> tuple[object, str | None]:
    """Run step ``name`` (``decode`` or ``train``) in a subprocess that is killed at
    ``deadline`` (``time.time()`` seconds). Returns ``(its JSON, None)``, or ``(None, why)``."""
    command = [sys.executable, "-m", "hashembed.bench.gpu", "--step", name,
               "--step-config", json.dumps(config), "--step-out", str(out)]
    started = time.time()
    try:
        done = subprocess.run(command, cwd=REPO, timeout=max(deadline - started, 0.1))
    except subprocess.TimeoutExpired:
        return None, f"stopped at the time budget after {time.time() - started:.0f} s"
    if done.returncode != 0:
        return None, f"failed (exit {done.returncode}; its output is above)"
    return json.loads(out.read_text()), None


def _run_step_here(args) -> int:
    """The body of one step, in this (child) process; writes its JSON to ``--step-out``."""
    from hashembed.bench.harness import write_json

    config = json.loads(args.step_config)
    if args.step == "decode":
        from hashembed.bench.decode import run_decode_bench

        run_decode_bench(**config, print_table=False, out=args.step_out)
    else:
        write_json(args.step_out, time_input_stage(**config))
    return 0


def _markdown(report: dict) -> str:
    from hashembed.bench.decode import markdown_table
    from hashembed.bench.harness import format_table

    env = report["env"]
    names = ", ".join(d["name"] for d in env["devices"]) or "no CUDA device (CPU smoke run)"
    lines = [f"## GPU check, {report['date']}", "",
             f"Device: {names}; torch {env['torch']} (CUDA {env['torch_cuda']}), Triton "
             f"{env['triton']}, ONNX Runtime {env['onnxruntime']}. Sizes: {report['sizes']}.", ""]
    for run in report.get("tests", []):
        lines.append(f"- pytest {run['tests']}: {run['summary']} (exit {run['exit_code']})")
    for b, decode in report["decode"].items():
        lines += ["", f"### decode, b = {b}", "", markdown_table(decode["results"])]
    if report.get("train"):
        lines += ["", f"### one training step of the input stage, b = {report['train_b']}", "",
                  format_table(report["train"], [
                      ("method", "method", "s"), ("nodes_per_s", "nodes/s", ",.0f"),
                      ("seconds_median", "s per step", ".4f"),
                      ("memory_bytes", "parameters + state (bytes)", ",d")])]
    if report["skipped"]:  # what this check did not measure, and why
        lines += ["", "Not measured:", ""] + [f"- skipped: {note}" for note in report["skipped"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns 0 when every step ran and the tests passed, 1 when a test failed
    or anything was skipped (a step or rows out of time, a step that failed, the ONNX CUDA
    rows without ONNX Runtime's CUDA provider), 2 when there is no CUDA device (and no
    ``--allow-cpu``)."""
    args = _parser().parse_args(argv)
    if args.step:
        return _run_step_here(args)
    import torch

    if args.only_check_cuda and (torch.cuda.is_available() or args.allow_cpu):
        return 0
    if not torch.cuda.is_available():
        if not args.allow_cpu:
            print(f"gpu-check: no CUDA device visible to torch {torch.__version__} (CUDA build: "
                  f"{torch.version.cuda or 'none'}); nothing was measured", file=sys.stderr)
            return 2
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before Triton's kernels are imported
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from hashembed.core.atomic import atomic_write
    from hashembed.bench.harness import write_json

    deadline = time.time() + args.budget_s
    sizes = dict(SMALL if args.small else FULL)
    sizes.update({k: getattr(args, k) for k in FULL if getattr(args, k) is not None})
    args.out.mkdir(parents=True, exist_ok=True)
    env = devices_and_versions()
    print(f"[gpu-check] {json.dumps(env)}", flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "device": device, "sizes": sizes, "env": env,
              "tests": [], "decode": {}, "train": [], "skipped": []}

    def left() -> float:
        return deadline - time.time()

    if not args.skip_tests:
        report["tests"] = run_tests(max(min(left() / 3, 240), 1))
    for b in args.bits_per_index:
        if left() < 30:
            report["skipped"].append(f"decode b={b}: out of time")
            continue
        print(f"[gpu-check] decode b={b}", flush=True)
        config = {"num_nodes": sizes["num_nodes"], "batch": sizes["batch"], "bits": sizes["bits"],
                  "bits_per_index": b, "dim": sizes["dim"], "repeats": args.repeats,
                  "host_rows": False, "device": device, "dtypes": ["fp32", "bf16"],
                  "onnx_providers": ["cuda"], "deadline": deadline - STEP_GRACE_S}
        decode, why = run_step("decode", config, args.out / f"decode-b{b}.json", deadline)
        if decode is None:
            report["skipped"].append(f"decode b={b}: {why}")
            continue
        report["decode"][str(b)] = decode
        report["skipped"] += [f"decode b={b}: {note}" for note in decode["skipped"]]
    train_b = args.bits_per_index[0]
    if left() < 20:
        report["skipped"].append("training step: out of time")
    else:
        print(f"[gpu-check] training step b={train_b}", flush=True)
        config = {"device": device, "num_nodes": sizes["num_nodes"], "batch": sizes["batch"],
                  "bits": sizes["bits"], "bits_per_index": train_b, "dim": sizes["dim"],
                  "hidden": sizes["hidden"], "repeats": args.repeats}
        train, why = run_step("train", config, args.out / f"train-b{train_b}.json", deadline)
        if train is None:
            report["skipped"].append(f"training step: {why}")
        else:
            report["train_b"], report["train"] = train_b, train
    write_json(args.out / "gpu-check.json", report)
    atomic_write(args.out / "gpu-check.md", _markdown(report).encode())
    print(_markdown(report), flush=True)
    print(f"[gpu-check] written to {args.out}", file=sys.stderr)
    failed = any(not run["ok"] for run in report["tests"])
    return 1 if failed or report["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
