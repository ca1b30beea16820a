"""String ids out of core: distinct ids bucketed by fingerprint equal the plain distinct set."""

import numpy as np
import pyarrow as pa

from hashembed.core.idmap import utf8_fingerprints
from hashembed.graph.stringids import DistinctStringBuckets, utf8_buffers


def test_bucketed_distinct_ids_equal_the_sorted_set(tmp_path):
    rng = np.random.default_rng(0)
    pool = [f"user-{i}" for i in range(500)] + ["", "é", "ü" * 300, "a,b", "user-1 "]
    seen = set()
    scan = DistinctStringBuckets(tmp_path, 16)
    for _ in range(12):  # chunks that repeat ids within and across themselves
        picked = [pool[i] for i in rng.integers(0, len(pool), 200)]
        seen.update(picked)
        half = len(picked) // 2
        scan.add(pa.array(picked[:half], pa.large_string()),
                 pa.array(picked[half:], pa.large_string()))
    assert sum(b > 0 for b in scan.batches) > 8  # the ids spread over the buckets
    ids = scan.distinct()
    expected = sorted(seen, key=lambda s: s.encode())
    assert ids.type == pa.large_string() and ids.to_pylist() == expected
    assert not list(tmp_path.iterdir())  # the bucket files are gone


def test_an_id_always_lands_in_the_same_bucket(tmp_path):
    ids = pa.array([f"n{i}" for i in range(1000)], pa.large_string())
    buckets = utf8_fingerprints(*utf8_buffers(ids)) >> np.uint64(60)
    again = utf8_fingerprints(*utf8_buffers(ids.slice(500))) >> np.uint64(60)
    np.testing.assert_array_equal(buckets[500:], again)
    scan = DistinctStringBuckets(tmp_path, 1)
    scan.add(ids)
    assert scan.distinct().to_pylist() == sorted(ids.to_pylist())
