"""The reference decode in plain PyTorch: the spec of every kernel and what ONNX export traces.

Given packed codes (bit layout in :mod:`hashembed.core.codeformat`) and ``m`` codebooks::

    k_i(v)   = index i of node v's code                      (b bits, i = 0 .. m-1)
    e(v)     = sum_i  C_i[k_i(v)]                            C: [m, 2^b, d_c]

    dL/dC_i[r] = sum_{v : k_i(v) = r} dL/de(v)              (scatter-add; the VJP)

The sum is one ``embedding_bag`` over the flattened codebooks ``[m * 2^b, d_c]`` with the
row ids ``i * 2^b + k_i(v)``, so the ``B × m × d_c`` gather is never materialised in PyTorch.
Under ONNX export the same sum is traced as Gather + ReduceSum (see the comment below).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from hashembed.core import codeformat
from hashembed.core.codeformat import check_bits_per_index
from hashembed.core.errors import CodeFormatError

# widest codebook row the fused Triton kernel (kernels.decode) takes
MAX_CODEBOOK_DIM = 1024


@functools.lru_cache(maxsize=None)
def _byte_to_indices_np(bits_per_index: int) -> np.ndarray:
    """``int64 [256, 8/b]``: row ``v`` holds the ``8/b`` indices packed in byte value ``v``
    (the numpy spec applied to every byte value). Read-only; cached per ``b``."""
    table = codeformat.codes_to_indices(np.arange(256, dtype=np.uint8)[:, None],
                                        bits_per_index).astype(np.int64)
    table.setflags(write=False)
    return table


_device_tables: dict[tuple[int, torch.device], torch.Tensor] = {}
# device types whose byte-to-index tables are kept (a test adds "cpu" to exercise the cache)
CACHED_DEVICE_TYPES = ("cuda",)


def _tracing() -> bool:
    """True while ONNX export, ``torch.export`` or ``torch.compile`` traces the decode."""
    compiler = getattr(torch, "compiler", None)
    return (torch.onnx.is_in_onnx_export()
            or bool(compiler and compiler.is_compiling())
            or bool(compiler and getattr(compiler, "is_exporting", lambda: False)()))


def _byte_to_indices(bits_per_index: int, device: torch.device) -> torch.Tensor:
    """:func:`_byte_to_indices_np` as a tensor on ``device``; a constant (an initializer) in
    an exported graph.

    On a GPU it is made once per ``(b, device)`` and kept, so a decode does not copy it from
    the host on every call (a synchronising pageable copy). Elsewhere, and whenever a tracer
    is running, it is made on each call: one created while ``torch.export`` traces is a
    FakeTensor, and a cache would hand it to later eager calls. Only a plain tensor is kept,
    and it is made outside inference mode: one first made under ``torch.inference_mode()``
    (a serving call) would be an inference tensor, which autograd refuses to save for the
    backward of a later training step's ``index_select``.
    """
    device = torch.device(device)
    if device.type not in CACHED_DEVICE_TYPES or _tracing():
        return torch.tensor(_byte_to_indices_np(bits_per_index), device=device)
    key = (bits_per_index, device)
    cached = _device_tables.get(key)
    if cached is None:
        with torch.inference_mode(False):
            cached = torch.tensor(_byte_to_indices_np(bits_per_index), device=device)
        if type(cached) is torch.Tensor:
            _device_tables[key] = cached
    return cached


def codes_to_indices(packed: torch.Tensor, bits_per_index: int) -> torch.Tensor:
    """Read packed codes as ``m`` codebook indices per node.

    For ``b < 8`` each byte is looked up in a 256-row table of its ``8/b`` indices (one
    Gather, no integer arithmetic on ``[B, c/8, 8/b]`` and no bit-shift operator, which not
    every ONNX Runtime provider implements). At b = 4 this lifted the exported decode from
    0.42 to 0.70 M nodes/s over division and remainder (``hashembed bench decode``, 2 busy
    CPU cores); the decode itself now reads whole bytes (:func:`byte_codebooks`).

    Args:
        packed: ``uint8 [B, c/8]``.
        bits_per_index: ``b`` in {1, 2, 4, 8, 16}.

    Returns:
        ``int64 [B, m]`` with values in ``[0, 2^b)``, ``m = 8 * (c/8) / b``.
    """
    check_bits_per_index(bits_per_index)
    x = packed.to(torch.int64)
    if bits_per_index == 8:
        return x
    if bits_per_index == 16:  # little-endian uint16 from byte pairs
        return x[:, 0::2] + x[:, 1::2] * 256
    table = _byte_to_indices(bits_per_index, packed.device)
    # index_select traces to a plain Gather (advanced indexing would give GatherND)
    return torch.index_select(table, 0, x.reshape(-1)).reshape(x.shape[0], -1)


# Measured with `hashembed bench decode` (n = 10M, B = 1M, c = 128, b = 8, d_c = 64, 2 CPU
# cores, ONNX Runtime 1.31, 4096-node calls): gather_reduce 3.93 M nodes/s, add_chain
# 3.87 M nodes/s (an earlier run with 1024-node calls: 3.19 vs 1.95). The first is the default.
ONNX_FORMULATIONS = ("gather_reduce", "add_chain")


def check_decode_inputs(packed: torch.Tensor, codebooks: torch.Tensor,
                        bits_per_index: int) -> None:
    """Raise :class:`CodeFormatError` unless codes ``uint8 [B, c/8]`` and codebooks
    ``[m, 2^b, d_c]`` fit together (``c = m · b``). Shared by every decode implementation."""
    check_bits_per_index(bits_per_index)
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise CodeFormatError(f"packed codes must be uint8 [B, c/8], got {packed.dtype} "
                              f"{list(packed.shape)}")
    if codebooks.dim() != 3:
        raise CodeFormatError(f"codebooks must be [m, 2^b, d_c], got {list(codebooks.shape)}")
    m, rows, _ = codebooks.shape
    if rows != 1 << bits_per_index:
        raise CodeFormatError(f"codebooks have {rows} rows, b={bits_per_index} needs "
                              f"{1 << bits_per_index}")
    if packed.shape[1] * 8 != m * bits_per_index:
        raise CodeFormatError(f"codes have {packed.shape[1]} bytes per node; {m} codebooks of "
                              f"b={bits_per_index} need {m * bits_per_index} bits")


def byte_codebooks(codebooks: torch.Tensor, bits_per_index: int) -> torch.Tensor:
    """Merge the ``8/b`` codebooks that read the same code byte into one 256-row table.

    Byte ``j`` of a code holds indices ``i = j·(8/b) + s`` for ``s < 8/b``, so with
    ``T_j[v] = sum_s C_{j·(8/b)+s}[(v >> s·b) & (2^b - 1)]`` for every byte value ``v``::

        sum_i C_i[k_i] = sum_j T_j[byte_j]

    and the decode gathers ``c/8`` rows per node whatever ``b <= 8`` is, reading the bytes
    directly as row ids. Building ``T`` costs ``(c/8) · 256 · (8/b) · d_c`` adds per call,
    shared by the batch, and is differentiable in ``C``; an exported graph computes it from
    constants, which ONNX Runtime folds at load.

    Args:
        codebooks: ``float [m, 2^b, d_c]``.
        bits_per_index: ``b``; for ``b >= 8`` the codebooks are returned unchanged.

    Returns:
        ``[c/8, 256, d_c]`` (``b < 8``), same dtype and device.
    """
    if bits_per_index >= 8:
        return codebooks
    per_byte = 8 // bits_per_index
    m, rows, d = codebooks.shape
    grouped = codebooks.reshape(m // per_byte, per_byte, rows, d)
    table = _byte_to_indices(bits_per_index, codebooks.device)  # [256, per_byte]
    merged = grouped[:, 0].index_select(1, table[:, 0])
    for s in range(1, per_byte):
        merged = merged + grouped[:, s].index_select(1, table[:, s])
    return merged


def code_decode_reference(packed: torch.Tensor, codebooks: torch.Tensor,
                          bits_per_index: int, onnx_formulation: str = "gather_reduce"
                          ) -> torch.Tensor:
    """Sum of the codebook rows selected by each node's code.

    Args:
        packed: ``uint8 [B, c/8]`` packed codes.
        codebooks: ``float [m, 2^b, d_c]`` (fp32, bf16 or fp16).
        bits_per_index: ``b``.
        onnx_formulation: how the sum is traced under ONNX export (eager PyTorch always uses
            ``embedding_bag``): ``"gather_reduce"``, one Gather ``[B, m, d_c]`` + ReduceSum
            (the faster in ONNX Runtime on CPU, measured by ``hashembed bench decode``), or
            ``"add_chain"``, ``m`` Gathers of ``[B, d_c]`` added one by one.

    For ``b < 8`` the codebooks are first merged per code byte (:func:`byte_codebooks`), so
    the sum gathers ``c/8`` rows per node, not ``m``.

    Returns:
        ``[B, d_c]`` in the codebooks' dtype (accumulated in their dtype by PyTorch).

    Example:
        >>> packed = torch.tensor([[0b00000001, 0b00000010]], dtype=torch.uint8)
        >>> books = torch.arange(2 * 256 * 1.0).reshape(2, 256, 1)
        >>> code_decode_reference(packed, books, 8)      # rows 1 of C_0 and 2 of C_1
        tensor([[259.]])
    """
    check_decode_inputs(packed, codebooks, bits_per_index)
    if bits_per_index < 8:
        codebooks, bits_per_index = byte_codebooks(codebooks, bits_per_index), 8
    m, rows, _ = codebooks.shape
    idx = codes_to_indices(packed, bits_per_index)
    offsets = torch.arange(m, dtype=torch.int64, device=packed.device) * rows
    flat = codebooks.reshape(m * rows, codebooks.shape[2])
    if torch.onnx.is_in_onnx_export():
        # ONNX has no fused gather-reduce, and the exporter lowers embedding_bag to a Loop
        # over bags (one iteration per node), so the same sum is written with Gather/Add.
        # F.embedding traces to a plain Gather; advanced indexing would give GatherND.
        if onnx_formulation == "gather_reduce":
            return F.embedding(idx + offsets, flat).sum(dim=1)
        if onnx_formulation != "add_chain":
            raise CodeFormatError(f"ONNX decode formulation {onnx_formulation!r} is not one of "
                                  f"{ONNX_FORMULATIONS}")
        # m is a static shape, so this loop unrolls into m Gathers and m - 1 Adds.
        out = F.embedding(idx[:, 0], codebooks[0])
        for i in range(1, m):
            out = out + F.embedding(idx[:, i], codebooks[i])
        return out
    return F.embedding_bag(idx + offsets, flat, mode="sum")
