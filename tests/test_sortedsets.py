"""The sort-based set operations equal numpy's own."""

import numpy as np

from hashembed.sortedsets import isin_sorted, sorted_unique


def test_sorted_unique_and_membership_equal_numpy():
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 1000):
        values = rng.integers(-50, 50, size)
        np.testing.assert_array_equal(sorted_unique(values.copy()), np.unique(values))
        pool = np.unique(rng.integers(-50, 50, rng.integers(0, 40)))
        np.testing.assert_array_equal(isin_sorted(values, pool), np.isin(values, pool))
