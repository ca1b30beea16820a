"""Loaders reproduce the counts verified in each dataset's SOURCE.md."""

import numpy as np
import pytest

from hashembed.core.errors import ConfigError
from hashembed.graph.datasets import apply_split, load_dataset
from hashembed.graph.splits import parse_split


@pytest.mark.parametrize("name, nodes, edges, class_counts", [
    ("cora", 2708, 5278, [351, 217, 418, 818, 426, 298, 180]),
    ("planetoid-citeseer", 3327, 4552, [249, 590, 668, 701, 596, 508]),
    ("planetoid-pubmed", 19717, 44324, [4103, 7739, 7875]),
    ("tolokers", 11758, 519000, [9192, 2566]),
    ("email-eu-core", 1005, 16064, None),
    ("twitch-FR", 6549, 112666, [4135, 2414]),
    ("blogcatalog", 10312, 333983, None),
    ("ogbl-ddi", 4267, 1067911, None),
])
def test_counts_match_source_md(data_root, name, nodes, edges, class_counts):
    g = load_dataset(name, data_root)
    assert (g.num_nodes, g.num_edges // 2) == (nodes, edges)
    if class_counts is not None:
        assert np.bincount(g.labels[g.labels >= 0]).tolist() == class_counts


def test_official_splits(data_root):
    cora = apply_split(load_dataset("cora"), parse_split("public"), 0)
    assert [int(cora.masks[k].sum()) for k in ("train", "val", "test")] == [140, 500, 1000]
    tol = apply_split(load_dataset("tolokers", data_root), parse_split("official:3"), 0)
    assert [int(tol.masks[k].sum()) for k in ("train", "val", "test")] == [5879, 2939, 2940]
    with pytest.raises(ConfigError, match="out of range"):
        apply_split(load_dataset("tolokers", data_root), parse_split("official:10"), 0)
    with pytest.raises(ConfigError, match="no official split"):
        apply_split(load_dataset("email-eu-core", data_root), parse_split("official"), 0)


def test_one_loaded_graph_takes_several_splits(data_root):
    """apply_split returns a copy: splitting the same graph twice gives both splits."""
    tolokers = load_dataset("tolokers", data_root)
    first = apply_split(tolokers, parse_split("official:0"), 0)
    second = apply_split(tolokers, parse_split("official:1"), 0)
    assert set(tolokers.splits) == {str(k) for k in range(10)}  # the loaded graph is untouched
    assert tolokers.masks is None
    assert not (first.masks["train"] == second.masks["train"]).all()
    assert first.edge_index is tolokers.edge_index  # shallow: arrays are shared, not copied


def test_random_split_is_disjoint_and_seeded(cora):
    a = apply_split(load_dataset("cora"), parse_split("random:0.6,0.2,0.2"), 5).masks
    b = apply_split(load_dataset("cora"), parse_split("random:0.6,0.2,0.2"), 5).masks
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["train"] & a["val"]).any() and not (a["val"] & a["test"]).any()
    assert int(a["train"].sum()) == round(0.6 * 2708)
    with pytest.raises(ConfigError, match="three non-negative fractions"):
        parse_split("random:0.9,0.2")


def test_unlabelled_graphs_cannot_be_split(data_root):
    blogcatalog = load_dataset("blogcatalog", data_root)  # multi-label: its nodes split
    masks = apply_split(blogcatalog, None, 0).masks
    assert int(masks["train"].sum()) == round(0.6 * blogcatalog.num_nodes)
    with pytest.raises(ConfigError, match="no official split"):
        apply_split(blogcatalog, parse_split("official"), 0)
    with pytest.raises(ConfigError, match="no node labels"):
        apply_split(load_dataset("ogbl-ddi", data_root), None, 0)
    with pytest.raises(ConfigError, match="unknown dataset 'kora'"):
        load_dataset("kora", data_root)
