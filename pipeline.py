"""The pipeline as a library: graph -> codes -> run -> bundle -> predictions.

Each function here is what one ``hashembed`` command does, so a user who writes Python gets
the same pipeline the command line runs (the CLI parses flags and calls these; the demo and
the benchmarks are uses of them)::

    from hashembed import pipeline
    from hashembed.train.runconfig import RunConfig

    source = pipeline.GraphSource(dataset="cora")                 # or graph_dir= / edges=
    metrics = pipeline.train(source, RunConfig(bits=128), "runs/cora")
    pipeline.export("runs/cora", "bundles/cora")
    out = pipeline.predictor("bundles/cora").predict([3, 17, 42])

Out-of-core graphs: :func:`build_graph` or :func:`synth_graph` write a graph directory,
:func:`make_codes` codes it (streamed), ``GraphSource(graph_dir=…)`` with ``codes_dir`` trains
on it mini-batch (``RunConfig(batch_size=…)``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hashembed.core.errors import ConfigError

if TYPE_CHECKING:  # each stage is imported when used: predicting never imports torch
    from hashembed.core.codeformat import CodeSpec
    from hashembed.graph.memory import Graph
    from hashembed.graph.synth import SynthConfig
    from hashembed.serve import Predictor
    from hashembed.train.runconfig import RunConfig

log = logging.getLogger(__name__)

DEFAULT_DATA_ROOT = Path(os.environ.get("HASHEMBED_DATA", "../shared/data"))
LINK_DATASETS = ("ogbl-ddi",)  # named datasets that train link prediction


@dataclass(frozen=True)
class GraphSource:
    """Where a run's graph comes from: exactly one of ``dataset``, ``graph_dir``, ``edges``.

    Args:
        dataset: a named dataset (``cora`` is bundled; others are read from ``data_root``).
        graph_dir: a graph directory (``hashembed graph build`` / ``synth``), memory-mapped.
        edges: an edge list (text, ``.npy`` or Parquet) read into memory, with ``labels``.
        labels, num_nodes, src_col, dst_col, id_type: how ``edges`` are read
            (:func:`~hashembed.graph.edgelist.load_edge_list_graph`).
        data_root: the folder of the named datasets.
    """

    dataset: str | None = None
    graph_dir: Path | None = None
    edges: Path | None = None
    labels: Path | None = None
    num_nodes: int | None = None
    src_col: str | None = None
    dst_col: str | None = None
    id_type: str = "auto"
    data_root: Path = DEFAULT_DATA_ROOT

    def __post_init__(self) -> None:
        given = [name for name in ("dataset", "graph_dir", "edges") if getattr(self, name)]
        if len(given) != 1:
            raise ConfigError("a graph comes from exactly one of a dataset, a graph directory "
                              f"or an edge list; got {given or 'none'}")
        if self.graph_dir is not None and self.labels is not None:
            raise ConfigError("--graph carries its labels (graph build --labels)")
        if self.edges is not None and self.labels is None:
            raise ConfigError("--edges needs --labels for node classification")

    @property
    def link(self) -> bool:
        """True when this graph trains link prediction (ogbl-ddi's official split)."""
        return self.dataset in LINK_DATASETS

    def inputs(self) -> list[Path]:
        """The paths the graph is read from (a run may not be written over them)."""
        paths = [Path(p) for p in (self.edges, self.labels, self.graph_dir) if p is not None]
        return paths or [Path(self.data_root)]

    def load(self) -> "Graph":
        """The graph, in memory (a graph directory's arrays stay memory-mapped)."""
        if self.dataset is not None:
            from hashembed.graph.datasets import load_dataset

            return load_dataset(self.dataset, self.data_root)
        if self.graph_dir is not None:
            from hashembed.core.graphdir import open_graph
            from hashembed.graph.memory import graph_from_dir

            return graph_from_dir(open_graph(self.graph_dir))
        from hashembed.graph.edgelist import load_edge_list_graph

        return load_edge_list_graph(self.edges, self.labels, self.num_nodes,
                                    src_col=self.src_col, dst_col=self.dst_col,
                                    id_type=self.id_type)


def build_graph(edges: list[str | Path], out: str | Path, **options):
    """Edge files -> a graph directory, out of core (``hashembed graph build``); ``options``
    as :func:`hashembed.graph.build.build_graph`. Returns the header written."""
    from hashembed.graph.build import build_graph as build

    return build(edges, out, **options)


def synth_graph(config: "SynthConfig", out: str | Path, memory_gb: float = 4.0,
                overwrite: bool = False, progress: bool = True):
    """A labelled synthetic graph directory (``hashembed synth``). Returns its header."""
    from hashembed.graph.synth import synth_graph as synth

    return synth(config, out, memory_gb=memory_gb, overwrite=overwrite, progress=progress)


def synth_like(dataset: str, config, out: str | Path, data_root: str | Path = DEFAULT_DATA_ROOT,
               memory_gb: float = 4.0, overwrite: bool = False, progress: bool = True):
    """Copies of a named real graph, rewired between copies (``hashembed synth --like``;
    :class:`~hashembed.graph.synth_like.LikeConfig`). Returns its header."""
    from hashembed.graph.datasets import load_dataset
    from hashembed.graph.synth_like import synth_like as like

    return like(load_dataset(dataset, data_root), config, out, memory_gb=memory_gb,
                overwrite=overwrite, progress=progress)


def make_codes(graph_dir: str | Path, spec: "CodeSpec", out: str | Path,
               memory_gb: float = 4.0, overwrite: bool = False, progress: bool = True,
               engine: str = "local", scheduler: str | None = None, workers: int | None = None,
               partitions: int | None = None) -> dict:
    """Code every node of a graph directory, streaming (``hashembed codes``); returns the
    summary written to ``out/codes.json``.

    Args:
        engine: ``"local"`` (this process) or ``"dask"``: the hash coder's passes as Dask
            tasks over node ranges, on the cluster at ``scheduler`` or on a local cluster of
            ``workers`` processes (default one per CPU core) that is closed afterwards.
    """
    from hashembed.coding.codesdir import write_codes

    if engine not in ("local", "dask"):
        raise ConfigError(f"engine {engine!r} is not one of local, dask")
    if engine == "local":
        return write_codes(graph_dir, spec, out, memory_gb=memory_gb, overwrite=overwrite,
                           progress=progress)
    from hashembed.coding.dask_coder import connect, local_client

    client = connect(scheduler) if scheduler else local_client(workers or os.cpu_count() or 1)
    try:
        return write_codes(graph_dir, spec, out, memory_gb=memory_gb, overwrite=overwrite,
                           progress=progress, client=client, partitions=partitions)
    finally:
        cluster = None if scheduler else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def train(source: GraphSource, config: "RunConfig", out: str | Path,
          codes_dir: str | Path | None = None, overwrite: bool = False, progress: bool = True,
          inputs: list[str | Path] = ()) -> dict:
    """Make codes, train decoder + GNN and write the run directory ``out`` (``hashembed
    train``). Node classification, or link prediction for ogbl-ddi.

    Args:
        source: the graph; its paths may not be written over.
        config: every setting of the run, saved whole in it.
        codes_dir: codes made by :func:`make_codes` from ``source.graph_dir`` with the run's
            code spec.
        overwrite: replace ``out`` if it holds a run (anything else is refused).
        inputs: more paths ``out`` may not overwrite (e.g. the ``--config`` file).

    ``out`` is checked before the graph is read, so a bad path or setting fails at once.
    Returns the metrics written to ``out/metrics.json``.
    """
    from hashembed.train.checkpoint import check_run_dir
    from hashembed.train.distributed import Distributed, check_distributed_run
    from hashembed.train.run import prepare_graph, train_link_run, train_run

    inputs = [*source.inputs(), *(Path(p) for p in inputs),
              *([Path(codes_dir)] if codes_dir is not None else [])]
    check_run_dir(out, overwrite, inputs)
    config.check_task(source.link)
    dist = Distributed.from_environment()  # launched by torchrun: data-parallel
    if dist is not None:
        check_distributed_run(config, source.link, source.graph_dir, codes_dir)
        config = dataclasses.replace(config, device=dist.start(config.device))
        try:
            graph, holdout = prepare_graph(source.load(), config)
            return train_run(graph, config, out, progress=progress, overwrite=overwrite,
                             inputs=inputs, codes_dir=codes_dir, holdout=holdout, dist=dist)
        finally:
            dist.stop()
    if source.link and codes_dir is not None:
        raise ConfigError("ogbl-ddi trains link prediction, which makes its codes from the "
                          "training edges: it does not take --codes")
    graph = source.load()
    if source.link:
        from hashembed.train.linkpred import load_ogbl_ddi_split

        if config.device == "auto":
            log.info("link prediction trains on the CPU (OGB's full-graph protocol)")
        return train_link_run(graph, load_ogbl_ddi_split(source.data_root), config, out,
                              progress=progress, overwrite=overwrite, inputs=inputs)
    graph, holdout = prepare_graph(graph, config)
    return train_run(graph, config, out, progress=progress, overwrite=overwrite,
                     inputs=inputs, codes_dir=codes_dir, holdout=holdout)


def load_run(run_dir: str | Path):
    """A finished run rebuilt from its directory: model, graph with the run's split, codes,
    configs and metrics (:class:`~hashembed.train.checkpoint.Run`)."""
    from hashembed.train.checkpoint import load_run as load

    return load(run_dir)


def export(run_dir: str | Path, out: str | Path, **options) -> dict:
    """Write and check the serving bundle of a run (``hashembed export``); ``options`` as
    :func:`hashembed.export.exporter.export_run`. Returns the manifest summary with the
    ONNX Runtime vs PyTorch differences (``"parity"``) and the bundle's ``"path"``."""
    from hashembed.export.exporter import export_run

    return export_run(run_dir, out, **options)


def predictor(bundle: str | Path, **options) -> "Predictor":
    """An ONNX Runtime predictor over a bundle (``hashembed predict``/``serve``); ``options``
    as :class:`hashembed.serve.Predictor` (``provider``, ``verify``)."""
    from hashembed.serve import Predictor

    return Predictor(bundle, **options)
