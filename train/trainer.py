"""Training a :class:`NodeClassifier` over batches, full or sampled, with early stopping on
validation: one :func:`fit` for both."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hashembed.core.errors import ConfigError
from hashembed.core import metrics
from hashembed.train.model import NodeClassifier
from hashembed.train.defaults import DEVICES, NODE_EPOCHS, NODE_LR, NODE_PATIENCE


def resolve_device(requested: str) -> torch.device:
    """The torch device for ``--device``: ``auto`` picks CUDA when available; ``cuda`` where
    torch sees no GPU is a :class:`ConfigError`, not a silent CPU run."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device here (use auto or cpu)")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        epochs: maximum full-batch epochs.
        patience: stop after this many epochs without a better validation score.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: seeds parameter initialisation and dropout.
        device: ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"`` or ``"cuda"``.
            The code table stays in host memory; a batch's codes (full batch: all of them)
            move to the device, where :class:`~hashembed.train.decoder.CodeDecoder` takes
            the fused Triton path. The saved weights are always on the CPU.
    """

    epochs: int = NODE_EPOCHS
    patience: int = NODE_PATIENCE
    lr: float = NODE_LR
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.patience < 1:
            raise ConfigError("epochs and patience must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr={self.lr} must be a positive finite number")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is not one of {DEVICES}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay} must be a non-negative finite "
                              "number")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Task:
    """What is predicted and how it is scored.

    Attributes:
        metric: the metric's name, as reported.
        loss: ``(logits [k, K], targets [k, …]) -> scalar`` on the training nodes.
        score: ``(logits float [k, K], targets [k, …]) -> float`` (numpy; higher is better).
    """

    metric: str
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    score: Callable[[np.ndarray, np.ndarray], float]


def _softmax_positive(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z[:, 1]) / np.exp(z).sum(axis=1)


ACCURACY = Task("accuracy", F.cross_entropy, lambda logits, y: metrics.accuracy(y, logits))
# binary classes, ranked by P(class 1): Tolokers' published metric
ROC_AUC = Task("roc_auc", F.cross_entropy,
               lambda logits, y: metrics.roc_auc(y, _softmax_positive(logits)))
# multi-hot targets float [n, L]: one sigmoid per label; scored by micro-F1 (top-k protocol)
MULTILABEL_MICRO_F1 = Task("micro_f1", F.binary_cross_entropy_with_logits,
                           lambda logits, y: metrics.multilabel_f1(y > 0.5, logits)[0])


class EarlyStopping:
    """Keeps a copy of the best-validation weights and says when patience has run out.

    Example:
        >>> stopper = EarlyStopping(model, patience=50)          # doctest: +SKIP
        >>> if stopper.update(epoch, val_score): break            # doctest: +SKIP
        >>> stopper.restore()                                     # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, patience: int):
        self.model, self.patience = model, patience
        self.best_val, self.best_epoch, self._state = -float("inf"), 0, None

    def update(self, epoch: int, val: float) -> bool:
        """Record epoch ``epoch``'s validation score; True when training should stop."""
        if val > self.best_val:
            self.best_val, self.best_epoch = val, epoch
            self._state = copy.deepcopy(self.model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        """Load the best weights back (if any epoch improved on ``-inf``)."""
        if self._state is not None:
            self.model.load_state_dict(self._state)
        self.model.eval()


@dataclass
class FitResult:
    """Scores of the best-validation epoch.

    Attributes:
        scores: ``{split: task metric}`` (``nan`` for a split without nodes).
        best_epoch, epochs_run: early-stopping bookkeeping.
        logits: ``{split: float32 [k, K]}`` the best model's outputs at the split's ``k`` scored
            nodes, in the loader's order, for further metrics.
        targets: ``{split: [k, …]}`` their targets, same order.
    """

    scores: dict[str, float]
    best_epoch: int
    epochs_run: int
    logits: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]


class FullBatch:
    """Full-batch training as a loader: one batch holding every node and the whole graph,
    scored at ``seeds``.

    Iterating yields one batch (none when ``seeds`` is empty) with the attributes a
    :class:`~torch_geometric.loader.NodeLoader` batch of
    :func:`~hashembed.train.minibatch.node_loader` has (``codes`` or ``n_id``,
    ``edge_index``, ``y``, ``batch_size``) plus ``seed_index``, the rows of ``seeds``.

    Args:
        node_input: codes ``uint8 [n, c/8]`` or ids ``int64 [n]``.
        edge_index: ``int64 [2, E]`` or a sparse ``adj_t``
            (:func:`~hashembed.train.model.sparse_adjacency`).
        labels: ``int64 [n]`` classes or ``float32 [n, L]`` multi-hot targets.
        seeds: ``int64 [k]`` the scored nodes.
        device: where the batch's tensors are kept (moved once, not every epoch).
    """

    def __init__(self, node_input: torch.Tensor, edge_index: torch.Tensor,
                 labels: torch.Tensor, seeds: torch.Tensor,
                 device: torch.device = torch.device("cpu")):
        seeds = seeds.to(device)
        self.batch = SimpleNamespace(
            edge_index=edge_index.to(device), y=labels.to(device)[seeds],
            seed_index=seeds, batch_size=int(seeds.numel()),
            **{"codes" if node_input.dtype == torch.uint8 else "n_id": node_input.to(device)})

    def __len__(self) -> int:
        return int(self.batch.batch_size > 0)

    def __iter__(self):
        return iter([self.batch][: len(self)])


def full_batch_loaders(node_input: torch.Tensor, edge_index: torch.Tensor,
                       labels: torch.Tensor, masks: dict[str, np.ndarray | torch.Tensor],
                       device: torch.device = torch.device("cpu")) -> dict[str, FullBatch]:
    """One :class:`FullBatch` per split of ``masks`` (``bool [n]`` each)."""
    edge_index, node_input = edge_index.to(device), node_input.to(device)
    return {split: FullBatch(node_input, edge_index, labels,
                             torch.as_tensor(np.nonzero(np.asarray(mask))[0]), device)
            for split, mask in masks.items()}


def seed_logits(model: NodeClassifier, batch, device: torch.device) -> torch.Tensor:
    """The model's outputs at a batch's scored nodes: ``[batch_size, K]``.

    The model runs on the batch's nodes (codes, else ids) and edges, moved to ``device``;
    the scored rows are ``batch.seed_index`` (:class:`FullBatch`) or the first
    ``batch.batch_size`` (sampled batches list their seeds first).
    """
    x = getattr(batch, "codes", None)
    if x is None:
        x = batch.n_id
    if isinstance(x, np.ndarray):  # NodeLoader gathers a numpy (memory-mapped) code table
        x = torch.from_numpy(x)
    logits, _ = model(x.to(device), batch.edge_index.to(device))
    rows = getattr(batch, "seed_index", None)
    return logits[rows] if rows is not None else logits[: batch.batch_size]


def predict(model: NodeClassifier, loader, device: torch.device, dist=None
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, targets)`` at every scored node of ``loader``, in its order (eval mode, no
    gradients); empty arrays when it has none. With ``dist``
    (:class:`~hashembed.train.distributed.Distributed`), each rank scores its share and every
    rank returns all of them, in rank order."""
    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for batch in loader:
            logits.append(seed_logits(model, batch, device).cpu().numpy())
            targets.append(batch.y[: batch.batch_size].cpu().numpy())
    logits, targets = ((np.concatenate(logits), np.concatenate(targets)) if logits else
                       (np.zeros((0, 0), np.float32), np.zeros(0)))
    if dist is not None:
        logits, targets = dist.gather(logits), dist.gather(targets)
    return logits, targets


def evaluate(model: NodeClassifier, loader, task: Task, device: torch.device,
             dist=None) -> float:
    """The task's metric over ``loader``'s scored nodes (``nan`` when it has none)."""
    logits, targets = predict(model, loader, device, dist)
    return task.score(logits, targets) if len(targets) else float("nan")


def make_optimizers(model: torch.nn.Module, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam for the dense parameters, and ``SparseAdam`` (no weight decay) for embedding
    tables with sparse gradients: a batch touches a few thousand rows of a table, and only
    those rows' moments are read and written, instead of all ``n × d`` every step."""
    sparse = [p for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse
              for p in m.parameters()]
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids]
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam(dense, lr=config.lr, weight_decay=config.weight_decay)]
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=config.lr))
    return optimizers


def fit(model: NodeClassifier, loaders: dict, config: TrainConfig, progress: bool = True,
        task: Task = ACCURACY, dist=None) -> FitResult:
    """Train ``model`` in place on ``loaders["train"]``, early stopping on ``loaders["val"]``;
    on return it holds the best-validation weights.

    One loop for both regimes: full batch is :func:`full_batch_loaders` (one step an epoch
    over the whole graph), mini-batch is :func:`~hashembed.train.minibatch.node_loader`
    (sampled neighbourhoods, scored by sampled inference, no ``n × d`` matrix).

    Args:
        loaders: ``{"train", "val", …}``: iterables of batches (see :func:`seed_logits`);
            every loader given is scored at the end.
        task: loss and validation metric (:data:`ACCURACY`, :data:`ROC_AUC`,
            :data:`MULTILABEL_MICRO_F1`); targets are ``int64`` classes or ``float32``
            multi-hot rows.
        dist: a :class:`~hashembed.train.distributed.Distributed` job: the model trains
            wrapped in DDP, each loader holds this rank's share, scores are gathered (every
            rank stops at the same epoch); a loader's ``scoring`` loader, where it has one,
            scores its split at the end.
    """
    if len(loaders["train"]) == 0 or len(loaders["val"]) == 0:
        raise ConfigError("the split leaves no training or no validation nodes")
    device = resolve_device(config.device)
    model.to(device)
    trained = model if dist is None else dist.wrap(model, device)
    optimizers = make_optimizers(model, config)
    stopper = EarlyStopping(model, config.patience)
    epoch = 0
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch",
               disable=not progress or (dist is not None and not dist.is_writer))
    for epoch in bar:
        model.train()
        losses = []
        for batch in loaders["train"]:
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss = task.loss(seed_logits(trained, batch, device),
                             batch.y[: batch.batch_size].to(device))
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            losses.append(loss.item())
        val = evaluate(model, loaders["val"], task, device, dist)
        stop = stopper.update(epoch, val)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{val:.3f}",
                        best=f"{stopper.best_val:.3f}")
        if stop:
            break
    bar.close()
    stopper.restore()
    outputs = {name: predict(model, getattr(loader, "scoring", loader), device, dist)
               for name, loader in loaders.items()}
    model.cpu()
    return FitResult(
        scores={name: task.score(*out) if len(out[1]) else float("nan")
                for name, out in outputs.items()},
        best_epoch=stopper.best_epoch, epochs_run=epoch,
        logits={name: out[0] for name, out in outputs.items()},
        targets={name: out[1] for name, out in outputs.items()})


def majority_accuracy(labels: np.ndarray, masks: dict[str, np.ndarray]) -> float:
    """Test accuracy of always predicting the most common training class."""
    if not masks["test"].any():
        return float("nan")
    majority = np.bincount(labels[masks["train"]]).argmax()
    return float((labels[masks["test"]] == majority).mean())
