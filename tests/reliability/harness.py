"""Helpers of the reliability suite: a small labelled graph on disk, quick CLI runs, one-line
error checks and killing a command at a chosen point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hashembed.app.cli import main

HERE = Path(__file__).parent
QUICK = ["--bits", "32", "--codebook-dim", "8", "--hidden", "16", "--dim", "8", "--epochs", "4",
         "--quiet"]


def write_graph(folder: Path, n: int = 60, seed: int = 0) -> tuple[Path, Path]:
    """Two communities of ``n / 2`` nodes; labels are names with a space ("team a")."""
    rng = np.random.default_rng(seed)
    community = np.arange(n) // (n // 2)
    pairs = rng.integers(0, n, (12 * n, 2))
    pairs = pairs[community[pairs[:, 0]] == community[pairs[:, 1]]]
    pairs = np.concatenate([pairs, [[0, n - 1]]])  # every node appears; one cross edge
    edges = folder / "edges.csv"
    edges.write_text("src,dst\n" + "\n".join(f"{a},{b}" for a, b in pairs) + "\n")
    labels = folder / "labels.txt"
    labels.write_text("\n".join(f"{v} team {'ab'[community[v]]}" for v in range(n)) + "\n")
    return edges, labels


@pytest.fixture
def graph_files(tmp_path) -> tuple[Path, Path]:
    return write_graph(tmp_path)


def train(edges: Path, labels: Path, out: Path, *extra: str) -> int:
    return main(["train", "--edges", str(edges), "--labels", str(labels), *QUICK,
                 "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One quick run per test module, trained once: tests read it (or export it) and never
    change it; a test that does works on a copy."""
    folder = tmp_path_factory.mktemp("trained")
    out = folder / "run"
    assert train(*write_graph(folder), out) == 0
    return out


def one_error_line(capsys) -> str:
    """The CLI's stderr must be exactly one ``hashembed: error: …`` line; returns it."""
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in err if line.startswith("hashembed: error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    return errors[0]


def kill_at(point: str, args: list[str], tmp_path: Path, timeout: float = 300) -> None:
    """Run ``hashembed ARGS`` in a child that blocks at ``point``; SIGKILL it there."""
    marker = tmp_path / f"reached-{point}"
    child = subprocess.Popen([sys.executable, str(HERE / "killable.py"), point, str(marker),
                              "--", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS":
                                                          "ignore"})
    deadline = time.monotonic() + timeout
    while not marker.exists():  # poll the file event, bounded
        if child.poll() is not None:
            raise AssertionError(f"child ended ({child.returncode}) before {point}: "
                                 f"{child.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"child never reached {point}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
