"""``--hops auto``: a bits-only probe on the training labels picks the walk length."""

import numpy as np
import pytest

from hashembed.coding.probe import choose_hops, probe_score
from hashembed.core.codeformat import CodeSpec
from hashembed.core.errors import ConfigError
from hashembed.graph.memory import Graph, symmetrize


def two_step_classes(classes: int = 4, members: int = 60, relays: int = 6) -> Graph:
    """Class members share no neighbour, only the community two steps out: each member
    links to ``relays`` private relay nodes, each relay to its class's hub. So 1-hop codes
    (the member and its relays) carry no class; 2-hop codes reach the class's hub."""
    n_members = classes * members
    member = np.repeat(np.arange(n_members), relays)
    relay = n_members + np.arange(n_members * relays)
    hub = n_members * (1 + relays) + member % classes
    n = n_members * (1 + relays) + classes
    pairs = np.concatenate([np.stack([member, relay], 1), np.stack([relay, hub], 1)])
    labels = np.full(n, -1, dtype=np.int64)
    labels[:n_members] = np.arange(n_members) % classes
    train = np.zeros(n, dtype=bool)
    train[:n_members] = True
    return Graph("two-step", n, symmetrize(pairs, n), labels,
                 {"train": train, "val": ~train, "test": ~train})


def test_the_probe_picks_the_planted_walk_length():
    graph = two_step_classes()
    probe = choose_hops(graph, CodeSpec("hash", bits=128, seed=3), candidates=(1, 2),
                        progress=False)
    assert probe.hops == 2
    assert probe.scores[2] > 0.8 > 0.5 > probe.scores[1]  # chance is 0.25
    assert probe.codes.spec.hops == 2 and probe.record()["chosen"] == 2


def test_the_probe_reads_training_labels_only():
    graph = two_step_classes()
    scrambled = graph.labels.copy()
    held_out = ~graph.masks["train"]
    scrambled[held_out] = (scrambled[held_out] + 1) % 4  # nothing held out is read
    other = Graph(graph.name, graph.num_nodes, graph.edge_index, scrambled, graph.masks)
    spec = CodeSpec("hash", bits=32, seed=1)
    assert choose_hops(graph, spec, (1, 2), progress=False).scores == \
        choose_hops(other, spec, (1, 2), progress=False).scores


def test_probe_scores_separable_bits_perfectly_and_noise_near_chance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    separable = np.zeros((600, 16), dtype=bool)
    separable[np.arange(600), labels] = True
    assert probe_score(separable, labels, False, seed=0) == 1.0
    noise = rng.random((600, 16)) < 0.5
    assert probe_score(noise, labels, False, seed=0) < 0.45


def test_auto_needs_hash_codes_and_a_split():
    graph = two_step_classes()
    with pytest.raises(ConfigError, match="random codes read no graph"):
        choose_hops(graph, CodeSpec("random", bits=32), progress=False)
    bare = Graph(graph.name, graph.num_nodes, graph.edge_index, graph.labels)
    with pytest.raises(ConfigError, match="training split"):
        choose_hops(bare, CodeSpec("hash", bits=32), progress=False)


def test_too_few_training_labels_fall_back_to_one_hop(caplog):
    graph = two_step_classes()
    few = np.zeros(graph.num_nodes, dtype=bool)
    few[:3] = True  # three labelled training nodes: nothing to cross-validate on
    sparse = Graph(graph.name, graph.num_nodes, graph.edge_index, graph.labels,
                   {"train": few, "val": ~few, "test": ~few})
    probe = choose_hops(sparse, CodeSpec("hash", bits=32), progress=False)
    assert probe.hops == 1 and probe.scores == {} and probe.codes.spec.hops == 1
    assert "too few to probe" in caplog.text


def test_multilabel_probe_scores_as_the_benchmark_does():
    """Sparse labels (2 of 20 a node) and bits that agree with each label 80 % of the time:
    ridge outputs stay far below 0.5, so a fixed threshold would predict no label and score
    every K near 0; each node's 2 highest outputs (the benchmarks' micro-F1) find most."""
    rng = np.random.default_rng(0)
    n, labels = 800, 20
    targets = np.zeros((n, labels), dtype=bool)
    for row in range(n):
        targets[row, rng.choice(labels, 2, replace=False)] = True
    agree = rng.random((n, labels)) < 0.8
    informative = np.where(agree, targets, ~targets)
    noise = rng.random((n, labels)) < 0.5
    assert probe_score(informative, targets, True, seed=0) > 0.25  # a 0.5 threshold: 0.01
    assert probe_score(noise, targets, True, seed=0) < 0.2  # chance: 2 of 20 labels
