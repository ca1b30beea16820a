"""The sort-based set operations equal numpy's own."""

import numpy as np
import pytest

from hashembed.core.sortedsets import SORT_NEEDLES_FROM, isin_sorted, search_sorted, sorted_unique


def test_sorted_unique_and_membership_equal_numpy():
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 1000):
        values = rng.integers(-50, 50, size)
        np.testing.assert_array_equal(sorted_unique(values.copy()), np.unique(values))
        pool = np.unique(rng.integers(-50, 50, rng.integers(0, 40)))
        np.testing.assert_array_equal(isin_sorted(values, pool), np.isin(values, pool))


@pytest.mark.parametrize("count", [10, SORT_NEEDLES_FROM + 5])  # searched as they come; sorted first
def test_search_sorted_equals_numpy(count):
    rng = np.random.default_rng(count)
    table = np.sort(rng.integers(0, 1000, 500)).astype(np.uint64)  # with repeats
    needles = rng.integers(0, 1100, count).astype(np.uint64)
    np.testing.assert_array_equal(search_sorted(table, needles), np.searchsorted(table, needles))
