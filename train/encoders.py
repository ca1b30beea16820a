"""Baseline node encoders for comparison with hash codes: node ids ``int64 [N]`` -> ``[N, d]``.

- :class:`HashingTrickEmbedding`: ``K`` shared rows, node ``v`` uses row ``h(v) mod K`` with a
  seeded universal hash ``h(v) = (a·v + b) mod p`` (Weinberger et al. 2009).
- :class:`QREmbedding`: the quotient-remainder (compositional) trick (Shi et al., KDD 2020):
  ``e(v) = Q[v // K] ⊙ R[v mod K]`` with ``ceil(n/K)`` and ``K`` rows.
- :class:`DegreeEmbedding`: a row per log2 degree bucket; only degree is known about a node.

The full table is ``torch.nn.Embedding`` and the method itself is
:class:`~hashembed.train.decoder.CodeDecoder`. :class:`IdEncoderConfig` names and sizes the
encoders of node ids (table, QR, hashing trick) so that a run can train one and a checkpoint
can rebuild it; :func:`budget_rows` / :func:`qr_rows` size the compressed ones to cost what
``c``-bit codes cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

_PRIME = 2_147_483_647  # 2^31 - 1


class HashingTrickEmbedding(nn.Module):
    """``K`` rows of width ``d`` shared by all ``n`` nodes through a seeded hash."""

    def __init__(self, num_rows: int, dim: int, seed: int = 0, sparse: bool = False):
        super().__init__()
        rng = np.random.default_rng(seed)
        # a, b < 2^31 and ids < 2^31, so a·v + b fits in int64
        self.a, self.b = int(rng.integers(1, _PRIME)), int(rng.integers(0, _PRIME))
        self.num_rows = num_rows
        self.table = nn.Embedding(num_rows, dim, sparse=sparse)
        nn.init.normal_(self.table.weight)

    def forward(self, node_ids: torch.Tensor) -> torch.Tensor:
        return self.table((self.a * node_ids + self.b) % _PRIME % self.num_rows)


class QREmbedding(nn.Module):
    """Quotient-remainder trick with remainder size ``K``: two tables, product of their rows."""

    def __init__(self, num_nodes: int, num_rows: int, dim: int, sparse: bool = False):
        super().__init__()
        self.num_rows = num_rows
        self.quotient = nn.Embedding(math.ceil(num_nodes / num_rows), dim, sparse=sparse)
        self.remainder = nn.Embedding(num_rows, dim, sparse=sparse)
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


def budget_rows(num_nodes: int, bits: int, dim: int) -> int:
    """Rows of width ``d`` (fp32) costing as much as ``c``-bit codes: ``n·c/8 / (4d)``."""
    return max(1, round(num_nodes * bits / 8 / (4 * dim)))


def qr_rows(num_nodes: int, bits: int, dim: int) -> int:
    """Remainder size ``K`` with ``ceil(n/K) + K`` about the budget (``K >= sqrt(n)``)."""
    budget = budget_rows(num_nodes, bits, dim)
    root = math.isqrt(num_nodes - 1) + 1
    if budget <= 2 * root:
        return root
    return int((budget + math.sqrt(budget * budget - 4 * num_nodes)) / 2)


ID_ENCODERS = ("table", "qr", "hashing_trick")


@dataclass(frozen=True)
class IdEncoderConfig:
    """An encoder of node ids (``int64 [N]`` -> ``float32 [N, d]``), as a run records it.

    Attributes:
        kind: ``"table"`` (``nn.Embedding [n, d]``), ``"qr"`` or ``"hashing_trick"``.
        num_nodes: ``n``.
        dim: ``d``.
        rows: ``K`` of QR (remainder rows) or the hashing trick (shared rows); 0 for a table.
        seed: the hashing trick's hash seed.
    """

    kind: str
    num_nodes: int
    dim: int
    rows: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ID_ENCODERS:
            raise ValueError(f"id encoder {self.kind!r} is not one of {ID_ENCODERS}")

    @classmethod
    def for_budget(cls, kind: str, num_nodes: int, dim: int, bits: int, seed: int = 0
                   ) -> "IdEncoderConfig":
        """``kind`` sized to cost what ``bits``-bit codes cost (a table: its full size)."""
        rows = {"table": 0, "qr": qr_rows(num_nodes, bits, dim),
                "hashing_trick": budget_rows(num_nodes, bits, dim)}[kind]
        return cls(kind, num_nodes, dim, rows, seed)

    def build(self, sparse: bool = False) -> nn.Module:
        """The module, N(0, 1) initialised; ``sparse`` gives its tables sparse gradients (for
        ``torch.optim.SparseAdam``). The module carries this config as ``id_config``."""
        if self.kind == "table":
            module: nn.Module = nn.Embedding(self.num_nodes, self.dim, sparse=sparse)
            nn.init.normal_(module.weight, std=1.0)
        elif self.kind == "qr":
            module = QREmbedding(self.num_nodes, self.rows, self.dim, sparse=sparse)
        else:
            module = HashingTrickEmbedding(self.rows, self.dim, self.seed, sparse=sparse)
        module.id_config = self
        return module

    def to_dict(self) -> dict:
        return asdict(self)
