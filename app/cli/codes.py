"""``hashembed codes``: code every node of a graph directory, streaming
(:func:`hashembed.pipeline.make_codes`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashembed.core.codeformat import CODE_SCHEMES, PROJECTIONS, CodeSpec


def _cmd_codes(a: argparse.Namespace) -> int:
    from hashembed import pipeline

    spec = CodeSpec(a.scheme, bits=a.bits, bits_per_index=a.bits_per_index, seed=a.seed,
                    projection=a.projection, hops=a.hops)
    summary = pipeline.make_codes(a.graph_dir, spec, a.out, memory_gb=a.memory_gb,
                                  overwrite=a.overwrite, progress=not a.quiet)
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("codes", help="code every node of a graph directory, streaming")
    p.add_argument("graph_dir", type=Path)
    default = CodeSpec()  # one default per setting: the code spec's own
    p.add_argument("--scheme", choices=CODE_SCHEMES, default=default.scheme,
                   help=f"hash codes or random (ALONE-style) codes (default {default.scheme})")
    p.add_argument("--bits", type=int, default=default.bits,
                   help=f"c, bits per node (default {default.bits})")
    p.add_argument("--bits-per-index", type=int, default=default.bits_per_index,
                   help=f"b, bits per codebook index (default {default.bits_per_index})")
    p.add_argument("--projection", choices=PROJECTIONS, default=default.projection,
                   help=f"the random projection's entries (default {default.projection})")
    p.add_argument("--seed", type=int, default=default.seed,
                   help=f"seeds the projection (default {default.seed})")
    p.add_argument("--hops", type=int, default=default.hops,
                   help="K: hash codes project the walks of up to K steps, (A + I)^K R "
                   f"(default {default.hops}, the paper's coding)")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="memory for a block of bits (default 4; sets the block size)")
    p.add_argument("--out", type=Path, required=True, help="codes directory to write")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_codes)
