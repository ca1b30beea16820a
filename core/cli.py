"""``hashembed`` command line: parses arguments and calls one library function per command.

Commands import their stage lazily so that ``hashembed predict`` never imports torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from hashembed import __version__
from hashembed.atomic import atomic_write, check_output_file
from hashembed.codeformat import DEFAULT_BITS_PER_INDEX
from hashembed.errors import HashembedError, NodeIdTypeError, OutputPathError

log = logging.getLogger("hashembed")


def _add_graph_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--data-root", type=Path,
                   default=Path(os.environ.get("HASHEMBED_DATA", "../shared/data")),
                   help="folder of the named datasets (default: $HASHEMBED_DATA or "
                   "../shared/data)")


def _cmd_train(a: argparse.Namespace) -> int:
    from hashembed.errors import ConfigError
    from hashembed.train.checkpoint import check_run_dir
    from hashembed.train.datasets import load_dataset
    from hashembed.train.edgelist import load_edge_list_graph
    from hashembed.train.run import prepare_graph, train_run
    from hashembed.train.runconfig import read_config_file, run_config_from_args

    config = run_config_from_args(a, read_config_file(a.config) if a.config else None)
    inputs = [p for p in (a.edges, a.labels, a.graph, a.codes, a.config) if p is not None] or \
        [a.data_root]
    check_run_dir(a.out, a.overwrite, inputs)  # before any work: a bad --out fails at once
    link = a.dataset == "ogbl-ddi"
    config.check_task(link)  # a bad setting fails before the graph is read
    if link and a.codes is not None:
        raise ConfigError("ogbl-ddi trains link prediction, which makes its codes from the "
                          "training edges: it does not take --codes")
    if a.dataset:
        graph = load_dataset(a.dataset, a.data_root)
    elif a.graph:
        from hashembed.graphdir import open_graph
        from hashembed.train.graph import graph_from_dir

        graph = graph_from_dir(open_graph(a.graph))
        if a.labels is not None:
            raise ConfigError("--graph carries its labels (graph build --labels)")
    else:
        if a.labels is None:
            raise ConfigError("--edges needs --labels for node classification")
        graph = load_edge_list_graph(a.edges, a.labels, a.num_nodes, src_col=a.src_col,
                                     dst_col=a.dst_col, id_type=a.id_type)
    if link:
        return _train_links(a, config, graph, inputs)
    graph, holdout = prepare_graph(graph, config)
    metrics = train_run(graph, config, a.out, progress=not a.quiet, overwrite=a.overwrite,
                        inputs=inputs, codes_dir=a.codes, holdout=holdout)
    _print_run(metrics, a.out)
    return 0


def _print_run(metrics: dict, out: Path) -> None:
    keys = ("dataset", "coding", "bits_per_node", "metric", "train", "val", "test",
            "test_macro_f1", "majority_class_test", "best_epoch", "bytes")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))
    print(f"run written to {Path(out).resolve()}", file=sys.stderr)


def _train_links(a: argparse.Namespace, config, graph, inputs) -> int:
    """``hashembed train --dataset ogbl-ddi``: link prediction on the official split."""
    from hashembed.train.linkpred import load_ogbl_ddi_split
    from hashembed.train.run import train_link_run

    if config.device == "auto":
        log.info("link prediction trains on the CPU (OGB's full-graph protocol)")
    metrics = train_link_run(graph, load_ogbl_ddi_split(a.data_root), config, a.out,
                             progress=not a.quiet, overwrite=a.overwrite, inputs=inputs)
    _print_run(metrics, a.out)
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from hashembed.export.exporter import export_run

    manifest = export_run(a.run_dir, a.out, overwrite=a.overwrite, probe_nodes=a.probe_nodes,
                          tolerance=a.tolerance, opset=a.opset, fanout_cap=a.fanout_cap)
    if manifest["parity"] is None:
        check = "ONNX Runtime vs PyTorch check skipped (--probe-nodes 0)"
    else:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in manifest["parity"].items())
        check = f"ONNX Runtime vs PyTorch max |diff|: {diffs}"
    print(f"bundle written to {manifest['path']} ({check})")
    return 0


def _cmd_predict(a: argparse.Namespace) -> int:
    import numpy as np

    from hashembed.serve import Predictor
    from hashembed.serve.node_ids import parse_ids_text, read_ids_file, read_unseen_nodes

    for flag, path in (("--nodes-file", a.nodes_file),
                       ("--new-node-neighbors", a.new_node_neighbors)):
        if path is not None and not path.is_file():
            raise NodeIdTypeError(f"{flag} {path} does not exist")
    if a.output is not None:
        inputs = [a.bundle] + [p for p in (a.nodes_file, a.new_node_neighbors) if p is not None]
        check_output_file(a.output, overwrite=a.overwrite, inputs=inputs)
        if a.output.suffix not in (".json", ".npy"):
            raise OutputPathError(f"--output {a.output}: write .json or .npy")
    predictor = Predictor(a.bundle, provider=a.provider,
                          verify="lazy" if a.skip_checksums else a.verify)
    if a.new_node_neighbors is not None:
        neighbours, ids = read_unseen_nodes(a.new_node_neighbors, predictor.id_kind)
        result = predictor.predict_new(neighbours, ids)
    else:
        if a.nodes is not None:
            node_ids = parse_ids_text(a.nodes, predictor.id_kind, "--nodes")
        else:
            node_ids = read_ids_file(a.nodes_file, predictor.id_kind)
        result = predictor.predict(node_ids)
    if a.output is None or a.output.suffix == ".json":
        rows = result.to_json()
        if a.embeddings:
            for row, emb in zip(rows, result.embeddings):
                row["embedding"] = emb.tolist()
        text = json.dumps(rows, indent=None if a.output is None else 2)
        if a.output is None:
            print(text)
            return 0
        atomic_write(a.output, (text + "\n").encode())
    else:
        array = {"logits": result.logits, "embeddings": result.embeddings,
                 "labels": result.labels}[a.what]
        atomic_write(a.output, lambda f: np.save(f, array, allow_pickle=False))
    print(f"wrote {len(result.node_ids)} predictions to {a.output}", file=sys.stderr)
    return 0


def _cmd_graph_build(a: argparse.Namespace) -> int:
    from hashembed.train.graphbuild import build_graph

    header = build_graph(a.edges, a.out, labels_path=a.labels, num_nodes=a.num_nodes,
                         id_type=a.id_type, src_col=a.src_col, dst_col=a.dst_col,
                         memory_gb=a.memory_gb, overwrite=a.overwrite, progress=not a.quiet)
    print(json.dumps({k: v for k, v in header.to_dict().items() if k != "files"}, indent=2))
    return 0


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


def _add_synth_model_flags(p: argparse.ArgumentParser) -> None:
    from hashembed.train.synth import SynthConfig

    for flag, kind, text in SYNTH_MODEL_FLAGS:
        default = SynthConfig.__dataclass_fields__[_dest(flag)].default
        p.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")


def _cmd_synth(a: argparse.Namespace) -> int:
    from hashembed.graphdir import open_graph
    from hashembed.train.synth import SynthConfig, clustering_coefficient, synth_graph

    config = SynthConfig(a.num_nodes, seed=a.seed, **{
        _dest(flag): getattr(a, _dest(flag)) for flag, _, _ in SYNTH_MODEL_FLAGS})
    header = synth_graph(config, a.out, memory_gb=a.memory_gb, overwrite=a.overwrite,
                         progress=not a.quiet)
    graph = open_graph(a.out)
    summary = {k: v for k, v in header.to_dict().items() if k != "files"}
    summary["avg_degree"] = header.num_csr_entries / header.num_nodes
    summary["clustering_sampled"] = clustering_coefficient(graph.indptr, graph.indices)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_codes(a: argparse.Namespace) -> int:
    from hashembed.codeformat import CodeSpec
    from hashembed.train.codestore import write_codes

    spec = CodeSpec(a.scheme, bits=a.bits, bits_per_index=a.bits_per_index, seed=a.seed,
                    projection=a.projection)
    summary = write_codes(a.graph_dir, spec, a.out, memory_gb=a.memory_gb,
                          overwrite=a.overwrite, progress=not a.quiet)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    from hashembed.serve.app import serve

    return serve(a.bundle, host=a.host, port=a.port, workers=a.workers, provider=a.provider,
                 verify=a.verify, max_nodes=a.max_nodes, max_neighbors=a.max_neighbors,
                 max_body_bytes=a.max_body_bytes, max_queue=a.max_queue,
                 max_wait_ms=a.max_wait_ms)


def _cmd_demo(a: argparse.Namespace) -> int:
    from hashembed.demo import run_demo

    summary = run_demo(a.out, bits=a.bits, seed=a.seed, progress=not a.quiet)
    print(json.dumps(summary, indent=2))
    return 0


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
                       bits_per_index=a.bits_per_index, merge=a.merge,
                       resume=a.resume)
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
                    fanout_cap=None if a.fanout_cap == 0 else a.fanout_cap, resume=a.resume)
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

    synth = [arg for flag, _, _ in SYNTH_MODEL_FLAGS
             for arg in (flag, str(getattr(a, _dest(flag))))]
    run_synth_accuracy_bench(a.num_nodes, synth, methods=a.methods, seeds=a.seeds,
                             bits=a.bits, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                             fanout=a.fanout, memory_gb=a.memory_gb, work=a.work,
                             resume=a.resume, out=a.out)
    print(f"results written to {a.out}", file=sys.stderr)
    return 0


def _cmd_bench_inductive(a: argparse.Namespace) -> int:
    from hashembed.bench.inductive import run_inductive_bench

    run_inductive_bench(a.data_root, datasets=a.datasets, methods=a.methods, seeds=a.seeds,
                        fraction=a.fraction, bits=a.bits, out=a.out, progress=not a.quiet)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashembed", description="Hash-code node embeddings: train, export, serve.")
    parser.add_argument("--version", action="version", version=f"hashembed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="code nodes and train decoder + GNN")
    _add_graph_args(p)
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

    p = sub.add_parser("predict", help="predict node classes with ONNX Runtime")
    p.add_argument("bundle", type=Path)
    nodes = p.add_mutually_exclusive_group(required=True)
    nodes.add_argument("--nodes", help="comma-separated node ids (the graph's own), e.g. "
                       "3,17,42 or alice,bob")
    nodes.add_argument("--nodes-file", type=Path, help="ids as text (integers: comma/space "
                       "separated; strings: one per line) or .npy")
    nodes.add_argument("--new-node-neighbors", type=Path, help="nodes not in the graph: JSON "
                       'list (or lines) of {"neighbors": [ids], "id": optional}')
    p.add_argument("--output", type=Path, help=".json or .npy file (default: JSON to stdout)")
    p.add_argument("--what", choices=("logits", "embeddings", "labels"), default="logits",
                   help="array written to a .npy --output")
    p.add_argument("--embeddings", action="store_true", help="include embeddings in JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--verify", choices=("full", "lazy"), default="full",
                   help="full: hash every bundle file on open (default); lazy: check sizes "
                   "on open and hash each 4 MiB piece of the tables when a query first reads "
                   "it (huge tables; nothing unverified is ever served)")
    p.add_argument("--skip-checksums", action="store_true", help="the same as --verify lazy")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("serve", help="HTTP service (FastAPI + uvicorn) for a bundle")
    p.add_argument("bundle", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1,
                   help="processes; each memory-maps the same bundle")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                   help="cuda: refuse to start unless ONNX Runtime's CUDA provider loads")
    p.add_argument("--verify", choices=("full", "lazy"), default="full")
    p.add_argument("--max-nodes", type=int, default=4096, help="ids per request (default 4096)")
    p.add_argument("--max-neighbors", type=int, default=10_000,
                   help="neighbours per unseen node (default 10000)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="request body size (default 1 MiB)")
    p.add_argument("--max-queue", type=int, default=1024,
                   help="requests waiting for a batch before 503 (default 1024)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long a request waits for others to batch with (default 2)")
    p.set_defaults(func=_cmd_serve)

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

    p = sub.add_parser("synth", help="a labelled synthetic graph with small dense groups "
                       "nested in classes, written as a graph directory")
    p.add_argument("--num-nodes", type=int, required=True)
    _add_synth_model_flags(p)
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same graph")
    p.add_argument("--memory-gb", type=float, default=4.0, help="budget for the edge sort")
    p.add_argument("--out", type=Path, required=True, help="graph directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a graph directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("codes", help="code every node of a graph directory, streaming")
    p.add_argument("graph_dir", type=Path)
    p.add_argument("--scheme", choices=("hash", "random"), default="hash")
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--bits-per-index", type=int, default=DEFAULT_BITS_PER_INDEX)
    p.add_argument("--projection", choices=("gaussian", "rademacher"), default="gaussian")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-gb", type=float, default=4.0,
                   help="memory for a block of bits (default 4; sets the block size)")
    p.add_argument("--out", type=Path, required=True, help="codes directory to write")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_codes)

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
                   default=Path(os.environ.get("HASHEMBED_DATA", "../shared/data")))
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="run only these datasets of the suite (e.g. tolokers ogbl-ddi)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="run only these methods (table hash random hashing_trick qr degree)")
    p.add_argument("--bits-per-index", type=int,
                   help="b of the coded methods' decoder (default 8: m = c/8 codebooks of 256)")
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
    p.add_argument("--resume", action="store_true",
                   help="keep the results of stages that already ran in --work")
    p.add_argument("--out", type=Path, default=Path("runs/bench/scale.json"))
    p.set_defaults(func=_cmd_bench_scale)

    p = bench.add_parser("fanout", help="test accuracy and single-node latency served with "
                         "each fan-out cap (0: exact neighbourhoods)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--caps", type=int, nargs="+", default=[0, 5, 10, 15, 25])
    p.add_argument("--nodes", type=int, default=2000, help="test nodes scored (a sample)")
    p.add_argument("--queries", type=int, default=200, help="single-node requests timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench/fanout.json"))
    p.set_defaults(func=_cmd_bench_fanout)

    from hashembed.bench.synth_accuracy import METHODS as SYNTH_METHODS

    p = bench.add_parser("synth-accuracy", help="hash codes vs random codes, table, QR and "
                         "hashing trick on one synthetic graph, 1 %% labelled, same budget")
    p.add_argument("--num-nodes", type=int, default=1_000_000, help="nodes of the graph")
    _add_synth_model_flags(p)
    p.add_argument("--methods", nargs="+", choices=SYNTH_METHODS, default=list(SYNTH_METHODS),
                   help="encoders compared (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="one run per method and seed (the seed draws split, codes, init)")
    p.add_argument("--bits", type=int, default=128, help="code bits c")
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
                   default=Path(os.environ.get("HASHEMBED_DATA", "../shared/data")))
    p.add_argument("--datasets", nargs="+", default=list(INDUCTIVE_DATASETS))
    p.add_argument("--methods", nargs="+", choices=INDUCTIVE_METHODS,
                   default=list(INDUCTIVE_METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--fraction", type=float, default=0.1, help="labelled nodes held out")
    p.add_argument("--bits", type=int, default=128)
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

    p = sub.add_parser("demo", help="codes -> train -> export -> predict on bundled Cora")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--bits", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
