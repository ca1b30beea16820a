import importlib.util

import pytest
import torch

from hashembed.core.errors import ConfigError
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


# the Triton path runs on the GPU where there is one, else under Triton's CPU interpreter
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_triton_backend_matches_reference_backend():
    """The module's Triton path and reference path agree, with gradients."""
    torch.manual_seed(0)
    config = DecoderConfig(bits=32, bits_per_index=8, codebook_dim=12, hidden_dim=8,
                           embedding_dim=4)
    ref = CodeDecoder(config, backend="reference").to(DEVICE)
    tri = CodeDecoder(config, backend="triton").to(DEVICE)
    tri.load_state_dict(ref.state_dict())
    packed = torch.randint(0, 256, (9, 4), dtype=torch.uint8, device=DEVICE)
    out_ref, out_tri = ref(packed), tri(packed)
    torch.testing.assert_close(out_tri, out_ref, atol=1e-5, rtol=1e-5)
    out_ref.sum().backward()
    out_tri.sum().backward()
    torch.testing.assert_close(tri.codebooks.grad, ref.codebooks.grad, atol=1e-5, rtol=1e-5)


def test_unknown_backend_is_named():
    with pytest.raises(ConfigError, match="backend 'cuda'"):
        CodeDecoder(DecoderConfig(bits=32), backend="cuda")


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_folded_first_linear_equals_the_unfolded_decoder(backend):
    """sum_i (C_i W1^T)[k_i] + b1 == W1 sum_i C_i[k_i] + b1, in values and in every gradient."""
    torch.manual_seed(1)
    config = DecoderConfig(bits=48, bits_per_index=4, codebook_dim=24, hidden_dim=10,
                           embedding_dim=7)
    plain = CodeDecoder(config, backend=backend, fold_first_linear=False).to(DEVICE)
    folded = CodeDecoder(config, backend=backend).to(DEVICE)
    assert folded.fold_first_linear and "fold_first_linear=True" in repr(folded)
    folded.load_state_dict(plain.state_dict())
    packed = torch.randint(0, 256, (13, 6), dtype=torch.uint8, device=DEVICE)
    out_plain, out_folded = plain(packed), folded(packed)
    torch.testing.assert_close(out_folded, out_plain, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out_plain)
    (out_plain * weights).sum().backward()
    (out_folded * weights).sum().backward()
    for (name, p_plain), p_folded in zip(plain.named_parameters(), folded.parameters()):
        torch.testing.assert_close(p_folded.grad, p_plain.grad, atol=1e-5, rtol=1e-4,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_folding_is_chosen_only_where_it_narrows_the_rows():
    assert not CodeDecoder(DecoderConfig(codebook_dim=64, hidden_dim=128)).fold_first_linear
    assert CodeDecoder(DecoderConfig(codebook_dim=64, hidden_dim=64)).fold_first_linear
    assert CodeDecoder(DecoderConfig(codebook_dim=64, hidden_dim=128),
                       fold_first_linear=True).fold_first_linear


def test_auto_backend_falls_back_where_the_kernel_cannot_serve():
    import torch

    from hashembed.train.decoder import kernel_serves

    assert not kernel_serves(False, torch.float32, 64)          # CPU tensors
    assert not kernel_serves(True, torch.bfloat16, 64)          # a bf16 model
    assert not kernel_serves(True, torch.float64, 64)           # a float64 model
    assert not kernel_serves(True, torch.float32, 2048)         # rows too wide
    triton_installed = importlib.util.find_spec("triton") is not None
    assert kernel_serves(True, torch.float32, 64) == triton_installed


def test_the_decoder_returns_its_codebooks_dtype():
    import torch

    from hashembed.train.decoder import CodeDecoder, DecoderConfig

    decoder = CodeDecoder(DecoderConfig(32, 8, 8, 16, 8)).to(torch.float64)
    packed = torch.randint(0, 256, (5, 4), dtype=torch.uint8)
    assert decoder(packed).dtype == torch.float64


@pytest.mark.parametrize("fold", [True, False])
def test_the_degree_field_adds_its_own_row_and_starts_at_nothing(fold):
    """A decoder with the field reads [B, c/8 + 1]: at initialisation (D = 0) it decodes the
    bits as the same decoder without the field; once D moves, the degree byte changes the
    output, folded or not alike, and gradients reach the rows of the buckets used."""
    config = DecoderConfig(bits=32, bits_per_index=4, codebook_dim=8, hidden_dim=16,
                           embedding_dim=6)
    torch.manual_seed(0)
    plain = CodeDecoder(config, fold_first_linear=fold)
    torch.manual_seed(0)
    with_field = CodeDecoder(DecoderConfig(**{**config.to_dict(), "degree_field": True}),
                             fold_first_linear=fold)
    packed = torch.randint(0, 256, (10, 4), dtype=torch.uint8)
    degree = torch.tensor([0, 2, 3, 61, 0, 2, 2, 5, 9, 61], dtype=torch.uint8)[:, None]
    rows = torch.cat([packed, degree], dim=1)
    torch.testing.assert_close(with_field(rows), plain(packed))
    with torch.no_grad():
        with_field.degree_rows.normal_()
    out = with_field(rows)
    unfolded = CodeDecoder(with_field.config, fold_first_linear=not fold)
    unfolded.load_state_dict(with_field.state_dict())
    torch.testing.assert_close(unfolded(rows), out, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[0], with_field(torch.cat([packed, degree + 1], 1))[0])
    out.square().sum().backward()
    touched = (with_field.degree_rows.grad.abs().sum(1) > 0).nonzero().flatten().tolist()
    assert touched == [0, 2, 3, 5, 9, 61]
    with pytest.raises(ConfigError, match=r"expected \[B, 5\]"):
        with_field(packed)


def test_flip_bits_flips_every_code_bit_at_the_rate_and_keeps_the_degree_byte():
    """Each of the c code bits of each row flips with probability q, independently of its
    position; the bytes past c/8 (the degree byte) and the input are left as they were."""
    import numpy as np

    from hashembed.core.codeformat import unpack_codes
    from hashembed.train.decoder import flip_bits

    rows, q = 20_000, 0.1
    packed = torch.randint(0, 256, (rows, 5), dtype=torch.uint8)  # c = 32, then a degree byte
    before = packed.clone()
    flipped = flip_bits(packed, q, 32, generator=torch.Generator().manual_seed(0))
    assert flipped.shape == packed.shape and flipped.dtype == torch.uint8
    assert torch.equal(packed, before)
    assert torch.equal(flipped[:, 4], packed[:, 4])
    changed = unpack_codes((flipped[:, :4] ^ packed[:, :4]).numpy(), 32)   # bool [rows, 32]
    # per position: binomial(20000, 0.1), std 0.0021; overall: std 0.0004
    assert np.abs(changed.mean(0) - q).max() < 0.012
    assert abs(changed.mean() - q) < 0.002
    again = flip_bits(packed, q, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, flipped)  # the draws follow the generator


@pytest.mark.parametrize("fold", [True, False])
def test_bit_flips_act_while_training_only(fold):
    """``bit_flip`` changes what a training step decodes, never what evaluation decodes:
    in eval mode the decoder equals one without flips and the same weights."""
    config = DecoderConfig(bits=32, bits_per_index=4, codebook_dim=8, hidden_dim=16,
                           embedding_dim=6)
    noisy = CodeDecoder(DecoderConfig(**{**config.to_dict(), "bit_flip": 0.2}),
                        fold_first_linear=fold)
    plain = CodeDecoder(config, fold_first_linear=fold)
    plain.load_state_dict(noisy.state_dict())
    packed = torch.randint(0, 256, (64, 4), dtype=torch.uint8)
    noisy.eval()
    torch.testing.assert_close(noisy(packed), plain(packed))
    noisy.train()
    assert not torch.allclose(noisy(packed), plain(packed))
    assert torch.equal(plain.train()(packed), plain.eval()(packed))  # q = 0: nothing drawn
    assert "bit_flip=0.2" in repr(noisy)


@pytest.mark.parametrize("rate", [-0.1, 0.5])
def test_a_bit_flip_rate_outside_its_range_is_named(rate):
    with pytest.raises(ConfigError, match=f"bit_flip={rate} must be in"):
        DecoderConfig(bits=32, bit_flip=rate)
