"""Fused code-to-embedding decode in Triton: unpack bits, gather codebook rows, sum.

Three layers, as in the Triton tutorials: private ``@triton.jit`` kernels; host functions
:func:`code_decode_forward` / :func:`code_decode_backward` that validate, allocate, pick block
sizes and launch; and :class:`CodeDecodeFunction`, the autograd op. The spec and test oracle
is :func:`hashembed.kernels.reference.code_decode_reference`.

Math (shape symbols as everywhere: ``B`` nodes, ``m`` codebooks of ``2^b`` rows, width ``d_c``)::

    forward   z[v, :]   = sum_i C[i, k_i(v), :]                       (fp32 accumulation)
    backward  dC[i, r, :] = sum_{v : k_i(v) = r} dz[v, :]               (VJP: scatter-add)

``k_i(v)`` is read straight from the packed bytes (layout in :mod:`hashembed.codeformat`):
for ``b <= 8`` it is ``(byte[(i*b) // 8] >> ((i*b) % 8)) & (2^b - 1)``, for ``b = 16`` the
little-endian pair ``byte[2i] | byte[2i+1] << 8``. Each program owns a ``BLOCK_B × BLOCK_D``
tile of the output and loops over the ``m`` codebooks, so no ``B × m × d_c`` intermediate
exists anywhere.

Backward has two modes. The default scatters with ``atomic_add`` (fast; the fp32 summation
order varies between runs). ``deterministic=True`` sorts the ``B·m`` row ids once (stable) and
lets one program sum each destination row's contributions in that fixed order, so results
are bit-identical from run to run.

On CPU the kernels run under Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is
imported), which is how CI tests them.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from hashembed.errors import CodeFormatError
from hashembed.kernels.reference import MAX_CODEBOOK_DIM, check_decode_inputs, codes_to_indices

CODEBOOK_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@triton.jit
def _load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS: tl.constexpr):
    """``int32 [BLOCK_B]``: index ``i`` of each row's code (see module docstring)."""
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


@triton.jit
def _code_decode_fwd_kernel(
    codes_ptr,          # *uint8 [B, c/8]   packed codes, row-major
    books_ptr,          # *fp32|bf16|fp16 [m, 2^b, d_c]  codebooks, contiguous
    out_ptr,            # *fp32 [B, d_c]    output, contiguous
    num_rows,           # B
    num_books,          # m
    dim,                # d_c
    stride_codes,       # elements between consecutive code rows (= c/8 when contiguous)
    BITS: tl.constexpr,     # b
    BLOCK_B: tl.constexpr,  # rows per program
    BLOCK_D: tl.constexpr,  # columns per program (power of two >= 16)
):
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    row_mask = rows < num_rows
    col_mask = cols < dim
    mask = row_mask[:, None] & col_mask[None, :]
    acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
    book_rows = 1 << BITS
    for i in range(num_books):
        k = _load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS)
        # row (i, k) of the codebooks starts at element (i * 2^b + k) * d_c
        offsets = (i * book_rows + k).to(tl.int64)[:, None] * dim + cols[None, :]
        acc += tl.load(books_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + rows.to(tl.int64)[:, None] * dim + cols[None, :], acc, mask=mask)


@triton.jit
def _code_decode_bwd_atomic_kernel(
    codes_ptr,          # *uint8 [B, c/8]
    grad_out_ptr,       # *fp32 [B, d_c]    dz, contiguous
    grad_books_ptr,     # *fp32 [m, 2^b, d_c]  dC accumulator, zero-initialised
    num_rows,           # B
    num_books,          # m
    dim,                # d_c
    stride_codes,       # elements between code rows
    BITS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    row_mask = rows < num_rows
    mask = row_mask[:, None] & (cols < dim)[None, :]
    grad = tl.load(grad_out_ptr + rows.to(tl.int64)[:, None] * dim + cols[None, :], mask=mask,
                   other=0.0)
    book_rows = 1 << BITS
    for i in range(num_books):
        k = _load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS)
        offsets = (i * book_rows + k).to(tl.int64)[:, None] * dim + cols[None, :]
        # relaxed: the adds only need atomicity, not ordering (acq_rel costs a fence each)
        tl.atomic_add(grad_books_ptr + offsets, grad, mask=mask, sem="relaxed")


@triton.jit
def _code_decode_bwd_sorted_kernel(
    seg_start_ptr,      # *int64 [R+1]  segment bounds into the sorted entries
    seg_row_ptr,        # *int64 [R]    destination codebook row (i * 2^b + k) of each segment
    entry_node_ptr,     # *int64 [B*m]  node of each sorted entry
    grad_out_ptr,       # *fp32 [B, d_c]
    grad_books_ptr,     # *fp32 [m * 2^b, d_c]  zero-initialised; each row written once
    dim,                # d_c
    BLOCK_D: tl.constexpr,
):
    seg = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    col_mask = cols < dim
    start = tl.load(seg_start_ptr + seg)
    stop = tl.load(seg_start_ptr + seg + 1)
    acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for j in range(start, stop):  # fixed order: the stable sort's
        node = tl.load(entry_node_ptr + j)
        acc += tl.load(grad_out_ptr + node * dim + cols, mask=col_mask, other=0.0)
    row = tl.load(seg_row_ptr + seg)
    tl.store(grad_books_ptr + row * dim + cols, acc, mask=col_mask)


def _block_sizes(dim: int) -> tuple[int, int]:
    """``(BLOCK_B, BLOCK_D)``: one tile covers up to 128 columns; rows fill ~4K elements."""
    block_d = min(max(triton.next_power_of_2(dim), 16), 128)
    block_b = max(16, 4096 // block_d)
    return block_b, block_d


def _check_inputs(packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int) -> None:
    """The reference's shape checks, plus what the kernels need (dtype, width, device, rows)."""
    check_decode_inputs(packed, codebooks, bits_per_index)
    if codebooks.dtype not in CODEBOOK_DTYPES:
        raise CodeFormatError(f"codebooks must be one of {CODEBOOK_DTYPES}, got {codebooks.dtype}")
    dim = codebooks.shape[2]
    if not 1 <= dim <= MAX_CODEBOOK_DIM:
        raise CodeFormatError(f"codebook width d_c={dim} is outside [1, {MAX_CODEBOOK_DIM}]")
    if packed.device != codebooks.device:
        raise CodeFormatError(f"codes are on {packed.device}, codebooks on {codebooks.device}")
    if packed.stride(1) != 1:
        raise CodeFormatError("packed codes must have contiguous rows")


def code_decode_forward(packed: torch.Tensor, codebooks: torch.Tensor,
                        bits_per_index: int) -> torch.Tensor:
    """Fused decode: ``uint8 [B, c/8]`` codes, ``[m, 2^b, d_c]`` codebooks -> ``fp32 [B, d_c]``."""
    _check_inputs(packed, codebooks, bits_per_index)
    codebooks = codebooks.contiguous()
    num_rows = packed.shape[0]
    m, _, dim = codebooks.shape
    out = torch.empty((num_rows, dim), dtype=torch.float32, device=packed.device)
    if num_rows == 0:
        return out
    block_b, block_d = _block_sizes(dim)
    grid = (triton.cdiv(num_rows, block_b), triton.cdiv(dim, block_d))
    with _on_device(packed):
        _code_decode_fwd_kernel[grid](packed, codebooks, out, num_rows, m, dim,
                                      packed.stride(0), BITS=bits_per_index, BLOCK_B=block_b,
                                      BLOCK_D=block_d)
    return out


def _on_device(tensor: torch.Tensor):
    """Launch on the tensor's own GPU (not the current one) when it is on CUDA."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


def code_decode_backward(packed: torch.Tensor, grad_out: torch.Tensor, codebooks_shape,
                         bits_per_index: int, dtype: torch.dtype = torch.float32,
                         deterministic: bool = False) -> torch.Tensor:
    """Codebook gradient ``[m, 2^b, d_c]`` (in ``dtype``) from ``dz`` ``[B, d_c]``."""
    m, rows, dim = codebooks_shape
    num_rows = packed.shape[0]
    grad_out = grad_out.to(torch.float32).contiguous()
    if grad_out.shape != (num_rows, dim):
        raise CodeFormatError(f"output gradient has shape {list(grad_out.shape)}, expected "
                              f"[{num_rows}, {dim}]")
    grad_books = torch.zeros((m, rows, dim), dtype=torch.float32, device=grad_out.device)
    if num_rows == 0:
        return grad_books.to(dtype)
    block_b, block_d = _block_sizes(dim)
    if not deterministic:
        grid = (triton.cdiv(num_rows, block_b), triton.cdiv(dim, block_d))
        with _on_device(packed):
            _code_decode_bwd_atomic_kernel[grid](packed, grad_out, grad_books, num_rows, m, dim,
                                                 packed.stride(0), BITS=bits_per_index,
                                                 BLOCK_B=block_b, BLOCK_D=block_d)
        return grad_books.to(dtype)
    # Deterministic: destination row of entry (v, i) is i * 2^b + k_i(v); sort entries by it.
    offsets = torch.arange(m, device=packed.device, dtype=torch.int64) * rows
    dest = (codes_to_indices(packed, bits_per_index) + offsets).reshape(-1)  # [B*m], v-major
    dest_sorted, order = torch.sort(dest, stable=True)
    entry_node = order // m
    seg_row, counts = torch.unique_consecutive(dest_sorted, return_counts=True)
    seg_start = torch.zeros(seg_row.numel() + 1, dtype=torch.int64, device=packed.device)
    torch.cumsum(counts, 0, out=seg_start[1:])
    grid = (seg_row.numel(), triton.cdiv(dim, block_d))
    with _on_device(packed):
        _code_decode_bwd_sorted_kernel[grid](seg_start, seg_row, entry_node, grad_out,
                                             grad_books, dim, BLOCK_D=block_d)
    return grad_books.to(dtype)


class CodeDecodeFunction(torch.autograd.Function):
    """Autograd op for the fused decode: gradient flows to the codebooks only (codes are bits)."""

    @staticmethod
    def forward(ctx, packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int,
                deterministic: bool = False) -> torch.Tensor:
        ctx.save_for_backward(packed)
        ctx.meta = (tuple(codebooks.shape), bits_per_index, codebooks.dtype, deterministic)
        return code_decode_forward(packed, codebooks, bits_per_index)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (packed,) = ctx.saved_tensors
        shape, bits, dtype, deterministic = ctx.meta
        grad_books = None
        if ctx.needs_input_grad[1]:
            grad_books = code_decode_backward(packed, grad_out, shape, bits, dtype, deterministic)
        return None, grad_books, None, None


def code_decode_triton(packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int,
                       deterministic: bool = False) -> torch.Tensor:
    """Differentiable fused decode; same contract as ``code_decode_reference`` but fp32 out."""
    return CodeDecodeFunction.apply(packed, codebooks, bits_per_index, deterministic)
