"""String id maps: byte layout, fingerprints and the vectorised row index of the graph builder."""

import numpy as np
import pytest

import hashembed.core.idmap as idmap
from hashembed.core.errors import ConfigError
from hashembed.core.idmap import IdMap, Utf8RowIndex, string_keys, utf8_fingerprints

IDS = ["user 7", "", "héllo", "x" * 37, "日本語のノード", "user 70", "a", "ab", "b",
       "long " * 2000]  # one id past LONG_ID_BYTES: fingerprinted on its own


def utf8(strings, pad=b""):
    """``(offsets, data)`` of ``strings``, the data starting after ``pad`` bytes."""
    encoded = [s.encode("utf-8") for s in strings]
    offsets = len(pad) + np.concatenate([[0], np.cumsum([len(b) for b in encoded])])
    return offsets.astype(np.int64), np.frombuffer(pad + b"".join(encoded), dtype=np.uint8)


def test_fingerprints_depend_on_the_bytes_only():
    together = utf8_fingerprints(*utf8(IDS))
    alone = [utf8_fingerprints(*utf8([s], pad=b"junk"))[0] for s in IDS]
    np.testing.assert_array_equal(together, alone)  # not on neighbours, position or batch
    np.testing.assert_array_equal(utf8_fingerprints(*utf8(IDS), piece=3), together)
    assert len(set(together.tolist())) == len(IDS)
    again = utf8_fingerprints(*utf8(IDS[::-1]))[::-1]
    np.testing.assert_array_equal(together, again)
    # a string and its prefix padded with zero bytes differ (the length is hashed)
    assert utf8_fingerprints(*utf8(["ab", "ab\x00"]))[0] != utf8_fingerprints(*utf8(["ab\x00"]))[0]


def test_from_utf8_equals_from_strings_and_refuses_duplicates():
    by_list = IdMap.from_strings(IDS)
    by_bytes = IdMap.from_utf8(*utf8(IDS, pad=b"offset"))
    for name, array in by_list.arrays.items():
        np.testing.assert_array_equal(by_bytes.arrays[name], array)
    np.testing.assert_array_equal(by_bytes.keys()[by_bytes.rows(IDS)], string_keys(IDS))
    assert by_bytes.external(np.arange(len(IDS))) == IDS
    with pytest.raises(ConfigError, match="distinct"):
        IdMap.from_utf8(*utf8(["a", "b", "a"]))


def test_row_index_finds_every_row_and_marks_strangers():
    index = Utf8RowIndex(*utf8(IDS))
    queries = IDS[::-1] + ["not there", "user 7"]
    assert index.rows(*utf8(queries, pad=b"zz")).tolist() == \
        list(range(len(IDS)))[::-1] + [-1, 0]


def test_row_index_resolves_colliding_fingerprints_on_the_bytes(monkeypatch):
    """With a fingerprint that is only the length, most ids collide: rows stay exact."""
    monkeypatch.setattr(idmap, "utf8_fingerprints", lambda offsets, data:
                        np.diff(np.asarray(offsets, dtype=np.int64)).astype(np.uint64))
    index = Utf8RowIndex(*utf8(IDS))
    assert index.rows(*utf8(IDS[::-1] + ["user 8", "c"])).tolist() == \
        list(range(len(IDS)))[::-1] + [-1, -1]
