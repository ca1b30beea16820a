"""``hashembed bench string-build``: ``graph build`` of an edge file whose ids are strings.

Writes one CSV of ``edges`` uniform random edges between ``num_nodes`` ids ``user-<row>``
(untimed, kept in ``--work`` for ``--resume``; about 36 bytes a line), then runs ``hashembed
graph build --id-type str`` on it in a child process and reports its seconds, edges per
second, peak RSS (``VmHWM``, read by the child as it ends), the distinct ids found and the
buckets of the distinct-id scan. Prints a table and writes JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, peak_rss_bytes, write_json

WRITE_ROWS = 1 << 23  # CSV rows formatted at once


def write_string_edges(path: Path, num_nodes: int, edges: int, seed: int = 0) -> None:
    """``edges`` lines ``user-<u>,user-<v>`` (``u``, ``v`` uniform in ``0 … n-1``), written
    through pyarrow's CSV writer a block at a time, then renamed into place."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as csv

    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".tmp")
    options = csv.WriteOptions(include_header=False, quoting_style="none")
    with pa.OSFile(str(tmp), "wb") as sink:
        for start in range(0, edges, WRITE_ROWS):
            k = min(WRITE_ROWS, edges - start)
            columns = [pc.binary_join_element_wise("user-", pc.cast(pa.array(
                rng.integers(0, num_nodes, k)), pa.string()), "") for _ in range(2)]
            csv.write_csv(pa.table({"src": columns[0], "dst": columns[1]}), sink, options)
    tmp.rename(path)


def _build_main(argv: list[str]) -> None:
    """Child process: build ``argv[0]`` into ``argv[1]`` with ``argv[2]`` GB; print JSON."""
    from hashembed import pipeline
    import hashembed.graph.build as build

    edges, out, memory_gb = Path(argv[0]), Path(argv[1]), float(argv[2])
    buckets = build.string_id_buckets([edges], memory_gb)
    started = time.perf_counter()
    header = pipeline.build_graph([edges], out, id_type="str", memory_gb=memory_gb,
                                  overwrite=True, progress=False)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak_rss_bytes(),
                      "num_nodes": header.num_nodes, "num_edges": header.num_edges,
                      "edges_read": header.source["edges_read"], "id_buckets": buckets}))


def run_string_build_bench(num_nodes: int, edges: int, memory_gb: float = 4.0,
                           work: str | Path = "runs/string-build",
                           out: str | Path = "runs/bench/string-build.json",
                           resume: bool = False) -> dict:
    """Generate (or, with ``resume``, reuse) the CSV and time its build; table + JSON."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / f"edges-n{num_nodes}-e{edges}.csv"
    if not (resume and csv_path.exists()):
        print(f"[bench string-build] writing {csv_path} ...", file=sys.stderr, flush=True)
        write_string_edges(csv_path, num_nodes, edges)
    print("[bench string-build] graph build ...", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "hashembed.bench.string_build",
                             str(csv_path), str(work / "graph"), str(memory_gb)],
                            capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"graph build failed: {result.stderr[-3000:]}")
    build = json.loads(lines[-1])
    row = {"ids": build["num_nodes"], "edges": build["edges_read"],
           "csv_gib": csv_path.stat().st_size / 2**30, "seconds": build["seconds"],
           "edges_per_s": build["edges_read"] / build["seconds"],
           "peak_gib": build["peak_rss_bytes"] / 2**30, "buckets": build["id_buckets"]}
    payload = {"config": {"num_nodes": num_nodes, "edges": edges, "memory_gb": memory_gb},
               "environment": environment(), "build": build, "rows": [row]}
    write_json(out, payload)
    print(format_table([row], [("ids", "distinct ids", ","), ("edges", "edges read", ","),
                               ("csv_gib", "CSV GiB", ".1f"), ("seconds", "seconds", ".0f"),
                               ("edges_per_s", "edges/s", ",.0f"),
                               ("peak_gib", "peak RSS GiB", ".2f"),
                               ("buckets", "id buckets", "")]))
    return payload


if __name__ == "__main__":
    _build_main(sys.argv[1:])
