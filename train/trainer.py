"""Full-batch training of a :class:`NodeClassifier` with early stopping on validation."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hashembed.errors import ConfigError
from hashembed.train import metrics
from hashembed.train.model import NodeClassifier


DEVICES = ("auto", "cpu", "cuda")


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

    epochs: int = 300
    patience: int = 50
    lr: float = 0.01
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
        scores: ``{split: task metric}``.
        best_epoch, epochs_run: early-stopping bookkeeping.
        logits: ``float32 [n, K]`` outputs of the best model, for further metrics.
    """

    scores: dict[str, float]
    best_epoch: int
    epochs_run: int
    logits: np.ndarray


def fit(model: NodeClassifier, node_input: torch.Tensor, edge_index: torch.Tensor,
        labels: torch.Tensor, masks: dict[str, torch.Tensor], config: TrainConfig,
        progress: bool = True, task: Task = ACCURACY) -> FitResult:
    """Train ``model`` in place; on return it holds the best-validation weights.

    Args:
        node_input: packed codes ``uint8 [n, c/8]`` or ids ``int64 [n]`` (what the encoder takes).
        edge_index: ``int64 [2, E]``, or a sparse ``adj_t``
            (:func:`~hashembed.train.model.sparse_adjacency`).
        labels: targets for ``task``: ``int64 [n]`` classes (``-1`` where unlabelled; never in
            a mask) or ``float32 [n, L]`` multi-hot.
        masks: ``bool [n]`` for ``"train"``, ``"val"``, ``"test"``.
        task: loss and validation metric (:data:`ACCURACY`, :data:`ROC_AUC`,
            :data:`MULTILABEL_MICRO_F1`).
    """
    if int(masks["train"].sum()) == 0 or int(masks["val"].sum()) == 0:
        raise ConfigError("the split leaves no training or no validation nodes")
    device = resolve_device(config.device)
    labels_np = labels.numpy()
    masks_np = {name: mask.numpy() for name, mask in masks.items()}
    model.to(device)
    node_input, edge_index = node_input.to(device), edge_index.to(device)
    labels = labels.to(device)
    masks = {name: mask.to(device) for name, mask in masks.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)

    def evaluate(split: str, logits: torch.Tensor) -> float:
        mask = masks_np[split]
        return task.score(logits.cpu().numpy()[mask], labels_np[mask]) if mask.any() \
            else float("nan")

    stopper = EarlyStopping(model, config.patience)
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not progress)
    epoch = 0
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        logits, _ = model(node_input, edge_index)
        loss = task.loss(logits[masks["train"]], labels[masks["train"]])
        loss.backward()
        optimizer.step()

        model.eval()
        with torch.no_grad():
            logits, _ = model(node_input, edge_index)
        val = evaluate("val", logits)
        stop = stopper.update(epoch, val)
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val:.3f}",
                        best=f"{stopper.best_val:.3f}")
        if stop:
            break
    bar.close()
    stopper.restore()
    with torch.no_grad():
        logits, _ = model(node_input, edge_index)
    scores = {name: evaluate(name, logits) for name in masks}
    model.cpu()
    return FitResult(scores=scores, best_epoch=stopper.best_epoch, epochs_run=epoch,
                     logits=logits.cpu().numpy())


def majority_accuracy(labels: np.ndarray, masks: dict[str, np.ndarray]) -> float:
    """Test accuracy of always predicting the most common training class."""
    if not masks["test"].any():
        return float("nan")
    majority = np.bincount(labels[masks["train"]]).argmax()
    return float((labels[masks["test"]] == majority).mean())
