"""``hashembed predict`` and ``hashembed serve``: ONNX Runtime over a bundle, from the command
line or over HTTP. Neither imports torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hashembed.core.atomic import atomic_write, check_output_file
from hashembed.core.errors import NodeIdTypeError, OutputPathError


def _cmd_predict(a: argparse.Namespace) -> int:
    import numpy as np

    from hashembed import pipeline
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
    predictor = pipeline.predictor(a.bundle, provider=a.provider, verify=a.verify)
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


def _cmd_serve(a: argparse.Namespace) -> int:
    from hashembed.serve.app import serve

    return serve(a.bundle, host=a.host, port=a.port, workers=a.workers, provider=a.provider,
                 verify=a.verify, max_nodes=a.max_nodes, max_neighbors=a.max_neighbors,
                 max_body_bytes=a.max_body_bytes, max_queue=a.max_queue,
                 max_wait_ms=a.max_wait_ms)


def add_parser(sub) -> None:
    """Register the command(s) on the top-level subparsers."""
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
