"""``hashembed bench fanout``: what the serving fan-out cap costs in accuracy, and buys in time.

Serving runs the GNN on each queried node's k-hop neighbourhood. Exact neighbourhoods explode
around hubs, so a bundle may cap the in-edges kept per node (a seeded, deterministic choice,
recorded in its manifest: :mod:`hashembed.serve.subgraph`). For one trained run and each cap
(``0``: exact), this exports a bundle, then scores the run's test nodes through
:class:`~hashembed.serve.Predictor` in batches, and times single-node requests:

==============  ============================================================================
accuracy        test accuracy served with the cap
agreement       fraction of test nodes whose served label equals the exact mode's
p50/p99 ms      latency of one-node ``predict`` calls over ``queries`` random test nodes
new p50/p99 ms  latency of one-node ``predict_new`` calls: each of those test nodes served
                as if unseen, from its own neighbour list (its code computed from the
                neighbourhood, :mod:`hashembed.serve.unseen`; multi-hop codes walk it)
new agrees      fraction of them whose unseen answer equals the node's own served label
==============  ============================================================================

It prints a table and writes JSON.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, write_json
from hashembed.core.errors import ConfigError


def _unseen_columns(latencies: list[float], labels: list, own_labels: np.ndarray) -> dict:
    """``new_*`` columns from timed ``predict_new`` calls (all ``None`` when none ran)."""
    if not latencies:
        return {"new_p50_ms": None, "new_p99_ms": None, "new_agreement": None}
    return {"new_p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "new_p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "new_agreement": float((np.asarray(labels) == own_labels).mean())}


def run_fanout_bench(run_dir: str | Path, caps: list[int], nodes: int = 2000,
                     queries: int = 200, batch: int = 256, seed: int = 0,
                     out: str | Path = "runs/bench/fanout.json") -> dict:
    """Score ``run_dir``'s test nodes (at most ``nodes`` of them, a seeded sample) served by
    bundles with each fan-out cap in ``caps`` (``0``: exact); print a table, write JSON."""
    from hashembed.export.exporter import export_run
    from hashembed.serve import Predictor
    from hashembed.train.checkpoint import load_run

    if not caps or any(c < 0 for c in caps):
        raise ConfigError(f"--caps {caps}: give caps of at least 1, or 0 for exact")
    run = load_run(run_dir)
    graph = run.graph
    if graph.labels is None or "test" not in graph.masks or not graph.masks["test"].any():
        raise ConfigError(f"{run_dir} has no labelled test nodes to score")
    rng = np.random.default_rng(seed)
    test_rows = np.nonzero(graph.masks["test"])[0]
    test_rows = np.sort(rng.choice(test_rows, size=min(nodes, test_rows.size), replace=False))
    ids = graph.ids.external(test_rows)
    truth = np.asarray(graph.labels)[test_rows]
    timed = rng.choice(len(ids), size=min(queries, len(ids)), replace=False)
    indptr, indices = graph.csr()
    # each timed node's neighbours (external ids); a run without codes cannot embed new nodes
    own_neighbours = [] if run.codes is None else [
        graph.ids.external(indices[indptr[r]:indptr[r + 1]]) for r in test_rows[timed]]
    rows, exact_labels = [], None
    with tempfile.TemporaryDirectory(prefix="hashembed-fanout-") as tmp:
        for cap in sorted(set(caps)):
            bundle = Path(tmp) / f"cap{cap}"
            export_run(run_dir, bundle, probe_nodes=64, fanout_cap=cap or None)
            predictor = Predictor(bundle, verify="lazy", batch_size=batch)
            labels = predictor.predict(ids).labels
            if cap == 0:
                exact_labels = labels
            latencies = []
            for i in timed:
                started = time.perf_counter()
                predictor.predict(ids[int(i): int(i) + 1])
                latencies.append(time.perf_counter() - started)
            new_latencies, new_labels = [], []
            for neighbours in own_neighbours:
                started = time.perf_counter()
                new_labels.append(predictor.predict_new([neighbours]).labels[0])
                new_latencies.append(time.perf_counter() - started)
            rows.append({"cap": str(cap) if cap else "exact",
                         "accuracy": float((labels == truth).mean()), "labels": labels,
                         "p50_ms": float(np.percentile(latencies, 50) * 1e3),
                         "p99_ms": float(np.percentile(latencies, 99) * 1e3),
                         **_unseen_columns(new_latencies, new_labels, labels[timed])})
            del predictor
    for row in rows:
        labels = row.pop("labels")
        row["agreement_with_exact"] = (None if exact_labels is None
                                       else float((labels == exact_labels).mean()))
    table = format_table(rows, [("cap", "fan-out cap", "s"), ("accuracy", "test accuracy", ".3f"),
                                ("agreement_with_exact", "agrees with exact", ".3f"),
                                ("p50_ms", "p50 ms", ".1f"), ("p99_ms", "p99 ms", ".1f"),
                                ("new_p50_ms", "new p50 ms", ".1f"),
                                ("new_p99_ms", "new p99 ms", ".1f"),
                                ("new_agreement", "new agrees", ".3f")])
    print(table)
    payload = {"config": {"run": str(run_dir), "dataset": graph.name, "caps": caps,
                          "nodes": int(test_rows.size), "queries": int(timed.size),
                          "seed": seed, "layers": run.model_config.num_layers,
                          "hops": None if run.codes is None else run.codes.spec.hops},
               "environment": environment(), "rows": rows, "table": table}
    write_json(out, payload)
    return payload
