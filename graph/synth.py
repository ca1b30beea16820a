"""``hashembed synth``: labelled graphs with a known answer and a realistic local structure.

The method codes a node by its neighbour set, so two nodes get close codes only when their
neighbourhoods overlap. A planted partition with a few giant communities has almost no overlap;
real social graphs are clustered, and their communities have popular members that many of
their circles link to. So nodes are grouped into many small dense **groups** (sizes
log-uniform in ``[group_min, group_max]``, default 10–60, like friend circles), each group
belongs to one of ``K`` labelled **classes**, every node has a power-law weight ``w_v``, and::

    stubs(v) = round(w_v / 2),  w_v ~ Pareto(exponent) scaled to mean avg_degree
    each stub of v -> a uniform node of the whole graph         with probability mixing
                   -> a core node of v's class drawn in proportion to w
                                                  with probability (1 - mixing) · class_share
                   -> a core node of a uniform group of v's community
                                              with probability (1 - mixing) · community_share
                   -> a uniform node of v's group               otherwise

A group's **core** is its first ``max(1, ceil(class_core · size))`` members (one or two with
the default ``class_core = 0.03``; every member at ``class_core = 1``): the popular members
that class and community stubs reach.
A **community** (``community_share > 0``) is a run of ``community_groups`` consecutive groups
of one class whose circles share their cores, so two circles of a community share neighbours
(without communities, every group draws its class alone).

Edges are symmetrised, so the mean degree is about ``avg_degree`` (less the duplicates dropped
inside small groups). ``class_share`` makes targets power-law too and gives each class popular
members that many of its groups link to (``0``: a class is only a label on groups).
``class_core = 1`` and ``community_share = 0`` give the graphs of the model before cores and
communities, bit for bit.

The defaults are calibrated so that a full table reaches 0.7–0.9 test accuracy with 1 % of
nodes labelled; how, and how the model's clustering compares with the real graphs:
``docs/scale.md``, "The synthetic default (calibration)".

Positions are turned into node ids by an affine permutation ``id = (a · pos + b) mod n``, so
ids carry no trace of the groups (a table, QR or hashing trick cannot read the class off the
id). Everything is drawn from generators seeded by ``seed`` and the chunk's index: the graph
is the same for a seed whatever the machine, and is streamed to a graph directory chunk by
chunk (:func:`~hashembed.graph.build.write_csr`); drawing targets by weight holds a
node-sized table of the classes' running weights (12–16 bytes a node).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hashembed.core.errors import ConfigError
from hashembed.core.graphdir import LABELS_FILE, GraphHeader, GraphWriter
from hashembed.graph.build import write_csr

CHUNK_NODES = 1 << 20


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of :func:`synth_graph` (see module docstring)."""

    num_nodes: int
    avg_degree: float = 10.0
    communities: int = 16
    mixing: float = 0.2
    group_min: int = 10
    group_max: int = 60
    exponent: float = 2.5
    class_share: float = 0.8
    class_core: float = 0.03
    community_share: float = 0.0
    community_groups: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_nodes < 2 or self.communities < 2 or self.communities > self.num_nodes:
            raise ConfigError("synth needs n >= 2 and 2 <= communities <= n")
        if self.num_nodes > 2**31 - 1:
            raise ConfigError(f"--num-nodes {self.num_nodes}: synth writes at most 2^31 - 1 "
                              "nodes (int32 CSR indices)")
        if not (0 < self.avg_degree < self.num_nodes and math.isfinite(self.avg_degree)):
            raise ConfigError(f"--avg-degree {self.avg_degree} must lie in (0, n)")
        if not 0 <= self.mixing <= 1:
            raise ConfigError(f"--mixing {self.mixing} must lie in [0, 1]")
        if not 0 <= self.class_share <= 1:
            raise ConfigError(f"--class-share {self.class_share} must lie in [0, 1]")
        if not 0 < self.class_core <= 1:
            raise ConfigError(f"--class-core {self.class_core} must lie in (0, 1]")
        if not 0 <= self.community_share <= 1 - self.class_share:
            raise ConfigError(f"--community-share {self.community_share} must lie in [0, 1 - "
                              f"class_share] = [0, {1 - self.class_share:g}]")
        if self.community_groups < 1:
            raise ConfigError(f"--community-groups {self.community_groups} must be at least 1")
        if not 2 <= self.group_min <= self.group_max:
            raise ConfigError("group sizes need 2 <= group_min <= group_max")
        if not self.exponent > 2:
            raise ConfigError(f"--exponent {self.exponent} must exceed 2 (finite mean)")


def _groups(config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Group start positions ``int64 [G + 1]`` and each group's class ``int64 [G]``."""
    rng = np.random.default_rng([config.seed, 0])
    lo, hi = math.log(config.group_min), math.log(config.group_max + 1)
    sizes = []
    covered = 0
    while covered < config.num_nodes:
        batch = np.exp(rng.uniform(lo, hi, size=max(1024, config.num_nodes // 64))).astype(
            np.int64)
        sizes.append(batch)
        covered += int(batch.sum())
    sizes = np.concatenate(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    count = int(np.searchsorted(starts, config.num_nodes, side="left"))
    starts = np.minimum(starts[:count + 1], config.num_nodes)
    starts[-1] = config.num_nodes
    if config.community_share == 0:  # the model before communities, bit for bit
        return starts, rng.integers(0, config.communities, size=count)
    # communities: runs of community_groups consecutive groups that share one class
    blocks = -(-count // config.community_groups)
    classes = np.repeat(rng.integers(0, config.communities, size=blocks),
                        config.community_groups)[:count]
    return starts, classes


def _permutation(n: int, seed: int) -> tuple[int, int]:
    """``(a, b)`` with ``gcd(a, n) = 1``: ``pos -> (a·pos + b) mod n`` is a bijection."""
    rng = np.random.default_rng([seed, 1])
    while True:
        a = int(rng.integers(1, n)) if n > 2 else 1
        if math.gcd(a, n) == 1:
            return a, int(rng.integers(0, n))


def _ids(positions: np.ndarray, n: int, a: int, b: int) -> np.ndarray:
    # (a · pos + b) mod n without int64 overflow, a split into 2^20-sized limbs: every
    # product stays below n · 2^20 < 2^51 for n < 2^31
    out = np.zeros_like(positions)
    limb, shift = a, 0
    while limb:
        part = limb & 0xFFFFF
        out = (out + (positions * part % n) * pow(2, shift, n)) % n
        limb >>= 20
        shift += 20
    return (out + b) % n


def _weights(config: SynthConfig, first: int, stop: int) -> np.ndarray:
    """Pareto weights ``float64 [stop - first]`` of positions ``first … stop-1`` (chunk-aligned
    ``first``), mean ``avg_degree``: a node's stub count and its pull as a target."""
    alpha = config.exponent - 1  # Pareto shape of the degree tail
    scale = config.avg_degree * (alpha - 1) / alpha  # mean of Pareto(alpha, scale) = avg_degree
    rng = np.random.default_rng([config.seed, 2, first // CHUNK_NODES])
    return scale * (1 + rng.pareto(alpha, size=stop - first))


def _class_targets(config: SynthConfig, starts: np.ndarray, classes: np.ndarray):
    """For drawing a core node of a given class in proportion to its weight: the class's core
    positions sorted by class (``int32|int64 [m]``), the running sum of their weights
    (``float64 [m]``) and each class's ``[lo, hi)`` range of that sum (``float64 [K, 2]``).
    The core of a group is its first ``max(1, ceil(class_core · size))`` members (all of them
    at ``class_core = 1``). 12-16 bytes a core node, plus a byte and 8 bytes a node while
    it is built."""
    n = config.num_nodes
    sizes = np.diff(starts)
    node_class = np.repeat(classes, sizes)                                   # [n] by position
    if config.class_core < 1:
        leaders = _core_sizes(config, sizes)
        offset = np.arange(n, dtype=np.int64) - np.repeat(starts[:-1], sizes)
        core = offset < np.repeat(leaders, sizes)
        del offset
    else:
        core = np.ones(n, dtype=bool)
    index_type = np.int32 if n < 2**31 else np.int64
    order = np.nonzero(core)[0].astype(index_type)
    order = order[np.argsort(node_class[order], kind="stable")]
    per_class = np.bincount(node_class[core], minlength=config.communities)
    del node_class, core
    weights = np.empty(n, dtype=np.float64)
    for first in range(0, n, CHUNK_NODES):
        stop = min(first + CHUNK_NODES, n)
        weights[first:stop] = _weights(config, first, stop)
    running = np.cumsum(weights[order])
    del weights
    ends = np.cumsum(per_class).astype(np.int64)                              # [K]
    bounds = np.zeros((config.communities, 2))
    bounds[:, 1] = running[np.maximum(ends - 1, 0)]
    bounds[1:, 0] = bounds[:-1, 1]
    bounds[per_class == 0] = 0.0
    return order, running, bounds


def _core_sizes(config: SynthConfig, sizes: np.ndarray) -> np.ndarray:
    """Members in each group's core (its first ones): ``max(1, ceil(class_core · size))``."""
    return np.maximum(1, np.ceil(config.class_core * sizes)).astype(np.int64)


def _edge_chunks(config: SynthConfig, starts: np.ndarray, classes: np.ndarray,
                 perm: tuple[int, int]):
    """``int64 [k, 2]`` edges (node ids), chunk by chunk of source positions."""
    n = config.num_nodes
    group_of_start = starts[:-1]
    num_groups = group_of_start.size
    core_sizes = _core_sizes(config, np.diff(starts))
    targets = _class_targets(config, starts, classes) if config.class_share > 0 else None
    for index, first in enumerate(range(0, n, CHUNK_NODES)):
        rng = np.random.default_rng([config.seed, 2, index])
        pos = np.arange(first, min(first + CHUNK_NODES, n), dtype=np.int64)
        degree = _weights(config, first, first + pos.size)
        # advance past the weights' draw (one standard exponential each, as numpy's Pareto
        # uses), so graphs with class_share = 0 stay the graphs they were
        rng.standard_exponential(size=pos.size)
        stubs = np.minimum(np.rint(degree / 2).astype(np.int64), n - 1)
        src = np.repeat(pos, stubs)
        group = np.searchsorted(group_of_start, src, side="right") - 1
        g_lo, g_hi = starts[group], starts[group + 1]
        inside = rng.random(src.size) >= config.mixing
        dst = np.where(inside, g_lo + (rng.random(src.size) * (g_hi - g_lo)).astype(np.int64),
                       (rng.random(src.size) * n).astype(np.int64))
        to_class = np.zeros(src.size, dtype=bool)
        if targets is not None:
            # a share of the inside stubs goes to a node of the class, drawn by weight: each
            # class grows popular members that many of its groups link to
            to_class = inside & (rng.random(src.size) < config.class_share)
            order, running, bounds = targets
            lo, hi = bounds[classes[group[to_class]]].T
            pick = np.searchsorted(running, lo + rng.random(lo.size) * (hi - lo), side="right")
            dst[to_class] = order[np.minimum(pick, order.size - 1)]
        if config.community_share > 0:
            # a share of the other inside stubs goes to the core of a group of the own
            # community (a uniform group, then a uniform core member): circles of one
            # community share their central members, which closes triangles
            to_community = inside & ~to_class & (
                rng.random(src.size) < config.community_share / (1 - config.class_share))
            first_group = group[to_community] // config.community_groups * \
                config.community_groups
            width = np.minimum(config.community_groups, num_groups - first_group)
            target_group = first_group + (rng.random(first_group.size) * width).astype(np.int64)
            dst[to_community] = starts[target_group] + (
                rng.random(target_group.size) * core_sizes[target_group]).astype(np.int64)
        yield np.stack([_ids(src, n, *perm), _ids(dst, n, *perm)], axis=1)


def expected_edges(config: SynthConfig) -> int:
    """Stubs drawn (edges before de-duplication), for sizing buckets: about ``n·d/2``."""
    return int(config.num_nodes * config.avg_degree / 2 * 1.1) + 1


def synth_graph(config: SynthConfig, out_dir: str | Path, memory_gb: float = 4.0,
                overwrite: bool = False, progress: bool = True) -> GraphHeader:
    """Write the graph of ``config`` as a graph directory with labels (see module docstring)."""
    started = time.perf_counter()
    n = config.num_nodes
    starts, classes = _groups(config)
    perm = _permutation(n, config.seed)
    with GraphWriter(out_dir, overwrite=overwrite) as writer:
        nnz = write_csr(writer, lambda: _edge_chunks(config, starts, classes, perm), n,
                        expected_edges(config), memory_gb, progress)
        labels = np.empty(n, dtype=np.int64)
        for first in range(0, n, CHUNK_NODES):
            pos = np.arange(first, min(first + CHUNK_NODES, n), dtype=np.int64)
            group = np.searchsorted(starts[:-1], pos, side="right") - 1
            labels[_ids(pos, n, *perm)] = classes[group]
        writer.save_array(LABELS_FILE, labels)
        header = writer.write_header(GraphHeader(
            name=f"synth-n{n}-d{config.avg_degree:g}-k{config.communities}-s{config.seed}",
            num_nodes=n, num_edges=nnz // 2, num_csr_entries=nnz, has_labels=True,
            source={"synth": asdict(config), "groups": int(classes.size),
                    "seconds": round(time.perf_counter() - started, 3)}))
        writer.commit()
    return header


def clustering_coefficient(indptr: np.ndarray, indices: np.ndarray, sample: int = 2000,
                           seed: int = 0) -> float:
    """Average local clustering coefficient over ``sample`` random nodes of degree >= 2
    (nodes of lower degree count as 0, as networkx does): exact triangle counts per node."""
    n = int(indptr.shape[0]) - 1
    rng = np.random.default_rng(seed)
    nodes = rng.choice(n, size=min(sample, n), replace=False)
    total = 0.0
    for v in nodes:
        nbrs = np.asarray(indices[indptr[v]:indptr[v + 1]], dtype=np.int64)
        k = nbrs.size
        if k < 2:
            continue
        links = 0
        for u in nbrs:
            links += np.intersect1d(np.asarray(indices[indptr[u]:indptr[u + 1]]), nbrs,
                                    assume_unique=True).size
        total += links / (k * (k - 1))  # each triangle edge counted from both ends
    return total / nodes.size
