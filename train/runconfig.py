"""One training run's settings: :class:`RunConfig`, the single source of ``hashembed train``'s flags.

A run is described by its data (``--dataset``/``--graph``/``--edges``, ``--codes``) and one
:class:`RunConfig`. The config is saved whole in the run's ``checkpoint.pt`` (``"run"``) and in
``metrics.json`` (``config.run``), and ``hashembed train --config FILE`` starts from a saved one
(flags given beside it override its fields). Each field is one flag: ``bits_per_index`` is
``--bits-per-index``; its help text and type live in the field's metadata, so a new setting is
added here once and appears in the CLI, the checkpoint and the metrics.

The parts each stage takes (:class:`~hashembed.core.codeformat.CodeSpec`,
:class:`~hashembed.train.decoder.DecoderConfig`, :class:`~hashembed.train.model.ModelConfig`,
:class:`~hashembed.train.trainer.TrainConfig`, …) are derived from it by its methods.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from hashembed.core.codeformat import DEFAULT_BITS_PER_INDEX, MAX_HOPS, PROJECTIONS, CodeSpec
from hashembed.core.errors import ConfigError
from hashembed.graph.splits import parse_split
from hashembed.train.defaults import (BIT_FLIP, DEVICES, EVAL_BATCH_SIZE, LINK_BATCH_SIZE,
                                      LINK_EPOCHS, LINK_LR, NODE_EPOCHS, NODE_LR,
                                      NODE_PATIENCE, check_bit_flip)

if TYPE_CHECKING:  # the derived parts import torch
    from hashembed.train.decoder import DecoderConfig
    from hashembed.train.encoders import IdEncoderConfig
    from hashembed.train.linkpred import LinkTrainConfig
    from hashembed.train.minibatch import BatchConfig
    from hashembed.train.model import ModelConfig
    from hashembed.train.trainer import Task, TrainConfig

log = logging.getLogger(__name__)

# This module is imported to build the CLI's parser, so it imports no torch: the parts it
# derives come from their modules inside the methods, and the defaults the flags show live
# in hashembed.train.defaults, which those modules import too.
CODINGS = ("hash", "random", "none", "qr", "hashing-trick")
ID_CODINGS = ("qr", "hashing-trick")  # tables sized to cost what the codes would
GNNS = ("sage", "gcn")  # hashembed.train.model.GNN_TYPES
NODE_METRICS = ("accuracy", "roc_auc", "micro_f1")
LINK_METRIC = "hits@20"
DEFAULT_FANOUT = (15, 10, 5, 5)  # per hop, cut to the GNN's layers


def parse_fanout(text: str) -> tuple[int, ...]:
    """``"15,10"`` -> ``(15, 10)``; ``-1`` keeps every neighbour at that hop."""
    try:
        fanout = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--fanout {text!r}: expected integers such as 15,10") from None
    if not fanout or any(k == 0 or k < -1 for k in fanout):
        raise ConfigError(f"--fanout {text!r}: each hop keeps -1 (all) or a positive count")
    return fanout


def _flag(help: str, type=None, choices=None, task: str | None = None) -> dict:
    """Field metadata: the flag's help and argparse ``type``/``choices``; ``task`` marks a
    setting only node classification (``"node"``) or link prediction (``"link"``) takes: the
    other task refuses it when it differs from its default."""
    return {"help": help, "type": type, "choices": choices, "task": task}


HOPS_AUTO = "auto"
PROBED_HOPS = (1, 2, 3)  # what --hops auto chooses from


def parse_hops(text: str | int) -> int | str:
    """``"auto"`` or a walk length ``1 .. MAX_HOPS`` (``"2"`` -> ``2``)."""
    if text == HOPS_AUTO:
        return HOPS_AUTO
    try:
        hops = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--hops {text!r}: expected auto or an integer from 1 to "
                          f"{MAX_HOPS}") from None
    if isinstance(text, bool) or not 1 <= hops <= MAX_HOPS or str(hops) != str(text).strip():
        raise ConfigError(f"--hops {text!r}: expected auto or an integer from 1 to {MAX_HOPS}")
    return hops


def _split(text: str) -> str:
    parse_split(text)  # refuse a bad split when the flag is read
    return text


def _flag_type(parse):
    """``parse`` for argparse: a :class:`ConfigError` becomes argparse's own error with the
    same message (argparse would replace a ``ValueError``'s by "invalid … value")."""
    def parse_flag(text: str):
        try:
            return parse(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse_flag.__name__ = getattr(parse, "__name__", "value").lstrip("_")
    return parse_flag


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes one training run apart from its data (module docstring).

    ``None`` means "the default for this task" where the default depends on it: ``epochs``
    and ``lr`` (node classification: :class:`TrainConfig`'s; link prediction:
    :class:`LinkTrainConfig`'s), ``metric`` (``micro_f1`` for a multi-label graph, else
    ``accuracy``), ``decoder_hidden`` (the GNN's ``hidden``), ``fanout`` (15,10,5,5 cut to
    ``layers``), ``split`` (random 0.6/0.2/0.2) and ``batch_size`` (full batch).
    """

    # how nodes are embedded
    coding: str = field(default="hash", metadata=_flag(
        "hash/random codes (the method and its baseline), none (a full table), or qr / "
        "hashing-trick tables sized to cost what --bits-bit codes cost", choices=CODINGS))
    bits: int = field(default=128, metadata=_flag("c, bits per node", int))
    bits_per_index: int = field(default=DEFAULT_BITS_PER_INDEX, metadata=_flag(
        "b, bits read as one codebook index (1, 2, 4, 8, 16)", int))
    projection: str = field(default="gaussian", metadata=_flag(
        "distribution of the hash projection", choices=PROJECTIONS))
    hops: int | str = field(default=HOPS_AUTO, metadata=_flag(
        "K: hash codes project the walk counts (A + I)^K R, the walks of up to K steps from "
        "a node (1: the paper's coding, the node's neighbour set); auto: the K of 1, 2, 3 "
        "whose bits alone best predict the training labels (a linear probe, seconds, "
        "recorded in metrics.json; with --codes, the codes' own K; 1 for random codes and "
        "link prediction, which have no node labels to probe)", parse_hops))
    degree_field: bool = field(default=False, metadata=_flag(
        "codes carry one byte more, each node's degree bucket (half-octaves of 1 + degree), "
        "which the decoder embeds beside the codebooks", bool))
    bit_flip: float = field(default=BIT_FLIP, metadata=_flag(
        "while training, flip each code bit with this probability, drawn afresh each step (a "
        "regulariser, like dropout: the decoder learns to decode codes near a node's own, "
        "which test and unseen nodes need; 0: off). Hash and random codes only", float))
    codebook_dim: int = field(default=64, metadata=_flag("d_c, width of a codebook row", int))
    decoder_hidden: int | None = field(default=None, metadata=_flag(
        "the code decoder's MLP hidden width (default: --hidden)", int))
    dim: int = field(default=64, metadata=_flag("d, embedding width", int))
    # the GNN
    gnn: str = field(default="sage", metadata=_flag("message passing", choices=GNNS))
    layers: int = field(default=2, metadata=_flag("message-passing layers", int))
    hidden: int = field(default=128, metadata=_flag("the GNN's hidden width", int))
    dropout: float = field(default=0.5, metadata=_flag("dropout while training", float))
    # optimisation
    epochs: int | None = field(default=None, metadata=_flag(
        f"most epochs (default: {NODE_EPOCHS}; {LINK_EPOCHS} for link "
        "prediction, an epoch of which passes over every training edge)", int))
    patience: int = field(default=NODE_PATIENCE, metadata=_flag(
        "stop after this many epochs without a better validation score", int, task="node"))
    lr: float | None = field(default=None, metadata=_flag(
        f"Adam's learning rate (default: {NODE_LR}; {LINK_LR} for link "
        "prediction)", float))
    weight_decay: float = field(default=0.0, metadata=_flag("Adam's weight decay", float,
                                                            task="node"))
    metric: str | None = field(default=None, metadata=_flag(
        "early-stopping and reported metric (roc_auc: binary labels, e.g. tolokers; micro_f1: "
        "multi-label graphs, e.g. blogcatalog, one sigmoid per label; hits@20: link "
        "prediction on ogbl-ddi's official split). Default: hits@20 for ogbl-ddi, micro_f1 "
        "for a multi-label graph, else accuracy", choices=(*NODE_METRICS, LINK_METRIC)))
    seed: int = field(default=0, metadata=_flag(
        "seeds the split, the codes, initialisation, dropout and sampling", int))
    device: str = field(default="auto", metadata=_flag(
        "where the decoder and GNN train (auto: CUDA when available); the code table stays "
        "in host memory", choices=DEVICES))
    # which nodes train, and how
    split: str | None = field(default=None, metadata=_flag(
        "random:0.6,0.2,0.2 (default) | official[:K] | public", _split, task="node"))
    holdout_nodes: float | None = field(default=None, metadata=_flag(
        "take this fraction of the labelled nodes and their edges out before coding and "
        "training (kept in the run for hashembed bench inductive)", float, task="node"))
    batch_size: int | None = field(default=None, metadata=_flag(
        "train on sampled neighbourhoods of this many seed nodes (default: full batch)", int,
        task="node"))
    fanout: tuple[int, ...] | None = field(default=None, metadata=_flag(
        "with --batch-size: neighbours per hop, one per layer, e.g. 15,10 (-1: all; default "
        "15,10,5,5 cut to --layers)", parse_fanout, task="node"))
    eval_batch_size: int = field(default=EVAL_BATCH_SIZE, metadata=_flag(
        "with --batch-size: seed nodes per batch when scoring", int, task="node"))
    link_batch_size: int = field(default=LINK_BATCH_SIZE, metadata=_flag(
        "link prediction: training edges per step", int, task="link"))

    def __post_init__(self) -> None:
        for f in fields(self):  # types (a config file is not parsed by argparse), choices
            value, kind, choices = getattr(self, f.name), f.metadata["type"], f.metadata["choices"]
            if value is None:
                continue
            if kind is bool and not isinstance(value, bool):
                raise ConfigError(f"{f.name}={value!r} must be true or false")
            if kind in (int, float) and (isinstance(value, bool) or not isinstance(
                    value, int if kind is int else (int, float))):
                raise ConfigError(f"{f.name}={value!r} must be a number"
                                  + (" (an integer)" if kind is int else ""))
            if kind is int and value < 1 and f.name != "seed":
                raise ConfigError(f"{f.name}={value} must be at least 1")
            if choices is not None and value not in choices:
                raise ConfigError(f"{f.name} {value!r} is not one of {list(choices)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        check_bit_flip(self.bit_flip)
        if self.holdout_nodes is not None and not 0 < self.holdout_nodes < 1:
            raise ConfigError(f"holdout_nodes={self.holdout_nodes} must be in (0, 1)")
        if self.batch_size is None and self.eval_batch_size != EVAL_BATCH_SIZE:
            raise ConfigError("--eval-batch-size goes with --batch-size (full batch scores "
                              "every node at once)")
        if self.fanout is not None:
            object.__setattr__(self, "fanout", tuple(int(k) for k in self.fanout))
            if self.batch_size is None:
                raise ConfigError("--fanout goes with --batch-size (full batch uses every edge)")
            if len(self.fanout) != self.layers:
                raise ConfigError(f"--fanout has {len(self.fanout)} hops for a "
                                  f"{self.layers}-layer GNN; give one per layer")
        if self.split is not None:
            parse_split(self.split)
        object.__setattr__(self, "hops", parse_hops(self.hops))
        if self.degree_field and not self.coded:
            raise ConfigError(f"--degree-field is a byte of the codes: --coding {self.coding} "
                              "has none (use hash or random)")
        if self.coding == "random" and self.hops not in (1, HOPS_AUTO):
            raise ConfigError(f"--hops {self.hops} reads the graph: random codes do not")

    # -- the parts each stage takes ------------------------------------------------------

    @property
    def coded(self) -> bool:
        """Whether nodes are bit codes read by a decoder (``hash``/``random``)."""
        return self.coding in ("hash", "random")

    def code_spec(self, hops: int | None = None) -> CodeSpec | None:
        """How nodes are coded (``None`` without codes); ``hops`` resolves ``--hops auto``
        (without it, an automatic run's spec has ``hops=1``)."""
        if not self.coded:
            return None
        if hops is None:
            hops = 1 if self.hops == HOPS_AUTO else self.hops
        return CodeSpec(self.coding, bits=self.bits, bits_per_index=self.bits_per_index,
                        seed=self.seed, projection=self.projection, hops=hops,
                        degree_field=self.degree_field)

    def decoder_config(self) -> "DecoderConfig | None":
        """The code decoder's shape (``None`` without codes)."""
        from hashembed.train.decoder import DecoderConfig

        if not self.coded:
            return None
        return DecoderConfig(self.bits, self.bits_per_index, self.codebook_dim,
                             self.decoder_hidden or self.hidden, self.dim, self.degree_field,
                             self.bit_flip)

    def id_encoder(self, num_nodes: int) -> "IdEncoderConfig | None":
        """QR or the hashing trick sized to cost what ``bits``-bit codes cost; ``None`` for a
        full table (``coding="none"``) and for codes."""
        from hashembed.train.encoders import IdEncoderConfig

        if self.coding not in ID_CODINGS:
            return None
        return IdEncoderConfig.for_budget(self.coding.replace("-", "_"), num_nodes, self.dim,
                                          self.bits, self.seed)

    def model_config(self, num_outputs: int) -> "ModelConfig":
        """The GNN with ``num_outputs`` outputs (classes, labels, or a link run's node width)."""
        from hashembed.train.model import ModelConfig

        return ModelConfig(self.gnn, self.layers, self.hidden, num_outputs, self.dropout)

    def train_config(self) -> "TrainConfig":
        """Node-classification optimisation."""
        from hashembed.train.trainer import TrainConfig

        return TrainConfig(NODE_EPOCHS if self.epochs is None else self.epochs,
                           self.patience, NODE_LR if self.lr is None else self.lr,
                           self.weight_decay, self.seed, self.device)

    def batch_config(self) -> "BatchConfig | None":
        """Mini-batch settings, ``None`` for full batch."""
        from hashembed.train.minibatch import BatchConfig

        if self.batch_size is None:
            return None
        return BatchConfig(self.batch_size, self.fanout or DEFAULT_FANOUT[:self.layers],
                           self.eval_batch_size)

    def check_task(self, link: bool) -> None:
        """Refuse the settings the other task takes (see :func:`_flag`), before any work."""
        task = "link" if link else "node"
        given = [f"--{f.name.replace('_', '-')}" for f in fields(self)
                 if f.metadata["task"] not in (None, task) and getattr(self, f.name) != f.default]
        if link and self.metric not in (None, LINK_METRIC):
            given.append("--metric (other than hits@20)")
        if link and self.device == "cuda":
            given.append("--device cuda")
        if not link and self.metric == LINK_METRIC:
            raise ConfigError("--metric hits@20 scores link prediction (ogbl-ddi); this graph "
                              "trains node classification")
        if given:
            raise ConfigError(("link prediction (Hits@20, official split)" if link else
                               "node classification") + " does not take " + ", ".join(given))
        self.code_spec(), self.decoder_config()  # a bad code length fails here too
        self.link_config() if link else self.train_config()

    def task(self, multilabel: bool) -> "Task":
        """The loss and metric of node classification on a (multi-label) graph."""
        from hashembed.train.trainer import ACCURACY, MULTILABEL_MICRO_F1, ROC_AUC

        self.check_task(link=False)
        metric = self.metric or ("micro_f1" if multilabel else "accuracy")
        return {"accuracy": ACCURACY, "roc_auc": ROC_AUC, "micro_f1": MULTILABEL_MICRO_F1}[metric]

    def link_config(self) -> "LinkTrainConfig":
        """Link-prediction optimisation (:meth:`check_task` refuses node-only settings)."""
        from hashembed.train.linkpred import LinkTrainConfig

        epochs = LINK_EPOCHS if self.epochs is None else self.epochs
        return LinkTrainConfig(epochs=epochs, batch_size=self.link_batch_size,
                               lr=LINK_LR if self.lr is None else self.lr,
                               seed=self.seed, eval_every=max(1, epochs // 20))

    # -- saving and the CLI -----------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, strict: bool = True) -> "RunConfig":
        """A config from :meth:`to_dict`'s output; missing keys take their defaults. Unknown
        keys are refused, or with ``strict=False`` (a saved run, read by a later version)
        dropped with a warning."""
        return cls(**known_settings(data, strict))


def known_settings(data: dict, strict: bool = True) -> dict:
    """``data`` less keys that are no :class:`RunConfig` field (refused when ``strict``)."""
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown and strict:
        raise ConfigError(f"unknown run settings {unknown}; known: {sorted(known)}")
    if unknown:
        log.warning("ignoring run settings this version does not know: %s", unknown)
    return {k: v for k, v in data.items() if k in known}


def read_config_file(path: str | Path) -> dict:
    """The settings in a JSON file: a run's ``metrics.json`` (its ``config.run``) or a plain
    object of :class:`RunConfig` fields; refused by name if it is neither."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"--config {path}: cannot read a JSON object ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of run settings")
    if "config" in data and "run_id" in data:  # a run's metrics.json
        if not isinstance(data["config"], dict) or "run" not in data["config"]:
            raise ConfigError(f"--config {path}: this run's metrics.json predates saved run "
                              "configs (no config.run); give its settings as flags")
        data = data["config"]["run"]
    try:
        return known_settings(data)
    except ConfigError as e:
        raise ConfigError(f"--config {path}: {e}") from None


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`RunConfig` field. Flags not given are absent from the parsed
    namespace (``argparse.SUPPRESS``), so :func:`run_config_from_args` can tell a flag given
    from a default and lay the given ones over ``--config``."""
    for f in fields(RunConfig):
        meta = f.metadata
        default = None if f.default is MISSING else f.default
        shown = "" if default is None else f" (default: {default})"
        kind = meta["type"]
        if kind is bool:  # a switch: given means True
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name,
                                default=argparse.SUPPRESS, action="store_true",
                                help=meta["help"])
            continue
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name,
                            default=argparse.SUPPRESS,
                            type=kind if kind in (int, float, None) else _flag_type(kind),
                            choices=meta["choices"], help=meta["help"] + shown)


def run_config_from_args(args: argparse.Namespace, base: dict | None = None) -> RunConfig:
    """A config of ``base`` settings (e.g. :func:`read_config_file`'s; missing ones take
    their defaults) with the flags given in ``args`` laid over them, checked once whole."""
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
    return RunConfig(**{**(base or {}), **given})
