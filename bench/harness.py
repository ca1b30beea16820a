"""One timing harness for every benchmark: warm-up, repeats, median and spread, environment.

Figures are wall-clock medians of ``repeats`` timed calls after ``warmup`` untimed ones, all in
one process so ratios compare. On a GPU, ``cuda=True`` times with ``triton.testing.do_bench``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from hashembed.core.atomic import atomic_write
from hashembed.core.errors import ConfigError


@dataclass
class Timing:
    """Seconds per call: ``median``, ``min``, ``max`` over ``repeats`` calls."""

    median: float
    min: float
    max: float
    repeats: int


CODED = ("hash", "random")  # the encoders that read codes: a decoder, bit flips, a code length


def refuse_other_bit_flip(source: Path, trained: float, asked: float) -> None:
    """Refuse to reuse (``--resume``) a run trained at another bit-flip rate than this call
    asks for: a bench's JSON records one rate for all its runs."""
    if trained != asked:
        raise ConfigError(f"{source} was trained with --bit-flip {trained}, this call asks "
                          f"for {asked}; give that rate or another --work")


def method_hops(method: str, hops: int | str) -> int | str:
    """The ``--hops`` a bench gives one encoder: hash codes take the bench's ``K`` (a number
    or ``"auto"``); random codes, tables, QR and the hashing trick read no walks (``1``)."""
    return hops if method == "hash" else 1


def time_call(fn: Callable[[], object], warmup: int = 2, repeats: int = 7,
              cuda: bool = False) -> Timing:
    """Time ``fn()``.

    On the CPU: ``warmup`` untimed calls, then ``repeats`` calls timed with ``perf_counter``.
    With ``cuda=True``: ``triton.testing.do_bench`` (CUDA events, L2 flushed between calls),
    whose per-call samples give the median and spread.
    """
    if cuda:
        from triton.testing import do_bench

        samples = [ms / 1e3 for ms in do_bench(fn, warmup=25, rep=100, return_mode="all")]
        return Timing(statistics.median(samples), min(samples), max(samples), len(samples))
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing(statistics.median(samples), min(samples), max(samples), repeats)


def peak_rss_bytes() -> int:
    """This process's peak resident set size: ``VmHWM`` of ``/proc/self/status``. (Not
    ``getrusage``'s ``ru_maxrss``, which survives ``exec`` and so counts the parent's memory
    at the time it forked this process.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB there


def environment() -> dict:
    """Machine and versions, recorded with every result."""
    import numpy
    import onnxruntime
    import torch

    env = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(), "processor": platform.processor(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    return env


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; ``columns`` are ``(key, header, format spec)``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("—" if value is None else format(value, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` atomically as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, default=lambda o: asdict(o)) + "\n"
    return atomic_write(path, text.encode())
