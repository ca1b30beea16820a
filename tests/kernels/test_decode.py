"""Triton decode kernels against the PyTorch reference: values and codebook gradients.

On CPU these run under TRITON_INTERPRET=1 (set in conftest), so shapes stay small.
"""

import math

import pytest
import torch

from hashembed.core.errors import CodeFormatError
from hashembed.kernels import decode, deterministic
from hashembed.kernels.common import block_sizes
from hashembed.kernels.decode import (_rows_bucket, code_decode_forward,
                                      code_decode_triton, merge_byte_tables, split_byte_grad,
                                      use_byte_tables)
from hashembed.kernels.reference import byte_codebooks, code_decode_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def assert_close_report(actual, expected, atol, rtol, what):
    """Fail with the number of mismatches and the first bad indices."""
    bad = ~torch.isclose(actual.float(), expected.float(), atol=atol, rtol=rtol)
    if bad.any():
        first = bad.nonzero()[:5].tolist()
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} entries differ; first "
                             f"at {first}: {actual[bad][:5].tolist()} vs "
                             f"{expected[bad][:5].tolist()}")


def make_case(batch, bits, b, dim, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    m = bits // b
    packed = torch.randint(0, 256, (batch, bits // 8), dtype=torch.uint8, generator=gen)
    books = torch.randn(m, 1 << b, dim, generator=gen).to(dtype)
    return packed.to(DEVICE), books.to(DEVICE)


# (B, c, b, d_c): B = 1 and prime B, m = 1, d_c not a power of two, every b
CASES = [
    (1, 8, 8, 16),      # B = 1, m = 1
    (13, 16, 1, 5),     # b = 1, m = 16, odd width
    (7, 8, 2, 33),      # b = 2
    (31, 32, 4, 24),    # b = 4
    (17, 64, 8, 130),   # b = 8, width spans two column blocks
    (5, 16, 16, 3),     # b = 16, m = 1
    (3, 32, 16, 12),    # b = 16, m = 2
]


# byte_tables: None (the default rule), True / False (forced) where b < 8 has both paths
PATH_CASES = [case + (tables,) for case in CASES
              for tables in ((None, True, False) if case[2] < 8 else (None,))]


@pytest.mark.parametrize("batch, bits, b, dim, byte_tables", PATH_CASES)
@pytest.mark.parametrize("deterministic", [False, True])
def test_forward_and_codebook_gradient_match_reference(batch, bits, b, dim, byte_tables,
                                                        deterministic):
    packed, books = make_case(batch, bits, b, dim, seed=batch)
    grad_out = torch.randn(batch, dim, generator=torch.Generator().manual_seed(1)).to(DEVICE)

    ref_books = books.clone().requires_grad_(True)
    expected = code_decode_reference(packed, ref_books, b)
    expected.backward(grad_out)

    tri_books = books.clone().requires_grad_(True)
    actual = code_decode_triton(packed, tri_books, b, deterministic, byte_tables)
    actual.backward(grad_out)

    assert actual.shape == (batch, dim) and actual.dtype == torch.float32
    assert_close_report(actual, expected, 1e-5, 1e-5, "forward")
    assert_close_report(tri_books.grad, ref_books.grad, 1e-5, 1e-5, "codebook gradient")


# (B, c, b, d_c, byte_tables, deterministic) with B > BLOCK_B: d_c = 65 makes the rule's tile
# 32 rows x 128 columns, so B = 101 runs 4 row programs (the last one partial) whose atomics
# meet on shared rows. At b < 8 each path, forced, and the default rule in both backward modes.
MULTI_PROGRAM_CASES = [(101, 32, b, 65, tables, det) for b in (1, 4)
                       for tables, det in ((None, False), (True, False), (False, False),
                                           (None, True))]
MULTI_PROGRAM_CASES += [(101, 32, 8, 65, None, det) for det in (False, True)]


@pytest.mark.parametrize("batch, bits, b, dim, byte_tables, deterministic", MULTI_PROGRAM_CASES)
def test_several_row_programs_on_strided_codes(batch, bits, b, dim, byte_tables, deterministic):
    """Rows beyond the first program's tile are decoded and their gradients added, from code
    rows that are not contiguous (a column slice of a wider byte array), with every third
    node sharing node 0's code so that several programs add into the same codebook rows."""
    block_b, _ = block_sizes(dim)
    assert batch > 3 * block_b  # several row programs
    gen = torch.Generator().manual_seed(batch + b)
    wide = torch.randint(0, 256, (batch, bits // 8 + 3), dtype=torch.uint8, generator=gen)
    wide[::3] = wide[0]
    packed = wide.to(DEVICE)[:, 2:2 + bits // 8]
    assert not packed.is_contiguous() and packed.stride(1) == 1
    books = torch.randn(bits // b, 1 << b, dim, generator=gen).to(DEVICE)
    grad_out = torch.randn(batch, dim, generator=gen).to(DEVICE)
    ref = books.clone().requires_grad_(True)
    expected = code_decode_reference(packed, ref, b)  # kept: torch.empty must not reuse it
    expected.backward(grad_out)
    tri = books.clone().requires_grad_(True)
    actual = code_decode_triton(packed, tri, b, deterministic, byte_tables)
    actual.backward(grad_out)
    assert_close_report(actual, expected, 1e-5, 1e-5, "forward")
    assert_close_report(tri.grad, ref.grad, 1e-4, 1e-5, "codebook gradient")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_codebooks_accumulate_in_fp32(dtype):
    packed, books = make_case(11, 64, 8, 20, dtype=dtype)
    expected = code_decode_reference(packed, books.float(), 8)  # exact sum of the same values
    actual = code_decode_forward(packed, books, 8)
    assert actual.dtype == torch.float32
    assert_close_report(actual, expected, 1e-5, 1e-5, f"{dtype} forward")
    books = books.clone().requires_grad_(True)
    code_decode_triton(packed, books, 8).sum().backward()
    assert books.grad.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("byte_tables", [None, True, False])
def test_half_precision_codebooks_at_b4_lose_nothing_to_the_byte_merge(dtype, byte_tables):
    """On both paths (the default forward takes the byte tables) the sum is the fp32 sum of
    the half-precision values: the byte tables are merged in fp32. A merge in bf16 rounds
    each table entry to 8 mantissa bits, ~4e-3 relative, far outside this tolerance."""
    packed, books = make_case(19, 32, 4, 24, dtype=dtype, seed=3)
    grad_out = torch.randn(19, 24, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    ref_books = books.float().requires_grad_(True)  # the same values, summed in fp32
    expected = code_decode_reference(packed, ref_books, 4)
    expected.backward(grad_out)
    tri_books = books.clone().requires_grad_(True)
    actual = code_decode_triton(packed, tri_books, 4, byte_tables=byte_tables)
    actual.backward(grad_out)
    assert_close_report(actual, expected, 1e-5, 1e-5, f"{dtype} forward")
    assert tri_books.grad.dtype == dtype
    # the fp32 gradient rounded once to the codebooks' dtype (half an ulp: 2^-9 for bf16)
    ulp = 2.0 ** -(8 if dtype == torch.bfloat16 else 11)
    assert_close_report(tri_books.grad, ref_books.grad, 1e-6, ulp, f"{dtype} codebook gradient")


def test_byte_tables_of_half_precision_codebooks_are_merged_in_fp32():
    books = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(0)).bfloat16()
    merged = merge_byte_tables(books, 4)
    assert merged.dtype == torch.float32
    assert torch.equal(merged, byte_codebooks(books.float(), 4))


@pytest.mark.parametrize("b", [1, 2, 4])
def test_byte_tables_equal_the_reference_merge_and_split_is_its_vjp(b):
    gen = torch.Generator().manual_seed(b)
    books = torch.randn(32 // b, 1 << b, 3, generator=gen, dtype=torch.float64,
                        requires_grad=True)
    merged = merge_byte_tables(books, b)
    assert torch.equal(merged, byte_codebooks(books, b))  # same sum, same order: bit for bit
    grad_tables = torch.randn(merged.shape, generator=gen, dtype=torch.float64)
    (expected,) = torch.autograd.grad(merged, books, grad_tables)
    torch.testing.assert_close(split_byte_grad(grad_tables, b), expected)


@pytest.mark.parametrize("b, byte_tables", [(4, True), (4, False), (8, None), (16, None)])
@pytest.mark.parametrize("chunk, block_e", [(5, 2), (12, 4), (1024, 64)])
def test_deterministic_backward_is_bitwise_repeatable(b, byte_tables, chunk, block_e,
                                                      monkeypatch):
    """Two runs give the same bits, and the sum equals the reference's, with rows that cross
    chunk and step boundaries (small CHUNK and BLOCK_E) and one row shared by half the nodes."""
    monkeypatch.setattr(deterministic, "CHUNK", chunk)
    monkeypatch.setattr(deterministic, "BLOCK_E", block_e)
    packed, books = make_case(41, 32, b, 9, seed=b)
    packed[::2, 0] = 7  # many nodes share rows: contributions collide
    grad_out = torch.randn(41, 9, generator=torch.Generator().manual_seed(5)).to(DEVICE)
    grads = []
    for _ in range(2):
        tri = books.clone().requires_grad_(True)
        code_decode_triton(packed, tri, b, deterministic=True, byte_tables=byte_tables
                           ).backward(grad_out)
        grads.append(tri.grad)
    assert torch.equal(grads[0], grads[1])
    ref = books.clone().requires_grad_(True)
    code_decode_reference(packed, ref, b).backward(grad_out)
    assert_close_report(grads[0], ref.grad, 1e-5, 1e-5, "deterministic gradient")


def test_deterministic_backward_over_several_key_programs(monkeypatch):
    """B > KEYS_BLOCK: the keys kernel runs several programs, and the segment sums span
    several chunks; strided code rows."""
    monkeypatch.setattr(deterministic, "CHUNK", 64)
    monkeypatch.setattr(deterministic, "BLOCK_E", 16)
    batch = 2 * deterministic.KEYS_BLOCK + 37
    gen = torch.Generator().manual_seed(7)
    wide = torch.randint(0, 256, (batch, 4), dtype=torch.uint8, generator=gen)
    packed = wide.to(DEVICE)[:, 1:3]  # c = 16, b = 8: m = 2, 1,098 entries
    grad_out = torch.randn(batch, 5, generator=gen).to(DEVICE)
    grad = deterministic.code_grad_deterministic(packed, grad_out, (2, 256, 5), 8)
    books = torch.zeros(2, 256, 5, device=DEVICE, requires_grad=True)
    code_decode_reference(packed, books, 8).backward(grad_out)
    assert_close_report(grad, books.grad, 1e-5, 1e-5, "deterministic gradient, B > KEYS_BLOCK")


def test_deterministic_row_spanning_every_chunk(monkeypatch):
    """All nodes share one code: one row runs through every chunk (the edge chain)."""
    monkeypatch.setattr(deterministic, "CHUNK", 4)
    monkeypatch.setattr(deterministic, "BLOCK_E", 2)
    packed = torch.full((13, 1), 200, dtype=torch.uint8, device=DEVICE)
    grad_out = torch.randn(13, 3, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    grad = deterministic.code_grad_deterministic(packed, grad_out, (1, 256, 3), 8)
    expected = torch.zeros(1, 256, 3, device=DEVICE)
    expected[0, 200] = grad_out.sum(0)
    assert_close_report(grad, expected, 1e-5, 1e-5, "one shared row")


def test_deterministic_keys_must_fit_int32():
    packed = torch.zeros(2, 1, dtype=torch.uint8, device=DEVICE)
    with pytest.raises(CodeFormatError, match="do not fit int32 sort keys"):
        deterministic.code_grad_deterministic(packed, torch.zeros(2, 1, device=DEVICE),
                                              (2**16, 2**16, 1), 16)


def test_default_path_rule():
    assert use_byte_tables(4) and not use_byte_tables(8) and not use_byte_tables(16)
    assert not use_byte_tables(4, backward=True)                    # atomics pre-reduce
    assert use_byte_tables(4, backward=True, deterministic=True)     # half the entries
    assert not use_byte_tables(4, byte_tables=False) and not use_byte_tables(8, True)


def test_autotune_space_is_pruned_by_width(monkeypatch):
    from hashembed.kernels.decode import _CONFIGS, _prune_configs

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(decode, "AUTOTUNE", True)
    kept = _prune_configs(_CONFIGS, {"dim": 24})
    assert kept and all(c.kwargs["BLOCK_D"] == 32 for c in kept)
    assert len(_prune_configs(_CONFIGS, {"dim": 1000})) == len(_CONFIGS)
    monkeypatch.setattr(decode, "AUTOTUNE", False)  # the rule's tile only
    assert [c.kwargs for c in _prune_configs(_CONFIGS, {"dim": 24})] == [
        {"BLOCK_B": 128, "BLOCK_D": 32}]
    monkeypatch.setattr(decode, "AUTOTUNE", True)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # the interpreter: one config, no benchmarking
    assert len(_prune_configs(_CONFIGS, {"dim": 24})) == 1


def test_autotune_key_holds_the_size_class_of_the_batch():
    """A 4,096-node probe and a 4 M-node batch tune separately; sizes above 4 M share one."""
    assert [_rows_bucket(n) for n in (1, 2, 3, 4096, 4097, 4_000_000, 2**22, 10**9)] == [
        0, 1, 2, 12, 13, 22, 22, 22]
    for kernel in (decode._code_decode_fwd_kernel, decode._code_decode_bwd_atomic_kernel):
        assert kernel.keys == ["dim", "BITS", "rows_bucket"]


def _assert_every_config_ran(kernel, what):
    """The autotuner times a config that fails to compile or launch as inf: none may."""
    timings = kernel.configs_timings
    assert len(timings) > 1, f"{what}: the autotuner did not benchmark"
    failed = [c for c, t in timings.items() if not all(map(math.isfinite, t))]
    assert not failed, f"{what}: configs that did not run: {failed}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("b", [4, 8])
def test_autotuned_kernels_compile_and_match_reference(b, monkeypatch):
    """Every config of the tuning space that fits d_c = 96 compiles for this GPU, and the
    tuned kernels (forward on both paths, atomic backward) agree with the reference."""
    monkeypatch.setattr(decode, "AUTOTUNE", True)
    packed, books = make_case(4099, 64, b, 96, seed=b)
    grad_out = torch.randn(4099, 96, device=DEVICE)
    ref = books.clone().requires_grad_(True)
    expected = code_decode_reference(packed, ref, b)
    expected.backward(grad_out)
    fwd, bwd = decode._code_decode_fwd_kernel, decode._code_decode_bwd_atomic_kernel
    for byte_tables in ((True, False) if b < 8 else (None,)):
        fwd.cache.clear()  # tune now, whatever an earlier test tuned
        bwd.cache.clear()
        tri = books.clone().requires_grad_(True)
        actual = code_decode_triton(packed, tri, b, byte_tables=byte_tables)
        _assert_every_config_ran(fwd, f"forward b={b} byte_tables={byte_tables}")
        actual.backward(grad_out)
        _assert_every_config_ran(bwd, f"backward b={b} byte_tables={byte_tables}")
        assert_close_report(actual, expected, 1e-4, 1e-5, f"tuned forward {byte_tables}")
        assert_close_report(tri.grad, ref.grad, 1e-3, 1e-5, f"tuned gradient {byte_tables}")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_paths_never_synchronise_with_the_host():
    """The fixed grids: no size is read back (sync debug mode raises on a synchronising op);
    and the byte-to-index table of the reference is made once per device."""
    packed, books = make_case(1000, 128, 4, 64)
    books.requires_grad_(True)
    grad_out = torch.randn(1000, 64, device=DEVICE)
    for det in (False, True):  # compile and tune outside the check
        code_decode_triton(packed, books, 4, det).backward(grad_out)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for det in (False, True):
            for byte_tables in (True, False):
                code_decode_triton(packed, books, 4, det, byte_tables).backward(grad_out)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    from hashembed.kernels.reference import _byte_to_indices

    assert _byte_to_indices(4, packed.device) is _byte_to_indices(4, packed.device)


def test_empty_batch():
    packed, books = make_case(0, 16, 8, 4)
    assert code_decode_forward(packed, books, 8).shape == (0, 4)


@pytest.mark.parametrize("packed_shape, dtype, b, message", [
    ((4, 3), torch.uint8, 8, "3 bytes per node; 2 codebooks of b=8 need 16 bits"),
    ((4, 2), torch.int32, 8, "must be uint8"),
    ((4, 2), torch.uint8, 3, "b=3 is not one of"),
    ((4, 2), torch.uint8, 4, "256 rows, b=4 needs 16"),
])
def test_bad_inputs_are_named(packed_shape, dtype, b, message):
    books = torch.zeros(2, 256, 4, device=DEVICE)
    with pytest.raises(CodeFormatError, match=message):
        code_decode_forward(torch.zeros(packed_shape, dtype=dtype, device=DEVICE), books, b)


def test_codebook_width_limit():
    with pytest.raises(CodeFormatError, match="outside"):
        code_decode_forward(torch.zeros(2, 1, dtype=torch.uint8, device=DEVICE),
                            torch.zeros(1, 256, 1025, device=DEVICE), 8)
