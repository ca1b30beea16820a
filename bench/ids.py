"""``hashembed bench ids``: what the users'-own-id map costs at serving.

For ``n`` nodes named by scattered 64-bit integers and by strings (``user-<hex>``), it
measures the bytes the map stores per node, the time to build it, and the lookup rate of
``IdMap.rows`` for ``queries`` random known ids, in batches of ``batch`` (a serving request),
against the dense case (ids are rows: a range check). Torch-free, like serving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, time_call, write_json
from hashembed.core.idmap import IdMap


def _map_bytes(id_map: IdMap) -> int:
    return sum(int(np.asarray(a).nbytes) for a in id_map.arrays.values())


def run_ids_bench(num_nodes: int = 1_000_000, queries: int = 100_000, batch: int = 64,
                  repeats: int = 3, seed: int = 0, out: str | Path = "runs/bench/ids.json"
                  ) -> dict:
    """Build each kind of map for ``num_nodes`` ids, time lookups; print a table, write JSON."""
    rng = np.random.default_rng(seed)
    ints = rng.choice(2**62, size=num_nodes, replace=False).astype(np.int64) * 2 - 2**62
    strings = [f"user-{v:016x}" for v in rng.integers(0, 2**63, size=num_nodes)]
    strings = list(dict.fromkeys(strings))  # distinct (collisions are vanishingly rare)
    picks = rng.integers(0, num_nodes, size=queries)
    cases = {
        "dense": (lambda: IdMap.dense(num_nodes), picks),
        "int": (lambda: IdMap.from_ints(ints), ints[picks]),
        "str": (lambda: IdMap.from_strings(strings), [strings[i % len(strings)] for i in picks]),
    }
    rows = []
    for kind, (build, asked) in cases.items():
        built = time_call(build, warmup=0, repeats=1)
        id_map = build()
        batches = [asked[i:i + batch] for i in range(0, queries, batch)]

        def lookup_all():
            for part in batches:
                id_map.rows(part)

        timing = time_call(lookup_all, warmup=1, repeats=repeats)
        rows.append({"kind": kind, "num_nodes": id_map.num_nodes,
                     "bytes_per_node": _map_bytes(id_map) / id_map.num_nodes,
                     "build_s": built.median, "batch": batch,
                     "ids_per_s": queries / timing.median,
                     "us_per_batch": timing.median / len(batches) * 1e6})
    table = format_table(rows, [("kind", "ids", "s"), ("num_nodes", "n", ","),
                                ("bytes_per_node", "map bytes/node", ".1f"),
                                ("build_s", "build s", ".2f"), ("batch", "batch", "d"),
                                ("ids_per_s", "lookups/s", ",.0f"),
                                ("us_per_batch", "µs per batch", ".1f")])
    print(table)
    payload = {"config": {"num_nodes": num_nodes, "queries": queries, "batch": batch,
                          "repeats": repeats, "seed": seed},
               "environment": environment(), "rows": rows, "table": table}
    write_json(out, payload)
    return payload
