"""Triton decode kernels against the PyTorch reference: values and codebook gradients.

On CPU these run under TRITON_INTERPRET=1 (set in conftest), so shapes stay small.
"""

import pytest
import torch

from hashembed.errors import CodeFormatError
from hashembed.kernels.decode import code_decode_forward, code_decode_triton
from hashembed.kernels.reference import code_decode_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def assert_close_report(actual, expected, atol, rtol, what):
    """Fail with the number of mismatches and the first bad indices."""
    bad = ~torch.isclose(actual.float(), expected.float(), atol=atol, rtol=rtol)
    if bad.any():
        first = bad.nonzero()[:5].tolist()
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} entries differ; first "
                             f"at {first}: {actual[bad][:5].tolist()} vs {expected[bad][:5].tolist()}")


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


@pytest.mark.parametrize("batch, bits, b, dim", CASES)
@pytest.mark.parametrize("deterministic", [False, True])
def test_forward_and_codebook_gradient_match_reference(batch, bits, b, dim, deterministic):
    packed, books = make_case(batch, bits, b, dim, seed=batch)
    grad_out = torch.randn(batch, dim, generator=torch.Generator().manual_seed(1)).to(DEVICE)

    ref_books = books.clone().requires_grad_(True)
    expected = code_decode_reference(packed, ref_books, b)
    expected.backward(grad_out)

    tri_books = books.clone().requires_grad_(True)
    actual = code_decode_triton(packed, tri_books, b, deterministic)
    actual.backward(grad_out)

    assert actual.shape == (batch, dim) and actual.dtype == torch.float32
    assert_close_report(actual, expected, 1e-5, 1e-5, "forward")
    assert_close_report(tri_books.grad, ref_books.grad, 1e-5, 1e-5, "codebook gradient")


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


def test_deterministic_backward_is_bitwise_repeatable():
    packed, books = make_case(23, 16, 4, 9)
    packed[:, 0] = 7  # many nodes share rows: contributions collide
    grads = []
    for _ in range(2):
        b = books.clone().requires_grad_(True)
        code_decode_triton(packed, b, 4, deterministic=True).sum().backward()
        grads.append(b.grad)
    assert torch.equal(grads[0], grads[1])


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
