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
