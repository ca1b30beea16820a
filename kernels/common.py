"""What the decode kernels share: the tile rule, the in-kernel code unpacking, the device guard.

Both kernel modules (:mod:`hashembed.kernels.decode`, :mod:`hashembed.kernels.deterministic`)
import from here, never from each other's private helpers.
"""

from __future__ import annotations

import contextlib
import os

import torch
import triton
import triton.language as tl


def interpreting() -> bool:
    """True when kernels run under Triton's CPU interpreter (read at call time)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def block_sizes(dim: int) -> tuple[int, int]:
    """``(BLOCK_B, BLOCK_D)`` by rule: one tile covers up to 128 columns; rows fill ~4K
    elements. The interpreter's config and the deterministic kernel's (never tuned)."""
    block_d = min(max(triton.next_power_of_2(dim), 16), 128)
    block_b = max(16, 4096 // block_d)
    return block_b, block_d


@triton.jit
def load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS: tl.constexpr):
    """``int32 [BLOCK_B]``: index ``i`` of each row's code (bits ``i·b … i·b + b − 1``, least
    significant first; :mod:`hashembed.core.codeformat`)."""
    # int64 row offsets: B · c/8 passes 2^31 at B = 134 M nodes of 128-bit codes
    row_start = codes_ptr + rows.to(tl.int64) * stride_codes
    if BITS == 16:  # constexpr branch: one return point keeps the compiled path simple
        lo = tl.load(row_start + 2 * i, mask=row_mask, other=0)
        hi = tl.load(row_start + 2 * i + 1, mask=row_mask, other=0)
        index = lo.to(tl.int32) | (hi.to(tl.int32) << 8)
    else:
        byte = tl.load(row_start + (i * BITS) // 8, mask=row_mask, other=0)
        index = (byte.to(tl.int32) >> ((i * BITS) % 8)) & ((1 << BITS) - 1)
    return index


def on_device(tensor: torch.Tensor):
    """Launch on the tensor's own GPU (not the current one) when it is on CUDA."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()
