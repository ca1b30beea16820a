"""Checksums: manifest digests, JSON safety, and lazily verified arrays."""

import threading

import numpy as np
import pytest

from hashembed.core.errors import BundleChecksumError
from hashembed.core.integrity import (CHUNK_BYTES, LazyVerifiedArray, digest_matches, file_record,
                                 json_safe, manifest_digest, seal)


def test_the_digest_ignores_key_order_and_catches_any_edit():
    a = seal({"b": 1, "a": {"y": [1, 2], "x": "s"}})
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1, "digest": a["digest"]}
    assert digest_matches(a) and digest_matches(b) and manifest_digest(a) == a["digest"]
    assert not digest_matches({**a, "b": 2})
    assert not digest_matches({**a, "a": {"y": [1, 2], "x": "t"}})
    assert not digest_matches({k: v for k, v in a.items() if k != "digest"})


def test_json_safe_replaces_non_finite_floats():
    assert json_safe({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}) == \
        {"a": None, "b": [1.0, None], "c": "x"}


def lazy(tmp_path, array, name="a.npy"):
    path = tmp_path / name
    np.save(path, array)
    record = file_record(path, chunks=True)
    mapped = np.load(path, mmap_mode="r")
    return path, LazyVerifiedArray(mapped, open(path, "rb"), path, record["chunk_sha256"],
                                   record["chunk_bytes"], mapped.offset, BundleChecksumError)


def corrupt(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x80]))


def test_reads_through_every_index_form_match_the_array(tmp_path):
    array = np.arange(3 * CHUNK_BYTES // 8, dtype=np.int64)  # three pieces and a header
    _, arr = lazy(tmp_path, array)
    assert arr[5] == 5 and arr[-1] == array[-1] and arr.shape == array.shape
    np.testing.assert_array_equal(arr[10:20], array[10:20])
    rows = np.array([0, len(array) // 2, len(array) - 1, -2])
    np.testing.assert_array_equal(arr[rows], array[rows])
    np.testing.assert_array_equal(arr.take(rows[:3]), array[rows[:3]])


def test_a_corrupt_piece_fails_only_when_read_and_under_threads(tmp_path):
    array = np.arange(3 * CHUNK_BYTES // 8, dtype=np.int64)
    path, arr = lazy(tmp_path, array)
    corrupt(path, 2 * CHUNK_BYTES + 100)  # inside the third piece
    assert arr[0] == 0 and arr[CHUNK_BYTES // 8] == CHUNK_BYTES // 8  # pieces 1 and 2 fine
    errors = []

    def read():
        try:
            arr[np.array([2 * CHUNK_BYTES // 8])]  # a row in the third piece
        except BundleChecksumError as e:
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4
    with pytest.raises(BundleChecksumError, match="bytes 8388608-12582911"):
        arr[0]  # once corrupt, always refused


def test_digests_must_cover_the_file(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(10))
    with pytest.raises(BundleChecksumError, match="chunk digests do not cover"):
        LazyVerifiedArray(np.load(path, mmap_mode="r"), open(path, "rb"), path, [],
                          CHUNK_BYTES, 128, BundleChecksumError)


def test_boolean_masks_and_tuples_are_checked_too(tmp_path):
    array = np.arange(3 * CHUNK_BYTES // 8, dtype=np.int64)
    path, arr = lazy(tmp_path, array)
    corrupt(path, 2 * CHUNK_BYTES + 100)
    mask = np.zeros(array.size, dtype=bool)
    mask[[0, 2 * CHUNK_BYTES // 8]] = True
    with pytest.raises(BundleChecksumError):
        arr[mask]
    path, arr = lazy(tmp_path, array.reshape(-1, 2), "b.npy")
    corrupt(path, 2 * CHUNK_BYTES + 100)
    assert arr[0:2, 0].tolist() == [0, 2]
    with pytest.raises(BundleChecksumError):
        arr[..., 0]


def test_what_is_checked_is_what_is_served_after_the_path_is_replaced(tmp_path):
    array = np.arange(3 * CHUNK_BYTES // 8, dtype=np.int64)
    path, arr = lazy(tmp_path, array)
    corrupt(path, 2 * CHUNK_BYTES + 100)  # the mapped file is corrupt ...
    replacement = tmp_path / "good.npy"
    np.save(replacement, array)
    replacement.replace(path)  # ... and a good file now sits at its path
    with pytest.raises(BundleChecksumError):
        arr[np.array([2 * CHUNK_BYTES // 8])]
