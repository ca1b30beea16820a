"""``hashembed bench inductive``: how well nodes that were never in the graph are served.

For each dataset, method and seed: take 10 % of the labelled nodes and their edges out
(:func:`~hashembed.graph.holdout.hold_out`), train on the rest (random 60/20/20 split of the
remaining labelled nodes), export the bundle, then embed the held-out nodes from their
original neighbours with ``Predictor.predict_new`` and score them against the transductive
test accuracy of the same run.

Methods: ``hash`` (the method: a new node's code sketches its neighbours), ``random`` (random
codes carry no neighbourhood: a new node gets a code unrelated to anything trained), and
``degree``: no GNN at all, the majority training class of nodes with the same log2-degree
bucket, applied to the held-out nodes' degrees.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, method_hops, write_json
from hashembed.train.defaults import BIT_FLIP

INDUCTIVE_DATASETS = ("planetoid-cora", "planetoid-citeseer", "planetoid-pubmed", "twitch-DE",
                      "email-eu-core")
METHODS = ("hash", "random", "degree")


def _degree_baseline(graph, held) -> tuple[float, float]:
    """(test accuracy, held-out accuracy) of majority class per log2-degree bucket."""
    degree = graph.degrees()
    bucket = np.floor(np.log2(degree + 1)).astype(np.int64)
    train = graph.masks["train"]
    table = {}
    for b in np.unique(bucket[train]):
        table[int(b)] = int(np.bincount(graph.labels[train & (bucket == b)]).argmax())
    fallback = int(np.bincount(graph.labels[train]).argmax())

    def predict(buckets):
        return np.array([table.get(int(b), fallback) for b in buckets])

    test = graph.masks["test"]
    test_acc = float((predict(bucket[test]) == graph.labels[test]).mean())
    held_buckets = np.floor(np.log2(np.array([len(n) for n in held.neighbors]) + 1))
    held_acc = float((predict(held_buckets) == np.array(held.labels)).mean())
    return test_acc, held_acc


def run_inductive_bench(data_root: str | Path, datasets=INDUCTIVE_DATASETS, methods=METHODS,
                        seeds=(0,), fraction: float = 0.1, bits: int = 128,
                        out: str | Path = "runs/bench/inductive.json",
                        progress: bool = False, hops: int | str = "auto",
                        bit_flip: float = BIT_FLIP) -> dict:
    """Run the study (module docstring); print a table and write JSON. ``hops``: the hash
    codes' walk length (``K`` or ``"auto"``; a new node's multi-hop code is computed from
    its neighbourhood, :mod:`hashembed.serve.unseen`); ``bit_flip``: the share of code bits
    flipped while training (``hashembed train --bit-flip``)."""
    from hashembed import pipeline
    from hashembed.graph.datasets import load_dataset
    from hashembed.train.run import prepare_graph, train_run
    from hashembed.train.runconfig import RunConfig

    rows = []
    for name in datasets:
        full = load_dataset(name, data_root)
        for seed in seeds:
            # the nodes held out and the split depend on the seed only, not on the method
            graph, held = prepare_graph(full, RunConfig(seed=seed, holdout_nodes=fraction))
            for method in methods:
                if method == "degree":
                    test_acc, held_acc = _degree_baseline(graph, held)
                else:
                    config = RunConfig(coding=method, bits=bits, seed=seed,
                                       holdout_nodes=fraction, device="cpu",
                                       hops=method_hops(method, hops), bit_flip=bit_flip)
                    with tempfile.TemporaryDirectory() as tmp:
                        metrics = train_run(graph, config, Path(tmp) / "run",
                                            progress=progress, holdout=held)
                        pipeline.export(Path(tmp) / "run", Path(tmp) / "bundle", probe_nodes=64)
                        predictor = pipeline.predictor(Path(tmp) / "bundle")
                        served = predictor.predict_new(held.neighbors, held.ids)
                        test_acc = metrics["test"]
                        held_acc = float((served.labels == np.array(held.labels)).mean())
                rows.append({"dataset": name, "method": method, "seed": seed,
                             "hops": metrics.get("hops") if method == "hash" else None,
                             "transductive_test": test_acc, "held_out": held_acc,
                             "gap": held_acc - test_acc, "held_out_nodes": len(held.ids),
                             "isolated_held_out": sum(not n for n in held.neighbors)})
    table = format_table(rows, [("dataset", "dataset", "s"), ("method", "method", "s"),
                                ("seed", "seed", "d"),
                                ("transductive_test", "transductive test", ".3f"),
                                ("held_out", "held-out (unseen)", ".3f"), ("gap", "gap", "+.3f"),
                                ("held_out_nodes", "held-out nodes", ",")])
    print(table)
    payload = {"config": {"datasets": list(datasets), "methods": list(methods),
                          "seeds": list(seeds), "fraction": fraction, "bits": bits,
                          "hops": hops, "bit_flip": bit_flip},
               "environment": environment(), "rows": rows, "table": table}
    write_json(out, payload)
    return payload
