import pytest
import torch

from hashembed.errors import ConfigError
from hashembed.train.decoder import CodeDecoder, DecoderConfig


def test_shapes_repr_and_gradients_reach_every_used_row():
    torch.manual_seed(0)
    dec = CodeDecoder(DecoderConfig(bits=32, bits_per_index=4, codebook_dim=8, hidden_dim=16,
                                    embedding_dim=6))
    assert "c=32, b=4, m=8" in repr(dec)
    packed = torch.randint(0, 256, (10, 4), dtype=torch.uint8)
    out = dec(packed)
    assert out.shape == (10, 6) and out.dtype == torch.float32
    out.square().sum().backward()
    assert dec.codebooks.grad.shape == (8, 16, 8)
    used = dec.codebooks.grad.abs().sum(-1) > 0
    assert used.any() and used.sum() <= 10 * 8  # only selected rows get gradient
    assert all(p.grad is not None for p in dec.mlp.parameters())


def test_wrong_code_width_is_named():
    dec = CodeDecoder(DecoderConfig(bits=64))
    with pytest.raises(ConfigError, match=r"expected \[B, 8\]"):
        dec(torch.zeros(3, 16, dtype=torch.uint8))


def test_triton_backend_matches_reference_backend():
    """The module's Triton path (interpreted on CPU) and reference path agree, with gradients."""
    torch.manual_seed(0)
    config = DecoderConfig(bits=32, bits_per_index=8, codebook_dim=12, hidden_dim=8,
                           embedding_dim=4)
    ref = CodeDecoder(config, backend="reference")
    tri = CodeDecoder(config, backend="triton")
    tri.load_state_dict(ref.state_dict())
    packed = torch.randint(0, 256, (9, 4), dtype=torch.uint8)
    out_ref, out_tri = ref(packed), tri(packed)
    torch.testing.assert_close(out_tri, out_ref, atol=1e-5, rtol=1e-5)
    out_ref.sum().backward()
    out_tri.sum().backward()
    torch.testing.assert_close(tri.codebooks.grad, ref.codebooks.grad, atol=1e-5, rtol=1e-5)


def test_unknown_backend_is_named():
    with pytest.raises(ConfigError, match="backend 'cuda'"):
        CodeDecoder(DecoderConfig(bits=32), backend="cuda")
