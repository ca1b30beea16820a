"""One training run end to end: codes -> model -> fit -> metrics.json + checkpoint.

:func:`train_run` trains node classification (single- or multi-label), :func:`train_link_run`
link prediction; both write the same run directory (:mod:`hashembed.train.checkpoint`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from hashembed.core.codeformat import CodeSpec
from hashembed.core.errors import ConfigError
from hashembed.core.integrity import json_safe
from hashembed.train.checkpoint import RunWriter
from hashembed.coding.coder import code_stats, make_codes
from hashembed.graph.datasets import apply_split
from hashembed.graph.memory import Graph
from hashembed.train.linkpred import LinkScorer, LinkSplit, fit_links
from hashembed.train.model import build_model, sparse_adjacency
from hashembed.train.minibatch import BatchConfig, memory_plan, node_loader
from hashembed.core.metrics import multilabel_f1
from hashembed.train.runconfig import HOPS_AUTO, PROBED_HOPS, RunConfig
from hashembed.graph.splits import parse_split
from hashembed.train.trainer import (MULTILABEL_MICRO_F1, Task, TrainConfig, fit,
                                     full_batch_loaders, majority_accuracy, resolve_device)

log = logging.getLogger(__name__)

FP32_BYTES = 4


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def memory_report(model, num_nodes: int, code_spec: CodeSpec | None, embedding_dim: int) -> dict:
    """Bytes of each part of the model, and of an fp32 table of the same ``n × d``."""
    code_bytes = 0 if code_spec is None else num_nodes * code_spec.bytes_per_node
    encoder_bytes = _param_bytes(model.encoder)
    gnn_bytes = _param_bytes(model) - encoder_bytes
    table_bytes = num_nodes * embedding_dim * FP32_BYTES
    embedding_bytes = code_bytes + encoder_bytes  # codes + decoder, or the table itself
    return {
        "codes": code_bytes,
        "decoder": encoder_bytes if code_spec is not None else 0,
        "embedding_table": 0 if code_spec is not None else encoder_bytes,
        "gnn": gnn_bytes,
        "total": embedding_bytes + gnn_bytes,
        "fp32_table_same_n_d": table_bytes,
        "embedding_compression_vs_fp32_table": table_bytes / embedding_bytes,
    }


def prepare_graph(graph: Graph, config: RunConfig):
    """``(graph, holdout)``: ``config.holdout_nodes`` of the labelled nodes taken out (else
    ``holdout`` is ``None``), then ``config.split`` applied with ``config.seed``."""
    holdout = None
    if config.holdout_nodes is not None:
        from hashembed.graph.holdout import hold_out

        graph, holdout = hold_out(graph, config.holdout_nodes, config.seed)
    return apply_split(graph, parse_split(config.split) if config.split else None,
                       config.seed), holdout


def train_run(graph: Graph, config: RunConfig, out_dir: str | Path, progress: bool = True,
              overwrite: bool = False, inputs=(), codes_dir: str | Path | None = None,
              holdout=None, dist=None) -> dict:
    """Make codes, train, and write ``out_dir`` (see :mod:`hashembed.train.checkpoint`).

    Args:
        graph: labelled graph with ``masks`` set (:func:`prepare_graph` applies
            ``config``'s split; a caller may set its own masks).
        config: every setting of the run (:class:`~hashembed.train.runconfig.RunConfig`),
            saved whole in the checkpoint and in ``metrics.json``. Its metric decides the
            loss: ``accuracy``, ``roc_auc`` (binary labels) or ``micro_f1`` (a multi-label
            graph, whose ``metrics.json`` also gives the test macro-F1). With ``batch_size``
            the run trains on sampled neighbourhoods (:mod:`hashembed.train.minibatch`) and
            tables without codes get sparse gradients and ``SparseAdam``.
        overwrite: replace ``out_dir`` if it holds a run (anything else is refused).
        inputs: the files the graph was read from; ``out_dir`` may not contain them.
        codes_dir: codes made beforehand by ``hashembed codes`` from the same graph directory,
            with ``config``'s scheme, bits, b, seed and projection (other codes are refused,
            so the saved config always remakes the run's codes).
        holdout: nodes already taken out of ``graph`` (:func:`prepare_graph`), saved with the
            run for ``hashembed bench inductive``.
        dist: a ``torchrun`` job (:class:`~hashembed.train.distributed.Distributed`, already
            started): data-parallel training; only rank 0 stages and writes ``out_dir``, and
            ``metrics.json`` records the world size.

    ``out_dir`` is checked and staged before coding starts and appears, whole, only when the
    run is complete (:class:`~hashembed.train.checkpoint.RunWriter`). A split without test
    (or validation) nodes scores ``null`` there.

    Returns:
        The metrics written to ``metrics.json``.
    """
    if (graph.labels is None and graph.multilabels is None) or not graph.masks \
            or "train" not in graph.masks:
        raise ConfigError(f"{graph.name}: training needs labels and a train/val/test split")
    multilabel = graph.labels is None
    task = config.task(multilabel)
    if multilabel != (task.metric == MULTILABEL_MICRO_F1.metric):
        raise ConfigError(
            f"{graph.name} is multi-label: train it with --metric micro_f1" if multilabel else
            f"--metric {task.metric} scores multi-label graphs; {graph.name} has one class "
            "per node")
    if task.metric == "roc_auc" and graph.num_classes != 2:
        raise ConfigError(f"{graph.name}: metric roc_auc needs two classes, the graph has "
                          f"{graph.num_classes}")
    for split in ("val", "test"):
        if split in graph.masks and not graph.masks[split].any():
            log.warning("%s: the split has no %s nodes; its score is reported as null",
                        graph.name, split)
    if dist is not None and not dist.is_writer:  # the other ranks train and write nothing
        return _train(graph, config, False, task, None, codes_dir, holdout, dist)
    with RunWriter(out_dir, overwrite=overwrite, inputs=inputs) as writer:
        metrics = _train(graph, config, progress, task, writer, codes_dir, holdout, dist)
        writer.commit()
    return metrics


def _train(graph: Graph, config: RunConfig, progress: bool, task: Task,
           writer: RunWriter | None, codes_dir, holdout=None, dist=None) -> dict:
    train_config, batch = config.train_config(), config.batch_config()
    decoder_config, id_encoder = config.decoder_config(), config.id_encoder(graph.num_nodes)
    model_config = config.model_config(graph.num_classes)
    torch.manual_seed(train_config.seed)
    started = time.perf_counter()

    codes, stats = _codes(graph, config, codes_dir, progress, probe_labels=True,
                          writer=dist is None or dist.is_writer)
    code_spec = None if codes is None else codes.spec
    if codes is not None:
        # full batch reads every code each step: an in-memory, writable copy of the table
        node_input = None if batch is not None else torch.from_numpy(np.array(codes.packed))
    else:
        node_input = torch.arange(graph.num_nodes)
    coding_seconds = time.perf_counter() - started

    model = build_model(model_config, decoder_config, graph.num_nodes, config.dim,
                        id_encoder, sparse=batch is not None)
    if batch is None:
        adj_t = sparse_adjacency(torch.from_numpy(graph.edges()), graph.num_nodes)
        loaders = full_batch_loaders(node_input, adj_t, torch.from_numpy(graph.targets()),
                                     graph.masks, resolve_device(train_config.device))
    else:
        loaders = _sampled_loaders(graph, None if codes is None else codes.packed, model,
                                   train_config, batch, config.dim, dist)
    result = fit(model, loaders, train_config, progress, task, dist)

    metrics = {
        **_run_record(graph, config, code_spec, stats, model, coding_seconds, started),
        "metric": task.metric,
        **{split: result.scores[split] for split in ("train", "val", "test")},
        "majority_class_test": None if graph.labels is None else
        majority_accuracy(graph.labels, graph.masks),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
    }
    metrics["config"].update(batch=None if batch is None else asdict(batch),
                             train=train_config.to_dict())
    if graph.labels is None and len(result.targets.get("test", ())):
        metrics["test_macro_f1"] = multilabel_f1(result.targets["test"] > 0.5,
                                                 result.logits["test"])[1]
    if holdout is not None:
        metrics["holdout_nodes"] = len(holdout.ids)
    metrics["world_size"] = 1 if dist is None else dist.world_size
    metrics["run_id"] = None if writer is None else writer.save(
        model, graph, codes, train_config, metrics, holdout, extra={"run": config.to_dict()})
    return json_safe(metrics)


def _codes(graph: Graph, config: RunConfig, codes_dir, progress: bool,
           probe_labels: bool = False, writer: bool = True):
    """``(codes, stats)`` of a run: :class:`~hashembed.coding.coder.Codes` read from
    ``codes_dir`` (made beforehand from the same graph directory with the run's code spec,
    else refused; ``--hops auto`` takes their ``K``), else made now (``--hops auto``: by
    :func:`~hashembed.coding.probe.choose_hops`, whose record joins ``stats`` as
    ``"hops"``; without node labels to probe, ``probe_labels=False`` as for link prediction,
    or for random codes, auto is 1); ``(None, {})`` without codes.

    ``writer=False`` (the torchrun ranks after rank 0, which write no metrics): the table's
    sha256 is left to rank 0 and no statistics are taken, each of which reads the whole
    table (statistics also hold about ``10 n`` bytes)."""
    code_spec = config.code_spec()
    if code_spec is None:
        return None, {}
    probe = None
    if codes_dir is not None:
        from hashembed.coding.codesdir import read_codes

        if graph.source_dir is None:
            raise ConfigError("--codes goes with --graph (codes are made from a graph directory)")
        made = read_codes(codes_dir, graph.source_dir.digest, verify=writer)
        spec = made.spec
        if config.hops == HOPS_AUTO:  # nothing to choose: the codes were made with their K
            code_spec = config.code_spec(hops=spec.hops)
            log.info("--hops auto with --codes: the codes' K = %d", spec.hops)
        if spec != code_spec:  # the run's saved config must make these very codes
            differ = [f"{k} {getattr(spec, k)!r} (the run: {getattr(code_spec, k)!r})"
                      for k in spec.to_dict() if getattr(spec, k) != getattr(code_spec, k)]
            raise ConfigError(f"{codes_dir} holds codes of another spec: {', '.join(differ)}; "
                              "pass the codes' settings (--coding, --bits, --bits-per-index, "
                              "--seed, --projection, --hops, --degree-field) or make codes "
                              "with the run's")
    elif config.hops == HOPS_AUTO and probe_labels and code_spec.scheme == "hash":
        from hashembed.coding.probe import choose_hops

        probe = choose_hops(graph, code_spec, PROBED_HOPS, progress=progress)
        made = probe.codes
        log.info("--hops auto: K = %d (bits-only probe %s)", probe.hops, probe.record()["probe"])
    else:
        made = make_codes(graph, code_spec, progress=progress)
    if not writer:
        return made, {}
    stats = code_stats(made.packed, code_spec.bits)
    log.info("codes: %s", stats)
    return made, {**stats, **({"hops": probe.record()} if probe is not None else {})}


def _run_record(graph: Graph, config: RunConfig, code_spec: CodeSpec | None, stats: dict,
                model, coding_seconds: float, started: float) -> dict:
    """The ``metrics.json`` entries every kind of run writes: the graph, the coding, the bytes,
    the seconds and the configs (``config``: the run's whole :class:`RunConfig` as ``run``,
    and the resolved code spec, decoder and GNN; callers add theirs)."""
    id_encoder = getattr(model.encoder, "id_config", None)
    decoder = getattr(model.encoder, "config", None)
    embedding_dim = int(model.convs[0].in_channels)
    return {
        "dataset": graph.name,
        "num_nodes": graph.num_nodes,
        "num_edges": graph.num_edges // 2,
        "coding": code_spec.scheme if code_spec is not None else (
            "none" if id_encoder is None or id_encoder.kind == "table" else id_encoder.kind),
        "bits_per_node": 0 if code_spec is None else code_spec.bits,
        "code_stats": {k: v for k, v in stats.items() if k != "hops"},
        "hops": None if code_spec is None else code_spec.hops,
        "hops_probe": stats.get("hops"),  # --hops auto: the bits-only probe's scores
        "bytes": memory_report(model, graph.num_nodes, code_spec, embedding_dim),
        "seconds": {"coding": coding_seconds, "total": time.perf_counter() - started},
        "config": {
            "run": config.to_dict(),
            "code_spec": None if code_spec is None else code_spec.to_dict(),
            "decoder": None if decoder is None else decoder.to_dict(),
            "model": model.config.to_dict(),
        },
    }


def _sampled_loaders(graph: Graph, codes, model, train_config: TrainConfig,
                     batch: BatchConfig, embedding_dim: int, dist=None) -> dict:
    """Mini-batch loaders over the graph's CSR, one per split; logs the memory plan first.
    With ``dist``: this rank's :class:`~hashembed.train.distributed.ShardedSeedLoader` for
    training and its contiguous share of the other splits."""
    indptr, indices = graph.csr()
    plan = memory_plan(graph.num_nodes, 0 if codes is None else codes.shape[1], model,
                       embedding_dim)
    log.info("memory plan: %s", ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in plan.items()))
    targets = graph.targets()  # one copy for every split (multi-label: float32 [n, L])
    if dist is not None:
        from hashembed.train.distributed import ShardedSeedLoader, check_split_shares

        check_split_shares(graph.masks, dist.world_size)

        def loader(seeds, shuffle, size=batch.eval_batch_size):
            return node_loader(indptr, indices, codes, targets, seeds, batch.fanout, size,
                               shuffle=shuffle, seed=train_config.seed)

        shares = {split: loader(dist.share(np.nonzero(graph.masks[split])[0]), False)
                  for split in ("train", "val", "test") if split in graph.masks}
        shares["train"] = ShardedSeedLoader(
            lambda seeds: loader(seeds, False, batch.batch_size),
            np.nonzero(graph.masks["train"])[0], batch.batch_size, dist, train_config.seed,
            scoring=shares["train"])
        return shares
    return {
        split: node_loader(indptr, indices, codes, targets,
                           np.nonzero(graph.masks[split])[0], batch.fanout,
                           batch.batch_size if split == "train" else batch.eval_batch_size,
                           shuffle=split == "train", seed=train_config.seed)
        for split in ("train", "val", "test") if split in graph.masks}


def train_link_run(graph: Graph, split: LinkSplit, config: RunConfig, out_dir: str | Path,
                   progress: bool = True, overwrite: bool = False, inputs=()) -> dict:
    """Link prediction end to end (:mod:`hashembed.train.linkpred`, ogbl-ddi's protocol):
    codes -> decoder + GNN (its output is a node representation ``config.hidden`` wide) +
    pair scorer -> Hits@20 on the split's validation and test edges.

    Args:
        graph: the training graph (``split.train``'s edges, both directions); codes are made
            from it, so held-out edges never shape a code.
        split: the official edges (:func:`~hashembed.train.linkpred.load_ogbl_ddi_split`).
        config: as for :func:`train_run`; settings only node runs take are refused
            (:meth:`RunConfig.check_task`). ``coding="none"`` trains a full table, ``qr`` and
            ``hashing-trick`` their budgeted tables.

    Writes ``out_dir`` like :func:`train_run` (the checkpoint also holds the scorer's weights,
    ``"link_scorer"``); such runs do not export. Returns the metrics of ``metrics.json``.
    """
    config.check_task(link=True)
    link_config = config.link_config()
    model_config = config.model_config(config.hidden)
    with RunWriter(out_dir, overwrite=overwrite, inputs=inputs) as writer:
        torch.manual_seed(link_config.seed)
        started = time.perf_counter()
        codes, stats = _codes(graph, config, None, progress)  # auto: K = 1, no labels
        code_spec = None if codes is None else codes.spec
        node_input = torch.arange(graph.num_nodes)
        if codes is not None:
            node_input = torch.from_numpy(np.asarray(codes.packed))
        coding_seconds = time.perf_counter() - started
        model = build_model(model_config, config.decoder_config(), graph.num_nodes, config.dim,
                            config.id_encoder(graph.num_nodes))
        scorer = LinkScorer(model_config.num_classes, model_config.hidden_dim)
        scores = fit_links(model, scorer, node_input, graph.num_nodes, split, link_config,
                           progress)
        metrics = {
            **_run_record(graph, config, code_spec, stats, model, coding_seconds, started),
            "metric": "hits@20", "val": scores["val"], "test": scores["test"],
            "best_epoch": scores["best_epoch"], "epochs_run": link_config.epochs,
        }
        metrics["config"]["link"] = asdict(link_config)
        record = TrainConfig(epochs=link_config.epochs, patience=link_config.epochs,
                             lr=link_config.lr, seed=link_config.seed)
        metrics["run_id"] = writer.save(model, graph, codes, record, metrics, extra={"link_scorer": scorer.state_dict(),
                                                        "run": config.to_dict()})
        writer.commit()
    return json_safe(metrics)
