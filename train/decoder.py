"""The trainable code decoder: packed bits -> node embedding.

    packed uint8 [B, c/8] --(codes_to_indices)--> k int64 [B, m]
      --(sum_i C_i[k_i], C: [m, 2^b, d_c])--> z [B, d_c]
      --(MLP: Linear d_c->h, ReLU, Linear h->d)--> e [B, d]

With the degree field (:class:`~hashembed.core.codeformat.CodeSpec`'s ``degree_field``) a
row has one more byte, the node's degree bucket ``g``, and its own table ``D: [256, d_c]``
joins the sum: ``z = sum_i C_i[k_i] + D[g]``. ``D`` starts at zero, so a decoder with the
field starts as one without it.

Bit flips (``bit_flip = q``): while training, each of a row's ``c`` code bits is flipped with
probability ``q``, drawn afresh for every row of every step (the degree byte is left alone),
as dropout does for activations; at evaluation and in the exported graph the codes are read
as they are. The decoder is then trained on codes near each node's own, so it maps nearby
codes to nearby embeddings instead of memorising each node's exact code, which helps test
nodes and unseen nodes, whose exact codes no training loss reached (docs/accuracy.md,
"Bit flips").

Memory per node is the code, ``c/8`` bytes; the decoder's parameters
(``m·2^b·d_c + d_c·h + h + h·d + d`` floats) are shared by all nodes.

The codebook sum runs in the fused Triton kernel (:mod:`hashembed.kernels.decode`) for CUDA
tensors and in the PyTorch reference elsewhere and under ONNX export; ``backend`` forces one.

Folding the first Linear into the codebooks (``W1: [h, d_c]``, ``b1: [h]``)::

    W1 z + b1 = W1 (sum_i C_i[k_i]) + b1 = sum_i (C_i W1^T)[k_i] + b1

so the decode can gather rows of the folded codebooks ``C_i W1^T: [2^b, h]`` and skip the
``d_c x h`` product per node. It saves work when ``h <= d_c`` (narrower rows to gather and
sum); with ``h > d_c`` it would widen them, so by default it folds only then. The folded
codebooks are recomputed from ``C`` and ``W1`` on each call (``m 2^b d_c h`` flops, shared by
the batch), so training updates ``C`` and ``W1`` as before; ONNX Runtime folds that product
into a constant when it loads an exported graph.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hashembed.core.codeformat import DEFAULT_BITS_PER_INDEX, DEGREE_BUCKETS, CodeSpec
from hashembed.core.errors import ConfigError
from hashembed.kernels.reference import MAX_CODEBOOK_DIM, code_decode_reference
from hashembed.train.defaults import check_bit_flip


def kernel_serves(is_cuda: bool, dtype: torch.dtype, width: int) -> bool:
    """Whether ``backend="auto"`` takes the fused Triton kernel: CUDA tensors, fp32 codebooks
    (its autograd keeps fp32), rows of at most ``MAX_CODEBOOK_DIM``, and
    Triton importable. Anything else (bf16 or fp64 models, wider rows, no Triton) falls back
    to the PyTorch reference instead of failing."""
    if not is_cuda or dtype != torch.float32 or width > MAX_CODEBOOK_DIM:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class DecoderConfig:
    """Shape of a :class:`CodeDecoder`.

    Args:
        bits: ``c``.
        bits_per_index: ``b``.
        codebook_dim: ``d_c``, width of each codebook row.
        hidden_dim: ``h``, the MLP's hidden width.
        embedding_dim: ``d``, the output embedding width.
        degree_field: rows end with a degree byte, embedded by a table of its own.
        bit_flip: ``q``, the probability that each code bit is flipped while training
            (module docstring); ``0`` reads every code as it is. Not a shape: the trained
            weights decode the same codes whatever it was.
    """

    bits: int = 128
    bits_per_index: int = DEFAULT_BITS_PER_INDEX
    codebook_dim: int = 64
    hidden_dim: int = 128
    embedding_dim: int = 64
    degree_field: bool = False
    bit_flip: float = 0.0

    def __post_init__(self) -> None:
        _ = self.code_format  # building it validates c, b and the field
        check_bit_flip(self.bit_flip)
        for name in ("codebook_dim", "hidden_dim", "embedding_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"DecoderConfig.{name} must be positive")

    @property
    def num_codebooks(self) -> int:
        return self.bits // self.bits_per_index

    @property
    def code_format(self) -> CodeSpec:
        """How the rows it reads are laid out (the code spec's reading half: ``c``, ``b``
        and the degree byte)."""
        return CodeSpec(bits=self.bits, bits_per_index=self.bits_per_index,
                        degree_field=self.degree_field)

    @property
    def bytes_per_node(self) -> int:
        """The width of the rows it reads, degree byte included."""
        return self.code_format.bytes_per_node

    def to_dict(self) -> dict:
        return asdict(self)


def flip_bits(packed: torch.Tensor, rate: float, bits: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of ``packed`` whose first ``bits`` bits of each row are each flipped with
    probability ``rate``, independently (``packed XOR mask``, ``mask``'s bits Bernoulli);
    bytes past ``bits / 8`` (the degree byte) are kept.

    Shapes:
        packed: ``uint8 [B, w]`` with ``w >= bits / 8``; returns the same shape and dtype.
    """
    width = bits // 8
    flips = torch.rand(packed.shape[0], width, 8, device=packed.device,
                       generator=generator) < rate                            # [B, c/8, 8]
    # any assignment of the 8 draws to the byte's 8 bits gives the same distribution
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8,
                           device=packed.device)
    mask = (flips.to(torch.uint8) * weights).sum(-1, dtype=torch.uint8)      # [B, c/8]
    flipped = packed.clone()
    flipped[:, :width] ^= mask
    return flipped


class CodeDecoder(nn.Module):
    """Decode packed node codes into embeddings (codebook sum + MLP).

    Args:
        config: a :class:`DecoderConfig`.
        backend: ``"auto"`` (Triton for CUDA tensors, else the reference), ``"triton"`` or
            ``"reference"``. A runtime choice, not part of the saved config.
        deterministic: use the deterministic Triton backward (sorted segment sums).
        fold_first_linear: decode through the folded codebooks (see the module docstring);
            ``None`` (default) folds when ``hidden_dim <= codebook_dim``.

    Shapes:
        input: ``uint8 [B, c/8]`` packed codes (``[B, c/8 + 1]`` with the degree field).
        output: ``float32 [B, d]``.

    Example:
        >>> dec = CodeDecoder(DecoderConfig(bits=32, bits_per_index=8, embedding_dim=16))
        >>> dec(torch.zeros(5, 4, dtype=torch.uint8)).shape
        torch.Size([5, 16])
    """

    BACKENDS = ("auto", "triton", "reference")

    def __init__(self, config: DecoderConfig, backend: str = "auto", deterministic: bool = False,
                 fold_first_linear: bool | None = None):
        super().__init__()
        if backend not in self.BACKENDS:
            raise ConfigError(f"decoder backend {backend!r} is not one of {self.BACKENDS}")
        self.config = config
        self.backend = backend
        self.deterministic = deterministic
        self.fold_first_linear = (config.hidden_dim <= config.codebook_dim
                                  if fold_first_linear is None else bool(fold_first_linear))
        m, rows = config.num_codebooks, 1 << config.bits_per_index
        # std 1/sqrt(m): the sum of m rows starts with unit variance per coordinate.
        self.codebooks = nn.Parameter(torch.randn(m, rows, config.codebook_dim) / m ** 0.5)
        # D [256, d_c]: zero at first, so the field adds nothing until training moves it
        self.degree_rows = nn.Parameter(torch.zeros(DEGREE_BUCKETS, config.codebook_dim)) \
            if config.degree_field else None
        self.mlp = nn.Sequential(
            nn.Linear(config.codebook_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.embedding_dim),
        )

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        width = self.config.bytes_per_node
        if packed.dim() != 2 or packed.shape[1] != width:
            raise ConfigError(f"{self!r}: codes have shape {list(packed.shape)}, expected "
                              f"[B, {width}]")
        if self.training and self.config.bit_flip > 0:
            packed = flip_bits(packed, self.config.bit_flip, self.config.bits)
        first, activation, last = self.mlp
        degree = None
        if self.degree_rows is not None:  # the last byte is the degree bucket
            degree = packed[:, -1].long()
            packed = packed[:, :-1].contiguous()
        if self.fold_first_linear:
            hidden = self._codebook_sum(packed, self.folded_codebooks()) + first.bias
            if degree is not None:  # W1 (z + D[g]) = W1 z + (D W1^T)[g]
                hidden = hidden + (self.degree_rows @ first.weight.T)[degree]
        else:
            summed = self._codebook_sum(packed, self.codebooks)
            hidden = first(summed if degree is None else summed + self.degree_rows[degree])
        return last(activation(hidden))

    def folded_codebooks(self) -> torch.Tensor:
        """``C_i W1^T`` for every codebook: ``float [m, 2^b, h]``, differentiable in both."""
        return self.codebooks @ self.mlp[0].weight.T

    def _codebook_sum(self, packed: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
        """``sum_i codebooks[i, k_i]``: ``uint8 [B, c/8]`` -> ``[B, codebooks.shape[2]]`` in
        the codebooks' dtype."""
        b = self.config.bits_per_index
        use_triton = self.backend == "triton" or (
            self.backend == "auto" and kernel_serves(packed.is_cuda, codebooks.dtype,
                                                     codebooks.shape[2]))
        if not use_triton or torch.onnx.is_in_onnx_export():
            return code_decode_reference(packed, codebooks, b)
        if not packed.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise ConfigError(f"{self!r}: backend='triton' needs CUDA tensors (or Triton's CPU "
                              "interpreter, TRITON_INTERPRET=1 set before Triton is imported)")
        from hashembed.kernels.decode import code_decode_triton  # Triton exists on Linux only

        return code_decode_triton(packed, codebooks, b, self.deterministic).to(codebooks.dtype)

    def extra_repr(self) -> str:
        c = self.config
        return (f"c={c.bits}, b={c.bits_per_index}, m={c.num_codebooks}, d_c={c.codebook_dim}, "
                f"h={c.hidden_dim}, d={c.embedding_dim}, degree_field={c.degree_field}, "
                f"bit_flip={c.bit_flip}, "
                f"backend={self.backend}, fold_first_linear={self.fold_first_linear}")
