import numpy as np

from hashembed.serve.subgraph import k_hop_subgraph
from hashembed.graph.memory import symmetrize, to_csr

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


def test_a_fanout_cap_is_deterministic_bounded_and_per_node(power_law_graph):
    from hashembed.graph.memory import to_csr

    indptr, indices = to_csr(power_law_graph.edge_index, power_law_graph.num_nodes)
    hub = int(np.argmax(np.diff(indptr)))
    assert np.diff(indptr)[hub] > 20
    a = k_hop_subgraph(indptr, indices, np.array([hub]), 1, fanout_cap=5)
    assert a.edge_index.shape[1] == 5 and len(set(a.nodes[1:].tolist())) == 5
    assert set(a.nodes[1:].tolist()) <= set(indices[indptr[hub]:indptr[hub + 1]].tolist())
    again = k_hop_subgraph(indptr, indices, np.array([7, hub]), 1, fanout_cap=5)
    hub_edges = again.nodes[again.edge_index[0][again.edge_index[1] == 1]]
    assert sorted(hub_edges.tolist()) == sorted(a.nodes[1:].tolist())  # same choice
    exact = k_hop_subgraph(indptr, indices, np.array([hub]), 2)
    capped = k_hop_subgraph(indptr, indices, np.array([hub]), 2, fanout_cap=5)
    assert capped.nodes.size < exact.nodes.size
