"""``hashembed bench scale``: every stage of the pipeline at growing n, time and peak memory.

For each ``n`` it runs, each stage in its own process (so a stage's peak RSS is its own, read
by that process from ``/proc/self/status`` as it ends):

==========  ==========================================================================
synth       ``hashembed synth`` (average degree ``d``, seed 0) -> graph directory
edges       the graph's edges written as ``.npy`` parts (input of the next stage; untimed)
build       ``hashembed graph build`` of those parts (out-of-core sort)
codes       ``hashembed codes`` (c = 128, streaming)
train       one epoch of mini-batch training over 1 % of the nodes as seeds (fan-out 15,10)
export      ``hashembed export`` (CSR hard-linked, parity on 256 probes' neighbourhoods,
            serving fan-out cap 15 unless told otherwise)
open        ``Predictor(bundle, verify="lazy")`` and ``verify="full"``: seconds to open
predict     single-node requests: p50 / p99 latency over ``queries`` random nodes, after
            ``Predictor(verify="full")`` and 20 untimed requests, as a server runs
==========  ==========================================================================

Each stage's result is also kept beside its outputs (``<work>/n<n>/<stage>.result.json``), so
a long run that stopped resumes with ``--resume`` at the first stage that left none.
It prints a table and writes JSON (``--out``), and fits seconds ~ a + b · edges per stage
when at least two sizes ran, so the cost at 10^9 nodes / 10^10 edges is an extrapolation of
measured points, stated as such.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hashembed.bench.harness import (environment, format_table, peak_rss_bytes,
                                     refuse_other_bit_flip, write_json)
from hashembed.train.defaults import BIT_FLIP, check_bit_flip

STAGES = ("synth", "build", "codes", "train", "export", "open", "predict")
WARMUP_QUERIES = 20  # untimed requests before the timed ones (first-touch page faults)


def _stage_main(argv: list[str]) -> None:
    """Child process: run one stage (``argv``: stage, work folder, the
    :class:`ScaleConfig`'s JSON), print ``{"seconds", "peak_rss_bytes", ...}`` as JSON."""
    stage, work, config = argv[0], Path(argv[1]), json.loads(argv[2])
    n, d, queries = int(config["num_nodes"]), float(config["avg_degree"]), config["queries"]
    memory = float(config["memory_gb"])
    from hashembed import pipeline
    from hashembed.core.codeformat import CodeSpec
    from hashembed.graph.synth import SynthConfig
    from hashembed.train.runconfig import RunConfig

    started = time.perf_counter()
    extra: dict = {}
    if stage == "synth":
        pipeline.synth_graph(SynthConfig(n, avg_degree=d), work / "synth", memory_gb=memory,
                             overwrite=True, progress=False)
    elif stage == "edges":
        from hashembed.core.graphdir import open_graph

        graph = open_graph(work / "synth")
        parts = work / "edges"
        parts.mkdir(exist_ok=True)
        chunk = 1 << 20
        for i, lo in enumerate(range(0, graph.num_nodes, chunk)):
            hi = min(lo + chunk, graph.num_nodes)
            a, b = int(graph.indptr[lo]), int(graph.indptr[hi])
            src = np.repeat(np.arange(lo, hi), np.diff(np.asarray(graph.indptr[lo:hi + 1])))
            dst = np.asarray(graph.indices[a:b], dtype=np.int64)
            keep = src < dst
            np.save(parts / f"part-{i:05d}.npy", np.stack([src[keep], dst[keep]], axis=1))
    elif stage == "build":
        pipeline.build_graph([work / "edges"], work / "graph", num_nodes=n, memory_gb=memory,
                             overwrite=True, progress=False)
    elif stage == "codes":
        pipeline.make_codes(work / "synth", CodeSpec("hash", bits=128), work / "codes",
                            memory_gb=memory, overwrite=True, progress=False)
    elif stage == "train":
        run_config = RunConfig(bits=128, split="random:0.01,0.002,0.002", epochs=1,
                               patience=1, batch_size=1024, fanout=(15, 10),
                               bit_flip=config["bit_flip"])
        extra["bit_flip"] = config["bit_flip"]
        pipeline.train(pipeline.GraphSource(graph_dir=work / "synth"), run_config, work / "run",
                       codes_dir=work / "codes", overwrite=True, progress=False)
    elif stage == "export":
        pipeline.export(work / "run", work / "bundle", overwrite=True, probe_nodes=256,
                        fanout_cap=config["fanout_cap"])
    elif stage == "open":
        t0 = time.perf_counter()
        pipeline.predictor(work / "bundle", verify="lazy")
        extra["open_lazy_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pipeline.predictor(work / "bundle", verify="full")
        extra["open_full_seconds"] = time.perf_counter() - t0
    elif stage == "predict":
        # as a server runs: checksums verified at start, then a few requests to warm up
        predictor = pipeline.predictor(work / "bundle", verify="full")
        rng = np.random.default_rng(0)
        for node in rng.integers(0, n, size=WARMUP_QUERIES):
            predictor.predict([int(node)])
        latencies = []
        for node in rng.integers(0, n, size=queries):
            t0 = time.perf_counter()
            predictor.predict([int(node)])
            latencies.append(time.perf_counter() - t0)
        extra["p50_ms"] = float(np.percentile(latencies, 50) * 1e3)
        extra["p99_ms"] = float(np.percentile(latencies, 99) * 1e3)
    else:
        raise SystemExit(f"unknown stage {stage}")
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes()
    print(json.dumps({"stage": stage, "seconds": seconds, "peak_rss_bytes": peak,
                      **extra}))


@dataclass(frozen=True)
class ScaleConfig:
    """One size of :func:`run_scale_bench`.

    Attributes:
        num_nodes: ``n`` of the synthetic graph.
        avg_degree: its mean degree.
        queries: single-node predictions timed.
        memory_gb: budget handed to ``synth``, ``graph build`` and ``codes``.
        fanout_cap: the bundle's serving fan-out cap (``None``: exact neighbourhoods).
        bit_flip: share of code bits flipped while training (``hashembed train --bit-flip``).
    """

    num_nodes: int
    avg_degree: float = 10.0
    queries: int = 200
    memory_gb: float = 4.0
    fanout_cap: int | None = 15
    bit_flip: float = BIT_FLIP


def _run_stage(stage: str, work: Path, config: ScaleConfig, resume: bool) -> dict:
    """Run ``stage`` in a child process; its result is kept in ``work/<stage>.result.json``,
    which ``resume`` reuses instead of running the stage again (a long run that stopped
    picks up at the first stage without a result)."""
    saved = work / f"{stage}.result.json"
    if resume and saved.exists():
        return json.loads(saved.read_text())
    result = subprocess.run([sys.executable, "-m", "hashembed.bench.scale", stage, str(work),
                             json.dumps(asdict(config))], capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{\"stage\"")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"stage {stage} at n={config.num_nodes} failed: "
                           f"{result.stderr[-2000:]}")
    saved.write_text(lines[-1] + "\n")
    return json.loads(lines[-1])


def run_scale_bench(sizes: list[int], avg_degree: float = 10.0, work: str | Path = "runs/scale",
                    queries: int = 200, out: str | Path = "runs/bench/scale.json",
                    memory_gb: float = 4.0, fanout_cap: int | None = 15,
                    resume: bool = False, bit_flip: float = BIT_FLIP) -> dict:
    """Run every stage at every size (see module docstring); print a table, write JSON.
    With ``resume``, stages that already left a result in ``work`` are not run again (a
    training stage of another ``bit_flip`` is refused)."""
    check_bit_flip(bit_flip)
    rows = []
    for n in sizes:
        config = ScaleConfig(n, avg_degree, queries, memory_gb, fanout_cap, bit_flip)
        folder = Path(work) / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        results = {}
        for stage in ("synth", "edges", "build", "codes", "train", "export", "open",
                      "predict"):
            results[stage] = _run_stage(stage, folder, config, resume)
            if stage == "train":  # older results recorded no rate: taken as this call's
                refuse_other_bit_flip(folder / "train.result.json",
                                      results[stage].get("bit_flip", bit_flip), bit_flip)
            print(f"n={n:,} {stage}: {results[stage]['seconds']:.1f} s", file=sys.stderr)
        header = json.loads((folder / "synth" / "graph.json").read_text())
        edges = int(header["num_edges"])
        for stage in STAGES:
            r = results[stage]
            rows.append({"n": n, "edges": edges, "stage": stage, "seconds": r["seconds"],
                         "edges_per_s": edges / r["seconds"] if stage in (
                             "synth", "build", "codes") else None,
                         "peak_rss_gib": r["peak_rss_bytes"] / 2**30,
                         **{k: v for k, v in r.items() if k.endswith(("_ms", "_seconds"))}})
        print(f"n={n:,} done", file=sys.stderr)
    fits = {}
    for stage in STAGES:
        points = [(r["edges"], r["seconds"]) for r in rows if r["stage"] == stage]
        if len(points) >= 2:
            x, y = np.array(points, dtype=np.float64).T
            slope, intercept = np.polyfit(x, y, 1)
            fits[stage] = {"seconds_per_edge": slope, "intercept_seconds": intercept,
                           "extrapolated_seconds_at_1e10_edges": intercept + slope * 1e10}
    table = format_table(rows, [("n", "n", ","), ("edges", "edges", ","), ("stage", "stage", "s"),
                                ("seconds", "seconds", ".2f"), ("edges_per_s", "edges/s", ",.0f"),
                                ("peak_rss_gib", "peak RSS GiB", ".2f"),
                                ("open_lazy_seconds", "open lazy s", ".3f"),
                                ("open_full_seconds", "open full s", ".3f"),
                                ("p50_ms", "p50 ms", ".1f"), ("p99_ms", "p99 ms", ".1f")])
    print(table)
    payload = {"config": {"sizes": sizes, "avg_degree": avg_degree, "queries": queries,
                          "memory_gb": memory_gb, "fanout_cap": fanout_cap,
                          "bit_flip": bit_flip},
               "environment": environment(), "rows": rows, "fits": fits, "table": table}
    write_json(out, payload)
    return payload


if __name__ == "__main__":
    _stage_main(sys.argv[1:])
