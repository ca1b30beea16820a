"""``hashembed serve``: run the HTTP service (:mod:`hashembed.serve.http`) under uvicorn.

The bundle is opened (and verified) before the server binds its port, so a bad bundle or an
unavailable ``--provider cuda`` stops the command with one error line instead of a server
that answers 500s. With ``--workers N`` each uvicorn process opens the bundle itself; the
code table and CSR are memory-mapped, so the processes share them through the page cache.
SIGTERM/SIGINT shut down gracefully: uvicorn stops accepting, in-flight requests finish, the
batching queue drains.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV_CONFIG = "HASHEMBED_SERVE_CONFIG"


def _app_from_config(config: dict):
    from hashembed.serve import Predictor
    from hashembed.serve.http import Limits, create_app

    predictor = Predictor(config["bundle"], provider=config["provider"],
                          verify=config["verify"], max_neighbors=config["max_neighbors"])
    limits = Limits(max_body_bytes=config["max_body_bytes"], max_nodes=config["max_nodes"],
                    max_neighbors=config["max_neighbors"], max_queue=config["max_queue"],
                    max_wait_ms=config["max_wait_ms"])
    return create_app(predictor, limits)


def app_factory():
    """uvicorn's ``--factory`` entry for worker processes (config from the environment)."""
    return _app_from_config(json.loads(os.environ[ENV_CONFIG]))


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          provider: str = "auto", verify: str = "full", max_nodes: int = 4096,
          max_neighbors: int = 10_000, max_body_bytes: int = 1 << 20, max_queue: int = 1024,
          max_wait_ms: float = 2.0) -> int:
    """Open the bundle, then serve it until interrupted; returns the exit status."""
    import uvicorn

    from hashembed.core.errors import ConfigError

    for name, value in (("--workers", workers), ("--max-nodes", max_nodes),
                        ("--max-neighbors", max_neighbors), ("--max-body-bytes", max_body_bytes),
                        ("--max-queue", max_queue)):
        if value < 1:
            raise ConfigError(f"{name} {value} must be at least 1")
    config = {"bundle": str(Path(bundle).resolve()), "provider": provider, "verify": verify,
              "max_nodes": max_nodes, "max_neighbors": max_neighbors,
              "max_body_bytes": max_body_bytes, "max_queue": max_queue,
              "max_wait_ms": max_wait_ms}
    app = _app_from_config(config)  # fails here, before binding, on a bad bundle or provider
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info")
    else:
        os.environ[ENV_CONFIG] = json.dumps(config)
        uvicorn.run("hashembed.serve.app:app_factory", factory=True, host=host, port=port,
                    workers=workers, log_level="info")
    return 0


def start_server(bundle: str | Path, extra_args=(), timeout: float = 180.0,
                 log_path: str | Path | None = None):
    """Start ``hashembed serve BUNDLE`` on a free port of 127.0.0.1 in a child process and
    wait (polling ``/readyz``, bounded by ``timeout``) until it is ready.

    The server's output goes to ``log_path`` (a file: a pipe nobody reads would fill up with
    access logs and stall the server), or nowhere. Returns ``(process, url)``; the caller
    stops it (SIGTERM). Used by ``bench serve`` and the tests: loopback only.
    """
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    output = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "hashembed", "serve", str(bundle),
                                "--port", str(port), *extra_args], stdout=output,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:  # the standard library's client: serving needs no HTTP client package
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or 503 while loading (HTTPError is a URLError)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            where = f" (its output: {log_path})" if log_path is not None else ""
            raise RuntimeError(f"the server did not become ready{where}")
        time.sleep(0.2)
