"""``hashembed demo``: the main job on the bundled default graph
(:func:`hashembed.app.demo.run_demo`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_demo(a: argparse.Namespace) -> int:
    from hashembed.app.demo import run_demo

    summary = run_demo(a.out, bits=a.bits, seed=a.seed, progress=not a.quiet)
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("demo", help="codes -> train -> export -> predict on bundled Cora")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
