"""The ``hashembed`` command line: one module per command group, each parsing its flags and
calling one library function (:mod:`hashembed.pipeline`, :mod:`hashembed.bench`, …).

=================  ==========================================
module             commands
=================  ==========================================
``train``          ``hashembed train``
``graph``          ``hashembed graph build``, ``hashembed synth``
``codes``          ``hashembed codes``
``export``         ``hashembed export``
``serve``          ``hashembed predict``, ``hashembed serve``
``bench``          ``hashembed bench …``
``demo``           ``hashembed demo``
=================  ==========================================

Commands import their stage when they run, so ``hashembed predict`` never imports torch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hashembed import __version__
from hashembed.app.cli import bench, codes, demo, export, graph, serve, train
from hashembed.core.errors import HashembedError

COMMAND_GROUPS = (train, export, serve, graph, codes, bench, demo)  # --help lists them so


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashembed", description="Hash-code node embeddings: train, export, serve.")
    parser.add_argument("--version", action="version", version=f"hashembed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors about input, data or artifacts print one line
    (``hashembed: error: …``) and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["bench", "gpu"]:  # its own parser (argparse cannot pass on a leading --help)
        from hashembed.bench.gpu import main as gpu_main

        return gpu_main(argv[2:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="hashembed: %(message)s")
    try:
        return args.func(args)
    except HashembedError as e:
        print(f"hashembed: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the environment: unreadable file, disk full, … (not our bug)
        where = f": {e.filename}" if e.filename else ""
        print(f"hashembed: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
