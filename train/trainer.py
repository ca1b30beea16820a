"""Full-batch training of a :class:`NodeClassifier` with early stopping on validation."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hashembed.errors import ConfigError
from hashembed.train.model import NodeClassifier


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        epochs: maximum full-batch epochs.
        patience: stop after this many epochs without a better validation score.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: seeds parameter initialisation and dropout.
    """

    epochs: int = 300
    patience: int = 50
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.patience < 1:
            raise ConfigError("epochs and patience must be at least 1")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("lr must be positive and weight_decay non-negative")

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of ``mask`` nodes whose arg-max class equals the label."""
    if int(mask.sum()) == 0:
        return float("nan")
    return float((logits[mask].argmax(-1) == labels[mask]).float().mean())


@dataclass
class FitResult:
    """Scores of the best-validation epoch: ``scores[split]`` accuracy; ``best_epoch``."""

    scores: dict[str, float]
    best_epoch: int
    epochs_run: int


def fit(model: NodeClassifier, node_input: torch.Tensor, edge_index: torch.Tensor,
        labels: torch.Tensor, masks: dict[str, torch.Tensor], config: TrainConfig,
        progress: bool = True) -> FitResult:
    """Train ``model`` in place; on return it holds the best-validation weights.

    Args:
        node_input: packed codes ``uint8 [n, c/8]`` or ids ``int64 [n]`` (what the encoder takes).
        edge_index: ``int64 [2, E]``.
        labels: ``int64 [n]`` (``-1`` where unlabelled; never in a mask).
        masks: ``bool [n]`` for ``"train"``, ``"val"``, ``"test"``.
    """
    if int(masks["train"].sum()) == 0 or int(masks["val"].sum()) == 0:
        raise ConfigError("the split leaves no training or no validation nodes")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    best_val, best_epoch, best_state = -1.0, 0, None
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not progress)
    epoch = 0
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        logits, _ = model(node_input, edge_index)
        loss = F.cross_entropy(logits[masks["train"]], labels[masks["train"]])
        loss.backward()
        optimizer.step()

        model.eval()
        with torch.no_grad():
            logits, _ = model(node_input, edge_index)
        val = accuracy(logits, labels, masks["val"])
        if val > best_val:
            best_val, best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val:.3f}", best=f"{best_val:.3f}")
        if epoch - best_epoch >= config.patience:
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        logits, _ = model(node_input, edge_index)
    scores = {name: accuracy(logits, labels, mask) for name, mask in masks.items()}
    return FitResult(scores=scores, best_epoch=best_epoch, epochs_run=epoch)


def majority_accuracy(labels: np.ndarray, masks: dict[str, np.ndarray]) -> float:
    """Test accuracy of always predicting the most common training class."""
    majority = np.bincount(labels[masks["train"]]).argmax()
    return float((labels[masks["test"]] == majority).mean())
