"""The main job on the bundled default graph: codes -> train -> export -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hashembed.core.atomic import atomic_write


def run_demo(out_dir: str | Path = "runs/demo", bits: int = 128, seed: int = 0,
             progress: bool = True) -> dict:
    """Train a hash-coded GraphSAGE on bundled Cora, export its bundle, serve test nodes.

    Writes ``out_dir/run`` (checkpoint, metrics.json) and ``out_dir/bundle`` (each replaced
    if it holds a run or a bundle from an earlier demo). Returns a summary dict (also written
    to ``out_dir/summary.json``).
    """
    from hashembed import pipeline
    from hashembed.train.runconfig import RunConfig

    out_dir = Path(out_dir)
    run_dir, bundle_dir = out_dir / "run", out_dir / "bundle"
    config = RunConfig(coding="hash", bits=bits, seed=seed, device="cpu")  # same on any machine
    metrics = pipeline.train(pipeline.GraphSource(dataset="cora"), config, run_dir,
                             overwrite=True, progress=progress)
    manifest = pipeline.export(run_dir, bundle_dir, overwrite=True)
    graph = pipeline.load_run(run_dir).graph  # the run's own split
    test_nodes = np.nonzero(graph.masks["test"])[0]
    served = pipeline.predictor(bundle_dir).predict(test_nodes)
    summary = {
        "dataset": graph.name,
        "metric": metrics["metric"],
        "train": metrics["train"], "val": metrics["val"], "test": metrics["test"],
        "majority_class_test": metrics["majority_class_test"],
        "served_test_accuracy": float((served.labels == graph.labels[test_nodes]).mean()),
        "bytes": metrics["bytes"],
        "parity_max_abs_diff": manifest["parity"],
        "run_dir": str(run_dir.resolve()),
        "bundle_dir": manifest["path"],
    }
    atomic_write(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary
