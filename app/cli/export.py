"""``hashembed export``: a run directory -> a checked serving bundle
(:func:`hashembed.pipeline.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_export(a: argparse.Namespace) -> int:
    from hashembed import pipeline

    manifest = pipeline.export(a.run_dir, a.out, overwrite=a.overwrite,
                               probe_nodes=a.probe_nodes, tolerance=a.tolerance,
                               opset=a.opset, fanout_cap=a.fanout_cap)
    if manifest["parity"] is None:
        check = "ONNX Runtime vs PyTorch check skipped (--probe-nodes 0)"
    else:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in manifest["parity"].items())
        check = f"ONNX Runtime vs PyTorch max |diff|: {diffs}"
    print(f"bundle written to {manifest['path']} ({check})")
    return 0


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("export", help="write an ONNX serving bundle from a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="bundle directory to create")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a bundle (any other folder is refused)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="max |ONNX Runtime - PyTorch| accepted by the check (default 1e-4)")
    p.add_argument("--probe-nodes", type=int, default=256,
                   help="nodes the check serves and compares (0 skips the check)")
    p.add_argument("--opset", type=int, default=20, help="ONNX opset (18 or newer)")
    p.add_argument("--fanout-cap", type=int, help="serve with at most this many in-edges per "
                   "node (deterministic; for hub-heavy graphs); default: exact neighbourhoods")
    p.set_defaults(func=_cmd_export)
