"""Mini-batch training: sampled neighbourhoods, only a batch's codes gathered and decoded.

A batch is PyG's :class:`~torch_geometric.data.Data` from :class:`~torch_geometric.loader.NodeLoader`
driven by :class:`~hashembed.train.sampler.CSRNeighborSampler`: ``n_id`` (global rows, seeds
first), ``edge_index`` (local), ``codes`` (``uint8 [N, c/8]``, gathered from the — possibly
memory-mapped — code table), ``y`` and ``batch_size``. The model runs on the sampled subgraph
and the loss is taken on the seeds. Validation and test are scored the same way (sampled
inference), so no ``n × d`` matrix is ever formed. The loop itself is
:func:`hashembed.train.trainer.fit`, shared with full-batch training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader

from hashembed.core.errors import ConfigError
from hashembed.train.model import NodeClassifier
from hashembed.train.defaults import EVAL_BATCH_SIZE
from hashembed.train.sampler import CSRNeighborSampler

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
    eval_batch_size: int = EVAL_BATCH_SIZE

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


def memory_plan(num_nodes: int, code_bytes: int, model: NodeClassifier, embedding_dim: int
                ) -> dict[str, int]:
    """Bytes of what training holds, against an fp32 table of the same ``n × d`` with Adam."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    table = num_nodes * embedding_dim * 4
    return {"codes": num_nodes * code_bytes, "model_parameters": params,
            "adam_state": 2 * params, "fp32_table": table, "fp32_table_adam_state": 2 * table}
