import numpy as np

from hashembed.serve.subgraph import k_hop_subgraph
from hashembed.train.graph import symmetrize, to_csr

# path graph 0 - 1 - 2 - 3 - 4 plus an isolated node 5
INDPTR, INDICES = to_csr(symmetrize(np.array([[0, 1], [1, 2], [2, 3], [3, 4]]), 6), 6)


def global_edges(sub):
    return sorted(map(tuple, sub.nodes[sub.edge_index].T.tolist()))


def test_one_hop_takes_in_edges_of_the_seeds():
    sub = k_hop_subgraph(INDPTR, INDICES, np.array([2]), 1)
    assert sub.nodes[:1].tolist() == [2] and sorted(sub.nodes.tolist()) == [1, 2, 3]
    assert global_edges(sub) == [(1, 2), (3, 2)]


def test_two_hops_add_in_edges_of_the_neighbours():
    sub = k_hop_subgraph(INDPTR, INDICES, np.array([0]), 2)
    assert sorted(sub.nodes.tolist()) == [0, 1, 2]
    assert global_edges(sub) == [(0, 1), (1, 0), (2, 1)]


def test_seeds_come_first_and_isolated_nodes_work():
    sub = k_hop_subgraph(INDPTR, INDICES, np.array([5, 4]), 3)
    assert sub.nodes[:2].tolist() == [5, 4] and sub.num_seeds == 2
    sub = k_hop_subgraph(INDPTR, INDICES, np.array([5]), 2)
    assert sub.nodes.tolist() == [5] and sub.edge_index.shape == (2, 0)
