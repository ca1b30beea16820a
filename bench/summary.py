"""``hashembed bench summary``: one table at one code length from several accuracy results.

A study grows by re-runs (``--merge`` into another ``--out``: Tolokers over its 10 splits, the
codes read at b = 4, …), each with its own ``results.json``. This reads them in order and
writes one Markdown table, a row per dataset and a column per method (coded methods per
``b``), so the README's headline table is generated from the results, not typed.
"""

from __future__ import annotations

import json
from pathlib import Path

from hashembed.bench.accuracy import (METHODS, results_bit_flip, results_bits_per_index,
                                      results_hops)
from hashembed.bench.harness import CODED
from hashembed.core.codeformat import SUPPORTED_BITS_PER_INDEX
from hashembed.core.errors import ConfigError


def _column(method: str, bits_per_index: int, hops: int | str = 1, bit_flip: float = 0.0
            ) -> str:
    """``hash b=4``; multi-hop hash codes add their walk length (``hash b=4 K=auto``) and codes
    trained with bit flips their rate (``hash b=4 K=auto q=0.1``)."""
    if method not in CODED:
        return method
    return (f"{method} b={bits_per_index}"
            + (f" K={hops}" if method == "hash" and hops != 1 else "")
            + (f" q={bit_flip:g}" if bit_flip else ""))


def collect(paths: list[Path], bits: int) -> tuple[list[str], list[str], dict, dict]:
    """Scores at code length ``bits`` from each results directory (or ``results.json``) in
    ``paths``; a later path overrides an earlier one for the same dataset and column.

    Returns ``(datasets, columns, cells, metrics)``: ``cells[(dataset, column)]`` is the
    summary row used, with ``source`` (the path) added; ``metrics[dataset]`` its metric.
    Methods without a code length (table, degree) are taken whatever ``bits``. Datasets come
    in the order first seen, link-prediction graphs after the node graphs (so a node graph a
    later re-run adds sits with the others of its task).
    """
    cells: dict[tuple[str, str], dict] = {}
    metrics: dict[str, str] = {}
    datasets: list[str] = []
    link_graphs: set[str] = set()
    lengths: set[int] = set()
    for path in paths:
        file = path / "results.json" if path.is_dir() else path
        if not file.exists():
            raise ConfigError(f"{file} does not exist")
        results = json.loads(file.read_text())
        if results.get("benchmark") != "accuracy":
            raise ConfigError(f"{file} is not the output of `hashembed bench accuracy`")
        b, hops = results_bits_per_index(results), results_hops(results)
        flip = results_bit_flip(results)
        link_graphs.update(spec["name"] for spec in results["config"].get("datasets", ())
                           if isinstance(spec, dict) and spec.get("task") == "link")
        lengths.update(row["bits"] for row in results["summary"] if row["bits"])
        for row in results["summary"]:
            if row["bits"] not in (bits, None):
                continue
            datasets += [row["dataset"]] if row["dataset"] not in datasets else []
            metrics[row["dataset"]] = row["metric"]
            cells[(row["dataset"], _column(row["method"], b, hops, flip))] = {
                **row, "source": str(path), "bit_flip": flip}
    if not any(cell["bits"] == bits for cell in cells.values()):
        raise ConfigError(f"no results at {bits} bits in {[str(p) for p in paths]}; they have "
                          f"{sorted(lengths)}")
    suite_first = sorted(SUPPORTED_BITS_PER_INDEX, key=lambda b: (b != 8, -b))  # 8, 16, 4, …
    flips = sorted({0.0} | {cell["bit_flip"] for cell in cells.values()})
    order = list(dict.fromkeys(_column(m, b, k, q) for m in METHODS for b in suite_first
                               for k in (1, 2, 3, 4, "auto") for q in flips))
    present = {column for _, column in cells}
    columns = [c for c in order if c in present]
    datasets.sort(key=lambda name: name in link_graphs)  # stable: first seen within a task
    return datasets, columns, cells, metrics


def markdown(paths: list[Path], bits: int = 128) -> str:
    """The table :func:`collect` reads, as Markdown: test mean over seeds, ``—`` where a
    method did not run, then one line per source saying which cells it gave and over how many
    seeds."""
    datasets, columns, cells, metrics = collect(paths, bits)
    lines = [f"| dataset (metric) | {' | '.join(columns)} |",
             "|---" * (len(columns) + 1) + "|"]
    for dataset in datasets:
        shown = [f"{cells[(dataset, c)]['test_mean']:.3f}" if (dataset, c) in cells else "—"
                 for c in columns]
        lines.append(f"| {dataset} ({metrics[dataset]}) | {' | '.join(shown)} |")
    lines.append("")
    for path in dict.fromkeys(cell["source"] for cell in cells.values()):
        groups: dict[tuple, list[str]] = {}  # (columns, seeds) -> datasets
        for dataset in datasets:
            mine = [c for c in columns if cells.get((dataset, c), {}).get("source") == path]
            if mine:
                seeds = sorted({cells[(dataset, c)]["seeds"] for c in mine})
                groups.setdefault((tuple(mine), tuple(seeds)), []).append(dataset)
        given = [f"{', '.join(names)}: {', '.join(cols)} ({'/'.join(map(str, seeds))} "
                 f"seed{'s' if seeds != (1,) else ''})"
                 for (cols, seeds), names in groups.items()]
        lines.append(f"- `{path}`: {'; '.join(given)}")
    return "\n".join(lines)
