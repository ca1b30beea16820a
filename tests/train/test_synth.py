"""Synthetic graphs: deterministic, labelled, clustered, and the same through any budget."""

import numpy as np

from hashembed.graphdir import open_graph
from hashembed.train.synth import SynthConfig, clustering_coefficient, synth_graph


def test_a_seed_gives_one_graph_whatever_the_memory_budget(tmp_path):
    config = SynthConfig(20_000, avg_degree=8, communities=5, seed=3)
    synth_graph(config, tmp_path / "a", progress=False)
    synth_graph(config, tmp_path / "b", memory_gb=1e-4, progress=False)  # many buckets
    a, b = open_graph(tmp_path / "a", verify=True), open_graph(tmp_path / "b")
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.labels, b.labels)
    synth_graph(SynthConfig(20_000, avg_degree=8, communities=5, seed=4), tmp_path / "c",
                progress=False)
    assert not np.array_equal(open_graph(tmp_path / "c").indices[:1000], a.indices[:1000])


def test_classes_groups_degrees_and_clustering(tmp_path):
    config = SynthConfig(30_000, avg_degree=10, communities=8, seed=0)
    synth_graph(config, tmp_path / "g", progress=False)
    g = open_graph(tmp_path / "g")
    counts = np.bincount(g.labels, minlength=8)
    assert counts.min() > 0.5 * counts.mean()  # every class is populated
    degree = g.degrees()
    assert 6 < degree.mean() < 11 and degree.max() > 10 * degree.mean()  # heavy tail
    src = np.repeat(np.arange(g.num_nodes), degree)
    same = (g.labels[src] == g.labels[np.asarray(g.indices)]).mean()
    assert same > 0.75  # mixing 0.2: most edges stay in their group, hence their class
    # ids carry no trace of the groups: neighbouring ids are no more alike than any two
    assert (g.labels[1:] == g.labels[:-1]).mean() < 0.25
    # small dense groups cluster: with every in-class stub kept in the own group
    # (class_share 0), five times a planted partition's clustering. The default, whose stubs
    # mostly go to popular class members, trades most of that away (0.03 at n = 10^5).
    groups = SynthConfig(30_000, avg_degree=10, communities=8, class_share=0.0, seed=0)
    planted = SynthConfig(30_000, avg_degree=10, communities=8, group_min=3000,
                          group_max=4000, class_share=0.0, seed=0)
    synth_graph(groups, tmp_path / "c", progress=False)
    synth_graph(planted, tmp_path / "p", progress=False)
    c, p = open_graph(tmp_path / "c"), open_graph(tmp_path / "p")
    assert clustering_coefficient(c.indptr, c.indices, 500) > \
        5 * clustering_coefficient(p.indptr, p.indices, 500)


def test_class_share_grows_popular_members_that_many_groups_of_the_class_link_to(tmp_path):
    plain = SynthConfig(30_000, avg_degree=10, communities=8, class_share=0.0, seed=0)
    hubs = SynthConfig(30_000, avg_degree=10, communities=8, class_share=0.5, seed=0)
    synth_graph(plain, tmp_path / "plain", progress=False)
    synth_graph(hubs, tmp_path / "hubs", progress=False)
    a, b = open_graph(tmp_path / "plain"), open_graph(tmp_path / "hubs")
    np.testing.assert_array_equal(a.labels, b.labels)  # same groups and classes
    assert b.degrees().max() > 3 * a.degrees().max()  # targets drawn by weight: real hubs
    hub = int(np.argmax(b.degrees()))
    neighbours = b.indices[b.indptr[hub]:b.indptr[hub + 1]]
    # its class links to it (0.73 here; 0.18 for the top node of the plain graph)
    assert (b.labels[neighbours] == b.labels[hub]).mean() > 0.6
