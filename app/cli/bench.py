"""``hashembed bench …``: the benchmarks (each prints a table and writes JSON); each command
calls one function of :mod:`hashembed.bench`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hashembed.app.cli.graph import (add_like_model_flags, add_synth_model_flags, like_settings,
                                     synth_settings)
from hashembed.pipeline import DEFAULT_DATA_ROOT
from hashembed.train.defaults import BIT_FLIP


def _cmd_bench_decode(a: argparse.Namespace) -> int:
    from hashembed.bench.decode import run_decode_bench

    run_decode_bench(num_nodes=a.num_nodes, batch=a.batch, bits=a.bits,
                     bits_per_index=a.bits_per_index, dim=a.dim, onnx_chunk=a.onnx_chunk,
                     repeats=a.repeats, threads=a.threads, hidden=a.hidden, out=a.out)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_accuracy(a: argparse.Namespace) -> int:
    from hashembed.bench.accuracy import run_accuracy_bench

    run_accuracy_bench(a.suite, a.data_root, a.out, progress=not a.quiet,
                       datasets=a.datasets, methods=a.methods,
                       bits_per_index=a.bits_per_index, merge=a.merge, hops=a.hops,
                       resume=a.resume, degree_field=a.degree_field or None, bits=a.bits,
                       bit_flip=a.bit_flip)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_ids(a: argparse.Namespace) -> int:
    from hashembed.bench.ids import run_ids_bench

    run_ids_bench(num_nodes=a.num_nodes, queries=a.queries, batch=a.batch, repeats=a.repeats,
                  out=a.out)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_scale(a: argparse.Namespace) -> int:
    from hashembed.bench.scale import run_scale_bench

    run_scale_bench(a.num_nodes, avg_degree=a.avg_degree, work=a.work, queries=a.queries,
                    out=a.out, memory_gb=a.memory_gb,
                    fanout_cap=None if a.fanout_cap == 0 else a.fanout_cap, resume=a.resume,
                    bit_flip=a.bit_flip)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_distributed(a: argparse.Namespace) -> int:
    from hashembed.bench.distributed import DistributedConfig, run_distributed_bench

    config = DistributedConfig(num_nodes=a.num_nodes, workers=tuple(a.workers), bits=a.bits,
                               hops=a.hops, memory_gb=a.memory_gb, batch_size=a.batch_size)
    run_distributed_bench(config, work=a.work, out=a.out, resume=a.resume)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_string_build(a: argparse.Namespace) -> int:
    from hashembed.bench.string_build import run_string_build_bench

    run_string_build_bench(a.num_nodes, a.edges, memory_gb=a.memory_gb, work=a.work,
                           out=a.out, resume=a.resume)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_fanout(a: argparse.Namespace) -> int:
    from hashembed.bench.fanout import run_fanout_bench

    run_fanout_bench(a.run_dir, a.caps, nodes=a.nodes, queries=a.queries, seed=a.seed,
                     out=a.out)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_synth_accuracy(a: argparse.Namespace) -> int:
    from hashembed.bench.synth_accuracy import run_synth_accuracy_bench

    config = like_settings(a)
    like = None if config is None else {"dataset": a.like, "copies": config.copies,
                                        "rewire": config.rewire}
    run_synth_accuracy_bench(None if like else a.num_nodes, synth_settings(a),
                             methods=a.methods, seeds=a.seeds, bits=a.bits, epochs=a.epochs,
                             lr=a.lr, batch_size=a.batch_size, fanout=a.fanout,
                             memory_gb=a.memory_gb, work=a.work, resume=a.resume, out=a.out,
                             hops=a.hops, like=like, data_root=a.data_root,
                             bit_flip=a.bit_flip)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_inductive(a: argparse.Namespace) -> int:
    from hashembed.bench.inductive import run_inductive_bench

    run_inductive_bench(a.data_root, datasets=a.datasets, methods=a.methods, seeds=a.seeds,
                        fraction=a.fraction, bits=a.bits, out=a.out, progress=not a.quiet,
                        hops=a.hops, bit_flip=a.bit_flip)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_serve(a: argparse.Namespace) -> int:
    from hashembed.bench.serve import run_serve_bench

    run_serve_bench(a.bundle, levels=a.concurrency, requests=a.requests,
                    nodes_per_request=a.nodes_per_request, soak_seconds=a.soak_seconds,
                    warmup_seconds=a.warmup_seconds,
                    out=a.out)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_summary(a: argparse.Namespace) -> int:
    from hashembed.bench.summary import markdown

    print(markdown(a.results, a.bits))
    return 0


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
    p = sub.add_parser("bench", help="benchmarks (print a table, write JSON)")
    bench = p.add_subparsers(dest="benchmark", required=True)
    p = bench.add_parser("decode", help="decode throughput vs an fp32 table gather")
    p.add_argument("--num-nodes", type=int, default=10_000_000, help="n (default 10M)")
    p.add_argument("--batch", type=int, default=1_000_000, help="B random ids (default 1M)")
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--bits-per-index", type=int, default=8,
                   help="b (default 8: the shape the decode targets are stated at)")
    p.add_argument("--dim", type=int, default=64, help="d = d_c")
    p.add_argument("--onnx-chunk", type=int, default=4096, help="nodes per ONNX Runtime call")
    p.add_argument("--hidden", type=int, help="also time the whole decoder (sum + MLP "
                   "d -> HIDDEN -> d) in ONNX Runtime, unfolded and, if HIDDEN <= d, folded")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch and ONNX Runtime threads (default: all)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/decode.json"))
    p.set_defaults(func=_cmd_bench_decode)

    # listed for --help; main() hands `bench gpu ...` to hashembed.bench.gpu's own parser
    bench.add_parser("gpu", help="everything to measure on a GPU (what scripts/gpu-check runs; "
                     "`hashembed bench gpu --help` for its options)")

    p = bench.add_parser("accuracy", help="hash codes vs table, random codes, hashing trick, "
                         "QR trick, degree, on real graphs")
    p.add_argument("--suite", choices=("quick", "full"), default="quick")
    p.add_argument("--data-root", type=Path,
                   default=DEFAULT_DATA_ROOT)
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="run only these datasets of the suite (e.g. tolokers ogbl-ddi)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="run only these methods (table hash random hashing_trick qr degree)")
    p.add_argument("--bits-per-index", type=int,
                   help="b of the coded methods' decoder (default 8: m = c/8 codebooks of 256)")
    p.add_argument("--hops", help="K of the hash codes, 1 .. 4 or auto (default auto, as "
                   "hashembed train; random codes stay 1-hop)")
    p.add_argument("--degree-field", action="store_true",
                   help="the coded methods' rows carry a degree byte (hashembed train "
                   "--degree-field)")
    p.add_argument("--bit-flip", type=float, metavar="Q",
                   help="share of code bits the coded methods flip while training (default: "
                        "hashembed train's; 0: off)")
    p.add_argument("--bits", nargs="+", type=int, metavar="C",
                   help="run only these code lengths of the suite (e.g. 128)")
    p.add_argument("--merge", action="store_true",
                   help="keep the runs already in --out except the (dataset, method) pairs "
                        "this call runs (re-run part of a suite)")
    p.add_argument("--resume", action="store_true",
                   help="skip the runs an interrupted call with the same options logged in "
                        "--out/progress.jsonl")
    p.add_argument("--out", type=Path, default=Path("runs/bench/accuracy"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bench_accuracy)

    p = bench.add_parser("ids", help="cost of the users'-own-id map: bytes per node, "
                         "lookups per second")
    p.add_argument("--num-nodes", type=int, default=1_000_000, help="n (default 1M)")
    p.add_argument("--queries", type=int, default=100_000, help="ids looked up per repeat")
    p.add_argument("--batch", type=int, default=64, help="ids per lookup call (a request)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("runs/bench/ids.json"))
    p.set_defaults(func=_cmd_bench_ids)

    p = bench.add_parser("scale", help="every stage (synth, build, codes, one epoch, export, "
                         "open, predict) at growing n: seconds, edges/s, peak RSS")
    p.add_argument("--num-nodes", type=int, nargs="+", default=[100_000, 1_000_000],
                   help="sizes n to run (default 1e5 1e6)")
    p.add_argument("--avg-degree", type=float, default=10.0)
    p.add_argument("--queries", type=int, default=200, help="single-node predictions timed")
    p.add_argument("--work", type=Path, default=Path("runs/scale"),
                   help="folder for the graphs, codes, runs and bundles made")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="budget of synth, graph build and codes")
    p.add_argument("--fanout-cap", type=int, default=15,
                   help="the bundle's serving fan-out cap (0: exact neighbourhoods)")
    p.add_argument("--bit-flip", type=float, default=BIT_FLIP, metavar="Q",
                   help=f"share of code bits flipped while training (default {BIT_FLIP}, as "
                        "hashembed train; 0: off)")
    p.add_argument("--resume", action="store_true",
                   help="keep the results of stages that already ran in --work")
    p.add_argument("--out", type=Path, default=Path("runs/bench/scale.json"))
    p.set_defaults(func=_cmd_bench_scale)

    p = bench.add_parser("distributed", help="coding on Dask and one epoch under torchrun "
                         "with 1 and 2 workers: seconds, peak RSS a worker, bytes between them")
    p.add_argument("--num-nodes", type=int, default=10_000_000, help="n (default 1e7)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="worker counts compared (default 1 2)")
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--hops", type=int, default=1, help="K of the codes (default 1)")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="the coder's budget (each Dask task's; default 4)")
    p.add_argument("--batch-size", type=int, default=1024,
                   help="global batch: BATCH / W seeds a rank (default 1024)")
    p.add_argument("--work", type=Path, default=Path("runs/distributed"),
                   help="folder for the graph, codes and runs made")
    p.add_argument("--resume", action="store_true",
                   help="keep the results of stages that already ran in --work")
    p.add_argument("--out", type=Path, default=Path("runs/bench/distributed.json"))
    p.set_defaults(func=_cmd_bench_distributed)

    p = bench.add_parser("string-build", help="graph build of a CSV whose node ids are "
                         "strings: seconds, edges/s, peak RSS")
    p.add_argument("--num-nodes", type=int, default=1_000_000,
                   help="ids user-0 … user-(N-1) the edges draw from (default 1e6)")
    p.add_argument("--edges", type=int, default=4_000_000, help="edges (default 4e6)")
    p.add_argument("--memory-gb", type=float, default=4.0, help="graph build's budget")
    p.add_argument("--work", type=Path, default=Path("runs/string-build"),
                   help="folder for the CSV and the graph")
    p.add_argument("--resume", action="store_true", help="reuse the CSV in --work")
    p.add_argument("--out", type=Path, default=Path("runs/bench/string-build.json"))
    p.set_defaults(func=_cmd_bench_string_build)

    p = bench.add_parser("fanout", help="test accuracy and single-node latency (known nodes "
                         "and unseen copies) served with each fan-out cap (0: exact)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--caps", type=int, nargs="+", default=[0, 5, 10, 15, 25])
    p.add_argument("--nodes", type=int, default=2000, help="test nodes scored (a sample)")
    p.add_argument("--queries", type=int, default=200,
                   help="test nodes timed, each as a known and as an unseen node")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench/fanout.json"))
    p.set_defaults(func=_cmd_bench_fanout)

    from hashembed.bench.synth_accuracy import METHODS as SYNTH_METHODS

    p = bench.add_parser("synth-accuracy", help="hash codes vs random codes, table, QR and "
                         "hashing trick on one synthetic graph, 1 %% labelled, same budget")
    p.add_argument("--num-nodes", type=int, default=1_000_000, help="nodes of the graph")
    add_synth_model_flags(p)
    p.add_argument("--methods", nargs="+", choices=SYNTH_METHODS, default=list(SYNTH_METHODS),
                   help="encoders compared (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="one run per method and seed (the seed draws split, codes, init)")
    p.add_argument("--bits", type=int, default=128, help="code bits c")
    p.add_argument("--hops", type=int, default=1, help="K of the hash codes (default 1)")
    p.add_argument("--bit-flip", type=float, default=BIT_FLIP, metavar="Q",
                   help=f"share of code bits the coded methods flip while training (default "
                        f"{BIT_FLIP}, as hashembed train; 0: off)")
    add_like_model_flags(p)  # --like: the second graph model; --num-nodes is then ignored
    p.add_argument("--epochs", type=int, default=20,
                   help="epochs over the training seeds (also the patience)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=1024, help="seed nodes per batch")
    p.add_argument("--fanout", default="15,10", help="neighbours sampled per hop")
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="budget of synth and codes")
    p.add_argument("--work", type=Path, default=Path("runs/synth-accuracy"),
                   help="graph, codes and runs")
    p.add_argument("--resume", action="store_true", help="reuse finished runs in --work")
    p.add_argument("--out", type=Path, default=Path("runs/bench/synth-accuracy.json"),
                   help="results JSON")
    p.set_defaults(func=_cmd_bench_synth_accuracy)

    from hashembed.bench.inductive import INDUCTIVE_DATASETS, METHODS as INDUCTIVE_METHODS

    p = bench.add_parser("inductive", help="serve held-out nodes as unseen nodes and score "
                         "them against transductive accuracy")
    p.add_argument("--data-root", type=Path,
                   default=DEFAULT_DATA_ROOT)
    p.add_argument("--datasets", nargs="+", default=list(INDUCTIVE_DATASETS))
    p.add_argument("--methods", nargs="+", choices=INDUCTIVE_METHODS,
                   default=list(INDUCTIVE_METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--fraction", type=float, default=0.1, help="labelled nodes held out")
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--hops", default="auto", help="K of the hash codes, 1 .. 4 or auto "
                   "(default auto, as hashembed train)")
    p.add_argument("--bit-flip", type=float, default=BIT_FLIP, metavar="Q",
                   help=f"share of code bits flipped while training (default {BIT_FLIP}, as "
                        "hashembed train; 0: off)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/inductive.json"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_bench_inductive)

    p = bench.add_parser("serve", help="load, fault and soak test of hashembed serve on "
                         "127.0.0.1")
    p.add_argument("bundle", type=Path)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--requests", type=int, default=400, help="requests per level")
    p.add_argument("--nodes-per-request", type=int, default=64)
    p.add_argument("--soak-seconds", type=float, default=120.0)
    p.add_argument("--warmup-seconds", type=float, default=60.0,
                   help="the first part of the soak, after which RSS should stay flat "
                        "(default: 60)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/serve.json"))
    p.set_defaults(func=_cmd_bench_serve)

    p = bench.add_parser("summary", help="one Markdown table at one code length from "
                         "several `bench accuracy` results (later ones override)")
    p.add_argument("results", nargs="+", type=Path, metavar="DIR",
                   help="`bench accuracy` --out directories (or their results.json)")
    p.add_argument("--bits", type=int, default=128, help="code length to show (default 128)")
    p.set_defaults(func=_cmd_bench_summary)
