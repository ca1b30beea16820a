"""``hashembed codes``: code every node of a graph directory, streaming
(:func:`hashembed.pipeline.make_codes`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashembed.core.codeformat import CODE_SCHEMES, PROJECTIONS, CodeSpec
from hashembed.core.errors import ConfigError


def _cmd_codes(a: argparse.Namespace) -> int:
    from hashembed import pipeline

    spec = CodeSpec(a.scheme, bits=a.bits, bits_per_index=a.bits_per_index, seed=a.seed,
                    projection=a.projection, hops=a.hops, degree_field=a.degree_field)
    if a.engine == "local" and (a.scheduler or a.workers or a.partitions):
        raise ConfigError("--scheduler, --workers and --partitions go with --engine dask")
    if a.scheduler and a.workers:
        raise ConfigError("--scheduler joins a running cluster, --workers starts a local one: "
                          "give one of them")
    summary = pipeline.make_codes(a.graph_dir, spec, a.out, memory_gb=a.memory_gb,
                                  overwrite=a.overwrite, progress=not a.quiet,
                                  engine=a.engine, scheduler=a.scheduler, workers=a.workers,
                                  partitions=a.partitions)
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
    p.add_argument("--degree-field", action="store_true",
                   help="one byte more a node: its degree bucket (half-octaves of 1 + "
                   "degree), which the decoder embeds beside the codebooks")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="memory for a block of bits (default 4; sets the block size); with "
                   "--engine dask, each task's")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="code in this process (default) or as Dask tasks over node ranges "
                   "(bit-identical; needs hashembed[distributed])")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="--engine dask: the running Dask scheduler to use (e.g. "
                   "tcp://10.0.0.1:8786); the graph and --out must be on storage its workers "
                   "share")
    p.add_argument("--workers", type=int,
                   help="--engine dask: start a local cluster of this many worker processes "
                   "(default: one per CPU core)")
    p.add_argument("--partitions", type=int,
                   help="--engine dask: node ranges, one task each per round (default: twice "
                   "the workers)")
    p.add_argument("--out", type=Path, required=True, help="codes directory to write")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_codes)
