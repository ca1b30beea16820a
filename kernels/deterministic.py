"""Deterministic codebook gradient: sorted segment sums on a fixed grid.

The VJP of the decode (``B`` nodes, ``m`` codebooks of ``2^b`` rows, width ``d_c``)::

    dC[q, :] = sum_{(v, i) : i·2^b + k_i(v) = q} dz[v, :]        q < R = m·2^b

Every node contributes one entry per codebook, ``E = B·m`` entries in all. Steps, none of
which reads a size back to the host:

1. ``_code_keys_kernel``: the ``int32`` key ``q`` of each entry ``e = v·m + i`` (node-major).
2. ``torch.sort(stable=True)``: entries grouped by destination row, node order within one.
3. ``_segment_sum_kernel`` on ``P = ceil(E / CHUNK)`` programs (a grid fixed by ``E``, and
   balanced whatever the codes: a row shared by every node costs what scattered rows do).
   Program ``p`` walks its ``CHUNK`` sorted entries ``BLOCK_E`` at a time with a segmented
   scan, and stores each row that starts and ends inside the chunk straight into ``dC``. A
   row that crosses the chunk's start or end leaves its in-chunk sum in ``edges[p]``.
4. ``_segment_edges_kernel`` (same grid): the chunk where a crossing row starts adds the
   ``edges`` of the chunks it runs through, in chunk order, and stores the row.

The order of every addition depends only on the codes, so the result is bit-identical from
run to run on one device. Block sizes follow a fixed rule, never the autotuner: a different
tile would change the summation order. Memory: keys ``4·E`` bytes, the sort's output
``12·E``, ``edges`` ``P·2·d_c·4``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hashembed.core.errors import CodeFormatError
from hashembed.kernels.common import block_sizes, load_indices, on_device

INT32_MAX = 2**31 - 1
CHUNK = 1024    # sorted entries per program
BLOCK_E = 64    # entries per step of a program's walk
KEYS_BLOCK = 256


@triton.jit
def _code_keys_kernel(
    codes_ptr,          # *uint8 [B, c/8]  packed codes, rows stride_codes apart
    keys_ptr,           # *int32 [B*m]     out: key i*2^b + k_i(v) of entry v*m + i
    num_rows,           # B
    num_books,          # m
    stride_codes,       # elements between code rows
    BITS: tl.constexpr,     # b
    BLOCK_B: tl.constexpr,  # rows per program
):
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_mask = rows < num_rows
    for i in range(num_books):
        k = load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS)
        tl.store(keys_ptr + rows.to(tl.int64) * num_books + i, i * (1 << BITS) + k, mask=row_mask)


@triton.jit
def _segmented_add(key_a, val_a, key_b, val_b):
    """Segmented-sum combine: ``b``'s value plus ``a``'s where both carry the same key
    (associative on sorted keys)."""
    return key_b, val_b + tl.where(key_a == key_b, val_a, 0.0)


@triton.jit
def _chunk_view(keys_ptr, p, num_entries, dim, CHUNK: tl.constexpr, BLOCK_D: tl.constexpr):
    """What program ``(p, column block)`` of the segment kernels sees: its columns and their
    mask, its entries ``[lo, hi)``, the key ending chunk ``p - 1`` (``before``, -1 if none)
    and the key opening chunk ``p + 1`` (``after``, -1 if none)."""
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    col_mask = cols < dim
    lo = p.to(tl.int64) * CHUNK
    hi = tl.minimum(lo + CHUNK, num_entries)
    before = tl.load(keys_ptr + lo - 1, mask=lo > 0, other=-1)
    after = tl.load(keys_ptr + hi, mask=hi < num_entries, other=-1)
    return cols, col_mask, lo, hi, before, after


# dC[q] = sum of dz[node(e)] over the sorted entries e with key q. In chunk p (entries
# [lo, hi)) the running sum of a row at entry e is run[e] = run[e-1]·[key[e-1] = key[e]] + dz.
@triton.jit
def _segment_sum_kernel(
    keys_ptr,           # *int32 [E]       sorted keys
    order_ptr,          # *int64 [E]       entry id (v*m + i) at each sorted position
    grad_out_ptr,       # *fp32 [B, d_c]   dz, contiguous
    grad_ptr,           # *fp32 [R, d_c]   out: dC, zero-initialised (rows with no entry stay 0)
    edges_ptr,          # *fp32 [P, 2, d_c]  out: in-chunk sums of the rows crossing the
                        #                  chunk's start (slot 0) or only its end (slot 1)
    num_entries,        # E
    num_books,          # m
    dim,                # d_c
    CHUNK: tl.constexpr,    # entries per program (a multiple of BLOCK_E)
    BLOCK_E: tl.constexpr,  # entries per step
    BLOCK_D: tl.constexpr,  # columns per program
):
    p = tl.program_id(0)
    cols, col_mask, lo, hi, before, after = _chunk_view(keys_ptr, p, num_entries, dim, CHUNK,
                                                        BLOCK_D)
    carry = tl.zeros((BLOCK_D,), dtype=tl.float32)
    carry_key = tl.load(keys_ptr + lo)
    steps = tl.arange(0, BLOCK_E)
    for first in range(lo, hi, BLOCK_E):
        pos = first + steps
        valid = pos < hi
        key = tl.load(keys_ptr + pos, mask=valid, other=2147483647)  # past the end: sorts last
        node = tl.load(order_ptr + pos, mask=valid, other=0) // num_books
        val = tl.load(grad_out_ptr + node[:, None] * dim + cols[None, :],
                      mask=valid[:, None] & col_mask[None, :], other=0.0)
        keys_2d = tl.broadcast_to(key[:, None], (BLOCK_E, BLOCK_D))
        _, run = tl.associative_scan((keys_2d, val), 0, _segmented_add)
        run += tl.where((key == carry_key)[:, None], carry[None, :], 0.0)  # row from last step
        following = tl.load(keys_ptr + pos + 1, mask=pos + 1 < hi, other=-1)
        ends = valid & (key != following)            # the row's last entry in this chunk
        inside = (key != before) & (key != after)
        done = ends & inside
        tl.store(grad_ptr + key.to(tl.int64)[:, None] * dim + cols[None, :], run,
                 mask=done[:, None] & col_mask[None, :])
        slot = tl.where(key == before, 0, 1)
        tl.store(edges_ptr + (p.to(tl.int64) * 2 + slot)[:, None] * dim + cols[None, :], run,
                 mask=(ends & ~inside)[:, None] & col_mask[None, :])
        last = tl.minimum(hi - first, BLOCK_E) - 1
        carry = tl.sum(tl.where((steps == last)[:, None], run, 0.0), axis=0)
        carry_key = tl.sum(tl.where(steps == last, key, 0), axis=0)


@triton.jit
def _segment_edges_kernel(
    keys_ptr,           # *int32 [E]       sorted keys
    grad_ptr,           # *fp32 [R, d_c]   dC: the crossing rows are stored here
    edges_ptr,          # *fp32 [P, 2, d_c]  from _segment_sum_kernel
    num_entries,        # E
    num_chunks,         # P
    dim,                # d_c
    CHUNK: tl.constexpr,    # as in _segment_sum_kernel
    BLOCK_D: tl.constexpr,  # columns per program
):
    p = tl.program_id(0)
    cols, col_mask, lo, hi, before, after = _chunk_view(keys_ptr, p, num_entries, dim, CHUNK,
                                                        BLOCK_D)
    row = tl.load(keys_ptr + hi - 1)
    if (row == after) & (row != before):  # chunk p opens a row that runs into chunk p+1
        acc = tl.load(edges_ptr + (p.to(tl.int64) * 2 + 1) * dim + cols, mask=col_mask, other=0.0)
        chunk = p.to(tl.int64) + 1
        more = row == row  # a tensor from the start: the loop carries one type
        while more:  # add each following chunk's part of the row, in chunk order
            acc += tl.load(edges_ptr + chunk * 2 * dim + cols, mask=col_mask, other=0.0)
            end = tl.minimum((chunk + 1) * CHUNK, num_entries)
            closing = tl.load(keys_ptr + end, mask=end < num_entries, other=-1)
            more = (tl.load(keys_ptr + end - 1) == row) & (closing == row)
            chunk += 1
        tl.store(grad_ptr + row.to(tl.int64) * dim + cols, acc, mask=col_mask)


# columns per program of the segment kernels: the segmented scan holds a [BLOCK_E, BLOCK_D]
# fp32 tile and its broadcast keys, which at BLOCK_D 64 / 128 spill registers on sm_90 (up to
# 500 B a thread in ptxas's report); 32 does not. Columns are summed each on its own, so the
# width never changes the result.
SEGMENT_BLOCK_D = 32


def segment_block_d(dim: int) -> int:
    """``BLOCK_D`` of :func:`_segment_sum_kernel` / :func:`_segment_edges_kernel` for width
    ``dim``: the decode's rule, at most :data:`SEGMENT_BLOCK_D`."""
    return min(block_sizes(dim)[1], SEGMENT_BLOCK_D)


def code_grad_deterministic(packed: torch.Tensor, grad_out: torch.Tensor, shape,
                            bits_per_index: int) -> torch.Tensor:
    """Deterministic ``dC``.

    Args:
        packed: ``uint8 [B, c/8]`` codes, ``B >= 1``.
        grad_out: ``dz``, ``fp32 [B, d_c]``, contiguous.
        shape: ``(m, 2^b, d_c)`` of the gradient.
        bits_per_index: ``b``.

    Returns:
        ``fp32 [m, 2^b, d_c]``.

    Raises:
        CodeFormatError: ``m·2^b`` destination rows do not fit the ``int32`` keys.
    """
    m, rows, dim = shape
    num_dest = m * rows
    if num_dest >= INT32_MAX:
        raise CodeFormatError(f"deterministic backward: m·2^b = {m}·{rows} = {num_dest} codebook "
                              f"rows do not fit int32 sort keys; use deterministic=False")
    num_rows = packed.shape[0]
    num_entries = num_rows * m
    device = packed.device
    keys = torch.empty(num_entries, dtype=torch.int32, device=device)
    grad = torch.zeros((num_dest, dim), dtype=torch.float32, device=device)
    num_chunks = triton.cdiv(num_entries, CHUNK)
    edges = torch.empty((num_chunks, 2, dim), dtype=torch.float32, device=device)
    block_d = segment_block_d(dim)
    grid = (num_chunks, triton.cdiv(dim, block_d))
    with on_device(packed):
        _code_keys_kernel[(triton.cdiv(num_rows, KEYS_BLOCK),)](
            packed, keys, num_rows, m, packed.stride(0), BITS=bits_per_index, BLOCK_B=KEYS_BLOCK)
        keys, order = torch.sort(keys, stable=True)
        _segment_sum_kernel[grid](keys, order, grad_out, grad, edges, num_entries, m, dim,
                                  CHUNK=CHUNK, BLOCK_E=BLOCK_E, BLOCK_D=block_d)
        _segment_edges_kernel[grid](keys, grad, edges, num_entries, num_chunks, dim,
                                    CHUNK=CHUNK, BLOCK_D=block_d)
    return grad.reshape(m, rows, dim)
