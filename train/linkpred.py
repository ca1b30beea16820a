"""Link prediction (ogbl-ddi protocol): a GNN encodes nodes, an MLP scores ``h_u ⊙ h_v``.

Training follows OGB's reference for ogbl-ddi: each step runs the GNN over the whole training
graph, scores a batch of training edges and as many uniformly random node pairs as negatives,
and minimises ``-log σ(s_pos) - log(1 - σ(s_neg))``. Evaluation is Hits@20 on the official
validation and test edges (:func:`hashembed.core.metrics.hits_at_k`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hashembed.graph.datasets import read_ogbl_ddi_train_edges
from hashembed.core.metrics import hits_at_k
from hashembed.train.model import sparse_adjacency
from hashembed.train.defaults import LINK_BATCH_SIZE, LINK_EPOCHS, LINK_LR


@dataclass(frozen=True)
class LinkSplit:
    """Official edges: ``train [E, 2]``; ``valid``/``test`` positives and negatives ``[*, 2]``."""

    train: np.ndarray
    valid_pos: np.ndarray
    valid_neg: np.ndarray
    test_pos: np.ndarray
    test_neg: np.ndarray


def load_ogbl_ddi_split(root: str | Path) -> LinkSplit:
    """The official ogbl-ddi split (train = ``raw/edge.csv.gz``, see its SOURCE.md)."""
    folder = Path(root) / "ogbl-ddi"
    train = read_ogbl_ddi_train_edges(root)
    valid = np.load(folder / "split" / "target" / "valid.npz")
    test = np.load(folder / "split" / "target" / "test.npz")
    return LinkSplit(train, valid["edge"], valid["edge_neg"], test["edge"], test["edge_neg"])


class LinkScorer(nn.Module):
    """MLP on ``h_u ⊙ h_v``: ``[E, h]`` pairs -> ``[E]`` logits."""

    def __init__(self, dim: int, hidden: int, layers: int = 3, dropout: float = 0.5):
        super().__init__()
        dims = [dim] + [hidden] * (layers - 1) + [1]
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.dropout = dropout

    def forward(self, h_u: torch.Tensor, h_v: torch.Tensor) -> torch.Tensor:
        x = h_u * h_v
        for linear in self.linears[:-1]:
            x = F.dropout(linear(x).relu(), self.dropout, self.training)
        return self.linears[-1](x).squeeze(-1)


@dataclass(frozen=True)
class LinkTrainConfig:
    epochs: int = LINK_EPOCHS
    batch_size: int = LINK_BATCH_SIZE
    lr: float = LINK_LR
    eval_every: int = 2
    seed: int = 0


@torch.no_grad()
def _score(model, scorer, node_input, edge_index, pairs: np.ndarray,
           batch: int = 262144) -> np.ndarray:
    h, _ = model(node_input, edge_index)
    pairs_t = torch.from_numpy(pairs)
    return torch.cat([scorer(h[p[:, 0]], h[p[:, 1]]) for p in pairs_t.split(batch)]).numpy()


def evaluate_links(model, scorer, node_input, edge_index, split: LinkSplit) -> dict[str, float]:
    """Hits@20 on the official validation and test edges."""
    model.eval()
    scorer.eval()
    scores = {name: _score(model, scorer, node_input, edge_index, getattr(split, name))
              for name in ("valid_pos", "valid_neg", "test_pos", "test_neg")}
    return {"val": hits_at_k(scores["valid_pos"], scores["valid_neg"], 20),
            "test": hits_at_k(scores["test_pos"], scores["test_neg"], 20)}


def fit_links(model: nn.Module, scorer: LinkScorer, node_input: torch.Tensor, num_nodes: int,
              split: LinkSplit, config: LinkTrainConfig, progress: bool = True) -> dict:
    """Train ``model`` (a GNN returning ``(h [n, h], _)``) and ``scorer``; keep the best-validation
    weights. Returns ``{"val", "test", "best_epoch"}`` (Hits@20)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    train = torch.from_numpy(split.train)
    edge_index = sparse_adjacency(torch.cat([train.T, train.T.flip(0)], dim=1), num_nodes)
    params = list(model.parameters()) + list(scorer.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr)
    best = {"val": -1.0, "test": float("nan"), "best_epoch": 0}
    best_state = None
    bar = tqdm(range(1, config.epochs + 1), desc="link train", unit="epoch",
               disable=not progress)
    for epoch in bar:
        model.train()
        scorer.train()
        for batch in torch.randperm(train.shape[0], generator=gen).split(config.batch_size):
            optimizer.zero_grad()
            h, _ = model(node_input, edge_index)
            pos = train[batch]
            neg = torch.randint(0, num_nodes, pos.shape, generator=gen)
            loss = (F.softplus(-scorer(h[pos[:, 0]], h[pos[:, 1]])).mean()
                    + F.softplus(scorer(h[neg[:, 0]], h[neg[:, 1]])).mean())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            scores = evaluate_links(model, scorer, node_input, edge_index, split)
            if scores["val"] > best["val"]:
                best = {**scores, "best_epoch": epoch}
                best_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(scorer.state_dict()))
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{scores['val']:.3f}")
    if best_state is not None:
        model.load_state_dict(best_state[0])
        scorer.load_state_dict(best_state[1])
    return best
