"""``hashembed graph build`` and ``hashembed synth``: graph directories from edge files or from
the synthetic graph model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashembed import pipeline
from hashembed.pipeline import DEFAULT_DATA_ROOT


# the synthetic graph model's flags (`hashembed synth`, `bench synth-accuracy`): defaults
# are SynthConfig's fields of the same name
SYNTH_MODEL_FLAGS = (
    ("--avg-degree", float, "average degree (undirected edges = n * D / 2, before "
     "de-duplication)"),
    ("--communities", int, "labelled classes K"),
    ("--mixing", float, "fraction of a node's edges to uniformly random nodes"),
    ("--group-min", int, "smallest dense group"),
    ("--group-max", int, "largest dense group"),
    ("--exponent", float, "power-law degree exponent"),
    ("--class-share", float, "share of in-class stubs that go to a node of the class drawn by "
     "weight (popular members many groups link to) instead of the own group"),
    ("--class-core", float, "those stubs go to the first max(1, ceil(class_core * size)) "
     "members of the class's groups only (1: any member)"),
    ("--community-share", float, "share of in-class stubs that go to the core of a group of "
     "the own community (a run of --community-groups groups of one class) instead of the own "
     "group (0: no communities); at most 1 - --class-share"),
    ("--community-groups", int, "groups per community (consecutive groups of one class)"),
)


def _dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


def synth_settings(a: argparse.Namespace) -> dict:
    """The graph model's settings given by :func:`add_synth_model_flags`' flags, as
    :class:`~hashembed.graph.synth.SynthConfig` fields."""
    return {_dest(flag): getattr(a, _dest(flag)) for flag, _, _ in SYNTH_MODEL_FLAGS}


def add_like_model_flags(p: argparse.ArgumentParser) -> None:
    """The second graph model's flags (``synth --like``, ``bench synth-accuracy --like``):
    copies of a real graph (:class:`~hashembed.graph.synth_like.LikeConfig`)."""
    from hashembed.graph.synth_like import LikeConfig

    rewire = LikeConfig.__dataclass_fields__["rewire"].default
    p.add_argument("--like", metavar="DATASET", help="copies of this named dataset (e.g. "
                   "planetoid-cora) instead of the group model (hashembed.graph.synth_like)")
    p.add_argument("--copies", type=int, help="with --like: how many (n = copies x the "
                   "dataset's nodes; 370 copies of Cora are 10^6 nodes)")
    p.add_argument("--rewire", type=float, default=rewire, help="with --like: share of each "
                   f"copy's edges whose far end moves to its twin in another copy (default "
                   f"{rewire})")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                   help="with --like: folder of the named datasets")


def like_settings(a: argparse.Namespace):
    """The :class:`~hashembed.graph.synth_like.LikeConfig` of :func:`add_like_model_flags`'
    flags, or ``None`` without ``--like``."""
    from hashembed.core.errors import ConfigError
    from hashembed.graph.synth_like import LikeConfig

    if a.like is None:
        return None
    if a.copies is None:
        raise ConfigError("--like needs --copies (how many copies of the dataset)")
    return LikeConfig(a.copies, a.rewire, getattr(a, "seed", 0))


def add_synth_model_flags(p: argparse.ArgumentParser) -> None:
    from hashembed.graph.synth import SynthConfig

    for flag, kind, text in SYNTH_MODEL_FLAGS:
        default = SynthConfig.__dataclass_fields__[_dest(flag)].default
        p.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")


def _cmd_graph_build(a: argparse.Namespace) -> int:
    header = pipeline.build_graph(a.edges, a.out, labels_path=a.labels,
                                  num_nodes=a.num_nodes, id_type=a.id_type, src_col=a.src_col,
                                  dst_col=a.dst_col, memory_gb=a.memory_gb,
                                  overwrite=a.overwrite, progress=not a.quiet)
    print(json.dumps({k: v for k, v in header.to_dict().items() if k != "files"}, indent=2))
    return 0


def _cmd_synth(a: argparse.Namespace) -> int:
    from hashembed.core.errors import ConfigError
    from hashembed.core.graphdir import open_graph
    from hashembed.graph.synth import SynthConfig, clustering_coefficient

    if (a.num_nodes is None) == (a.like is None):
        raise ConfigError("synth takes --num-nodes (the group model) or --like DATASET (copies "
                          "of a real graph), one of the two")
    if a.like is not None:
        header = pipeline.synth_like(a.like, like_settings(a), a.out, data_root=a.data_root,
                                     memory_gb=a.memory_gb, overwrite=a.overwrite,
                                     progress=not a.quiet)
    else:
        config = SynthConfig(a.num_nodes, seed=a.seed, **synth_settings(a))
        header = pipeline.synth_graph(config, a.out, memory_gb=a.memory_gb,
                                      overwrite=a.overwrite, progress=not a.quiet)
    graph = open_graph(a.out)
    summary = {k: v for k, v in header.to_dict().items() if k != "files"}
    summary["avg_degree"] = header.num_csr_entries / header.num_nodes
    summary["clustering_sampled"] = clustering_coefficient(graph.indptr, graph.indices)
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("graph", help="graph directories: build one from edge files")
    graph_sub = p.add_subparsers(dest="graph_command", required=True)
    p = graph_sub.add_parser("build", help="edge files -> a graph directory, out of core")
    p.add_argument("--edges", type=Path, nargs="+", required=True,
                   help="edge files (text, .npy, Parquet) or directories of part files")
    p.add_argument("--labels", type=Path, help="'node label' rows, in the same ids")
    p.add_argument("--num-nodes", type=int, help="ids are rows 0 .. N-1")
    p.add_argument("--id-type", choices=("auto", "dense", "int", "str"), default="auto")
    p.add_argument("--src-col", help="source column name (see hashembed train --help)")
    p.add_argument("--dst-col", help="target column name")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="memory for sorting edges (default 4)")
    p.add_argument("--out", type=Path, required=True, help="graph directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a graph directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_graph_build)

    p = sub.add_parser("synth", help="a labelled synthetic graph, written as a graph "
                       "directory: small dense groups nested in classes (--num-nodes), or "
                       "copies of a real graph rewired between them (--like)")
    p.add_argument("--num-nodes", type=int, help="nodes of the group model")
    add_synth_model_flags(p)
    add_like_model_flags(p)
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same graph")
    p.add_argument("--memory-gb", type=float, default=4.0, help="budget for the edge sort")
    p.add_argument("--out", type=Path, required=True, help="graph directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a graph directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_synth)
