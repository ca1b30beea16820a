import numpy as np
import pytest
import torch

from hashembed.core.codeformat import codes_to_indices as codes_to_indices_np
from hashembed.core.errors import CodeFormatError
from hashembed.kernels.reference import byte_codebooks, code_decode_reference, codes_to_indices


@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_torch_index_read_matches_the_numpy_spec(b):
    packed = torch.randint(0, 256, (13, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(b))
    np.testing.assert_array_equal(codes_to_indices(packed, b).numpy(),
                                  codes_to_indices_np(packed.numpy(), b))


@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_decode_is_the_sum_of_selected_rows(b):
    gen = torch.Generator().manual_seed(0)
    m, d_c = 32 // b, 5
    books = torch.randn(m, 1 << b, d_c, generator=gen, dtype=torch.float64)
    packed = torch.randint(0, 256, (9, 4), dtype=torch.uint8, generator=gen)
    idx = codes_to_indices(packed, b)
    expected = sum(books[i, idx[:, i]] for i in range(m))
    torch.testing.assert_close(code_decode_reference(packed, books, b), expected)


@pytest.mark.parametrize("b", [1, 2, 4])
def test_byte_codebooks_merge_gives_the_same_sum_and_gradient(b):
    """T_j[v] = sum_s C_{j(8/b)+s}[(v >> sb) & mask]: row v of a byte table is the sum of the
    rows byte value v selects, so decoding bytes through T equals the per-index sum."""
    gen = torch.Generator().manual_seed(b)
    m = 32 // b
    books = torch.randn(m, 1 << b, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    merged = byte_codebooks(books, b)
    assert merged.shape == (4, 256, 3)
    byte_values = torch.arange(256, dtype=torch.uint8).unsqueeze(1)  # one byte per "node"
    for j in range(4):
        idx = codes_to_indices(byte_values, b)  # [256, 8/b]
        expected = sum(books[j * (8 // b) + s, idx[:, s]] for s in range(8 // b))
        torch.testing.assert_close(merged[j], expected)
    packed = torch.randint(0, 256, (11, 4), dtype=torch.uint8, generator=gen)
    grad_out = torch.randn(11, 3, generator=gen, dtype=torch.float64)
    code_decode_reference(packed, books, b).backward(grad_out)
    idx = codes_to_indices(packed, b)
    expected = torch.zeros_like(books)
    for v in range(11):
        for i in range(m):
            expected[i, idx[v, i]] += grad_out[v]
    torch.testing.assert_close(books.grad, expected)


def test_gradient_is_scatter_add_of_output_grad():
    gen = torch.Generator().manual_seed(1)
    books = torch.randn(2, 256, 3, dtype=torch.float64, requires_grad=True)
    packed = torch.tensor([[5, 7], [5, 9], [6, 7]], dtype=torch.uint8)
    grad_out = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    code_decode_reference(packed, books, 8).backward(grad_out)
    expected = torch.zeros_like(books)
    for v, (k0, k1) in enumerate(packed.long().tolist()):
        expected[0, k0] += grad_out[v]
        expected[1, k1] += grad_out[v]
    torch.testing.assert_close(books.grad, expected)


def test_shape_errors_are_named():
    books = torch.zeros(16, 256, 4)
    with pytest.raises(CodeFormatError, match="codes have 15 bytes per node; 16 codebooks of b=8 need 128 bits"):
        code_decode_reference(torch.zeros(2, 15, dtype=torch.uint8), books, 8)
    with pytest.raises(CodeFormatError, match="uint8"):
        code_decode_reference(torch.zeros(2, 16, dtype=torch.int32), books, 8)
    with pytest.raises(CodeFormatError, match="256 rows, b=4 needs 16"):
        code_decode_reference(torch.zeros(2, 16, dtype=torch.uint8), books, 4)


def test_cached_index_table_made_in_inference_mode_still_trains(monkeypatch):
    """A per-device table first made by a serving call under torch.inference_mode() must not
    be an inference tensor, or a later training step's backward fails (CPU stands in for the
    GPU: the cache is switched on for it)."""
    from hashembed.kernels import reference

    monkeypatch.setattr(reference, "CACHED_DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(reference, "_device_tables", {})
    gen = torch.Generator().manual_seed(0)
    packed = torch.randint(0, 256, (5, 2), dtype=torch.uint8, generator=gen)
    books = torch.randn(4, 16, 3, generator=gen, requires_grad=True)
    with torch.inference_mode():
        code_decode_reference(packed, books, 4)
    (table,) = reference._device_tables.values()
    assert not table.is_inference()
    assert reference._byte_to_indices(4, packed.device) is table  # kept, not remade
    code_decode_reference(packed, books, 4).sum().backward()     # the training step
    assert books.grad is not None and books.grad.abs().sum() > 0
