"""The trainable code decoder: packed bits -> node embedding.

    packed uint8 [B, c/8] --(codes_to_indices)--> k int64 [B, m]
      --(sum_i C_i[k_i], C: [m, 2^b, d_c])--> z [B, d_c]
      --(MLP: Linear d_c->h, ReLU, Linear h->d)--> e [B, d]

Memory per node is the code, ``c/8`` bytes; the decoder's parameters
(``m·2^b·d_c + d_c·h + h + h·d + d`` floats) are shared by all nodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hashembed.codeformat import CodeSpec
from hashembed.errors import ConfigError
from hashembed.kernels.reference import code_decode_reference


@dataclass(frozen=True)
class DecoderConfig:
    """Shape of a :class:`CodeDecoder`.

    Args:
        bits: ``c``.
        bits_per_index: ``b``.
        codebook_dim: ``d_c``, width of each codebook row.
        hidden_dim: ``h``, the MLP's hidden width.
        embedding_dim: ``d``, the output embedding width.
    """

    bits: int = 128
    bits_per_index: int = 8
    codebook_dim: int = 64
    hidden_dim: int = 128
    embedding_dim: int = 64

    def __post_init__(self) -> None:
        CodeSpec(bits=self.bits, bits_per_index=self.bits_per_index)  # validates c and b
        for name in ("codebook_dim", "hidden_dim", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"DecoderConfig.{name} must be positive")

    @property
    def num_codebooks(self) -> int:
        return self.bits // self.bits_per_index

    def to_dict(self) -> dict:
        return asdict(self)


class CodeDecoder(nn.Module):
    """Decode packed node codes into embeddings (codebook sum + MLP).

    Args:
        config: a :class:`DecoderConfig`.

    Shapes:
        input: ``uint8 [B, c/8]`` packed codes.
        output: ``float32 [B, d]``.

    Example:
        >>> dec = CodeDecoder(DecoderConfig(bits=32, bits_per_index=8, embedding_dim=16))
        >>> dec(torch.zeros(5, 4, dtype=torch.uint8)).shape
        torch.Size([5, 16])
    """

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        m, rows = config.num_codebooks, 1 << config.bits_per_index
        # std 1/sqrt(m): the sum of m rows starts with unit variance per coordinate.
        self.codebooks = nn.Parameter(torch.randn(m, rows, config.codebook_dim) / m ** 0.5)
        self.mlp = nn.Sequential(
            nn.Linear(config.codebook_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.embedding_dim),
        )

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        if packed.dim() != 2 or packed.shape[1] * 8 != self.config.bits:
            raise ConfigError(f"{self!r}: codes have shape {list(packed.shape)}, expected "
                              f"[B, {self.config.bits // 8}]")
        summed = code_decode_reference(packed, self.codebooks, self.config.bits_per_index)
        return self.mlp(summed)

    def extra_repr(self) -> str:
        c = self.config
        return (f"c={c.bits}, b={c.bits_per_index}, m={c.num_codebooks}, d_c={c.codebook_dim}, "
                f"d={c.embedding_dim}")
