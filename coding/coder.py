"""Node codes: random-projection hashing of the adjacency (the method) and random bits.

Hash scheme (Yeh et al., KDD 2022). With ``Â = A + I`` (adjacency plus self-loops, so
isolated nodes still differ) and a seeded zero-mean random matrix ``R`` of shape ``[n, c]``::

    p[v, j]  = (Â R)[v, j] = R[v, j] + sum_{u in N(v)} R[u, j]
    bit[v, j] = p[v, j] > median_v p[:, j]

Nodes with overlapping neighbourhoods share terms of the sum and so agree on most bits.

Multi-hop codes (``spec.hops = K``, ``K = 1`` above is the paper's coding) project the walk
counts instead: ``p = Â^K R``, so ``p[v]`` sums ``R[u]`` over every walk of up to ``K`` steps
from ``v`` (with the self-loops), weighted by how many there are. Two nodes of one class that
share no neighbour but share the community around them then agree on bits, which the GNN's
first layer, reading the neighbours' codes, cannot recover from 1-hop codes. Each hop is the
exact integer neighbour-sum pass of hop 1 applied to the previous hop's sums. Walk counts grow
like ``degree^K``, so before each further hop every bit's column is divided by a power of two
and floored (``p[:, j] = floor(p[:, j] / 2^s_j)``), ``s_j`` the least keeping the next hop's
sums below ``2^52`` (exact in float64 in any order): ``(max degree + 1) · max_v |p[v, j]|``.
``s_j`` depends only on the graph and the column, never on blocks, chunks or row order; the
shifts are stored beside the thresholds (``hop_shifts [K - 1, c]``) so an unseen node is coded
the same way (:mod:`hashembed.serve.unseen`).

Projections equal to the median (common with ±1 directions, whose sums are integers) are
split between 0 and 1 by a seeded random choice so that every bit stays balanced. Those ties
fall mostly on low-degree nodes, so with ±1 directions the set-bit count keeps a weak rank
correlation with degree on graphs with many degree-1..3 nodes (about -0.15 on the test
suite's Chung-Lu graph, against -0.03 for Gaussian): Gaussian is the default.
Because ``R`` is zero-mean the sign of ``p`` does not depend on degree (a non-negative ``R``
would make ``p`` grow with degree and the bits encode degree). Thresholding each bit at its
median balances it to half ones.

Memory stays ``O(n × block)``: bits are produced ``block`` at a time. ``R[u, j]`` is a pure
function of (seed, the node's stable key, ``j``) (:mod:`hashembed.core.projection`, keys from
:mod:`hashembed.core.idmap`), and ties at the median are broken by a keyed rank too, so the codes do
not depend on the block size, on the order in which nodes are numbered, or on the process;
and an unseen node's code can be computed later from its key and its neighbours' keys with the
stored thresholds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from hashembed.core.codeformat import CodeSpec, degree_buckets, pack_codes, unpack_codes
from hashembed.core.errors import ConfigError
from hashembed.core.graphdir import read_slice
from hashembed.core.projection import (FIXED_POINT_SCALE, mix64, projection_fixed, random_bits,
                                  tie_rank)
from hashembed.graph.memory import Graph


@dataclass(frozen=True)
class Codes:
    """Packed codes and what it takes to reproduce them.

    Attributes:
        spec: the :class:`CodeSpec` they follow.
        packed: ``uint8 [n, c/8]`` (bit order: :mod:`hashembed.core.codeformat`).
        thresholds: ``float64 [c]`` per-bit medians of ``p`` for the hash scheme (exact:
            fixed-point sums divided by ``2^20``), else ``None``.
        hop_shifts: ``int64 [K - 1, c]``: hop ``h + 2`` read hop ``h + 1``'s sums of bit
            ``j`` divided by ``2^hop_shifts[h, j]`` (floored); ``None`` unless ``K > 1``.
    """

    spec: CodeSpec
    packed: np.ndarray
    thresholds: np.ndarray | None
    hop_shifts: np.ndarray | None = None

    def record(self) -> dict:
        """What reproduces and checks the table beside it, as JSON: ``thresholds`` and
        ``hop_shifts`` as lists (or ``None``); the codes directory and the run store it."""
        return {"thresholds": None if self.thresholds is None else self.thresholds.tolist(),
                "hop_shifts": None if self.hop_shifts is None else self.hop_shifts.tolist()}

    @classmethod
    def from_record(cls, spec: CodeSpec, packed: np.ndarray, record: dict) -> "Codes":
        """The inverse of :meth:`record` for a ``packed`` table of ``spec``."""
        thresholds = record["thresholds"]
        # records written before multi-hop coding have no "hop_shifts": their codes are 1-hop
        shifts = record.get("hop_shifts")
        return cls(spec, packed, None if thresholds is None else np.array(thresholds, np.float64),
                   None if shifts is None else np.array(shifts, dtype=np.int64))


def _balance_ties(bits: np.ndarray, proj: np.ndarray, median: np.ndarray, keys: np.ndarray,
                  first_bit: int, seed: int) -> np.ndarray:
    """Turn on tied-at-median entries until each bit has ``n // 2`` ones, lowest keyed rank
    (:func:`~hashembed.core.projection.tie_rank`) first: random-looking, yet the same for a node
    whatever its row.

    Shapes: ``bits`` bool ``[n, k]`` (``proj > median``), ``proj`` ``[n, k]``, ``median [k]``,
    ``keys uint64 [n]``; column ``t`` is bit ``first_bit + t``.
    """
    # a bit is short of half ones only when values tie at its median: look for ties there only
    needs = bits.shape[0] // 2 - np.count_nonzero(bits, axis=0)
    for t in np.nonzero(needs > 0)[0]:
        tied = np.nonzero(proj[:, t] == median[t])[0]
        need = int(needs[t])
        if tied.size:
            rank = tie_rank(keys[tied], first_bit + t, seed)
            bits[tied[np.argsort(rank, kind="stable")[:need]], t] = True
    return bits


# p's entries are sums of (degree + 1) fixed-point directions, each below 2^23 in magnitude
# (Box-Muller's largest draw is sqrt(-2 ln 2^-33) < 7): exact in float64 (53-bit mantissa)
# whatever the order of summation as long as every partial sum stays below 2^52, so the
# threaded sparse product may add in any order and still give the integer sums.
MAX_EXACT_DEGREE = (1 << 29) - 1
EXACT_SUM_BITS = 52  # a hop's sums stay below 2^52: integers exact in float64, in any order


def block_bits_for(num_nodes: int, memory_gb: float, bits: int) -> int:
    """Bits per block that fit ``memory_gb``: a block holds ``R``, ``p`` (float64 each) and the
    bits for every node (17 bytes per node and bit), beside the keys, one bit's column copy
    for its median and the byte being packed (18 bytes per node), in three quarters of the
    budget (the last quarter holds a row chunk); between 1 and 64, a multiple of 8 from 8 up
    (whole bytes pack faster). Fewer bits a block mean more passes over the CSR (``c / k``);
    a budget below ``n`` · 47 bytes is exceeded."""
    room = 0.75 * memory_gb * 2**30 - 18 * num_nodes
    fit = int(room // (17 * num_nodes))
    if fit >= 8:
        fit = fit // 8 * 8
    return max(1, min(64, bits, fit))


# draws of the projection computed at once: its uint64 / float64 temporaries stay in cache
# (five times faster than 2^19 at a time, fifteen times faster than whole arrays, at n = 10^6)
PROJECTION_CHUNK_DRAWS = 1 << 16
# CSR entries per sparse product: large enough that the per-call overhead vanishes
ROW_CHUNK_ENTRIES = 1 << 22
# what one entry of a row chunk holds at peak: its int32 column as read, the int64 copy and
# the float64 value the product takes, and the sparse library's own copies of both (the
# measured peak of a chunk is about 2.5 times the 16 bytes torch is handed)
CHUNK_ENTRY_BYTES = 40


def hash_codes_csr(indptr: np.ndarray, indices: np.ndarray, keys: np.ndarray, spec: CodeSpec,
                   block_bits: int | None = None, memory_gb: float = 4.0,
                   row_chunk_entries: int | None = None, progress: bool = True,
                   out: np.ndarray | None = None) -> Codes:
    """Hash codes of every node from a CSR adjacency (memory-mapped or not), streaming.

    For each block of ``k`` bits: ``R`` for every node (fixed point, from the keys), then
    ``p[v] = R[v] + sum_{u in N(v)} R[u]`` row chunk by row chunk (about
    ``row_chunk_entries`` CSR entries each) as a sparse-dense product, then each bit's exact
    median. Exact integer sums make the codes identical for any block size, row chunking,
    memory budget, thread count or row order.

    Args:
        indptr, indices: the graph's CSR (``int64 [n + 1]``, ``int32|int64 [nnz]``).
        keys: ``uint64 [n]`` node keys (:meth:`hashembed.core.idmap.IdMap.keys`).
        block_bits: bits per block; default: as many as ``memory_gb`` allows (8 to 64).
        row_chunk_entries: CSR entries multiplied at once (each costs about
            :data:`CHUNK_ENTRY_BYTES`); default: :data:`ROW_CHUNK_ENTRIES`, or what a quarter of
            ``memory_gb`` holds if less.
        out: where to write the packed codes (``uint8 [n, spec.bytes_per_node]``, e.g. a
            memory map of the output file, filled block by block); default: a new array.

    Returns:
        :class:`Codes` with ``packed uint8 [n, spec.bytes_per_node]`` (the bits, then the
        degree byte if ``spec.degree_field``) and ``thresholds float64 [c]`` (the medians of
        ``p``, in projection units, exact).
    """
    if spec.scheme != "hash":
        raise ConfigError(f"hash_codes needs scheme='hash', got {spec.scheme!r}")
    n, c = int(indptr.shape[0]) - 1, spec.bits
    if block_bits is None:
        block_bits = block_bits_for(n, memory_gb, c)
    if block_bits <= 0:
        raise ConfigError(f"block_bits={block_bits} must be positive")
    if row_chunk_entries is None:
        row_chunk_entries = max(1 << 12, min(ROW_CHUNK_ENTRIES, int(
            memory_gb * 2**30 / 4 / CHUNK_ENTRY_BYTES)))
    keys = np.asarray(keys, dtype=np.uint64)
    packed = _packed_output(out, n, spec)
    thresholds = np.empty(c, dtype=np.float64)
    hops = spec.hops
    hop_shifts = np.zeros((hops - 1, c), dtype=np.int64) if hops > 1 else None
    max_degree = largest_degree(indptr) if hops > 1 else 0
    chunks = row_chunks(indptr, row_chunk_entries)
    # every block reuses the same buffers: first-touching fresh memory is the slowest step
    # on some virtual machines (~10 µs a page), so nothing n-sized is allocated per block
    width = min(block_bits, c)
    directions = np.empty((n, width), dtype=np.float64)                           # R [n, k]
    proj = np.empty((n, width), dtype=np.float64)                                 # p [n, k]
    bits = np.empty((n, width), dtype=bool)
    column = np.empty(n, dtype=np.float64)
    writer = ByteColumnWriter(packed)
    bar = tqdm(total=int(indptr[-1]) * -(-c // block_bits) * hops, desc="hash codes",
               unit="edge", unit_scale=True, disable=not progress)
    for start in range(0, c, block_bits):
        stop = min(start + block_bits, c)
        k = stop - start
        source, target, on = directions[:, :k], proj[:, :k], bits[:, :k]
        directions_into(keys, start, stop, spec, out=source)
        for hop in range(hops):  # the two buffers take turns: hop h reads what h - 1 wrote
            if hop:
                shifts = _hop_shifts(source, max_degree)
                hop_shifts[hop - 1, start:stop] = shifts
                rescale_columns(source, shifts, column)
            for lo, hi in chunks:
                _add_neighbour_sums(indptr, indices, lo, hi, source, out=target[lo:hi])
                bar.update(int(indptr[hi]) - int(indptr[lo]))
            source, target = target, source
        p = source  # Â^K R for bits start … stop-1
        median = np.array([_median(p[:, t], column) for t in range(k)])
        thresholds[start:stop] = median / FIXED_POINT_SCALE
        np.greater(p, median, out=on)
        _balance_ties(on, p, median, keys, start, spec.seed)
        writer.add(on, start)
    bar.close()
    fill_degree_field(packed, indptr, spec)
    return Codes(spec, packed, thresholds, hop_shifts)


def fill_degree_field(packed: np.ndarray, indptr: np.ndarray, spec: CodeSpec, lo: int = 0,
                      rows: int = 1 << 22) -> None:
    """Write the degree byte (:func:`~hashembed.core.codeformat.degree_buckets` of each
    node's CSR row length) into column ``c/8`` of ``packed``, whose row 0 is node ``lo``;
    nothing unless ``spec.degree_field``. ``rows`` nodes at a time (``indptr`` may be a
    memory map)."""
    if not spec.degree_field:
        return
    for start in range(0, packed.shape[0], rows):
        stop = min(start + rows, packed.shape[0])
        bounds = np.asarray(indptr[lo + start: lo + stop + 1], dtype=np.int64)
        packed[start:stop, spec.bit_bytes] = degree_buckets(np.diff(bounds))


def largest_degree(indptr: np.ndarray, rows: int = 1 << 22) -> int:
    """The largest degree of a CSR, read ``rows`` row pointers at a time (no ``n``-sized
    temporary for a memory-mapped ``indptr``)."""
    n = int(indptr.shape[0]) - 1
    largest = 0
    for lo in range(0, n, rows):
        pointers = read_slice(indptr, lo, min(lo + rows, n) + 1)
        largest = max(largest, int(np.diff(pointers).max()))
    return largest


def hop_shift(max_abs: int, max_degree: int) -> int:
    """The least ``s >= 0`` with ``(max_degree + 1) · max_abs / 2^s < 2^52``: after dividing a
    column whose largest magnitude is ``max_abs`` by ``2^s``, a node's next-hop sum (itself and
    at most ``max_degree`` neighbours) stays exact in float64 whatever the order."""
    return max(0, ((max_degree + 1) * int(max_abs)).bit_length() - EXACT_SUM_BITS)


def _hop_shifts(values: np.ndarray, max_degree: int) -> np.ndarray:
    """``int64 [k]``: :func:`hop_shift` of each column of ``values`` (``float64 [n, k]``,
    integers), from its largest and smallest entries (no ``n × k`` temporary)."""
    largest = np.maximum(values.max(axis=0), -values.min(axis=0))
    return np.array([hop_shift(int(m), max_degree) for m in largest], dtype=np.int64)


def rescale_columns(values: np.ndarray, shifts: np.ndarray, scratch: np.ndarray) -> None:
    """``values[:, t] = floor(values[:, t] / 2^shifts[t])`` in place, exact on the integers
    ``values`` holds, one column at a time through ``scratch`` (``float64 [n]``)."""
    for t in np.nonzero(shifts)[0]:
        np.ldexp(values[:, t], -int(shifts[t]), out=scratch)
        np.floor(scratch, out=scratch)
        values[:, t] = scratch


def directions_into(keys: np.ndarray, start: int, stop: int, spec: CodeSpec, out: np.ndarray
                ) -> None:
    """``R`` for bits ``start … stop-1`` of every key into ``out`` (``float64 [n, stop -
    start]``, fixed point held exactly), a cache-sized chunk of keys at a time."""
    step = max(1, PROJECTION_CHUNK_DRAWS // (stop - start))
    for lo in range(0, keys.shape[0], step):
        out[lo:lo + step] = projection_fixed(keys[lo:lo + step], start, stop, spec.seed,
                                             spec.projection)


def _add_neighbour_sums(indptr: np.ndarray, indices: np.ndarray, lo: int, hi: int,
                        directions: np.ndarray, out: np.ndarray) -> None:
    """``out[v - lo] = R[v] + sum_{u in N(v)} R[u]`` for rows ``v`` in ``[lo, hi)``: the rows'
    CSR slice times ``directions`` (``R``, ``float64 [n, k]``), into ``out`` (``float64
    [hi - lo, k]``, contiguous rows); exact (see :data:`MAX_EXACT_DEGREE`)."""
    a, b = int(indptr[lo]), int(indptr[hi])
    rows = read_slice(indptr, lo, hi + 1).astype(np.int64) - a
    csr_add_product(rows, read_slice(indices, a, b).astype(np.int64), directions[lo:hi],
                    directions, out)


def csr_add_product(rows: np.ndarray, columns: np.ndarray, own: np.ndarray,
                    neighbours: np.ndarray, out: np.ndarray) -> None:
    """``out = own + A @ neighbours`` with ``A`` the 0/1 matrix of a CSR slice, by torch's
    threaded sparse product: a node's own row plus its neighbours' rows.

    Shapes: ``rows int64 [r + 1]`` (from 0), ``columns int64 [e]`` (rows of ``neighbours``),
    ``own float64 [r, k]``, ``neighbours float64 [N, k]``, ``out float64 [r, k]`` (contiguous
    rows). Integer entries below 2^52 in every partial sum give exact sums in any order (see
    :data:`MAX_EXACT_DEGREE`); a row longer than that limit is refused.
    """
    degree = int(np.diff(rows).max()) if rows.shape[0] > 1 else 0
    if degree > MAX_EXACT_DEGREE:
        raise ConfigError(f"a node has {degree} neighbours; exact hash codes support at most "
                          f"{MAX_EXACT_DEGREE}")
    if columns.shape[0] == 0:
        out[:] = own
        return
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is not
        warnings.simplefilter("ignore", UserWarning)
        adjacency = torch.sparse_csr_tensor(
            torch.from_numpy(rows), torch.from_numpy(columns),
            torch.ones(columns.shape[0], dtype=torch.float64),
            size=(rows.shape[0] - 1, neighbours.shape[0]))
    torch.addmm(torch.from_numpy(own), adjacency,
                torch.from_numpy(neighbours), out=torch.from_numpy(out))


def pack_into(packed: np.ndarray, bits: np.ndarray, start: int) -> None:
    """Write ``bits`` (``bool [n, k]``, bits ``start … start+k-1``) into ``packed``
    (``uint8 [n, c/8]``, bit ``j`` at bit ``j % 8`` of byte ``j // 8``); whole bytes at once
    when the block is byte-aligned, else bit by bit (a byte's first bit resets it)."""
    k = bits.shape[1]
    if start % 8 == 0 and k % 8 == 0:
        packed[:, start // 8: (start + k) // 8] = pack_codes(bits)
        return
    for t in range(k):
        j = start + t
        column = bits[:, t].astype(np.uint8) << np.uint8(j % 8)
        if j % 8 == 0:
            packed[:, j // 8] = column
        else:
            packed[:, j // 8] |= column


class ByteColumnWriter:
    """Writes the coder's blocks of bits into ``packed`` (``uint8 [n, c/8 (+ 1)]``, often a
    memory map of the output file) one whole byte column at a time, each column once.

    A budget-sized block rarely ends on a byte (``--memory-gb 12`` at ``n = 10⁸`` gives 4-bit
    blocks). OR-ing such a block's bits into a memory-mapped table one bit at a time dirties
    every page of it once per bit, and the kernel writes each dirtied page back: about 106 GB
    written for a 1.6 GB table at ``c = 128``. Here the byte being built stays in RAM
    (``pending``, ``uint8 [n]``) until its eighth bit arrives, so the table is written
    ``c / 8`` times, not ``c``; a byte-aligned block is packed straight into its columns.
    """

    def __init__(self, packed: np.ndarray):
        self.packed = packed
        self.pending = np.zeros(packed.shape[0], dtype=np.uint8)   # byte j // 8 so far
        self.scratch = np.empty(packed.shape[0], dtype=np.uint8)
        self.next_bit = 0

    def add(self, bits: np.ndarray, start: int) -> None:
        """Bits ``start … start+k-1`` of every node (``bool [n, k]``); blocks come in order."""
        if start != self.next_bit:
            raise ValueError(f"blocks must come in order: expected bit {self.next_bit}, "
                             f"got {start}")
        k = bits.shape[1]
        self.next_bit = start + k
        if start % 8 == 0 and k % 8 == 0:
            pack_into(self.packed, bits, start)
            return
        for t in range(k):
            j = start + t
            # pending |= bit_j << (j mod 8): bit j sits at bit j % 8 of byte j // 8
            np.left_shift(bits[:, t].view(np.uint8), np.uint8(j % 8), out=self.scratch)
            np.bitwise_or(self.pending, self.scratch, out=self.pending)
            if j % 8 == 7:
                self.packed[:, j // 8] = self.pending
                self.pending.fill(0)


def _median(values: np.ndarray, scratch: np.ndarray) -> float:
    """``np.median(values)`` of ``float64 [n]`` (a strided column), selected in ``scratch``
    (``float64 [n]``, overwritten) instead of a fresh copy."""
    scratch[:] = values
    half = scratch.shape[0] // 2
    if scratch.shape[0] % 2:
        scratch.partition(half)
        return float(scratch[half])
    scratch.partition([half - 1, half])
    return float((scratch[half - 1] + scratch[half]) / 2)


def row_chunks(indptr: np.ndarray, entries: int) -> list[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of about ``entries`` CSR entries each (at least one row)."""
    n = int(indptr.shape[0]) - 1
    bounds = np.searchsorted(np.asarray(indptr), np.arange(0, int(indptr[-1]) + entries,
                                                           entries), side="left")
    cuts = sorted(set([0, n, *np.clip(bounds, 0, n).tolist()]))
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


def hash_codes(graph: Graph, spec: CodeSpec, block_bits: int | None = 64,
               progress: bool = True) -> Codes:
    """Hash codes of every node of an in-memory :class:`Graph` (see :func:`hash_codes_csr`)."""
    indptr, indices = graph.csr()
    return hash_codes_csr(indptr, indices, graph.ids.keys(), spec, block_bits=block_bits,
                          progress=progress)


def random_codes(keys: np.ndarray, spec: CodeSpec, out: np.ndarray | None = None,
                 indptr: np.ndarray | None = None) -> Codes:
    """Uniform random bits (ALONE-style baseline) of nodes ``keys`` (``uint64 [n]``):
    ``packed uint8 [n, spec.bytes_per_node]`` (written into ``out`` if given, e.g. a memory
    map), a cache-sized chunk of nodes at a time. Bit ``j`` of a node is the sign of a keyed
    ±1 draw, so, like hash codes, it does not depend on the node's row. With
    ``spec.degree_field`` the degree byte comes from ``indptr`` (``int64 [n + 1]``)."""
    if spec.scheme != "random":
        raise ConfigError(f"random_codes needs scheme='random', got {spec.scheme!r}")
    if spec.degree_field and indptr is None:
        raise ConfigError("random codes with a degree field need the graph's indptr")
    keys = np.asarray(keys, dtype=np.uint64)
    packed = _packed_output(out, keys.shape[0], spec)
    step = max(1, PROJECTION_CHUNK_DRAWS // spec.bits)
    for lo in range(0, keys.shape[0], step):
        packed[lo:lo + step, :spec.bit_bytes] = pack_codes(
            random_bits(keys[lo:lo + step], 0, spec.bits, spec.seed))
    fill_degree_field(packed, indptr, spec)
    return Codes(spec, packed, None)


def _packed_output(out: np.ndarray | None, n: int, spec: CodeSpec) -> np.ndarray:
    """``out`` checked to be ``uint8 [n, spec.bytes_per_node]``, or a new such array."""
    shape = (n, spec.bytes_per_node)
    if out is None:
        return np.empty(shape, dtype=np.uint8)
    if out.shape != shape or out.dtype != np.uint8:
        raise ConfigError(f"code output must be uint8 {list(shape)}, got {out.dtype} "
                          f"{list(out.shape)}")
    return out


def make_codes(graph: Graph, spec: CodeSpec, progress: bool = True) -> Codes:
    """Codes for every node of ``graph`` under ``spec.scheme``."""
    if spec.scheme == "hash":
        return hash_codes(graph, spec, progress=progress)
    return random_codes(graph.ids.keys(), spec,
                        indptr=graph.csr()[0] if spec.degree_field else None)


def code_stats(packed: np.ndarray, bits: int, chunk: int = 1 << 20) -> dict[str, float]:
    """Quality report of a code table's ``bits`` bits (a degree byte after them is not
    read), ``chunk`` rows at a time (no ``n × c`` array).

    Returns:
        ``bits_per_node``; ``bit_balance_max_dev``: the largest ``|mean(bit_j) - 0.5|`` over
        bits; ``collision_fraction``: fraction of nodes whose code equals another node's;
        ``distinct_codes``. Codes are compared through a 64-bit hash of each row (two
        different codes sharing one is a 2^-64 event).
    """
    n = packed.shape[0]
    ones = np.zeros(bits, dtype=np.int64)
    fingerprints = np.empty(n, dtype=np.uint64)
    for start in range(0, n, chunk):
        rows = np.ascontiguousarray(packed[start:start + chunk, :bits // 8])
        ones += unpack_codes(rows, bits).sum(axis=0)
        padded = np.zeros((rows.shape[0], -(-rows.shape[1] // 8) * 8), dtype=np.uint8)
        padded[:, :rows.shape[1]] = rows
        words = padded.view(np.uint64)
        h = np.zeros(rows.shape[0], dtype=np.uint64)
        with np.errstate(over="ignore"):
            for w in range(words.shape[1]):
                h = mix64(h ^ words[:, w]) + np.uint64(w + 1)
        fingerprints[start:start + chunk] = h
    # sorted, equal fingerprints sit side by side: a node collides when a neighbour in that
    # order equals it (no np.unique with inverse and counts: three more n-sized arrays)
    fingerprints.sort()
    repeats = fingerprints[1:] == fingerprints[:-1]                       # bool [n - 1]
    colliding = np.zeros(n, dtype=bool)
    colliding[1:] |= repeats
    colliding[:-1] |= repeats
    return {
        "bits_per_node": int(bits),
        "bit_balance_max_dev": float(np.abs(ones / max(n, 1) - 0.5).max()),
        "collision_fraction": float(colliding.mean()) if n else 0.0,
        "distinct_codes": int(n - repeats.sum()),
    }
