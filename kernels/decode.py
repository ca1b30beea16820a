"""Fused code-to-embedding decode in Triton: unpack bits, gather codebook rows, sum.

Three layers, as in the Triton tutorials: private ``@triton.jit`` kernels; host functions
:func:`code_decode_forward` / :func:`code_decode_backward` that validate, allocate, pick block
sizes and launch; and :class:`CodeDecodeFunction`, the autograd op. The spec and test oracle
is :func:`hashembed.kernels.reference.code_decode_reference`.

Math (shape symbols as everywhere: ``B`` nodes, ``m`` codebooks of ``2^b`` rows, width ``d_c``)::

    forward   z[v, :]   = sum_i C[i, k_i(v), :]                       (fp32 accumulation)
    backward  dC[i, r, :] = sum_{v : k_i(v) = r} dz[v, :]               (VJP: scatter-add)

``k_i(v)`` is read straight from the packed bytes (layout in :mod:`hashembed.core.codeformat`):
for ``b <= 8`` it is ``(byte[(i*b) // 8] >> ((i*b) % 8)) & (2^b - 1)``, for ``b = 16`` the
little-endian pair ``byte[2i] | byte[2i+1] << 8``. Each program owns a ``BLOCK_B × BLOCK_D``
tile of the output and loops over the ``m`` codebooks, so no ``B × m × d_c`` intermediate
exists anywhere.

Two paths for ``b < 8`` (``byte_tables``):

- index path: gather the ``m`` codebook rows per node, as written above;
- byte-table path: merge the ``8/b`` codebooks that read one code byte into a 256-row table
  ``T_j`` (:func:`merge_byte_tables`, the same sum as the reference's ``byte_codebooks``,
  added and kept in fp32 so bf16/fp16 codebooks lose nothing to the merge) and run the
  ``b = 8`` kernels on ``T``: ``c/8`` rows per node (16 instead of 32 at c = 128, b = 4;
  fp32 rows, so with bf16 codebooks the bytes read equal the index path's). Its gradient
  ``dT`` maps back to ``dC`` by summing over the other fields of the byte
  (:func:`split_byte_grad`), a plain tensor reduction.

:func:`use_byte_tables` holds the default rule per direction; ``hashembed bench decode``
times both paths so the rule can follow a GPU measurement.

Backward has two modes. The default scatters with relaxed ``atomic_add`` (the fp32 summation
order varies between runs); at ``b <= 4`` on the index path a program first sums its tile's
rows per destination row (a one-hot product), so it issues ``2^b`` atomic rows per codebook
instead of ``BLOCK_B``. ``deterministic=True`` takes the sorted segment sums of
:mod:`hashembed.kernels.deterministic`, bit-identical from run to run.

Block sizes come from ``triton.autotune`` keyed on the width, ``b``, the size class of ``B``
(:func:`_rows_bucket`, so a 4,096-node call does not pick the tile of a 4 M-node one) and the
dtypes; under Triton's interpreter (``TRITON_INTERPRET=1``, how CI runs these on a CPU) one
config chosen by :func:`block_sizes` is used, without benchmarking.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hashembed.core.errors import CodeFormatError
from hashembed.kernels.common import block_sizes, interpreting, load_indices, on_device
from hashembed.kernels.reference import MAX_CODEBOOK_DIM, check_decode_inputs

CODEBOOK_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# B above 2^ROWS_BUCKET_MAX (4 M) share one tuning: the grid is then many waves deep whatever
# the tile, so the tile that wins at 4 M wins above it.
ROWS_BUCKET_MAX = 22


def _rows_bucket(num_rows: int) -> int:
    """``min(ceil(log2 B), ROWS_BUCKET_MAX)``: the autotune key's size class of ``B``."""
    return min(max(num_rows - 1, 0).bit_length(), ROWS_BUCKET_MAX)


# (BLOCK_B, BLOCK_D, num_warps). BLOCK_B >= 16 and BLOCK_D >= 16: the one-hot pre-reduction
# is a tl.dot, whose sides must be at least 16.
_TUNE_SPACE = [(32, 32, 4), (64, 32, 4), (128, 32, 4), (32, 64, 4), (64, 64, 4), (128, 64, 8),
               (32, 128, 4), (64, 128, 8)]
_CONFIGS = [triton.Config({"BLOCK_B": bb, "BLOCK_D": bd}, num_warps=w) for bb, bd, w in _TUNE_SPACE]


# False: launch the rule's tile without tuning (the kernel tests set it, so a GPU run of them
# compiles one config per shape; the interpreter never tunes)
AUTOTUNE = True


def _prune_configs(configs, named_args, **kwargs):
    """Keep tiles no wider than the row needs; under the interpreter (or with ``AUTOTUNE``
    off), only the rule's tile."""
    dim = named_args["dim"]
    if interpreting() or not AUTOTUNE:
        block_b, block_d = block_sizes(dim)
        return [triton.Config({"BLOCK_B": block_b, "BLOCK_D": block_d})]
    widest = max(32, triton.next_power_of_2(dim))
    return [c for c in configs if c.kwargs["BLOCK_D"] <= widest]


# z[v, cols] = sum_i C[i, k_i(v), cols], accumulated in fp32 in the order i = 0 .. m-1 (so the
# result does not depend on the tile the autotuner picks).
@triton.autotune(configs=_CONFIGS, key=["dim", "BITS", "rows_bucket"],
                 prune_configs_by={"early_config_prune": _prune_configs})
@triton.jit
def _code_decode_fwd_kernel(
    codes_ptr,          # *uint8 [B, c/8]   packed codes, rows stride_codes apart
    books_ptr,          # *fp32|bf16|fp16 [m, 2^b, d_c]  codebooks, contiguous
    out_ptr,            # *fp32 [B, d_c]    output, contiguous
    num_rows,           # B
    num_books,          # m
    dim,                # d_c
    stride_codes,       # elements between consecutive code rows (= c/8 when contiguous)
    rows_bucket,        # _rows_bucket(B): read only by the autotuner's key
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
        k = load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS)
        # row (i, k) of the codebooks starts at element (i * 2^b + k) * d_c
        offsets = (i * book_rows + k).to(tl.int64)[:, None] * dim + cols[None, :]
        acc += tl.load(books_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + rows.to(tl.int64)[:, None] * dim + cols[None, :], acc, mask=mask)


# dC[i, k_i(v), cols] += dz[v, cols] for the tile's rows v. With b <= 4 the tile is first
# summed per destination row: P = H^T dz, H[v, r] = [k_i(v) = r] one-hot [BLOCK_B, 16], so
# P[r] = sum_{v in tile, k_i(v) = r} dz[v] and only the rows r that occur are added.
@triton.autotune(configs=_CONFIGS, key=["dim", "BITS", "rows_bucket"],
                 reset_to_zero=["grad_books_ptr"],
                 prune_configs_by={"early_config_prune": _prune_configs})
@triton.jit
def _code_decode_bwd_atomic_kernel(
    codes_ptr,          # *uint8 [B, c/8]   packed codes, rows stride_codes apart
    grad_out_ptr,       # *fp32 [B, d_c]    dz, contiguous
    grad_books_ptr,     # *fp32 [m, 2^b, d_c]  dC accumulator, zero-initialised
    num_rows,           # B
    num_books,          # m
    dim,                # d_c
    stride_codes,       # elements between code rows
    rows_bucket,        # _rows_bucket(B): read only by the autotuner's key
    BITS: tl.constexpr,     # b
    BLOCK_B: tl.constexpr,  # rows per program
    BLOCK_D: tl.constexpr,  # columns per program
):
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    row_mask = rows < num_rows
    col_mask = cols < dim
    mask = row_mask[:, None] & col_mask[None, :]
    grad = tl.load(grad_out_ptr + rows.to(tl.int64)[:, None] * dim + cols[None, :], mask=mask,
                   other=0.0)
    book_rows = 1 << BITS
    for i in range(num_books):
        k = load_indices(codes_ptr, rows, row_mask, stride_codes, i, BITS)
        if BITS <= 4:  # pre-reduce: at most 16 destination rows per codebook
            dest = tl.arange(0, 16)
            hits = (k[None, :] == dest[:, None]) & row_mask[None, :]           # [16, BLOCK_B]
            part = tl.dot(hits.to(tl.float32), grad, input_precision="ieee")  # [16, BLOCK_D]
            present = tl.sum(hits.to(tl.int32), axis=1) > 0
            offsets = (i * book_rows + dest).to(tl.int64)[:, None] * dim + cols[None, :]
            # relaxed: the adds only need atomicity, not ordering (acq_rel costs a fence each)
            tl.atomic_add(grad_books_ptr + offsets, part, mask=present[:, None] & col_mask[None, :],
                          sem="relaxed")
        else:
            offsets = (i * book_rows + k).to(tl.int64)[:, None] * dim + cols[None, :]
            tl.atomic_add(grad_books_ptr + offsets, grad, mask=mask, sem="relaxed")


def use_byte_tables(bits_per_index: int, byte_tables: bool | None = None,
                    backward: bool = False, deterministic: bool = False) -> bool:
    """Whether a call takes the byte-table path (only ever for ``b < 8``).

    ``byte_tables=None`` applies the default rule, set from the roofline until a GPU run of
    ``hashembed bench decode`` says otherwise: forward, yes (half the gathered rows at b = 4);
    atomic backward, no (the index path pre-reduces a tile to ``2^b`` atomic rows per
    codebook, the byte path cannot with 256); deterministic backward, yes (half the entries to
    sort and gather).
    """
    if bits_per_index >= 8:
        return False
    if byte_tables is not None:
        return bool(byte_tables)
    return not backward or deterministic


def merge_byte_tables(codebooks: torch.Tensor, bits_per_index: int) -> torch.Tensor:
    """``[m, 2^b, d_c]`` -> ``[c/8, 256, d_c]``: ``T_j[v] = sum_s C_{j·8/b+s}[field s of v]``.

    Field ``s`` of byte value ``v`` is ``(v >> s·b) & (2^b - 1)``; viewing ``v`` as the digits
    ``(f_{8/b-1}, …, f_0)`` in base ``2^b``, ``T_j`` is a broadcast sum of the ``8/b`` codebooks
    over a ``[2^b] * (8/b)`` grid, in the order ``s = 0, 1, …`` (as the reference's
    ``byte_codebooks``, so the two agree bit for bit on fp32). Same device, no index table.

    Added and returned in fp32 (fp64 stays fp64): the kernels accumulate in fp32, and a merge
    in bf16 would round every ``T_j[v]`` to 8 mantissa bits before that. The table is small
    (``c/8 · 256 · d_c`` elements, 1 MiB at c = 128, d_c = 64).
    """
    per_byte = 8 // bits_per_index
    m, rows, dim = codebooks.shape
    codebooks = codebooks.to(torch.promote_types(codebooks.dtype, torch.float32))
    grouped = codebooks.reshape(m // per_byte, per_byte, rows, dim)
    table = None
    for s in range(per_byte):
        shape = [m // per_byte] + [1] * per_byte + [dim]
        shape[per_byte - s] = rows  # f_s is digit s counted from the last
        term = grouped[:, s].reshape(shape)
        table = term if table is None else table + term
    return table.reshape(m // per_byte, 256, dim)


def split_byte_grad(grad_tables: torch.Tensor, bits_per_index: int) -> torch.Tensor:
    """The VJP of :func:`merge_byte_tables`: ``[c/8, 256, d_c]`` -> ``[m, 2^b, d_c]``, where
    ``dC_{j·8/b+s}[r] = sum_{v : field s of v = r} dT_j[v]`` (a fixed-order reduction)."""
    per_byte = 8 // bits_per_index
    groups, _, dim = grad_tables.shape
    rows = 1 << bits_per_index
    grid = grad_tables.reshape([groups] + [rows] * per_byte + [dim])
    parts = []
    for s in range(per_byte):
        others = tuple(1 + t for t in range(per_byte) if t != per_byte - 1 - s)
        parts.append(grid.sum(dim=others) if others else grid)
    return torch.stack(parts, dim=1).reshape(groups * per_byte, rows, dim)


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


def _grid(num_rows: int, dim: int):
    return lambda meta: (triton.cdiv(num_rows, meta["BLOCK_B"]), triton.cdiv(dim, meta["BLOCK_D"]))


def code_decode_forward(packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int,
                        byte_tables: bool | None = None) -> torch.Tensor:
    """Fused decode.

    Args:
        packed: ``uint8 [B, c/8]`` codes (rows contiguous).
        codebooks: ``fp32|bf16|fp16 [m, 2^b, d_c]``.
        bits_per_index: ``b``.
        byte_tables: ``b < 8`` only: gather ``c/8`` merged fp32 byte-table rows (``True``) or
            ``m`` codebook rows (``False``); ``None``: :func:`use_byte_tables`' rule.

    Returns:
        ``fp32 [B, d_c]``, accumulated in fp32.
    """
    _check_inputs(packed, codebooks, bits_per_index)
    if use_byte_tables(bits_per_index, byte_tables):
        codebooks, bits_per_index = merge_byte_tables(codebooks, bits_per_index), 8
    codebooks = codebooks.contiguous()
    num_rows = packed.shape[0]
    m, _, dim = codebooks.shape
    out = torch.empty((num_rows, dim), dtype=torch.float32, device=packed.device)
    if num_rows == 0:
        return out
    with on_device(packed):
        _code_decode_fwd_kernel[_grid(num_rows, dim)](packed, codebooks, out, num_rows, m, dim,
                                                      packed.stride(0), _rows_bucket(num_rows),
                                                      BITS=bits_per_index)
    return out


def code_decode_backward(packed: torch.Tensor, grad_out: torch.Tensor, codebooks_shape,
                         bits_per_index: int, dtype: torch.dtype = torch.float32,
                         deterministic: bool = False,
                         byte_tables: bool | None = None) -> torch.Tensor:
    """Codebook gradient ``dC`` from ``dz``.

    Args:
        packed: ``uint8 [B, c/8]`` codes of the forward call.
        grad_out: ``dz``, ``float [B, d_c]`` (read as fp32).
        codebooks_shape: ``(m, 2^b, d_c)``.
        bits_per_index: ``b``.
        dtype: dtype of the result (accumulation is fp32 throughout).
        deterministic: sorted segment sums, bit-identical run to run (else relaxed atomics).
        byte_tables: as in :func:`code_decode_forward` (``None``: the backward rule).

    Returns:
        ``[m, 2^b, d_c]`` in ``dtype``.
    """
    m, rows, dim = codebooks_shape
    num_rows = packed.shape[0]
    grad_out = grad_out.to(torch.float32).contiguous()
    if grad_out.shape != (num_rows, dim):
        raise CodeFormatError(f"output gradient has shape {list(grad_out.shape)}, expected "
                              f"[{num_rows}, {dim}]")
    split = use_byte_tables(bits_per_index, byte_tables, backward=True,
                            deterministic=deterministic)
    bits = 8 if split else bits_per_index
    shape = (m * bits_per_index // 8, 256, dim) if split else (m, rows, dim)
    if num_rows == 0:
        grad = torch.zeros(shape, dtype=torch.float32, device=grad_out.device)
    elif deterministic:
        from hashembed.kernels.deterministic import code_grad_deterministic

        grad = code_grad_deterministic(packed, grad_out, shape, bits)
    else:
        grad = torch.zeros(shape, dtype=torch.float32, device=grad_out.device)
        with on_device(packed):
            _code_decode_bwd_atomic_kernel[_grid(num_rows, dim)](
                packed, grad_out, grad, num_rows, shape[0], dim, packed.stride(0),
                _rows_bucket(num_rows), BITS=bits)
    if split:
        grad = split_byte_grad(grad, bits_per_index)
    return grad.to(dtype)


class CodeDecodeFunction(torch.autograd.Function):
    """Autograd op for the fused decode: gradient flows to the codebooks only (codes are bits)."""

    @staticmethod
    def forward(ctx, packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int,
                deterministic: bool = False, byte_tables: bool | None = None) -> torch.Tensor:
        ctx.save_for_backward(packed)
        ctx.meta = (tuple(codebooks.shape), bits_per_index, codebooks.dtype, deterministic,
                    byte_tables)
        return code_decode_forward(packed, codebooks, bits_per_index, byte_tables)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (packed,) = ctx.saved_tensors
        shape, bits, dtype, deterministic, byte_tables = ctx.meta
        grad_books = None
        if ctx.needs_input_grad[1]:
            grad_books = code_decode_backward(packed, grad_out, shape, bits, dtype, deterministic,
                                              byte_tables)
        return None, grad_books, None, None, None


def code_decode_triton(packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int,
                       deterministic: bool = False,
                       byte_tables: bool | None = None) -> torch.Tensor:
    """Differentiable fused decode; same contract as ``code_decode_reference`` but fp32 out.

    Example:
        >>> packed = torch.tensor([[0x21]], dtype=torch.uint8)        # k = (1, 2) at b = 4
        >>> books = torch.arange(2 * 16 * 1.0).reshape(2, 16, 1)
        >>> code_decode_triton(packed, books, 4)                    # C_0[1] + C_1[2] = 1 + 18
        tensor([[19.]])
    """
    return CodeDecodeFunction.apply(packed, codebooks, bits_per_index, deterministic, byte_tables)
