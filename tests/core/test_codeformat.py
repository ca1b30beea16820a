import numpy as np
import pytest

from hashembed.core.codeformat import (CodeSpec, codes_to_indices, pack_codes, take_codes,
                                       unpack_codes)
from hashembed.core.errors import CodeFormatError, ConfigError


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(37, 128)).astype(bool)
    packed = pack_codes(bits)
    assert packed.dtype == np.uint8 and packed.shape == (37, 16)
    np.testing.assert_array_equal(unpack_codes(packed, 128), bits)


def test_bit_order_is_lsb_first():
    bits = np.zeros((1, 16), dtype=bool)
    bits[0, 0] = bits[0, 9] = True  # bit 0 -> byte 0 value 1; bit 9 -> byte 1 value 2
    np.testing.assert_array_equal(pack_codes(bits), [[1, 2]])


@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_indices_follow_the_documented_formula(b):
    rng = np.random.default_rng(b)
    bits = rng.integers(0, 2, size=(11, 64)).astype(np.int64)
    expected = np.stack([(bits[:, i * b:(i + 1) * b] << np.arange(b)).sum(1)
                         for i in range(64 // b)], axis=1)
    np.testing.assert_array_equal(codes_to_indices(pack_codes(bits), b), expected)


def test_spec_validation_names_the_problem():
    with pytest.raises(ConfigError, match="b=3"):
        CodeSpec(bits=24, bits_per_index=3)
    with pytest.raises(ConfigError, match="c=12"):
        CodeSpec(bits=12, bits_per_index=4)
    with pytest.raises(ConfigError, match="scheme"):
        CodeSpec(scheme="lsh")
    spec = CodeSpec(bits=128, bits_per_index=16)
    assert (spec.num_codebooks, spec.codebook_size, spec.bytes_per_node) == (8, 65536, 16)


def test_wrong_byte_count_is_named():
    with pytest.raises(CodeFormatError, match="15 bytes per node, the code spec says 16"):
        unpack_codes(np.zeros((2, 15), np.uint8), 128)
    with pytest.raises(CodeFormatError, match="uint8"):
        unpack_codes(np.zeros((2, 16), np.int32), 128)


def test_take_codes_matches_fancy_indexing_on_a_memmap(tmp_path):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (50, 16), dtype=np.uint8)
    np.save(tmp_path / "codes.npy", codes)
    mapped = np.load(tmp_path / "codes.npy", mmap_mode="r")
    ids = np.array([49, 0, 7, 7, 31])
    got = take_codes(mapped, ids)
    np.testing.assert_array_equal(got, codes[ids])
    assert type(got) is np.ndarray and got.flags["C_CONTIGUOUS"] and got.dtype == np.uint8


def test_degree_buckets_are_half_octaves_of_one_plus_the_degree_in_integers():
    import math

    from hashembed.core.codeformat import degree_buckets

    np.testing.assert_array_equal(degree_buckets(np.array([0, 1, 2, 3, 4, 5, 6, 7, 15])),
                                  [0, 2, 3, 4, 4, 5, 5, 6, 8])
    degrees = np.concatenate([np.arange(5000), 2 ** np.arange(13, 31) - 1,
                              2 ** np.arange(13, 31)])
    expected = [math.floor(2 * math.log2(1 + int(d))) for d in degrees]
    # float log2 agrees wherever 1 + d is not a power of sqrt(2) within rounding: here all
    np.testing.assert_array_equal(degree_buckets(degrees), expected)
    assert degree_buckets(np.array([10**12, 2**40])).tolist() == [61, 61]  # the last bucket
    assert degree_buckets(np.array([], np.int64)).shape == (0,)
    with pytest.raises(CodeFormatError, match="non-negative"):
        degree_buckets(np.array([3, -1]))


def test_the_degree_field_is_one_more_byte_a_row_and_tables_are_checked_against_it():
    from hashembed.core.codeformat import check_table

    spec = CodeSpec("hash", bits=64, degree_field=True)
    assert (spec.bytes_per_node, spec.bit_bytes) == (9, 8)
    check_table(np.zeros((3, 9), np.uint8), spec)
    with pytest.raises(CodeFormatError, match="8 bytes per node, the code spec says 9 "
                                              r"\(8 of bits and a degree byte\)"):
        check_table(np.zeros((3, 8), np.uint8), spec)
    with pytest.raises(ConfigError, match="degree_field"):
        CodeSpec("hash", bits=64, degree_field=1)
