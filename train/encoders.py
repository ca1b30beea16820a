"""Baseline node encoders for comparison with hash codes: node ids ``int64 [N]`` -> ``[N, d]``.

- :class:`HashingTrickEmbedding`: ``K`` shared rows, node ``v`` uses row ``h(v) mod K`` with a
  seeded universal hash ``h(v) = (a·v + b) mod p`` (Weinberger et al. 2009).
- :class:`QREmbedding`: the quotient-remainder (compositional) trick (Shi et al., KDD 2020):
  ``e(v) = Q[v // K] ⊙ R[v mod K]`` with ``ceil(n/K)`` and ``K`` rows.
- :class:`DegreeEmbedding`: a row per log2 degree bucket; only degree is known about a node.

The full table is ``torch.nn.Embedding`` and the method itself is
:class:`~hashembed.train.decoder.CodeDecoder`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

_PRIME = 2_147_483_647  # 2^31 - 1


class HashingTrickEmbedding(nn.Module):
    """``K`` rows of width ``d`` shared by all ``n`` nodes through a seeded hash."""

    def __init__(self, num_rows: int, dim: int, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        # a, b < 2^31 and ids < 2^31, so a·v + b fits in int64
        self.a, self.b = int(rng.integers(1, _PRIME)), int(rng.integers(0, _PRIME))
        self.num_rows = num_rows
        self.table = nn.Embedding(num_rows, dim)
        nn.init.normal_(self.table.weight)

    def forward(self, node_ids: torch.Tensor) -> torch.Tensor:
        return self.table((self.a * node_ids + self.b) % _PRIME % self.num_rows)


class QREmbedding(nn.Module):
    """Quotient-remainder trick with remainder size ``K``: two tables, product of their rows."""

    def __init__(self, num_nodes: int, num_rows: int, dim: int):
        super().__init__()
        self.num_rows = num_rows
        self.quotient = nn.Embedding(math.ceil(num_nodes / num_rows), dim)
        self.remainder = nn.Embedding(num_rows, dim)
        nn.init.normal_(self.quotient.weight)
        nn.init.normal_(self.remainder.weight)

    def forward(self, node_ids: torch.Tensor) -> torch.Tensor:
        return (self.quotient(torch.div(node_ids, self.num_rows, rounding_mode="floor"))
                * self.remainder(node_ids % self.num_rows))


class DegreeEmbedding(nn.Module):
    """One row per bucket ``floor(log2(1 + degree))``."""

    def __init__(self, degrees: np.ndarray, dim: int):
        super().__init__()
        buckets = np.floor(np.log2(1 + np.asarray(degrees, dtype=np.float64))).astype(np.uint8)
        # one byte per node, like a code
        self.register_buffer("bucket_of_node", torch.from_numpy(buckets), persistent=False)
        self.table = nn.Embedding(int(buckets.max()) + 1, dim)
        nn.init.normal_(self.table.weight)

    def forward(self, node_ids: torch.Tensor) -> torch.Tensor:
        return self.table(self.bucket_of_node[node_ids].long())
