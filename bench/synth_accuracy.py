"""``hashembed bench synth-accuracy``: methods compared on a large synthetic graph, 1 % labelled.

For one synthetic graph (``hashembed synth`` with the given parameters) and each seed, every
method trains through the same mini-batch loader with the same budget (batch size, fan-out,
epochs, learning rate), on a random split of 1 % train / 0.5 % validation / 1 % test nodes
drawn with that seed:

- ``hash``: the method (codes from ``hashembed codes``, c bits, seeded projection);
- ``random``: random codes (ALONE-style), same decoder;
- ``table``: a full fp32 ``nn.Embedding`` (sparse gradients, ``SparseAdam``);
- ``qr`` and ``hashing-trick``: tables sized to cost what c-bit codes cost.

Every step goes through :mod:`hashembed.pipeline`, what the CLI runs, so the study measures
the product. Each
run's ``metrics.json`` stays in ``work``; ``resume`` reuses finished runs. Prints mean ± std of
validation and test accuracy per method, and writes JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hashembed.bench.harness import (CODED, environment, format_table, method_hops,
                                     refuse_other_bit_flip, write_json)
from hashembed.core.errors import ConfigError
from hashembed.train.defaults import BIT_FLIP, check_bit_flip

METHODS = ("hash", "random", "table", "qr", "hashing-trick")
SPLIT = "random:0.01,0.005,0.01"


def run_synth_accuracy_bench(num_nodes: int | None, synth: dict | None = None, methods=METHODS,
                             seeds=(0, 1, 2), bits: int = 128, epochs: int = 20,
                             lr: float = 0.01, batch_size: int = 1024, fanout: str = "15,10",
                             memory_gb: float = 4.0, work: str | Path = "runs/synth-accuracy",
                             resume: bool = False,
                             out: str | Path = "runs/bench/synth-accuracy.json",
                             hops: int = 1, like: dict | None = None,
                             data_root: str | Path | None = None,
                             bit_flip: float = BIT_FLIP) -> dict:
    """Run the study (module docstring); ``synth`` are the graph model's settings
    (:class:`~hashembed.graph.synth.SynthConfig` fields other than ``num_nodes``, e.g.
    ``{"group_min": 50}``; the rest keep their defaults). ``like`` (``{"dataset", "copies",
    "rewire"}``) takes the second graph model instead, copies of a real graph
    (:mod:`hashembed.graph.synth_like`; ``num_nodes`` is then ``None``). ``hops``: the hash
    codes' walk length ``K``; ``bit_flip``: the share of code bits the coded methods flip
    while training (``hashembed train --bit-flip``)."""
    from hashembed import pipeline
    from hashembed.core.codeformat import CodeSpec
    from hashembed.graph.synth import SynthConfig
    from hashembed.train.runconfig import RunConfig, parse_fanout

    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    check_bit_flip(bit_flip)  # before minutes of graph and codes, not after
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    graph = work / "graph"
    if not (resume and (graph / "graph.json").is_file()):
        if like is not None:
            from hashembed.graph.synth_like import LikeConfig

            pipeline.synth_like(like["dataset"], LikeConfig(like["copies"], like["rewire"]),
                                graph, data_root=data_root or pipeline.DEFAULT_DATA_ROOT,
                                memory_gb=memory_gb, overwrite=True, progress=False)
        else:
            pipeline.synth_graph(SynthConfig(num_nodes, **(synth or {})), graph,
                                 memory_gb=memory_gb, overwrite=True, progress=False)
    header = json.loads((graph / "graph.json").read_text())
    results = []
    for seed in seeds:
        for method in methods:
            run = work / f"run-{method}-s{seed}"
            if not (resume and (run / "metrics.json").is_file()):
                codes_dir = None
                if method in ("hash", "random"):
                    codes_dir = work / f"codes-{method}-s{seed}"
                    if not (resume and (codes_dir / "codes.json").is_file()):
                        pipeline.make_codes(graph, CodeSpec(method, bits=bits, seed=seed,
                                                            hops=method_hops(method, hops)),
                                            codes_dir, memory_gb=memory_gb, overwrite=True,
                                            progress=False)
                config = RunConfig(coding="none" if method == "table" else method, bits=bits,
                                   seed=seed, hops=method_hops(method, hops),
                                   split=SPLIT, batch_size=batch_size,
                                   fanout=parse_fanout(fanout), epochs=epochs,
                                   patience=epochs, lr=lr, bit_flip=bit_flip)
                pipeline.train(pipeline.GraphSource(graph_dir=graph), config, run,
                               codes_dir=codes_dir, overwrite=True, progress=False)
            metrics = json.loads((run / "metrics.json").read_text())
            if method in CODED:  # runs from before flips recorded no rate: none
                refuse_other_bit_flip(run, metrics["config"]["run"].get("bit_flip", 0.0),
                                      bit_flip)
            results.append({"method": method, "seed": seed, "val": metrics["val"],
                            "test": metrics["test"], "train": metrics["train"],
                            "bytes_total": metrics["bytes"]["total"]})
            print(f"{method} seed {seed}: test {metrics['test']:.3f}", file=sys.stderr)
    rows = []
    for method in methods:
        mine = [r for r in results if r["method"] == method]
        test = np.array([r["test"] for r in mine])
        val = np.array([r["val"] for r in mine])
        rows.append({"method": method, "seeds": len(mine), "val_mean": float(val.mean()),
                     "test_mean": float(test.mean()), "test_std": float(test.std()),
                     "bytes_total": mine[0]["bytes_total"]})
    table = format_table(rows, [("method", "method", "s"), ("seeds", "seeds", "d"),
                                ("val_mean", "val", ".3f"), ("test_mean", "test", ".3f"),
                                ("test_std", "test std", ".3f"),
                                ("bytes_total", "bytes (codes + model)", ",")])
    print(table)
    labels = np.load(graph / "labels.npy", mmap_mode="r")
    classes = int(labels.max()) + 1
    payload = {"config": {"num_nodes": header["num_nodes"], "graph": header["source"],
                          "split": SPLIT, "hops": hops,
                          "bit_flip": bit_flip if set(CODED) & set(methods) else None,
                          "methods": list(methods), "seeds": list(seeds), "bits": bits,
                          "epochs": epochs, "lr": lr, "batch_size": batch_size,
                          "fanout": fanout, "chance": 1 / classes},
               "environment": environment(), "runs": results, "rows": rows, "table": table}
    write_json(out, payload)
    return payload

