"""The counter-based projection: the distribution the method needs, and no hidden state."""

import numpy as np
import pytest

from hashembed.core.projection import mix64, node_keys, projection, tie_rank


@pytest.fixture(scope="module")
def keys():
    return node_keys(np.arange(20_000))


def test_gaussian_entries_have_zero_mean_unit_variance_per_bit(keys):
    r = projection(keys, 0, 64, seed=0).astype(np.float64)
    assert r.shape == (20_000, 64) and r.dtype == np.float64
    # 20,000 draws per bit: the mean's std is 0.007, the variance's about 0.01
    assert np.abs(r.mean(0)).max() < 0.035 and np.abs(r.var(0) - 1).max() < 0.06
    kurtosis = ((r - r.mean(0)) ** 4).mean(0) / r.var(0) ** 2
    assert np.abs(kurtosis.mean() - 3) < 0.05  # Gaussian, not uniform (1.8) or ±1 (1)
    corr = np.corrcoef(r.T)[np.triu_indices(64, 1)]
    assert np.abs(corr).max() < 0.04  # bits are independent directions


def test_rademacher_entries_are_balanced_signs(keys):
    r = projection(keys, 0, 64, seed=0, kind="rademacher")
    assert set(np.unique(r)) == {-1.0, 1.0} and np.abs(r.mean(0)).max() < 0.035


def test_an_entry_depends_only_on_seed_key_and_bit(keys):
    full = projection(keys, 0, 96, seed=7)
    np.testing.assert_array_equal(full[:, 40:72], projection(keys, 40, 72, seed=7))
    picked = np.array([5, 19_999, 0, 5])
    np.testing.assert_array_equal(full[picked], projection(keys[picked], 0, 96, seed=7))
    assert not np.array_equal(full, projection(keys, 0, 96, seed=8))
    assert tie_rank(keys[picked], 3, 7).tolist() == tie_rank(keys, 3, 7)[picked].tolist()


def test_mix64_is_a_bijection_sample():
    x = np.arange(1 << 16, dtype=np.uint64)
    assert np.unique(mix64(x)).size == x.size
    assert mix64(np.array([0], np.uint64))[0] == 0  # the finaliser fixes zero: keys xor first
