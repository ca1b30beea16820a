"""``hashembed bench accuracy``: hash codes against the other ways to embed featureless nodes.

For each dataset of a suite, each method and code length, and each seed, train a GraphSAGE on
top of the method's node embeddings and report the dataset's metric, plus the embedding
memory per node. Writes ``results.json``, ``results.md`` and ``accuracy_vs_bytes.png``.
Each finished run is also appended to ``progress.jsonl`` at once, so a suite stopped part way
(hours of ogbl-ddi training) goes on from there with ``resume``.

Methods (memory per node in parentheses; ``n`` nodes, width ``d``):

- ``table``: a full fp32 ``nn.Embedding`` (``4d`` bytes);
- ``hash``: hash codes + decoder, the method (``c/8`` bytes + decoder / n);
- ``random``: random codes + the same decoder (ALONE-style);
- ``hashing_trick``: ``K`` shared rows, ``K`` chosen for the same bytes per node as ``c`` bits;
- ``qr``: quotient-remainder tables sized for the same budget (at least ``2·sqrt(n)`` rows);
- ``degree``: one row per log2 degree bucket (1 byte per node + the buckets' rows).

Every run but ``degree`` is a ``hashembed train`` run (:meth:`Suite.run_config` gives its
:class:`~hashembed.train.runconfig.RunConfig`, :func:`~hashembed.train.run.train_run` or
``train_link_run`` trains it): the bench only chooses the grid, the splits and what to report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hashembed.core.atomic import atomic_write
from hashembed.bench.harness import CODED, environment, format_table, method_hops, write_json
from hashembed.core.codeformat import check_bits_per_index
from hashembed.core.errors import ConfigError
from hashembed.graph.datasets import apply_split, load_dataset
from hashembed.train.encoders import DegreeEmbedding
from hashembed.graph.memory import Graph
from hashembed.train.linkpred import load_ogbl_ddi_split
from hashembed.core.metrics import multilabel_f1
from hashembed.train.defaults import BIT_FLIP
from hashembed.train.runconfig import RunConfig, parse_hops
from hashembed.graph.splits import parse_split

BUDGETED = ("hashing_trick", "qr")
METHODS = ("table", *CODED, *BUDGETED, "degree")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset in a suite: name, task (``node``/``multilabel``/``link``), split, metric, and
    optionally its own code lengths, seeds, methods and epochs (for graphs too slow for the
    whole grid, or that need longer training).

    ``split`` may contain ``{seed}``: ``"official:{seed}"`` trains seed ``k`` on official
    split ``k`` (Tolokers ships 10), so the spread over seeds includes the split's.
    """

    name: str
    task: str = "node"
    split: str = "random:0.6,0.2,0.2"
    metric: str = "accuracy"
    bits: tuple[int, ...] | None = None
    seeds: tuple[int, ...] | None = None
    methods: tuple[str, ...] | None = None
    epochs: int | None = None

    def split_for(self, seed: int) -> str:
        return self.split.format(seed=seed)


@dataclass(frozen=True)
class Suite:
    """A grid of runs and the shapes every run shares: ``dim`` (``d``, every method's
    embedding width), ``hidden`` (the GNN's), and the coded methods' decoder
    (``bits_per_index`` ``b``, ``codebook_dim`` ``d_c``, ``decoder_hidden``) and the hash
    codes' walk length ``hops`` (``K`` or ``"auto"``; random codes are 1-hop),
    ``degree_field`` (the coded methods' rows carry a degree byte) and ``bit_flip`` (the share
    of code bits the coded methods flip while training, ``hashembed train --bit-flip``)."""

    datasets: tuple[DatasetSpec, ...]
    bits: tuple[int, ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...] = METHODS
    epochs: int = 200
    link_epochs: int = 10
    dim: int = 64
    hidden: int = 128
    bits_per_index: int = 8
    codebook_dim: int = 64
    decoder_hidden: int = 128
    hops: int | str = "auto"
    degree_field: bool = False
    bit_flip: float = BIT_FLIP

    def run_config(self, dataset: DatasetSpec, method: str, bits: int | None,
                   seed: int) -> RunConfig:
        """The ``hashembed train`` settings of one run of the grid (GraphSAGE, 2 layers)."""
        epochs = dataset.epochs or (self.link_epochs if dataset.task == "link" else self.epochs)
        # on the CPU wherever it runs, so a results table never mixes devices
        return RunConfig(coding=_coding(method), bits=bits or RunConfig.bits,
                         bits_per_index=self.bits_per_index, codebook_dim=self.codebook_dim,
                         decoder_hidden=self.decoder_hidden, dim=self.dim, hidden=self.hidden,
                         epochs=epochs, metric=dataset.metric, seed=seed, device="cpu",
                         hops=method_hops(method, self.hops),
                         degree_field=self.degree_field and method in ("hash", "random"),
                         bit_flip=self.bit_flip)


SUITES = {
    "quick": Suite(
        datasets=(DatasetSpec("cora"), DatasetSpec("email-eu-core"),
                  DatasetSpec("twitch-PTBR"),
                  DatasetSpec("tolokers", split="official:{seed}", metric="roc_auc"),
                  DatasetSpec("ogbl-ddi", task="link", split="official", metric="hits@20")),
        bits=(128,), seeds=(0, 1), epochs=150, link_epochs=4, dim=32, hidden=64),
    "full": Suite(
        datasets=(DatasetSpec("planetoid-cora"), DatasetSpec("planetoid-citeseer"),
                  DatasetSpec("planetoid-pubmed"), DatasetSpec("email-eu-core"),
                  DatasetSpec("twitch-DE"), DatasetSpec("twitch-PTBR"),
                  DatasetSpec("twitch-ENGB"),  # the ninth node graph (docs/accuracy.md)
                  DatasetSpec("tolokers", split="official:{seed}", metric="roc_auc",
                              bits=(128,), seeds=tuple(range(10))),
                  DatasetSpec("blogcatalog", task="multilabel", metric="micro_f1"),
                  # About 8.5 s per epoch on 2 CPU cores: 200 epochs (as OGB trains) for the
                  # three methods the target compares, one seed.
                  DatasetSpec("ogbl-ddi", task="link", split="official", metric="hits@20",
                              bits=(128,), seeds=(0,), methods=("table", "hash", "random"),
                              epochs=200)),
        bits=(32, 64, 128, 256), seeds=(0, 1, 2), epochs=300, link_epochs=20, dim=32,
        hidden=64),
}


def _coding(method: str) -> str:
    """A method's ``hashembed train --coding``."""
    return {"table": "none", "hashing_trick": "hashing-trick"}.get(method, method)


def _run(suite: Suite, dataset: DatasetSpec, graph: Graph, link_split, method: str,
         bits: int | None, seed: int) -> dict:
    """One run of the grid: trained by :func:`~hashembed.train.run.train_run` (or
    ``train_link_run``) from :meth:`Suite.run_config`, as ``hashembed train`` would, into a
    run directory that is dropped afterwards (its writing counts in the run's seconds);
    ``degree`` by :func:`_degree_run`. Returns the scores (train/val/test, best epoch, test
    macro-F1 for multi-label) and bytes per node of the embedding (codes + decoder, or the
    encoder's tables)."""
    from hashembed.train.run import train_link_run, train_run

    if method == "degree":
        return _degree_run(suite, dataset, graph, link_split, seed)
    config = suite.run_config(dataset, method, bits, seed)
    with tempfile.TemporaryDirectory(prefix="hashembed-accuracy-") as tmp:
        if dataset.task == "link":
            metrics = train_link_run(graph, link_split, config, Path(tmp) / "run",
                                     progress=False)
        else:
            metrics = train_run(graph, config, Path(tmp) / "run", progress=False)
    memory = metrics["bytes"]
    # train score and best epoch show over-fitting: how fast the training nodes are learnt
    return {**{key: metrics[key] for key in ("train", "val", "test", "best_epoch",
                                             "test_macro_f1") if key in metrics},
            # the walk length hash codes used (what --hops auto chose); coded runs only
            **({"hops": metrics["hops"]} if metrics.get("hops") is not None else {}),
            "bytes_per_node": (memory["total"] - memory["gnn"]) / graph.num_nodes}


def _degree_run(suite: Suite, dataset: DatasetSpec, graph: Graph, link_split,
                seed: int) -> dict:
    """The degree baseline, trained by the same ``fit`` / ``fit_links`` as every run but
    outside ``hashembed train``: a model that reads degrees would need them at serving time,
    so the product does not offer it."""
    from hashembed.train.linkpred import LinkScorer, fit_links
    from hashembed.train.model import NodeClassifier, sparse_adjacency
    from hashembed.train.trainer import fit, full_batch_loaders

    config = suite.run_config(dataset, "table", None, seed)
    torch.manual_seed(seed)
    encoder = DegreeEmbedding(graph.degrees(), suite.dim)
    ids = torch.arange(graph.num_nodes)
    per_node = 1 + encoder.table.weight.numel() * 4 / graph.num_nodes
    if dataset.task == "link":
        config.check_task(link=True)
        model = NodeClassifier(encoder, suite.dim, config.model_config(config.hidden))
        scores = fit_links(model, LinkScorer(config.hidden, config.hidden), ids,
                           graph.num_nodes, link_split, config.link_config(), progress=False)
        return {"val": scores["val"], "test": scores["test"],
                "best_epoch": scores["best_epoch"], "bytes_per_node": per_node}
    model = NodeClassifier(encoder, suite.dim, config.model_config(graph.num_classes))
    adj_t = sparse_adjacency(torch.from_numpy(graph.edges()), graph.num_nodes)
    result = fit(model, full_batch_loaders(ids, adj_t, torch.from_numpy(graph.targets()),
                                           graph.masks),
                 config.train_config(), progress=False, task=config.task(graph.labels is None))
    scores = {"train": result.scores["train"], "val": result.scores["val"],
              "test": result.scores["test"], "best_epoch": result.best_epoch,
              "bytes_per_node": per_node}
    if graph.labels is None:
        scores["test_macro_f1"] = multilabel_f1(result.targets["test"] > 0.5,
                                                result.logits["test"])[1]
    return scores


def _grid(suite: Suite):
    for dataset in suite.datasets:
        code_lengths = dataset.bits or suite.bits
        for method in dataset.methods or suite.methods:
            for bits in (code_lengths if method in CODED + BUDGETED else (None,)):
                for seed in dataset.seeds or suite.seeds:
                    yield dataset, method, bits, seed


def aggregate(runs: list[dict]) -> list[dict]:
    """Mean and std over seeds of each (dataset, method, bits)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["dataset"], run["method"], run["bits"]), []).append(run)
    rows = []
    for (dataset, method, bits), group in groups.items():
        test = np.array([r["test"] for r in group])
        row = {"dataset": dataset, "metric": group[0]["metric"], "method": method,
               "bits": bits, "bytes_per_node": group[0]["bytes_per_node"],
               "test_mean": float(test.mean()), "test_std": float(test.std()),
               "seeds": len(group)}
        if "test_macro_f1" in group[0]:
            row["test_macro_f1_mean"] = float(np.mean([r["test_macro_f1"] for r in group]))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    shown = [{**r, "bits": r["bits"] or "—",
              "score": f"{r['test_mean']:.4f} ± {r['test_std']:.4f}"} for r in rows]
    return format_table(shown, [("dataset", "dataset", "s"), ("metric", "metric", "s"),
                                ("method", "method", "s"), ("bits", "bits", ""),
                                ("bytes_per_node", "bytes/node", ".1f"),
                                ("score", "test (mean ± std)", "s"), ("seeds", "seeds", "d")])


def plot(rows: list[dict], path: Path) -> Path:
    """One panel per dataset: test metric against bytes per node (log), a line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    cols = min(3, len(datasets))
    fig, axes = plt.subplots(math.ceil(len(datasets) / cols), cols,
                             figsize=(5 * cols, 3.6 * math.ceil(len(datasets) / cols)),
                             squeeze=False)
    for ax, dataset in zip(axes.flat, datasets):
        for method in METHODS:
            pts = sorted((r["bytes_per_node"], r["test_mean"], r["test_std"]) for r in rows
                         if r["dataset"] == dataset and r["method"] == method)
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=method)
        metric = next(r["metric"] for r in rows if r["dataset"] == dataset)
        ax.set(xscale="log", title=dataset, xlabel="bytes per node", ylabel=metric)
        # a panel inside one decade would get no major tick, and minor labels on top of each other
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        xs = [r["bytes_per_node"] for r in rows if r["dataset"] == dataset]
        decade = math.floor(math.log10(min(xs)))
        if decade == math.floor(math.log10(max(xs))):
            ax.set_xlim(10 ** decade, 10 ** (decade + 1))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def select(suite: Suite, datasets: list[str] | None = None, methods: list[str] | None = None,
           bits_per_index: int | None = None, hops: int | str | None = None,
           degree_field: bool | None = None, bits: list[int] | None = None,
           bit_flip: float | None = None) -> Suite:
    """The suite restricted to ``datasets`` and ``methods`` (all when ``None``), with the coded
    methods' ``b`` set to ``bits_per_index``, hash codes' walk length to ``hops``, the
    degree field to ``degree_field``, the code lengths to those of ``bits`` the suite has
    and the training bit flips to ``bit_flip``, if given; unknown names raise
    :class:`ConfigError` listing what the suite has."""
    known = [d.name for d in suite.datasets]
    unknown = [name for name in datasets or () if name not in known]
    if unknown:
        raise ConfigError(f"datasets {unknown} are not in this suite; it has {known}")
    unknown = [name for name in methods or () if name not in METHODS]
    if unknown:
        raise ConfigError(f"methods {unknown} are unknown; choose from {list(METHODS)}")
    if bits_per_index is not None:
        check_bits_per_index(bits_per_index)
    unknown = [c for c in bits or () if c not in suite.bits]
    if unknown:
        raise ConfigError(f"code lengths {unknown} are not in this suite; it has "
                          f"{list(suite.bits)}")
    picked = tuple(d if not methods or d.methods is None else
                   replace(d, methods=tuple(m for m in d.methods if m in methods))
                   for d in suite.datasets if not datasets or d.name in datasets)
    if bits:  # a dataset's own code lengths are cut to the chosen ones too (none: dropped)
        picked = tuple(d if d.bits is None else replace(d, bits=tuple(
            c for c in d.bits if c in bits)) for d in picked)
        picked = tuple(d for d in picked if d.bits is None or d.bits)
    return replace(suite, datasets=picked,
                   methods=tuple(m for m in suite.methods if not methods or m in methods),
                   bits_per_index=bits_per_index or suite.bits_per_index,
                   hops=suite.hops if hops is None else parse_hops(hops),
                   degree_field=suite.degree_field if degree_field is None else degree_field,
                   bit_flip=suite.bit_flip if bit_flip is None else bit_flip,
                   bits=tuple(c for c in suite.bits if not bits or c in bits))


def results_bits_per_index(results: dict) -> int:
    """The ``b`` a ``results.json`` read its codes with (results from before ``b`` was recorded
    used the suite's 8)."""
    return results["config"].get("bits_per_index", 8)


def results_hops(results: dict) -> int | str:
    """The hash codes' walk length of a ``results.json`` (results from before multi-hop codes
    are 1-hop)."""
    return results["config"].get("hops", 1)


def results_bit_flip(results: dict) -> float:
    """The coded methods' training bit flips of a ``results.json`` (results from before bit
    flips have none)."""
    return results["config"].get("bit_flip", 0.0)


def _previous_runs(out_dir: Path, suite_name: str, suite: Suite,
                   whole: Suite) -> tuple[list, list]:
    """Runs and parts of an earlier ``results.json`` of the same suite in ``out_dir`` that this
    call does not replace; raises :class:`ConfigError` if there is none to merge into, or if
    its codes were decoded with another ``b``.

    A run is replaced if this call runs its (dataset, method); runs of a selected dataset with
    a method that dataset no longer lists are dropped too (the suite changed under them). A
    part (one earlier call: datasets, methods, date, seconds) is kept, narrowed to the
    datasets and methods of the runs it still contributes.
    """
    path = out_dir / "results.json"
    if not path.exists():
        raise ConfigError(f"--merge: {path} does not exist; run the suite into {out_dir} first")
    previous = json.loads(path.read_text())
    if previous.get("suite") != suite_name:
        raise ConfigError(f"--merge: {path} holds suite {previous.get('suite')!r}, "
                          f"not {suite_name!r}")
    b = results_bits_per_index(previous)
    if b != suite.bits_per_index:
        raise ConfigError(f"--merge: {path} decodes codes with b={b}, this call with "
                          f"b={suite.bits_per_index}; pass --bits-per-index {b} or another --out")
    hops = results_hops(previous)
    if hops != suite.hops:
        raise ConfigError(f"--merge: {path} has hash codes of --hops {hops}, this call "
                          f"{suite.hops}; pass --hops {hops} or another --out")
    flip = results_bit_flip(previous)
    if flip != suite.bit_flip:
        raise ConfigError(f"--merge: {path} trained codes with --bit-flip {flip}, this call "
                          f"with {suite.bit_flip}; pass --bit-flip {flip} or another --out")
    running = {d.name: d.methods or suite.methods for d in suite.datasets}
    listed = {d.name: d.methods or whole.methods for d in whole.datasets}

    def kept(run: dict) -> bool:
        name, method = run["dataset"], run["method"]
        if name not in running:
            return True
        return method not in running[name] and method in listed.get(name, ())

    runs = [r for r in previous["runs"] if kept(r)]
    parts = []
    for part in previous.get("parts") or [{  # results written before parts were recorded
            "datasets": sorted({r["dataset"] for r in previous["runs"]}),
            "date": previous["env"]["date"], "seconds": previous["seconds"]}]:
        methods = part.get("methods", list(METHODS))
        left = [r for r in runs if r["dataset"] in part["datasets"] and r["method"] in methods]
        if left:
            parts.append({**part,
                          "datasets": [d for d in part["datasets"] if any(
                              r["dataset"] == d for r in left)],
                          "methods": [m for m in methods if any(
                              r["method"] == m for r in left)]})
    return runs, parts


PROGRESS_FILE = "progress.jsonl"


def _run_key(dataset: str, method: str, bits: int | None, seed: int, split: str) -> tuple:
    return (dataset, method, bits, seed, split)


class ProgressLog:
    """``out_dir/progress.jsonl``: a header naming the suite as selected, then one finished run
    per line, each flushed and fsynced, so a crash loses at most the run under way.

    ``resume`` reads the runs back if the header matches this selection (a different selection
    raises :class:`ConfigError`: its runs would not belong); otherwise the log starts afresh.
    A last line cut off by a crash is dropped. The log is deleted once ``results.json`` is
    written.
    """

    def __init__(self, out_dir: Path, header: dict, resume: bool):
        self.path = out_dir / PROGRESS_FILE
        self.done: dict[tuple, dict] = {}
        if resume and self.path.exists():
            lines = self.path.read_text().splitlines()
            found = json.loads(lines[0]) if lines else None
            if found != header:
                raise ConfigError(
                    f"--resume: {self.path} was written by another selection ({found}); "
                    f"run the same command as before, or drop --resume to start again")
            for number, line in enumerate(lines[1:], start=2):
                try:
                    run = json.loads(line)
                except json.JSONDecodeError:
                    if number < len(lines):  # only the last line can be cut off by a crash
                        raise ConfigError(f"{self.path} line {number} is not JSON") from None
                    continue
                self.done[_run_key(run["dataset"], run["method"], run["bits"], run["seed"],
                                   run["split"])] = run
            self._file = open(self.path, "a")
        else:
            self._file = open(self.path, "w")
            self.add(header)

    def add(self, record: dict) -> None:
        """Append one line (the header, or a finished run) and put it on disk."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self) -> None:
        self._file.close()
        self.path.unlink()


def run_accuracy_bench(suite: str | Suite, data_root: str | Path, out_dir: str | Path,
                       progress: bool = True, datasets: list[str] | None = None,
                       methods: list[str] | None = None, bits_per_index: int | None = None,
                       merge: bool = False, resume: bool = False,
                       hops: int | str | None = None,
                       degree_field: bool | None = None,
                       bits: list[int] | None = None, bit_flip: float | None = None) -> dict:
    """Run a suite (a name in :data:`SUITES` or a :class:`Suite`), optionally only some
    ``datasets`` and ``methods`` and with another ``b`` for the codes or another walk length
    ``hops`` for hash codes (see :func:`select`);
    write ``results.json``, ``results.md`` and ``accuracy_vs_bytes.png`` into ``out_dir``.

    With ``merge``, the earlier runs in ``out_dir``'s results of the same suite are kept,
    except those of the (dataset, method) pairs this call runs (see :func:`_previous_runs`),
    so part of a long suite can be re-run; ``parts`` in the JSON says which datasets and
    methods each call produced, and when. With ``resume``, the runs an interrupted
    call with the same selection logged in ``out_dir/progress.jsonl`` are not run again (see
    :class:`ProgressLog`).
    """
    suite_name = suite if isinstance(suite, str) else "custom"
    whole = SUITES[suite] if isinstance(suite, str) else suite
    suite = select(whole, datasets, methods, bits_per_index, hops, degree_field, bits, bit_flip)
    out_dir = Path(out_dir)
    names = [d.name for d in suite.datasets]
    kept, parts = _previous_runs(out_dir, suite_name, suite, whole) if merge else ([], [])
    out_dir.mkdir(parents=True, exist_ok=True)
    log = ProgressLog(out_dir, {"suite": suite_name, "selection": json.loads(
        json.dumps(asdict(suite)))}, resume)
    loaded: dict[str, tuple] = {}  # name -> (graph as loaded, link split)
    split_graphs: dict[tuple, Graph] = {}  # (name, split) -> graph with that split applied
    runs = []
    grid = list(_grid(suite))
    if log.done:
        print(f"resuming: {len(log.done)} of {len(grid)} runs already done ({log.path})",
              flush=True)
    started = time.perf_counter()
    for dataset, method, bits, seed in tqdm(grid, desc=f"accuracy {suite_name}", unit="run",
                                            disable=not progress):
        earlier = log.done.get(_run_key(dataset.name, method, bits, seed,
                                        dataset.split_for(seed)))
        if earlier is not None:
            runs.append(earlier)
            continue
        if dataset.name not in loaded:
            graph = load_dataset(dataset.name, data_root)
            split = load_ogbl_ddi_split(data_root) if dataset.task == "link" else None
            loaded[dataset.name] = (graph, split)
        graph, split = loaded[dataset.name]
        key = (dataset.name, dataset.split_for(seed))
        if dataset.task == "multilabel":  # the labelled nodes, 60/20/20, drawn per seed
            graph = apply_split(graph, None, seed)
        elif dataset.task == "node":  # one split for every seed (or official split k)
            if key not in split_graphs:
                split_graphs[key] = apply_split(graph, parse_split(key[1]), seed=0)
            graph = split_graphs[key]
        t0 = time.perf_counter()
        scores = _run(suite, dataset, graph, split, method, bits, seed)
        runs.append({"dataset": dataset.name, "metric": dataset.metric, "method": method,
                     "bits": bits, "seed": seed, "split": key[1], **scores,
                     "seconds": time.perf_counter() - t0})
        log.add(runs[-1])
    # resumed runs count with the time they took before
    env = environment()
    seconds = time.perf_counter() - started + sum(r["seconds"] for r in log.done.values())
    order = [d.name for d in whole.datasets]
    runs = sorted(kept + runs, key=lambda r: (
        order.index(r["dataset"]) if r["dataset"] in order else len(order),
        METHODS.index(r["method"]), r["bits"] or 0))  # stable: keeps the seeds' order
    parts = parts + [
        {"datasets": names, "methods": list(suite.methods), "date": env["date"],
         "seconds": seconds}]
    rows = aggregate(runs)
    table = markdown(rows)
    shown = whole if merge else suite
    payload = {"benchmark": "accuracy", "suite": suite_name,
               "config": {"bits": shown.bits, "seeds": shown.seeds, "epochs": shown.epochs,
                          "link_epochs": shown.link_epochs, "dim": shown.dim,
                          "hidden": shown.hidden, "gnn": "sage, 2 layers",
                          "bits_per_index": suite.bits_per_index, "hops": suite.hops,
                          "bit_flip": suite.bit_flip,
                          "codebook_dim": suite.codebook_dim,
                          "decoder_hidden": suite.decoder_hidden, "methods": shown.methods,
                          "datasets": [d.__dict__ for d in shown.datasets]},
               "env": env, "seconds": sum(part["seconds"] for part in parts),
               "parts": parts, "summary": rows, "runs": runs}
    write_json(out_dir / "results.json", payload)
    atomic_write(out_dir / "results.md", (table + "\n").encode())
    plot(rows, out_dir / "accuracy_vs_bytes.png")
    log.finish()
    print(table, flush=True)
    return payload
