"""Multi-hop hash codes: ``(A + I)^K R`` thresholded at each bit's median, exact and order-free."""

import numpy as np
import pytest

from hashembed.coding.coder import hash_codes, hash_codes_csr
from hashembed.core.codeformat import CodeSpec, unpack_codes
from hashembed.core.idmap import IdMap
from hashembed.graph.memory import Graph, symmetrize, to_csr
from helpers import bits_at_median, walk_projection_reference


def connected_graph(n: int = 61, extra: int = 90, seed: int = 0) -> Graph:
    """A random tree plus ``extra`` random edges: connected, so no two nodes are twins."""
    rng = np.random.default_rng(seed)
    tree = np.stack([np.arange(1, n), rng.integers(0, np.arange(1, n))], axis=1)
    pairs = np.concatenate([tree, rng.integers(0, n, (extra, 2))])
    return Graph("connected", n, symmetrize(pairs, n))


@pytest.mark.parametrize("hops", [1, 2, 3])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_codes_equal_the_dense_walk_count_reference(hops, projection):
    graph = connected_graph(seed=hops)
    spec = CodeSpec("hash", bits=32, seed=5, projection=projection, hops=hops)
    codes = hash_codes(graph, spec, progress=False)
    p, shifts = walk_projection_reference(graph.edge_index, graph.num_nodes,
                                          graph.ids.keys(), spec)
    if projection == "gaussian":  # ±1 sums tie at the median; the coder balances those
        np.testing.assert_array_equal(unpack_codes(codes.packed), bits_at_median(p))
    assert (codes.hop_shifts is None) == (hops == 1)
    if hops > 1:
        np.testing.assert_array_equal(codes.hop_shifts, shifts)


def test_a_dense_core_is_rescaled_between_hops_and_stays_exact():
    """An 800-node clique whose members each hold a private leaf (so no two nodes are
    twins), 4 hops: the walk counts pass 2^53, float64's last exact integer (zero-mean
    directions cancel, so it takes a dense core, not just a hub). The coder floors each
    column by a power of two before such a hop and equals the exact integer reference,
    which applies the same rule."""
    core = 800
    n = 2 * core
    clique = np.stack(np.triu_indices(core, 1), axis=1)
    pairs = np.concatenate([clique, np.stack([np.arange(core), np.arange(core, n)], 1)])
    graph = Graph("dense core", n, symmetrize(pairs, n))
    spec = CodeSpec("hash", bits=8, seed=2, hops=4)
    codes = hash_codes(graph, spec, progress=False)
    p, shifts = walk_projection_reference(graph.edge_index, n, graph.ids.keys(), spec)
    assert codes.hop_shifts[-1].max() > 0  # the last hop needed the rescaling
    unscaled, _ = walk_projection_reference(graph.edge_index, n, graph.ids.keys(), spec,
                                            shifts=np.zeros_like(shifts))
    assert np.abs(unscaled).max() > 2**53  # without it: inexact in float64
    np.testing.assert_array_equal(codes.hop_shifts, shifts)
    np.testing.assert_array_equal(unpack_codes(codes.packed), bits_at_median(p))


def test_multi_hop_codes_do_not_depend_on_blocks_chunks_or_row_order():
    graph = connected_graph(n=300, extra=900, seed=7)
    spec = CodeSpec("hash", bits=24, seed=1, hops=3)
    indptr, indices = graph.csr()
    keys = graph.ids.keys()
    whole = hash_codes_csr(indptr, indices, keys, spec, block_bits=24, progress=False)
    pieces = hash_codes_csr(indptr, indices, keys, spec, block_bits=5, row_chunk_entries=64,
                            progress=False)
    for a, b in ((whole.packed, pieces.packed), (whole.thresholds, pieces.thresholds),
                 (whole.hop_shifts, pieces.hop_shifts)):
        np.testing.assert_array_equal(a, b)
    # renumber the rows: the same node (same key) keeps its code
    perm = np.random.default_rng(0).permutation(graph.num_nodes)  # new row of old row v
    moved = Graph("moved", graph.num_nodes, perm[graph.edge_index],
                  id_map=IdMap.from_ints(np.argsort(perm).astype(np.int64)))
    # the id of new row r is the old row it came from, so its key is that node's key
    assert (moved.ids.keys()[perm] == IdMap.from_ints(np.arange(graph.num_nodes)).keys()).all()
    renumbered = hash_codes(moved, spec, progress=False)
    reference = hash_codes(Graph("ids", graph.num_nodes, graph.edge_index,
                                 id_map=IdMap.from_ints(np.arange(graph.num_nodes))), spec,
                           progress=False)
    np.testing.assert_array_equal(renumbered.packed[perm], reference.packed)
    np.testing.assert_array_equal(renumbered.hop_shifts, reference.hop_shifts)


def test_hops_are_part_of_the_code_spec():
    from hashembed.core.errors import ConfigError

    assert CodeSpec().hops == 1 and CodeSpec.from_dict(
        {k: v for k, v in CodeSpec(hops=3).to_dict().items() if k != "hops"}).hops == 1
    for bad in (0, 5, 2.0, True):
        with pytest.raises(ConfigError, match="hops"):
            CodeSpec(hops=bad)
    with pytest.raises(ConfigError, match="random codes read no graph"):
        CodeSpec("random", hops=2)
