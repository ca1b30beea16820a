"""The main job on the bundled default graph: codes -> train -> export -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hashembed.atomic import atomic_write


def run_demo(out_dir: str | Path = "runs/demo", bits: int = 128, seed: int = 0,
             progress: bool = True) -> dict:
    """Train a hash-coded GraphSAGE on bundled Cora, export its bundle, serve test nodes.

    Writes ``out_dir/run`` (checkpoint, metrics.json) and ``out_dir/bundle`` (each replaced
    if it holds a run or a bundle from an earlier demo). Returns a summary dict (also written
    to ``out_dir/summary.json``).
    """
    from hashembed.export.exporter import export_run
    from hashembed.serve import Predictor
    from hashembed.train.datasets import load_dataset
    from hashembed.train.run import prepare_graph, train_run
    from hashembed.train.runconfig import RunConfig

    out_dir = Path(out_dir)
    config = RunConfig(coding="hash", bits=bits, seed=seed, device="cpu")  # same on any machine
    graph, _ = prepare_graph(load_dataset("cora"), config)
    metrics = train_run(graph, config, out_dir / "run", progress=progress, overwrite=True)
    manifest = export_run(out_dir / "run", out_dir / "bundle", overwrite=True)
    test_nodes = np.nonzero(graph.masks["test"])[0]
    served = Predictor(out_dir / "bundle").predict(test_nodes)
    summary = {
        "dataset": graph.name,
        "metric": metrics["metric"],
        "train": metrics["train"], "val": metrics["val"], "test": metrics["test"],
        "majority_class_test": metrics["majority_class_test"],
        "served_test_accuracy": float((served.labels == graph.labels[test_nodes]).mean()),
        "bytes": metrics["bytes"],
        "parity_max_abs_diff": manifest["parity"],
        "run_dir": str((out_dir / "run").resolve()),
        "bundle_dir": manifest["path"],
    }
    atomic_write(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary
