"""``hashembed bench distributed``: coding on Dask and an epoch under torchrun, 1 and 2 workers.

On one synthetic graph (``hashembed synth``, seed 0), each stage in its own process:

=============  ============================================================================
codes-local    ``hashembed codes`` in one process (the reference: time, peak RSS)
codes-dask-W   ``hashembed codes --engine dask --workers W``: seconds, the client's and each
               worker's peak RSS (``VmHWM``, read in the worker after the job), the bytes of
               level rows the hops read across node ranges (what moves between workers), and
               whether the table equals the reference bit for bit
train-W        ``torchrun --nproc-per-node W -m hashembed train --graph … --codes …``: one
               epoch over 1 % of the nodes as seeds, the global batch fixed (``B / W`` seeds a
               rank), fan-out 15,10; seconds (wall, launch included, and the run's own), the
               largest rank's peak RSS (``ru_maxrss`` of the waited-for processes), and the
               gradient bytes DDP all-reduces (parameters × steps: computed, not measured)
=============  ============================================================================

A stage's result is kept in ``<work>/<stage>.result.json`` so ``--resume`` picks up where a
stopped run left off. It prints a table and writes JSON (``--out``). On a machine with ``C``
cores the ceiling of ``W`` workers is ``min(W, C)`` times one: the table says what was got.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, peak_rss_bytes, write_json

SPLIT = "random:0.01,0.005,0.01"  # 1 % of the nodes as training seeds, as bench scale


@dataclass(frozen=True)
class DistributedConfig:
    """One :func:`run_distributed_bench`.

    Attributes:
        num_nodes: ``n`` of the synthetic graph (average degree 10).
        workers: worker counts compared (Dask workers, torchrun processes).
        bits, hops: the code spec (c, K).
        memory_gb: the coder's budget (each Dask task's).
        batch_size: the global batch of training (``batch_size / W`` seeds per rank).
    """

    num_nodes: int = 10_000_000
    workers: tuple[int, ...] = (1, 2)
    bits: int = 128
    hops: int = 1
    memory_gb: float = 4.0
    batch_size: int = 1024


def _stage_main(argv: list[str]) -> None:
    """Child process: run one stage (``argv``: stage, work folder, the config's JSON) and print
    its result as one JSON line."""
    stage, work, raw = argv[0], Path(argv[1]), json.loads(argv[2])
    config = DistributedConfig(**{**raw, "workers": tuple(raw["workers"])})
    from hashembed import pipeline
    from hashembed.core.codeformat import CodeSpec

    spec = CodeSpec("hash", bits=config.bits, hops=config.hops)
    started = time.perf_counter()
    extra: dict = {}
    if stage == "graph":
        from hashembed.graph.synth import SynthConfig

        pipeline.synth_graph(SynthConfig(config.num_nodes), work / "graph",
                             memory_gb=config.memory_gb, overwrite=True, progress=False)
    elif stage == "codes-local":
        summary = pipeline.make_codes(work / "graph", spec, work / "codes-local",
                                      memory_gb=config.memory_gb, overwrite=True,
                                      progress=False)
        extra["block_bits"] = summary["block_bits"]
    elif stage.startswith("codes-dask-"):
        extra = _dask_codes(work, spec, config, int(stage.rsplit("-", 1)[1]))
    elif stage.startswith("train-"):
        extra = _train(work, config, int(stage.rsplit("-", 1)[1]))
    else:
        raise SystemExit(f"unknown stage {stage}")
    print(json.dumps({"stage": stage, "seconds": time.perf_counter() - started,
                      "peak_rss_bytes": peak_rss_bytes(), **extra}))


def _dask_codes(work: Path, spec, config: DistributedConfig, workers: int) -> dict:
    from hashembed.coding.codesdir import read_codes, write_codes
    from hashembed.coding.dask_coder import local_client

    client = local_client(workers)
    try:
        out = work / f"codes-dask-{workers}"
        summary = write_codes(work / "graph", spec, out, memory_gb=config.memory_gb,
                              overwrite=True, progress=False, client=client)
        worker_peaks = sorted(client.run(peak_rss_bytes).values())
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    identical = None
    if (work / "codes-local").exists():
        a, b = read_codes(work / "codes-local"), read_codes(out)
        identical = bool(np.array_equal(a.packed, b.packed)
                         and np.array_equal(a.thresholds, b.thresholds))
    return {"worker_peak_rss_bytes": worker_peaks, "partitions": summary["partitions"],
            "block_bits": summary["block_bits"],
            "bytes_across_ranges": summary["bytes_across_ranges"],
            "identical_to_local": identical}


def _train(work: Path, config: DistributedConfig, workers: int) -> dict:
    per_rank = config.batch_size // workers
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(workers), "-m", "hashembed"] if workers > 1 else \
        [sys.executable, "-m", "hashembed"]
    command += ["train", "--graph", str(work / "graph"), "--codes", str(work / "codes-local"),
                "--bits", str(config.bits), "--hops", str(config.hops), "--split", SPLIT,
                "--epochs", "1", "--patience", "1", "--batch-size", str(per_rank),
                "--fanout", "15,10", "--device", "cpu", "--quiet", "--overwrite",
                "--out", str(work / f"run-{workers}")]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"training with {workers} processes failed: {result.stderr[-3000:]}")
    metrics = json.loads((work / f"run-{workers}" / "metrics.json").read_text())
    params = metrics["bytes"]["decoder"] + metrics["bytes"]["gnn"]
    train_seeds = round(0.01 * config.num_nodes)
    steps = -(-train_seeds // (per_rank * workers))
    return {"wall_seconds": wall, "run_seconds": metrics["seconds"]["total"],
            "largest_rank_peak_rss_bytes":
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "world_size": metrics["world_size"], "seeds_per_rank": per_rank, "steps": steps,
            "allreduce_bytes_computed": params * steps if workers > 1 else 0,
            "val": metrics["val"], "test": metrics["test"]}


def _run_stage(stage: str, work: Path, config: DistributedConfig, resume: bool) -> dict:
    saved = work / f"{stage}.result.json"
    if resume and saved.exists():
        return json.loads(saved.read_text())
    result = subprocess.run([sys.executable, "-m", "hashembed.bench.distributed", stage,
                             str(work), json.dumps(asdict(config))], capture_output=True,
                            text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{\"stage\"")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"stage {stage} failed: {result.stderr[-3000:]}")
    saved.write_text(lines[-1] + "\n")
    return json.loads(lines[-1])


def run_distributed_bench(config: DistributedConfig, work: str | Path = "runs/distributed",
                          out: str | Path = "runs/bench/distributed.json",
                          resume: bool = False) -> dict:
    """Run every stage (see the module docstring); print the table, write ``out``."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    stages = ["graph", "codes-local", *(f"codes-dask-{w}" for w in config.workers),
              *(f"train-{w}" for w in config.workers)]
    results = {}
    for stage in stages:
        print(f"[bench distributed] {stage} ...", file=sys.stderr, flush=True)
        results[stage] = _run_stage(stage, work, config, resume)
    rows = _rows(results, config)
    payload = {"config": asdict(config), "environment": environment(), "stages": results,
               "rows": rows}
    write_json(out, payload)
    print(_table(rows))
    return payload


def _rows(results: dict, config: DistributedConfig) -> list[dict]:
    local = results["codes-local"]["seconds"]
    rows = [{"stage": "codes", "workers": "local", "seconds": local, "speedup": 1.0,
             "peak_gib": results["codes-local"]["peak_rss_bytes"] / 2**30}]
    for w in config.workers:
        r = results[f"codes-dask-{w}"]
        rows.append({"stage": "codes (dask)", "workers": str(w), "seconds": r["seconds"],
                     "speedup": local / r["seconds"],
                     "peak_gib": max(r["worker_peak_rss_bytes"]) / 2**30,
                     "moved_gib": r["bytes_across_ranges"] / 2**30,
                     "identical": str(r["identical_to_local"])})
    one = results[f"train-{config.workers[0]}"]["run_seconds"]
    for w in config.workers:
        r = results[f"train-{w}"]
        rows.append({"stage": "train epoch (torchrun)", "workers": str(w),
                     "seconds": r["run_seconds"], "speedup": one / r["run_seconds"],
                     "peak_gib": r["largest_rank_peak_rss_bytes"] / 2**30,
                     "moved_gib": r["allreduce_bytes_computed"] / 2**30})
    return rows


def _table(rows: list[dict]) -> str:
    return format_table(rows, [("stage", "stage", ""), ("workers", "workers", ""),
                               ("seconds", "seconds", ".1f"), ("speedup", "speed-up", ".2f"),
                               ("peak_gib", "peak RSS GiB (largest worker)", ".2f"),
                               ("moved_gib", "GiB across node ranges", ".2f"),
                               ("identical", "bit-identical", "")])


if __name__ == "__main__":
    _stage_main(sys.argv[1:])
