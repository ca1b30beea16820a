"""``hashembed train``: a graph and a :class:`~hashembed.train.runconfig.RunConfig` from the
flags, then :func:`hashembed.pipeline.train`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hashembed.pipeline import DEFAULT_DATA_ROOT


def add_graph_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a named dataset: cora (bundled), planetoid-cora, "
                     "tolokers, email-eu-core, twitch-DE, … (see docs)")
    src.add_argument("--graph", type=Path, help="a graph directory (hashembed graph build)")
    src.add_argument("--edges", type=Path, help="edge list: text (comma/tab/space), .npy or "
                     ".parquet")
    p.add_argument("--labels", type=Path, help="with --edges: 'node label' rows")
    p.add_argument("--src-col", help="with --edges (Parquet, or text with a header): source "
                   "column name (default: the pair src/dst, source/target, id_1/id_2, u/v or "
                   "from/to that the file has; a two-column file's two columns)")
    p.add_argument("--dst-col", help="with --edges: target column name (see --src-col)")
    p.add_argument("--num-nodes", type=int, help="with --edges: ids are rows 0 .. N-1 (isolated "
                   "nodes included); default: the ids present, mapped to rows")
    p.add_argument("--id-type", choices=("auto", "dense", "int", "str"), default="auto",
                   help="with --edges: node ids are integers if all are, strings if none is "
                   "(auto; a mix is refused), any 64-bit integers (int), strings (str), or "
                   "rows 0 .. n-1 (dense)")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                   help="folder of the named datasets (default: $HASHEMBED_DATA or "
                   "../shared/data)")


def _cmd_train(a: argparse.Namespace) -> int:
    from hashembed import pipeline
    from hashembed.train.runconfig import read_config_file, run_config_from_args

    config = run_config_from_args(a, read_config_file(a.config) if a.config else None)
    source = pipeline.GraphSource(dataset=a.dataset, graph_dir=a.graph, edges=a.edges,
                                  labels=a.labels, num_nodes=a.num_nodes, src_col=a.src_col,
                                  dst_col=a.dst_col, id_type=a.id_type,
                                  data_root=a.data_root)
    metrics = pipeline.train(source, config, a.out, codes_dir=a.codes, overwrite=a.overwrite,
                             progress=not a.quiet,
                             inputs=[a.config] if a.config is not None else [])
    if metrics.get("run_id") is not None:  # under torchrun, rank 0 wrote the run and reports
        _print_run(metrics, a.out)
    return 0


def _print_run(metrics: dict, out: Path) -> None:
    keys = ("dataset", "coding", "bits_per_node", "metric", "train", "val", "test",
            "test_macro_f1", "majority_class_test", "best_epoch", "bytes")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))
    print(f"run written to {Path(out).resolve()}", file=sys.stderr)


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("train", help="code nodes and train decoder + GNN")
    add_graph_args(p)
    from hashembed.train.runconfig import add_run_flags

    add_run_flags(p)  # every setting of hashembed.train.runconfig.RunConfig
    p.add_argument("--config", type=Path, help="start from the settings in this JSON file "
                   "(a run's metrics.json, or an object of RunConfig fields); flags given "
                   "beside it override them")
    p.add_argument("--codes", type=Path, help="with --graph: codes made by 'hashembed codes' "
                   "with this run's --coding (as --scheme), --bits, --bits-per-index, --seed "
                   "and --projection (others are refused)")
    p.add_argument("--out", type=Path, required=True, help="run directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a run (any other folder is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)
