"""One training run's settings: :class:`RunConfig`, the single source of ``hashembed train``'s flags.

A run is described by its data (``--dataset``/``--graph``/``--edges``, ``--codes``) and one
:class:`RunConfig`. The config is saved whole in the run's ``checkpoint.pt`` (``"run"``) and in
``metrics.json`` (``config.run``), and ``hashembed train --config FILE`` starts from a saved one
(flags given beside it override its fields). Each field is one flag: ``bits_per_index`` is
``--bits-per-index``; its help text and type live in the field's metadata, so a new setting is
added here once and appears in the CLI, the checkpoint and the metrics.

The parts each stage takes (:class:`~hashembed.codeformat.CodeSpec`,
:class:`~hashembed.train.decoder.DecoderConfig`, :class:`~hashembed.train.model.ModelConfig`,
:class:`~hashembed.train.trainer.TrainConfig`, …) are derived from it by its methods.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hashembed.codeformat import DEFAULT_BITS_PER_INDEX, PROJECTIONS, CodeSpec
from hashembed.errors import ConfigError
from hashembed.train.splits import parse_split

if TYPE_CHECKING:  # the derived parts import torch
    from hashembed.train.decoder import DecoderConfig
    from hashembed.train.encoders import IdEncoderConfig
    from hashembed.train.linkpred import LinkTrainConfig
    from hashembed.train.minibatch import BatchConfig
    from hashembed.train.model import ModelConfig
    from hashembed.train.trainer import Task, TrainConfig

# This module is imported to build the CLI's parser, so it imports no torch: the parts it
# derives come from their modules inside the methods, and the defaults the flags show live
# here and are imported by those modules.
CODINGS = ("hash", "random", "none", "qr", "hashing-trick")
GNNS = ("sage", "gcn")  # hashembed.train.model.GNN_TYPES
DEVICES = ("auto", "cpu", "cuda")
NODE_METRICS = ("accuracy", "roc_auc", "micro_f1")
LINK_METRIC = "hits@20"
NODE_EPOCHS, NODE_LR, NODE_PATIENCE = 300, 0.01, 50  # TrainConfig's defaults
LINK_EPOCHS, LINK_LR = 20, 0.005  # LinkTrainConfig's (an epoch passes over every edge)
LINK_BATCH_SIZE = 65536  # LinkTrainConfig's: training edges per step
EVAL_BATCH_SIZE = 4096  # BatchConfig's
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


def _flag(help: str, type=None, choices=None, node_only: bool = False) -> dict:
    """Field metadata: the flag's help and argparse ``type``/``choices``; ``node_only`` marks
    settings that link prediction (ogbl-ddi's protocol) refuses."""
    return {"help": help, "type": type, "choices": choices, "node_only": node_only}


def _split(text: str) -> str:
    parse_split(text)  # refuse a bad split when the flag is read
    return text


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
        "stop after this many epochs without a better validation score", int, node_only=True))
    lr: float | None = field(default=None, metadata=_flag(
        f"Adam's learning rate (default: {NODE_LR}; {LINK_LR} for link "
        "prediction)", float))
    weight_decay: float = field(default=0.0, metadata=_flag("Adam's weight decay", float,
                                                            node_only=True))
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
        "random:0.6,0.2,0.2 (default) | official[:K] | public", _split, node_only=True))
    holdout_nodes: float | None = field(default=None, metadata=_flag(
        "take this fraction of the labelled nodes and their edges out before coding and "
        "training (kept in the run for hashembed bench inductive)", float, node_only=True))
    batch_size: int | None = field(default=None, metadata=_flag(
        "train on sampled neighbourhoods of this many seed nodes (default: full batch)", int,
        node_only=True))
    fanout: tuple[int, ...] | None = field(default=None, metadata=_flag(
        "with --batch-size: neighbours per hop, one per layer, e.g. 15,10 (-1: all; default "
        "15,10)", parse_fanout, node_only=True))
    eval_batch_size: int = field(default=EVAL_BATCH_SIZE, metadata=_flag(
        "with --batch-size: seed nodes per batch when scoring", int, node_only=True))
    link_batch_size: int = field(default=LINK_BATCH_SIZE, metadata=_flag(
        "link prediction: training edges per step", int))

    def __post_init__(self) -> None:
        for f in fields(self):
            choices = f.metadata["choices"]
            value = getattr(self, f.name)
            if choices is not None and value is not None and value not in choices:
                raise ConfigError(f"{f.name} {value!r} is not one of {list(choices)}")
        for name in ("bits", "codebook_dim", "dim", "layers", "hidden", "patience",
                     "eval_batch_size", "link_batch_size", "decoder_hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.holdout_nodes is not None and not 0 < self.holdout_nodes < 1:
            raise ConfigError(f"holdout_nodes={self.holdout_nodes} must be in (0, 1)")
        if self.fanout is not None:
            object.__setattr__(self, "fanout", tuple(int(k) for k in self.fanout))
            if self.batch_size is None:
                raise ConfigError("--fanout goes with --batch-size (full batch uses every edge)")
            if len(self.fanout) != self.layers:
                raise ConfigError(f"--fanout has {len(self.fanout)} hops for a "
                                  f"{self.layers}-layer GNN; give one per layer")
        if self.split is not None:
            parse_split(self.split)

    # -- the parts each stage takes ------------------------------------------------------

    @property
    def coded(self) -> bool:
        """Whether nodes are bit codes read by a decoder (``hash``/``random``)."""
        return self.coding in ("hash", "random")

    def code_spec(self) -> CodeSpec | None:
        """How nodes are coded (``None`` without codes)."""
        if not self.coded:
            return None
        return CodeSpec(self.coding, bits=self.bits, bits_per_index=self.bits_per_index,
                        seed=self.seed, projection=self.projection)

    def decoder_config(self) -> "DecoderConfig | None":
        """The code decoder's shape (``None`` without codes)."""
        from hashembed.train.decoder import DecoderConfig

        if not self.coded:
            return None
        return DecoderConfig(self.bits, self.bits_per_index, self.codebook_dim,
                             self.decoder_hidden or self.hidden, self.dim)

    def id_encoder(self, num_nodes: int) -> "IdEncoderConfig | None":
        """QR or the hashing trick sized to cost what ``bits``-bit codes cost; ``None`` for a
        full table (``coding="none"``) and for codes."""
        from hashembed.train.encoders import IdEncoderConfig

        if self.coding not in ("qr", "hashing-trick"):
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

    def task(self, multilabel: bool) -> "Task":
        """The loss and metric of node classification on a (multi-label) graph."""
        from hashembed.train.trainer import ACCURACY, MULTILABEL_MICRO_F1, ROC_AUC

        metric = self.metric or ("micro_f1" if multilabel else "accuracy")
        if metric == LINK_METRIC:
            raise ConfigError("--metric hits@20 scores link prediction (ogbl-ddi); this graph "
                              "trains node classification")
        return {"accuracy": ACCURACY, "roc_auc": ROC_AUC, "micro_f1": MULTILABEL_MICRO_F1}[metric]

    def link_config(self) -> "LinkTrainConfig":
        """Link-prediction optimisation; refuses the settings only node runs take."""
        from hashembed.train.linkpred import LinkTrainConfig

        given = [f"--{f.name.replace('_', '-')}" for f in fields(self)
                 if f.metadata["node_only"] and getattr(self, f.name) != f.default]
        if self.metric not in (None, LINK_METRIC):
            given.append("--metric (other than hits@20)")
        if self.coding in ("qr", "hashing-trick"):
            given.append("--coding qr|hashing-trick")
        if self.device == "cuda":
            given.append("--device cuda")
        if given:
            raise ConfigError("link prediction (Hits@20, official split) does not take "
                              + ", ".join(given))
        epochs = LINK_EPOCHS if self.epochs is None else self.epochs
        return LinkTrainConfig(epochs=epochs, batch_size=self.link_batch_size,
                               lr=LINK_LR if self.lr is None else self.lr,
                               seed=self.seed, eval_every=max(1, epochs // 20))

    # -- saving and the CLI -----------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """A config from :meth:`to_dict`'s output (unknown keys are refused, missing ones take
        their defaults, so a config saved by an older version still loads)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown run settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """The config in a JSON file: a run's ``metrics.json`` (its ``config.run``) or a plain
        object of settings."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--config {path}: cannot read a JSON object ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("config"), dict) \
                and "run" in data["config"]:
            data = data["config"]["run"]
        if not isinstance(data, dict):
            raise ConfigError(f"--config {path}: expected a JSON object of run settings")
        return cls.from_dict(data)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`RunConfig` field. Flags not given are absent from the parsed
    namespace (``argparse.SUPPRESS``), so :func:`run_config_from_args` can tell a flag given
    from a default and lay the given ones over ``--config``."""
    for f in fields(RunConfig):
        meta = f.metadata
        default = None if f.default is MISSING else f.default
        shown = "" if default is None else f" (default: {default})"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name,
                            default=argparse.SUPPRESS, type=meta["type"],
                            choices=meta["choices"], help=meta["help"] + shown)


def run_config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """``base`` (default: every field's default) with the flags given in ``args`` laid over."""
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
    return replace(base or RunConfig(), **given)
