"""Mini-batch training: sampled neighbourhoods, only a batch's codes gathered and decoded.

A batch is PyG's :class:`~torch_geometric.data.Data` from :class:`~torch_geometric.loader.NodeLoader`
driven by :class:`~hashembed.train.sampler.CSRNeighborSampler`: ``n_id`` (global rows, seeds
first), ``edge_index`` (local), ``codes`` (``uint8 [N, c/8]``, gathered from the — possibly
memory-mapped — code table), ``y`` and ``batch_size``. The model runs on the sampled subgraph
and the loss is taken on the seeds. Validation and test are scored the same way (sampled
inference), so no ``n × d`` matrix is ever formed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from tqdm.auto import tqdm

from hashembed.errors import ConfigError
from hashembed.train.model import NodeClassifier
from hashembed.train.sampler import CSRNeighborSampler
from hashembed.train.trainer import (ACCURACY, EarlyStopping, FitResult, Task, TrainConfig,
                                     resolve_device)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    """Mini-batch settings.

    Args:
        batch_size: seed nodes per batch.
        fanout: neighbours kept per hop (``-1``: all); one entry per GNN layer.
        eval_batch_size: seed nodes per batch when scoring.
    """

    batch_size: int = 1024
    fanout: tuple[int, ...] = (15, 10)
    eval_batch_size: int = 4096

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("batch sizes must be at least 1")


def node_loader(indptr, indices, node_input: np.ndarray, labels: np.ndarray, seeds: np.ndarray,
                fanout: tuple[int, ...], batch_size: int, shuffle: bool,
                seed: int) -> NodeLoader:
    """A PyG ``NodeLoader`` over ``seeds`` whose batches carry ``codes``/``ids`` and ``y``.

    Args:
        node_input: ``uint8 [n, c/8]`` codes (memory-mapped is fine) or ``None`` for a table
            model, which reads the batch's ``n_id``.
    """
    n = int(indptr.shape[0]) - 1
    data = Data(num_nodes=n, y=torch.from_numpy(np.asarray(labels)),
                edge_index=torch.zeros((2, 0), dtype=torch.long))
    if node_input is not None:
        data.codes = node_input  # numpy: NodeLoader gathers only the batch's rows
    sampler = CSRNeighborSampler(indptr, indices, fanout, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return NodeLoader(data, sampler, input_nodes=torch.from_numpy(np.asarray(seeds)),
                      batch_size=batch_size, shuffle=shuffle, generator=generator)


def _forward(model: NodeClassifier, batch, device: torch.device) -> torch.Tensor:
    """Logits of the batch's seeds; the batch's codes (or ids) and edges move to ``device``."""
    x = batch.codes if "codes" in batch else batch.n_id
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    logits, _ = model(x.to(device), batch.edge_index.to(device))
    return logits[: batch.batch_size]


def score(model: NodeClassifier, loader: NodeLoader, task: Task,
          device: torch.device = torch.device("cpu")) -> float:
    """The task's metric over every seed of ``loader`` (sampled inference)."""
    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for batch in loader:
            logits.append(_forward(model, batch, device).cpu().numpy())
            targets.append(batch.y[: batch.batch_size].numpy())
    if not logits:
        return float("nan")
    return task.score(np.concatenate(logits), np.concatenate(targets))


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


def fit_minibatch(model: NodeClassifier, loaders: dict[str, NodeLoader], config: TrainConfig,
                  progress: bool = True, task: Task = ACCURACY) -> FitResult:
    """Train ``model`` in place on ``loaders["train"]``; early stopping on ``loaders["val"]``.

    Returns scores of the best-validation epoch for every loader given (``logits`` empty:
    they are never gathered for all nodes).
    """
    device = resolve_device(config.device)
    model.to(device)
    optimizers = make_optimizers(model, config)
    stopper = EarlyStopping(model, config.patience)
    epoch = 0
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        losses = []
        for batch in loaders["train"]:
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss = task.loss(_forward(model, batch, device),
                             batch.y[: batch.batch_size].to(device))
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            losses.append(loss.item())
        val = score(model, loaders["val"], task, device)
        stop = stopper.update(epoch, val)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{val:.3f}",
                        best=f"{stopper.best_val:.3f}")
        if stop:
            break
    bar.close()
    stopper.restore()
    scores = {name: score(model, loader, task, device) for name, loader in loaders.items()}
    model.cpu()
    return FitResult(scores=scores, best_epoch=stopper.best_epoch, epochs_run=epoch,
                     logits=np.zeros((0, 0), np.float32))


def memory_plan(num_nodes: int, code_bytes: int, model: NodeClassifier, embedding_dim: int
                ) -> dict[str, int]:
    """Bytes of what training holds, against an fp32 table of the same ``n × d`` with Adam."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    table = num_nodes * embedding_dim * 4
    return {"codes": num_nodes * code_bytes, "model_parameters": params,
            "adam_state": 2 * params, "fp32_table": table, "fp32_table_adam_state": 2 * table}
