import numpy as np

from hashembed.core.codeformat import CodeSpec, unpack_codes
from hashembed.coding.coder import code_stats, hash_codes, random_codes
from helpers import adjacency_with_self_loops
from hashembed.core.idmap import IdMap
from hashembed.graph.memory import Graph, symmetrize


def test_hash_codes_are_deterministic_and_block_size_free(cora):
    spec = CodeSpec("hash", bits=128, seed=3)
    a = hash_codes(cora, spec, block_bits=128, progress=False)
    b = hash_codes(cora, spec, block_bits=8, progress=False)
    np.testing.assert_array_equal(a.packed, b.packed)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    other = hash_codes(cora, CodeSpec("hash", bits=128, seed=4), progress=False)
    assert (other.packed != a.packed).any()


def test_bits_are_balanced_within_one_percent(power_law_graph):
    for projection in ("gaussian", "rademacher"):
        codes = hash_codes(power_law_graph, CodeSpec("hash", 128, projection=projection),
                           progress=False)
        assert code_stats(codes.packed, 128)["bit_balance_max_dev"] < 0.01


def test_similar_neighbourhoods_give_close_codes(cora):
    bits = unpack_codes(hash_codes(cora, CodeSpec("hash", 128), progress=False).packed)
    adj = adjacency_with_self_loops(cora).astype(bool).astype(np.float32)
    # pairs of distinct nodes whose closed neighbourhoods overlap by Jaccard >= 0.5
    inter = (adj @ adj.T).tocoo()
    deg = np.asarray(adj.sum(1)).ravel()
    jaccard = inter.data / (deg[inter.row] + deg[inter.col] - inter.data)
    keep = (inter.row < inter.col) & (jaccard >= 0.5)
    similar = (bits[inter.row[keep]] != bits[inter.col[keep]]).mean(1)
    rng = np.random.default_rng(0)
    u, v = rng.integers(0, cora.num_nodes, (2, 5000))
    random_pairs = (bits[u[u != v]] != bits[v[u != v]]).mean(1)
    assert keep.sum() > 100
    assert similar.mean() < 0.5 * random_pairs.mean()


def _correlations(ones, degree):
    """Pearson and Spearman (rank) correlation of set-bit counts with degree."""
    rank = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable")  # noqa: E731
    return np.corrcoef(ones, degree)[0, 1], np.corrcoef(rank(ones), rank(degree))[0, 1]


def test_set_bits_do_not_encode_degree(power_law_graph):
    g = power_law_graph
    codes = hash_codes(g, CodeSpec("hash", 128), progress=False)
    pearson, spearman = _correlations(unpack_codes(codes.packed).sum(1), g.degrees())
    assert abs(pearson) < 0.1 and abs(spearman) < 0.1
    # ±1 directions give integer sums; ties at the median (low-degree nodes) are split to keep
    # bits balanced, which leaves a weak rank correlation (about -0.15 here): documented, and
    # the reason Gaussian is the default.
    codes = hash_codes(g, CodeSpec("hash", 128, projection="rademacher"), progress=False)
    pearson, spearman = _correlations(unpack_codes(codes.packed).sum(1), g.degrees())
    assert abs(pearson) < 0.1 and abs(spearman) < 0.2
    # control: a projection that is not zero-mean (uniform on [0, 1)) makes the bits track
    # degree, so the check above can fail.
    uniform = np.random.default_rng(0).random((g.num_nodes, 128), dtype=np.float32)
    proj = adjacency_with_self_loops(g) @ uniform
    _, spearman = _correlations((proj > np.median(proj, axis=0)).sum(1), g.degrees())
    assert spearman > 0.5


def test_almost_every_node_gets_a_distinct_code(power_law_graph):
    stats = code_stats(hash_codes(power_law_graph, CodeSpec("hash", 128), progress=False).packed,
                       128)
    assert stats["collision_fraction"] < 0.01


def test_isolated_nodes_still_differ():
    g = Graph("isolated", 50, np.zeros((2, 0), np.int64))
    stats = code_stats(hash_codes(g, CodeSpec("hash", 64), progress=False).packed, 64)
    assert stats["distinct_codes"] == 50


def test_random_codes_are_seeded_keyed_and_balanced():
    keys = IdMap.dense(2000).keys()
    a = random_codes(keys, CodeSpec("random", 64, seed=1)).packed
    assert a.shape == (2000, 8)
    np.testing.assert_array_equal(a, random_codes(keys, CodeSpec("random", 64, seed=1)).packed)
    np.testing.assert_array_equal(a[::-1], random_codes(keys[::-1], CodeSpec("random", 64,
                                                                              seed=1)).packed)
    assert (a != random_codes(keys, CodeSpec("random", 64, seed=2)).packed).any()
    assert np.abs(unpack_codes(a).mean(0) - 0.5).max() < 0.05


def test_codes_follow_the_node_not_its_row(power_law_graph):
    """Renumbering the rows (same graph, same external ids) gives every node the same code."""
    g = power_law_graph
    external = np.random.default_rng(1).choice(2**62, g.num_nodes, replace=False)
    perm = np.random.default_rng(2).permutation(g.num_nodes)  # new row of old row r: perm[r]
    a = Graph("a", g.num_nodes, g.edge_index, id_map=IdMap.from_ints(external))
    ids_b = np.empty_like(external)
    ids_b[perm] = external
    b = Graph("b", g.num_nodes, symmetrize(perm[g.edge_index].T, g.num_nodes),
              id_map=IdMap.from_ints(ids_b))
    for projection in ("gaussian", "rademacher"):  # rademacher: ties, broken by keyed rank
        spec = CodeSpec("hash", 64, projection=projection, seed=5)
        codes_a = hash_codes(a, spec, progress=False)
        codes_b = hash_codes(b, spec, progress=False)
        np.testing.assert_array_equal(codes_a.packed, codes_b.packed[perm])
        np.testing.assert_array_equal(codes_a.thresholds, codes_b.thresholds)  # exact sums
    spec = CodeSpec("random", 64)
    np.testing.assert_array_equal(random_codes(a.ids.keys(), spec).packed,
                                  random_codes(b.ids.keys(), spec).packed[perm])


def test_collision_fraction_counts_every_member_of_a_clash():
    packed = np.array([[1], [1], [2], [3]], np.uint8)
    stats = code_stats(packed, 8)
    assert stats["collision_fraction"] == 0.5 and stats["distinct_codes"] == 3


def test_codes_do_not_depend_on_block_size_row_chunking_or_memory(power_law_graph):
    from hashembed.coding.coder import hash_codes_csr
    from hashembed.graph.memory import to_csr

    g = power_law_graph
    indptr, indices = to_csr(g.edge_index, g.num_nodes)
    keys = g.ids.keys()
    spec = CodeSpec("hash", 64, seed=2)
    reference = hash_codes_csr(indptr, indices, keys, spec, block_bits=64, progress=False)
    for options in ({"block_bits": 8}, {"row_chunk_entries": 7},
                    {"block_bits": None, "memory_gb": 1e-4},
                    {"block_bits": 3}, {"block_bits": 12, "row_chunk_entries": 50},
                    {"block_bits": 16, "row_chunk_entries": 1000}):
        other = hash_codes_csr(indptr, indices.astype(np.int32), keys, spec, progress=False,
                               **options)
        np.testing.assert_array_equal(other.packed, reference.packed)
        np.testing.assert_array_equal(other.thresholds, reference.thresholds)
    # a budget below 8 bits' worth gives blocks of fewer bits, not an overrun
    from hashembed.coding.coder import block_bits_for

    n = 10**8
    assert block_bits_for(n, 12.0, 128) == 4 and block_bits_for(n, 40.0, 128) == 16


class _WriteLog(np.ndarray):
    """A 4-byte code table that records which columns each assignment into it writes."""

    def __setitem__(self, key, value):
        column = key[1]
        self.writes.extend(range(4)[column] if isinstance(column, slice) else [column])
        super().__setitem__(key, value)


def test_each_byte_column_of_the_table_is_written_once(power_law_graph):
    # a memory-mapped table rewritten once per bit is written back to disk once per bit
    # (about 106 GB for 1.6 GB of codes at n = 10^8, c = 128, 4-bit blocks)
    from hashembed.coding.coder import hash_codes_csr
    from hashembed.graph.memory import to_csr

    g = power_law_graph
    indptr, indices = to_csr(g.edge_index, g.num_nodes)
    spec = CodeSpec("hash", 32, seed=2)
    reference = hash_codes_csr(indptr, indices, g.ids.keys(), spec, block_bits=32, progress=False)
    for block_bits in (3, 5, 12):
        table = np.zeros((g.num_nodes, 4), dtype=np.uint8).view(_WriteLog)
        table.writes = []
        codes = hash_codes_csr(indptr, indices, g.ids.keys(), spec, block_bits=block_bits,
                               progress=False, out=table)
        np.testing.assert_array_equal(np.asarray(codes.packed), reference.packed)
        assert table.writes == [0, 1, 2, 3], (block_bits, table.writes)
