"""Node codes: random-projection hashing of the adjacency (the method) and random bits.

Hash scheme (Yeh et al., KDD 2022). With ``Â = A + I`` (adjacency plus self-loops, so
isolated nodes still differ) and a seeded zero-mean random matrix ``R`` of shape ``[n, c]``::

    p[v, j]  = (Â R)[v, j] = R[v, j] + sum_{u in N(v)} R[u, j]
    bit[v, j] = p[v, j] > median_v p[:, j]

Nodes with overlapping neighbourhoods share terms of the sum and so agree on most bits.
Projections equal to the median (common with ±1 directions, whose sums are integers) are
split between 0 and 1 by a seeded random choice so that every bit stays balanced. Those ties
fall mostly on low-degree nodes, so with ±1 directions the set-bit count keeps a weak rank
correlation with degree on graphs with many degree-1..3 nodes (about -0.15 on the test
suite's Chung-Lu graph, against -0.03 for Gaussian): Gaussian is the default.
Because ``R`` is zero-mean the sign of ``p`` does not depend on degree (a non-negative ``R``
would make ``p`` grow with degree and the bits encode degree). Thresholding each bit at its
median balances it to half ones.

Memory stays ``O(n × block)``: bits are produced ``block`` at a time. ``R[u, j]`` is a pure
function of (seed, the node's stable key, ``j``) (:mod:`hashembed.projection`, keys from
:mod:`hashembed.idmap`), and ties at the median are broken by a keyed rank too, so the codes do
not depend on the block size, on the order in which nodes are numbered, or on the process;
and an unseen node's code can be computed later from its key and its neighbours' keys with the
stored thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from hashembed.codeformat import CodeSpec, pack_codes, unpack_codes
from hashembed.errors import ConfigError
from hashembed.projection import projection, tie_rank
from hashembed.train.graph import Graph


@dataclass(frozen=True)
class Codes:
    """Packed codes and what it takes to reproduce them.

    Attributes:
        spec: the :class:`CodeSpec` they follow.
        packed: ``uint8 [n, c/8]`` (bit order: :mod:`hashembed.codeformat`).
        thresholds: ``float32 [c]`` per-bit medians for the hash scheme, else ``None``.
    """

    spec: CodeSpec
    packed: np.ndarray
    thresholds: np.ndarray | None


def adjacency_with_self_loops(graph: Graph) -> sp.csr_matrix:
    """``Â = A + I`` as a float32 CSR matrix ``[n, n]``."""
    n = graph.num_nodes
    src, dst = graph.edge_index
    loops = np.arange(n, dtype=np.int64)
    rows = np.concatenate([src, loops])
    cols = np.concatenate([dst, loops])
    data = np.ones(rows.shape[0], dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n))


def _balance_ties(bits: np.ndarray, proj: np.ndarray, median: np.ndarray, keys: np.ndarray,
                  first_bit: int, seed: int) -> np.ndarray:
    """Turn on tied-at-median entries until each bit has ``n // 2`` ones, lowest keyed rank
    (:func:`~hashembed.projection.tie_rank`) first: random-looking, yet the same for a node
    whatever its row.

    Shapes: ``bits`` bool ``[n, k]`` (``proj > median``), ``proj`` ``[n, k]``, ``median [k]``,
    ``keys uint64 [n]``; column ``t`` is bit ``first_bit + t``.
    """
    half = bits.shape[0] // 2
    for t in range(bits.shape[1]):
        tied = np.nonzero(proj[:, t] == median[t])[0]
        need = half - int(bits[:, t].sum())
        if tied.size and need > 0:
            rank = tie_rank(keys[tied], first_bit + t, seed)
            bits[tied[np.argsort(rank, kind="stable")[:need]], t] = True
    return bits


def hash_codes(graph: Graph, spec: CodeSpec, block_bits: int = 64,
               progress: bool = True) -> Codes:
    """Hash codes of every node from its adjacency row (see module docstring).

    Args:
        graph: the graph; its ``edge_index`` defines ``A``.
        spec: a ``CodeSpec`` with ``scheme="hash"``.
        block_bits: bits computed per block; peak memory is about ``n × block_bits × 8`` bytes.
        progress: show a tqdm bar over blocks.

    Returns:
        :class:`Codes` with ``packed uint8 [n, c/8]`` and ``thresholds float32 [c]``.
    """
    if spec.scheme != "hash":
        raise ConfigError(f"hash_codes needs scheme='hash', got {spec.scheme!r}")
    if block_bits <= 0 or block_bits % 8:
        raise ConfigError(f"block_bits={block_bits} must be a positive multiple of 8")
    n, c = graph.num_nodes, spec.bits
    adj = adjacency_with_self_loops(graph)
    keys = graph.ids.keys()
    packed = np.empty((n, c // 8), dtype=np.uint8)
    thresholds = np.empty(c, dtype=np.float32)
    starts = range(0, c, block_bits)
    for start in tqdm(starts, desc="hash codes", unit="block", disable=not progress):
        stop = min(start + block_bits, c)
        directions = projection(keys, start, stop, spec.seed, spec.projection)  # [n, k]
        proj = adj @ directions                                                # [n, k]
        median = np.median(proj, axis=0)
        thresholds[start:stop] = median
        bits = _balance_ties(proj > median, proj, median, keys, start, spec.seed)
        packed[:, start // 8: stop // 8] = pack_codes(bits)
    return Codes(spec, packed, thresholds)


# random codes draw from their own family of the counter hash, apart from hash projections
_RANDOM_CODE_SALT = np.uint64(0x72616E646F6D2D63)  # "random-c"


def random_codes(keys: np.ndarray, spec: CodeSpec, block_bits: int = 64) -> Codes:
    """Uniform random bits (ALONE-style baseline) of nodes ``keys`` (``uint64 [n]``):
    ``packed uint8 [n, c/8]``. Bit ``j`` of a node is the sign of a keyed ±1 draw, so, like
    hash codes, it does not depend on the node's row."""
    if spec.scheme != "random":
        raise ConfigError(f"random_codes needs scheme='random', got {spec.scheme!r}")
    keys = np.asarray(keys, dtype=np.uint64) ^ _RANDOM_CODE_SALT
    packed = np.empty((keys.size, spec.bytes_per_node), dtype=np.uint8)
    for start in range(0, spec.bits, block_bits):
        stop = min(start + block_bits, spec.bits)
        signs = projection(keys, start, stop, spec.seed, "rademacher")
        packed[:, start // 8: stop // 8] = pack_codes(signs > 0)
    return Codes(spec, packed, None)


def make_codes(graph: Graph, spec: CodeSpec, progress: bool = True) -> Codes:
    """Codes for every node of ``graph`` under ``spec.scheme``."""
    if spec.scheme == "hash":
        return hash_codes(graph, spec, progress=progress)
    return random_codes(graph.ids.keys(), spec)


def code_stats(packed: np.ndarray, bits: int) -> dict[str, float]:
    """Quality report of a code table.

    Returns:
        ``bits_per_node``; ``bit_balance_max_dev``: the largest ``|mean(bit_j) - 0.5|`` over
        bits; ``collision_fraction``: fraction of nodes whose code equals another node's;
        ``distinct_codes``.
    """
    ones = unpack_codes(packed, bits).mean(axis=0)
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    colliding = counts[inverse] > 1
    return {
        "bits_per_node": int(bits),
        "bit_balance_max_dev": float(np.abs(ones - 0.5).max()),
        "collision_fraction": float(colliding.mean()),
        "distinct_codes": int(counts.size),
    }
