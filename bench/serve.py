"""``hashembed bench serve``: load, fault and soak test of the HTTP service, loopback only.

It starts ``hashembed serve BUNDLE`` on a free port of 127.0.0.1 (a child process), then:

1. **load**: at each concurrency level (1, 8, 32, 128 by default), a fixed number of
   ``POST /v1/predict`` requests of ``nodes_per_request`` random known ids, sent by that many
   concurrent httpx clients; throughput, p50/p95/p99 latency and the count of each status;
2. **faults**: a fixed list of malformed requests, each of which must get a 4xx, with the
   service still answering ``/healthz`` afterwards;
3. **soak**: requests at concurrency 8 for ``soak_seconds``, the server's RSS read from
   ``/proc/PID/status`` after every round of 200 requests; reported at the start, after
   ``warmup_seconds``, at the end and at most, with every sample in the JSON.

Everything is bounded in count and time and targets only the loopback address. Prints a
table and writes JSON.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np

from hashembed.bench.harness import environment, format_table, write_json
from hashembed.core.errors import ConfigError
from hashembed.serve.app import start_server

MALFORMED = [
    ("bad JSON", b"{not json", "/v1/predict"),
    ("nodes not a list", {"nodes": "3"}, "/v1/predict"),
    ("empty batch", {"nodes": []}, "/v1/predict"),
    ("float id", {"nodes": [1.5]}, "/v1/predict"),
    ("boolean id", {"nodes": [True]}, "/v1/predict"),
    ("negative id", {"nodes": [-7]}, "/v1/predict"),
    ("unknown id", {"nodes": [10**15]}, "/v1/predict"),
    ("oversized batch", {"nodes": [0] * 5000}, "/v1/predict"),
    ("missing field", {"ids": [1]}, "/v1/predict"),
    ("neighbours not a list", {"nodes": [{"neighbors": 3}]}, "/v1/nodes/predict"),
    ("unknown neighbour", {"nodes": [{"neighbors": [10**15]}]}, "/v1/nodes/predict"),
    ("wrong v2 datatype", {"inputs": [{"name": "node_ids", "shape": [1], "datatype": "FP32",
                                       "data": [1.0]}]}, "/v2/models/hashembed/infer"),
    ("unknown model", {"inputs": []}, "/v2/models/nope/infer"),
]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _load(url: str, num_nodes_ids: list, concurrency: int, requests: int,
                nodes_per_request: int, seed: int) -> dict:
    import httpx

    rng = np.random.default_rng(seed)
    bodies = [{"nodes": [num_nodes_ids[i] for i in rng.integers(0, len(num_nodes_ids),
                                                                nodes_per_request)]}
              for _ in range(requests)]
    latencies, statuses = [], Counter()
    queue = list(range(requests))

    async def worker(client):
        while queue:
            i = queue.pop()
            t0 = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/predict", json=bodies[i])
                statuses[response.status_code] += 1
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1e3
    return {"concurrency": concurrency, "requests": requests, "seconds": seconds,
            "requests_per_s": requests / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)),
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
            "errors_5xx": sum(v for k, v in statuses.items()
                              if isinstance(k, int) and k >= 500),
            "lost": requests - sum(statuses.values())}


def rss_summary(series: list[tuple[float, int]], warmup_seconds: float) -> dict:
    """RSS over the soak from ``(seconds, bytes)`` samples: at the start, at the first sample
    at or after ``warmup_seconds``, at the end, the largest, the change from after warm-up to
    the end (``None`` for the after-warm-up figures when the soak ended before its warm-up
    did) and from the start, and the samples themselves."""
    after = next((b for t, b in series if t >= warmup_seconds), None)
    start, end = series[0][1], series[-1][1]
    return {"rss_start_bytes": start, "rss_after_warmup_bytes": after,
            "rss_end_bytes": end, "rss_max_bytes": max(b for _, b in series),
            "rss_change_after_warmup": (end - after) / after if after else None,
            "rss_change_from_start": (end - start) / start if start else None,
            "rss_series": [[round(t, 1), b] for t, b in series]}


def run_serve_bench(bundle: str | Path, levels=(1, 8, 32, 128), requests: int = 400,
                    nodes_per_request: int = 64, soak_seconds: float = 120.0,
                    out: str | Path = "runs/bench/serve.json",
                    warmup_seconds: float = 60.0) -> dict:
    """Run the three parts (module docstring) against a fresh server; returns the results.

    ``warmup_seconds``: the first part of the soak, after which RSS should stay flat (ONNX
    Runtime's memory arena grows in steps until it has held the largest call's buffers).
    """
    import logging

    import httpx

    if warmup_seconds < 0:
        raise ConfigError(f"--warmup-seconds {warmup_seconds} must not be negative")

    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request

    from hashembed.serve import Predictor

    ids = Predictor(bundle, verify="lazy").bundle.ids
    known = ids.external(np.arange(ids.num_nodes))
    server, url = start_server(bundle, ["--max-nodes", "4096"])
    try:
        load = [asyncio.run(_load(url, known, level, requests, nodes_per_request, level))
                for level in levels]
        faults = []
        for name, body, path in MALFORMED:
            kwargs = {"content": body, "headers": {"content-type": "application/json"}} \
                if isinstance(body, bytes) else {"json": body}
            status = httpx.post(f"{url}{path}", timeout=10, **kwargs).status_code
            alive = httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            faults.append({"case": name, "status": status, "4xx": 400 <= status < 500,
                           "still_answering": alive})
        soak_started, rounds = time.perf_counter(), []
        series = [(0.0, _rss_bytes(server.pid))]  # (seconds into the soak, RSS bytes)
        while time.perf_counter() - soak_started < soak_seconds:
            rounds.append(asyncio.run(_load(url, known, 8, 200, nodes_per_request, len(rounds))))
            series.append((time.perf_counter() - soak_started, _rss_bytes(server.pid)))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    soak = {"seconds": soak_seconds, "requests": sum(r["requests"] for r in rounds),
            "errors_5xx": sum(r["errors_5xx"] for r in rounds),
            "lost": sum(r["lost"] for r in rounds), **rss_summary(series, warmup_seconds)}
    table = format_table(load, [("concurrency", "concurrency", "d"), ("requests", "requests", "d"),
                                ("requests_per_s", "requests/s", ",.0f"),
                                ("p50_ms", "p50 ms", ".1f"), ("p95_ms", "p95 ms", ".1f"),
                                ("p99_ms", "p99 ms", ".1f"), ("errors_5xx", "5xx", "d"),
                                ("lost", "lost", "d")])
    print(table)
    print(f"malformed requests: {sum(f['4xx'] for f in faults)}/{len(faults)} got a 4xx; "
          f"service answering after each: {all(f['still_answering'] for f in faults)}")
    mib = {k: (soak[f"rss_{k}_bytes"] or 0) / 2**20
           for k in ("start", "after_warmup", "end", "max")}
    change = soak["rss_change_after_warmup"]
    after = (f"after {warmup_seconds:.0f} s of warm-up {mib['after_warmup']:.0f} MiB, "
             if change is not None else f"(the soak ended before {warmup_seconds:.0f} s of "
             "warm-up) ")
    print(f"soak: {soak['requests']} requests in {soak_seconds:.0f} s, "
          f"{soak['errors_5xx']} 5xx, {soak['lost']} lost; RSS at start {mib['start']:.0f} MiB, "
          f"{after}at the end {mib['end']:.0f} MiB"
          + ("" if change is None else f" ({change:+.1%} after warm-up)")
          + f", at most {mib['max']:.0f} MiB")
    payload = {"config": {"bundle": str(bundle), "levels": list(levels), "requests": requests,
                          "nodes_per_request": nodes_per_request, "soak_seconds": soak_seconds,
                          "warmup_seconds": warmup_seconds,
                          "num_nodes": ids.num_nodes},
               "environment": environment(), "load": load, "faults": faults, "soak": soak,
               "table": table}
    write_json(out, payload)
    return payload

