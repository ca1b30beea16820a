"""Synthetic graphs: deterministic, labelled, clustered, and the same through any budget."""

import numpy as np

from hashembed.core.graphdir import open_graph
from hashembed.graph.synth import SynthConfig, clustering_coefficient, synth_graph


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
    # mostly go to popular class members, trades most of that away (0.07 at n = 10^5).
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


def test_class_core_sends_class_stubs_to_the_first_members_of_the_class_groups(tmp_path):
    """class_core 1 makes every member a target (the model before cores: checked bit for bit
    against it when cores came); a small core concentrates the class stubs on a few members
    per group, which the class's other groups then share."""
    from hashembed.graph.synth import _class_targets, _groups

    whole = SynthConfig(30_000, avg_degree=10, communities=8, class_core=1.0, seed=0)
    core = SynthConfig(30_000, avg_degree=10, communities=8, class_core=0.1, seed=0)
    assert _class_targets(whole, *_groups(whole))[0].size == whole.num_nodes
    starts, classes = _groups(core)
    order, running, bounds = _class_targets(core, starts, classes)
    sizes = np.diff(starts)
    assert order.size == int(np.maximum(1, np.ceil(0.1 * sizes)).sum())
    group = np.searchsorted(starts[:-1], order, side="right") - 1
    assert (order - starts[group] < np.ceil(0.1 * sizes[group])).all()  # first members
    assert (np.diff(classes[group]) >= 0).all() and np.all(np.diff(running) > 0)
    for config, name in ((whole, "whole"), (core, "core")):
        synth_graph(config, tmp_path / name, progress=False)
    a, c = (open_graph(tmp_path / name) for name in ("whole", "core"))
    np.testing.assert_array_equal(a.labels, c.labels)  # the same groups and classes
    # the class's stubs now meet on fewer nodes: neighbour sets of a class overlap more
    assert c.degrees().max() > a.degrees().max()
    assert clustering_coefficient(c.indptr, c.indices, 500) > \
        clustering_coefficient(a.indptr, a.indices, 500)


def test_communities_share_their_core_members_and_close_triangles(tmp_path):
    """Runs of community_groups groups share a class; a share of stubs goes to the cores of
    the community's groups, so circles of one community share neighbours."""
    import pytest

    from hashembed.core.errors import ConfigError
    from hashembed.graph.synth import _groups, _ids, _permutation

    kwargs = dict(avg_degree=10, communities=8, class_share=0.0, group_min=5, group_max=20,
                  class_core=0.1, seed=0)
    plain = SynthConfig(30_000, **kwargs)
    config = SynthConfig(30_000, community_share=0.3, community_groups=10, **kwargs)
    starts, classes = _groups(config)
    runs = classes[:classes.size // 10 * 10].reshape(-1, 10)
    assert (runs == runs[:, :1]).all()  # one class per community
    synth_graph(plain, tmp_path / "plain", progress=False)
    synth_graph(config, tmp_path / "comm", progress=False)

    def shared(graph) -> float:
        """How often first members of two groups of one community share a neighbour."""
        ids = _ids(starts[:-1], config.num_nodes, *_permutation(config.num_nodes, 0))
        hits = []
        for block in range(0, 2000, 10):
            u, v = ids[block], ids[block + 5]  # groups 0 and 5 of a community
            nu = graph.indices[graph.indptr[u]:graph.indptr[u + 1]]
            nv = graph.indices[graph.indptr[v]:graph.indptr[v + 1]]
            hits.append(np.intersect1d(nu, nv).size > 0)
        return float(np.mean(hits))

    a, b = open_graph(tmp_path / "plain"), open_graph(tmp_path / "comm")
    assert shared(b) > 0.5 > 0.1 > shared(a)
    assert clustering_coefficient(b.indptr, b.indices, 500) > 0.08
    with pytest.raises(ConfigError, match="community-share 0.5 must lie in"):
        SynthConfig(1000, class_share=0.8, community_share=0.5)
