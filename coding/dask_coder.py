"""The hash coder on Dask: the passes of :func:`~hashembed.coding.coder.hash_codes_csr` split
into node ranges that run as Dask tasks, bit-identical to the single-machine coder.

Nodes are cut into ``P`` ranges of about equal CSR entries. For each block of ``k`` bits
(one pass of the single coder), the client runs rounds of one task per range; a task reads
its range's CSR rows from the graph directory and writes its range's rows of a shared file,
and returns a few numbers per bit::

    directions   level_0[lo:hi] = R[lo:hi]                 (the keyed projection, no input)
    hop h        level_h[lo:hi] = s(level_{h-1})[lo:hi] + sum_{u in N(v)} s(level_{h-1})[u]
                 -> the range's min and max of every bit (s: the hop rescale, h > 1)
    select       histograms of p = level_K over a value interval, per bit (median rounds)
    ties         count(p > median), count(p == median); then histograms of the tied
                 entries' keyed ranks (only bits short of half ones)
    write        bits of the range packed into its rows of the staged codes.npy

Only the level files (``float64 [n, k]``, two of them taking turns like the single coder's
two buffers) travel between workers, through shared storage: a hop reads the neighbours'
rows of the previous level. Hop 1 reads ``R`` from ``level_0`` rather than regenerating it
per edge: regenerating the neighbours' draws would hash every CSR entry (``avg degree``
times the draws of writing ``R`` once).

Exactness. Everything the single coder decides from all ``n`` nodes at once is reduced here
exactly: the hop shifts from the per-range max ``|p|`` (the rule of
:func:`~hashembed.coding.coder.hop_shift`), each bit's median by integer selection —
histogram refinement over the integers ``p`` holds, 4,096 bins a round, about five rounds,
no approximate quantile — and the tie-break at the median by selecting the ``need``-th
smallest keyed rank (:func:`~hashembed.core.projection.tie_rank`) among the tied entries of
all ranges. Sums are exact integers in float64 in any order, as in the single coder, so
codes, thresholds and shifts equal :func:`~hashembed.coding.coder.hash_codes_csr`'s for any
partition and any number of workers.

Failure. Every task writes only its own rows and is a pure function of its inputs, so Dask
may re-run a task whose worker died; a task that fails for good raises
:class:`DistributedCodingError` in the client, and the caller's staged codes directory is
discarded (:mod:`hashembed.coding.codesdir`): never a directory that loads with wrong bits.

Needs ``dask`` and ``distributed`` (``pip install 'hashembed[distributed]'``).
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hashembed.coding.coder import (CHUNK_ENTRY_BYTES, ROW_CHUNK_ENTRIES, Codes, block_bits_for,
                                    csr_add_product, directions_into, fill_degree_field,
                                    hop_shift, largest_degree, pack_into, rescale_columns,
                                    row_chunks)
from hashembed.core.codeformat import CodeSpec
from hashembed.core.errors import ConfigError, HashembedError
from hashembed.core.graphdir import open_graph, read_slice
from hashembed.core.projection import FIXED_POINT_SCALE, tie_rank

# bins of one selection round: 4,096 narrow an interval of 2^64 values to one in six rounds
SELECT_BINS = 1 << 12
_SIGN = np.uint64(1 << 63)
_UINT64_MAX = (1 << 64) - 1
KEYS_FILE = "keys.npy"
# level rows gathered through one map before it is dropped: a gathered row touches up to two
# pages however narrow it is (a 512-byte row maps 4 KiB), so a batch of this many rows (8,192
# with 4 KiB pages) keeps at most 64 MiB of the level in a worker's RSS at once
GATHER_BATCH_ROWS = (64 << 20) // (2 * mmap.PAGESIZE)


class DistributedCodingError(HashembedError):
    """A Dask coding task failed (after Dask's own retries) or Dask is not installed."""


def _ordered(values: np.ndarray) -> np.ndarray:
    """``uint64`` images of integer-valued ``float64`` values, in the same order (the sign bit
    flipped on the two's complement), so one unsigned selection serves ``p`` and tie ranks."""
    return values.astype(np.int64).view(np.uint64) ^ _SIGN


def _from_ordered(value: int) -> float:
    """The ``float64`` integer whose :func:`_ordered` image is ``value``."""
    return float(np.array([value ^ (1 << 63)], dtype=np.uint64).view(np.int64)[0])


@dataclass(frozen=True)
class Partition:
    """One task's node range ``[lo, hi)`` and where everything shared lies.

    Attributes:
        graph_dir: the graph directory (on storage every worker reads).
        scratch: the directory of the level files and the keys (shared too).
        lo, hi: the range of rows.
        chunk_entries: CSR entries summed at once (bounds a task's gather buffer).
    """

    graph_dir: str
    scratch: str
    lo: int
    hi: int
    chunk_entries: int

    def level(self, index: int, mode: str = "r") -> np.ndarray:
        """Level ``index`` memory-mapped (``float64 [n, block]``). Tasks map it briefly (one
        batch of gathered rows, one chunk written) and drop the map, so the pages a task
        touches leave its RSS."""
        return np.load(Path(self.scratch) / f"level{index}.npy", mmap_mode=mode)

    def rows(self, index: int, width: int, lo: int | None = None, hi: int | None = None
             ) -> np.ndarray:
        """Rows ``lo … hi-1`` (default this range's) of level ``index``, their first
        ``width`` bits (``float64 [hi - lo, width]``), read with ``pread``, not mapped."""
        lo, hi = (self.lo, self.hi) if lo is None else (lo, hi)
        mapped = self.level(index)
        full, offset = mapped.shape[1], mapped.offset
        del mapped
        with open(Path(self.scratch) / f"level{index}.npy", "rb") as f:
            block = np.fromfile(f, dtype=np.float64, count=(hi - lo) * full,
                                offset=offset + lo * full * 8)
        return block.reshape(hi - lo, full)[:, :width].copy()

    def gather(self, index: int, rows: np.ndarray, width: int) -> np.ndarray:
        """Rows ``rows`` (sorted ``int64``) of level ``index``, their first ``width`` bits
        (``float64 [len(rows), width]``), mapped :data:`GATHER_BATCH_ROWS` rows at a time.

        One map for the whole gather would keep every touched page resident until it is
        dropped: ``len(rows)`` pages, 8x the rows' own bytes at 512 bytes a row, past the
        task's budget. Dropping the map per batch bounds the mapped pages; the rows read stay
        in the page cache, which the kernel may evict, not in the worker's RSS."""
        out = np.empty((rows.shape[0], width), dtype=np.float64)
        for first in range(0, rows.shape[0], GATHER_BATCH_ROWS):
            last = min(first + GATHER_BATCH_ROWS, rows.shape[0])
            level = self.level(index)
            out[first:last] = level[rows[first:last], :width]
            del level
        return out

    def write_rows(self, index: int, lo: int, values: np.ndarray) -> None:
        """``level[lo : lo + len(values), :width] = values`` through a map dropped at once."""
        level = self.level(index, "r+")
        level[lo:lo + values.shape[0], :values.shape[1]] = values
        level.flush()
        del level

    def keys(self) -> np.ndarray:
        return np.array(np.load(Path(self.scratch) / KEYS_FILE, mmap_mode="r")[self.lo:self.hi])


# --- tasks: module-level functions, so worker processes import them by name ----------------

def _task_directions(part: Partition, start: int, stop: int, spec: CodeSpec) -> int:
    """``level0[lo:hi] = R`` for bits ``start … stop-1``; returns the rows written."""
    out = np.empty((part.hi - part.lo, stop - start), dtype=np.float64)
    directions_into(part.keys(), start, stop, spec, out=out)
    part.write_rows(0, part.lo, out)
    return part.hi - part.lo


def _task_hop(part: Partition, source: int, target: int, width: int,
              shifts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """One hop over the range: ``level_target[v] = s(level_source)[v] + sum_{u in N(v)}
    s(level_source)[u]`` (``s``: divide column ``t`` by ``2^shifts[t]`` and floor; none for
    hop 1). Returns the written rows' ``(min, max)`` per bit (``float64 [width]`` each) and
    the bytes it read of other ranges' rows (what crosses between workers)."""
    graph = open_graph(part.graph_dir)
    lowest = np.full(width, np.inf)
    highest = np.full(width, -np.inf)
    foreign = 0
    for lo, hi in row_chunks(read_slice(graph.indptr, part.lo, part.hi + 1) -
                             int(graph.indptr[part.lo]), part.chunk_entries):
        lo, hi = lo + part.lo, hi + part.lo
        a, b = int(graph.indptr[lo]), int(graph.indptr[hi])
        columns = read_slice(graph.indices, a, b).astype(np.int64)
        # the neighbours' rows of the previous level, each read once: a gather, not all n rows
        needed, local = np.unique(columns, return_inverse=True)
        neighbours = part.gather(source, needed, width)
        foreign += int(np.count_nonzero((needed < part.lo) | (needed >= part.hi)))
        own = part.rows(source, width, lo, hi)
        if shifts is not None:
            rescale_columns(neighbours, shifts, np.empty(neighbours.shape[0]))
            rescale_columns(own, shifts, np.empty(own.shape[0]))
        out = np.empty((hi - lo, width), dtype=np.float64)
        rows = read_slice(graph.indptr, lo, hi + 1).astype(np.int64) - a
        csr_add_product(rows, local.astype(np.int64), own, neighbours, out)
        part.write_rows(target, lo, out)
        if hi > lo:
            np.minimum(lowest, out.min(axis=0), out=lowest)
            np.maximum(highest, out.max(axis=0), out=highest)
    return lowest, highest, foreign * width * np.dtype(np.float64).itemsize


def _tied_ranks(p: np.ndarray, column: int, median: float, first_bit: int, seed: int,
                keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, ranks)``: the rows whose ``p`` equals the bit's median (``int64``) and their
    keyed tie ranks (``uint64``, :func:`~hashembed.core.projection.tie_rank`)."""
    tied = np.nonzero(p[:, column] == median)[0]
    return tied, tie_rank(keys[tied], first_bit + column, seed)


def _task_histograms(part: Partition, level: int, width: int,
                     targets: list[tuple[int, int, int, int]], ties: dict | None = None
                     ) -> np.ndarray:
    """``int64 [len(targets), SELECT_BINS]``: per target ``(column, low, high, bin_width)`` the
    counts of the range's values in ``[low, high]`` (``uint64`` order images) by bin
    ``(value - low) // bin_width`` (``p`` read ``width`` bits wide). Values: ``p``'s column
    (``ties`` is ``None``) or the keyed tie ranks of the entries equal to the column's median
    (``ties``: medians, first bit, seed)."""
    p = part.rows(level, width)
    keys = part.keys() if ties is not None else None
    counts = np.zeros((len(targets), SELECT_BINS), dtype=np.int64)
    for i, (column, low, high, bin_width) in enumerate(targets):
        if ties is None:
            values = _ordered(p[:, column])
        else:
            _, values = _tied_ranks(p, column, ties["medians"][column], ties["first_bit"],
                                    ties["seed"], keys)
        inside = values[(values >= np.uint64(low)) & (values <= np.uint64(high))]
        bins = ((inside - np.uint64(low)) // np.uint64(bin_width)).astype(np.int64)
        counts[i] = np.bincount(bins, minlength=SELECT_BINS)
    return counts


def _task_tie_counts(part: Partition, level: int, medians: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(count(p > median), count(p == median))`` per bit of the range (``int64 [k]``)."""
    p = part.rows(level, medians.shape[0])
    return (np.count_nonzero(p > medians, axis=0).astype(np.int64),
            np.count_nonzero(p == medians, axis=0).astype(np.int64))


def _task_write(part: Partition, level: int, medians: np.ndarray, cuts: dict[int, int],
                first_bit: int, spec: CodeSpec, codes_path: str) -> int:
    """Pack the range's bits ``p > median`` (plus the tied entries whose keyed rank is at most
    the bit's cut) into its rows of ``codes_path``, and after the last block their degree
    bytes (``spec.degree_field``); returns the rows written."""
    p = part.rows(level, medians.shape[0])
    bits = p > medians
    if cuts:
        keys = part.keys()
        for column, cut in cuts.items():
            tied, ranks = _tied_ranks(p, column, medians[column], first_bit, spec.seed, keys)
            bits[tied[ranks <= np.uint64(cut)], column] = True
    packed = np.load(codes_path, mmap_mode="r+")
    rows = np.array(packed[part.lo:part.hi])
    pack_into(rows, bits, first_bit)
    if first_bit + bits.shape[1] == spec.bits:
        fill_degree_field(rows, open_graph(part.graph_dir).indptr, spec, lo=part.lo)
    packed[part.lo:part.hi] = rows
    packed.flush()
    return part.hi - part.lo


# --- the client ----------------------------------------------------------------------------

def partition_rows(indptr: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """``parts`` node ranges ``[lo, hi)`` of about equal CSR entries (fewer when the graph has
    fewer rows), covering ``0 … n-1`` in order."""
    n = int(indptr.shape[0]) - 1
    if parts < 1:
        raise ConfigError(f"partitions={parts} must be at least 1")
    total = int(indptr[-1])
    # the first row whose indptr reaches ceil(total * i / parts): integers throughout (a float
    # bound would make searchsorted convert the whole int64 indptr to a float64 copy)
    marks = [int(np.searchsorted(indptr, np.int64(-(-total * i // parts)), side="left"))
             for i in range(1, parts)]
    cuts = sorted({0, n, *(min(max(m, 0), n) for m in marks)})
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


class _Rounds:
    """Runs one round of tasks (one per partition) on a Dask client and gathers the results,
    turning a task's failure into :class:`DistributedCodingError`."""

    def __init__(self, client, parts: list[Partition], bar):
        self.client, self.parts, self.bar = client, parts, bar

    def __call__(self, fn, *args, what: str, **kwargs) -> list:
        futures = [self.client.submit(fn, part, *args, pure=False, **kwargs)
                   for part in self.parts]
        try:
            results = self.client.gather(futures)
        except BaseException as e:
            # the round's other tasks would go on writing into files the caller now discards
            self.client.cancel(futures)
            if isinstance(e, HashembedError) or not isinstance(e, Exception):
                raise
            # a task's own error, or distributed's KilledWorker
            raise DistributedCodingError(f"Dask coding failed in the {what} round: "
                                         f"{type(e).__name__}: {e}") from e
        self.bar.update(1)
        return results


def _select(rounds: _Rounds, level: int, targets: list[tuple[int, int, int, int]],
            ties: dict | None = None) -> list[int]:
    """The ``rank``-th smallest (0-based) ``uint64`` image of each target ``(column, rank,
    low, high)`` over all partitions, ``low``/``high`` bounding it; exact, by histogram
    refinement (each round narrows every open interval ``SELECT_BINS``-fold)."""
    columns = [t[0] for t in targets]
    rank = [t[1] for t in targets]
    low = [t[2] for t in targets]
    high = [t[3] for t in targets]
    while any(a < b for a, b in zip(low, high)):
        width = [(b - a) // SELECT_BINS + 1 for a, b in zip(low, high)]
        counts = sum(rounds(_task_histograms, level, max(columns) + 1,
                            list(zip(columns, low, high, width)), ties, what="median"))
        for i in range(len(targets)):
            if low[i] == high[i]:
                continue
            running = np.cumsum(counts[i])
            chosen = int(np.searchsorted(running, rank[i], side="right"))
            before = int(running[chosen - 1]) if chosen else 0
            rank[i] -= before
            low[i] = low[i] + chosen * width[i]
            high[i] = min(high[i], low[i] + width[i] - 1)
    return low


def dask_hash_codes(client, graph_dir: str | os.PathLike, spec: CodeSpec,
                    codes_path: str | os.PathLike, memory_gb: float = 4.0,
                    partitions: int | None = None, scratch: str | os.PathLike | None = None,
                    progress: bool = True) -> tuple[Codes, dict]:
    """Hash codes of every node of ``graph_dir`` computed by Dask tasks into ``codes_path``.

    Args:
        client: a ``distributed.Client`` (its workers must see ``graph_dir``, ``codes_path``
            and ``scratch``: one machine, or shared storage).
        codes_path: an existing ``uint8 [n, c/8]`` ``.npy`` file (the staged table), filled
            range by range.
        memory_gb: each task's budget (one range's level rows and gather buffers): sets the
            block size from the largest range, as the single coder's does from ``n``.
        partitions: node ranges (tasks per round); default twice the client's workers.
        scratch: where the level files go (``2 × n × k × 8`` bytes); default a temporary
            directory beside ``codes_path``, removed at the end.

    Returns:
        ``(codes, info)``: :class:`Codes` (``packed`` the memory map of ``codes_path``) equal
        to :func:`~hashembed.coding.coder.hash_codes_csr`'s, and ``block_bits``,
        ``partitions`` (node ranges used) and ``bytes_across_ranges`` (level rows the hops
        read from other ranges: the traffic between workers, besides a few numbers per bit
        and round).
    """
    if spec.scheme != "hash":
        raise ConfigError(f"the Dask coder makes hash codes, got scheme {spec.scheme!r}")
    graph = open_graph(graph_dir)
    n, c, hops = graph.num_nodes, spec.bits, spec.hops
    if partitions is None:
        partitions = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    ranges = partition_rows(graph.indptr, partitions)
    widest = max(hi - lo for lo, hi in ranges)
    block = block_bits_for(widest, memory_gb, c)
    chunk_entries = max(1 << 12, min(ROW_CHUNK_ENTRIES, int(
        memory_gb * 2**30 / 4 / (CHUNK_ENTRY_BYTES + 16 * block))))
    made_scratch = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix=".dask-coding-", dir=Path(codes_path).parent)
                   if made_scratch else scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        np.save(scratch / KEYS_FILE, graph.ids.keys())
        width = min(block, c)
        for index in (0, 1):
            np.lib.format.open_memmap(scratch / f"level{index}.npy", mode="w+",
                                      dtype=np.float64, shape=(n, width)).flush()
        parts = [Partition(str(Path(graph_dir).resolve()), str(scratch.resolve()), lo, hi,
                           chunk_entries) for lo, hi in ranges]
        blocks = -(-c // block)
        bar = tqdm(desc=f"hash codes (dask, {blocks} blocks)", unit="round",
                   disable=not progress)
        rounds = _Rounds(client, parts, bar)
        thresholds = np.empty(c, dtype=np.float64)
        hop_shifts = np.zeros((hops - 1, c), dtype=np.int64) if hops > 1 else None
        max_degree = largest_degree(graph.indptr) if hops > 1 else 0
        moved = 0
        for start in range(0, c, block):
            stop = min(start + block, c)
            k = stop - start
            rounds(_task_directions, start, stop, spec, what="projection")
            source, shifts = 0, None
            for hop in range(hops):
                if hop:
                    shifts = np.array([hop_shift(max(int(hi_), -int(lo_)), max_degree)
                                       for lo_, hi_ in zip(lowest, highest)], dtype=np.int64)
                    hop_shifts[hop - 1, start:stop] = shifts
                extremes = rounds(_task_hop, source, 1 - source, k, shifts, what=f"hop {hop + 1}")
                moved += sum(e[2] for e in extremes)
                lowest = np.min([e[0] for e in extremes], axis=0)
                highest = np.max([e[1] for e in extremes], axis=0)
                source = 1 - source
            medians = _medians(rounds, source, n, lowest, highest)
            thresholds[start:stop] = medians / FIXED_POINT_SCALE
            cuts = _tie_cuts(rounds, source, n, medians, start, spec.seed)
            rounds(_task_write, source, medians, cuts, start, spec, str(codes_path),
                   what="write")
        bar.close()
    finally:
        if made_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    packed = np.load(codes_path, mmap_mode="r")
    return Codes(spec, packed, thresholds, hop_shifts), {
        "block_bits": block, "partitions": len(ranges), "bytes_across_ranges": moved}


def _medians(rounds: _Rounds, level: int, n: int, lowest: np.ndarray,
             highest: np.ndarray) -> np.ndarray:
    """Each bit's median of ``p`` as the single coder's ``_median`` gives it: the middle value
    (odd ``n``) or the mean of the two middle values (even ``n``), selected exactly."""
    half = n // 2
    ranks = [half] if n % 2 else [half - 1, half]
    low = [int(x) for x in _ordered(lowest)]
    high = [int(x) for x in _ordered(highest)]
    targets = [(t, r, low[t], high[t]) for t in range(len(low)) for r in ranks]
    chosen = [_from_ordered(v) for v in _select(rounds, level, targets)]
    if n % 2:
        return np.array(chosen, dtype=np.float64)
    middle = np.array(chosen, dtype=np.float64).reshape(-1, 2)
    return (middle[:, 0] + middle[:, 1]) / 2


def _tie_cuts(rounds: _Rounds, level: int, n: int, medians: np.ndarray, first_bit: int,
              seed: int) -> dict[int, int]:
    """Bits short of ``n // 2`` ones -> the largest keyed rank among the tied entries to turn
    on (the ``need`` lowest, as the single coder's tie balancing does)."""
    counted = rounds(_task_tie_counts, level, medians, what="ties")
    above = np.sum([c[0] for c in counted], axis=0)
    tied = np.sum([c[1] for c in counted], axis=0)
    need = n // 2 - above
    cuts, targets = {}, []
    for t in np.nonzero((need > 0) & (tied > 0))[0]:
        if need[t] >= tied[t]:
            cuts[int(t)] = _UINT64_MAX
        else:
            targets.append((int(t), int(need[t]) - 1, 0, _UINT64_MAX))
    if targets:
        ties = {"medians": medians, "first_bit": first_bit, "seed": seed}
        for (t, *_), cut in zip(targets, _select(rounds, level, targets, ties)):
            cuts[t] = cut
    return cuts


def _distributed():
    """The ``distributed`` package, or a named error saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise DistributedCodingError("--engine dask needs dask and distributed: pip install "
                                     "'hashembed[distributed]'") from None
    return distributed


def local_client(workers: int, threads_per_worker: int = 1):
    """A ``distributed.Client`` on a ``LocalCluster`` of ``workers`` processes (no memory
    limit of Dask's own: each task keeps to the coder's budget, and the level files it reads
    are page cache, which Dask's monitor would count)."""
    distributed = _distributed()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                                       processes=True, memory_limit=0, dashboard_address=":0")
    return distributed.Client(cluster)


def connect(scheduler: str, timeout: float = 30.0):
    """A ``distributed.Client`` of the running scheduler at ``scheduler``, or a named error
    when none answers there within ``timeout`` seconds."""
    distributed = _distributed()
    try:
        return distributed.Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:
        raise DistributedCodingError(f"no Dask scheduler answers at {scheduler!r} (--scheduler): "
                                     f"{type(e).__name__}: {e}") from None
