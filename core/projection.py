"""The random projection of the hash coder: one torch-free home, counter-based, never stored.

Entry ``R[u, j]`` of the ``[n, c]`` projection is a pure function of ``(seed, key(u), j)``::

    h        = mix(mix(key(u) ^ mix(seed)) + (j + 1) · φ)       φ = 0x9E3779B97F4A7C15
    gaussian : u1, u2 = (h >> 32 + ½) / 2³², (h mod 2³² + ½) / 2³²
               R[u, j] = sqrt(-2 ln u1) · cos(2π u2)               (Box–Muller)
    rademacher: R[u, j] = +1 if the top bit of h is set, else -1

``mix`` is the splitmix64 finaliser (a bijection of 64-bit words with full avalanche). ``key(u)``
is the node's stable 64-bit key (:func:`node_keys`): ``mix`` of its id. So a node's row of
``R`` depends on nothing but the seed and the node itself — not on how many nodes there are,
in which order they were numbered, how the bits are blocked, or which process computes it —
and the coder, a streaming coder, a Dask worker and the server coding an unseen node all
compute the same numbers. Vectorised in numpy; ``n × c`` draws cost ``n × c`` hashes.

:func:`tie_rank` gives the same kind of stable pseudo-random order, used to break ties at a
bit's median without a stateful random stream.
"""

from __future__ import annotations

import numpy as np

from hashembed.core.codeformat import PROJECTIONS
from hashembed.core.errors import ConfigError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TIE_SALT = np.uint64(0x7469652D62726561)  # "tie-brea": a separate family for tie ranks
_TWO_PI = 2.0 * np.pi


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on ``uint64`` values (wrapping arithmetic), elementwise."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def node_keys(ids: np.ndarray) -> np.ndarray:
    """Stable 64-bit keys ``uint64 [k]`` of node ids ``int64 [k]`` (row numbers or external
    integer ids): ``mix64(id)``."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ConfigError(f"node ids must be integers to be keyed, got {ids.dtype}")
    return mix64(ids.astype(np.int64).view(np.uint64))


def _seed_word(seed: int) -> np.uint64:
    return mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]


def _hashes(keys: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """``uint64 [k, stop - start]``: the counter hash of every (key, bit) pair."""
    base = mix64(np.asarray(keys, dtype=np.uint64) ^ _seed_word(seed))[:, None]
    with np.errstate(over="ignore"):
        steps = (np.arange(start, stop, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        return mix64(base + steps[None, :])


def projection(keys: np.ndarray, start: int, stop: int, seed: int,
               kind: str = "gaussian") -> np.ndarray:
    """Columns ``start … stop-1`` of the projection rows of ``keys``.

    Args:
        keys: ``uint64 [k]`` node keys (:func:`node_keys`).
        start, stop: the bit range ``j``.
        seed: the code spec's seed.
        kind: ``"gaussian"`` (zero mean, unit variance) or ``"rademacher"`` (±1).

    Returns:
        ``float32 [k, stop - start]``; the same entries whatever ``k``, order or block.
    """
    if kind not in PROJECTIONS:
        raise ConfigError(f"projection {kind!r} is not one of {PROJECTIONS}")
    if not 0 <= start <= stop:
        raise ConfigError(f"bit range [{start}, {stop}) is empty or negative")
    h = _hashes(keys, start, stop, seed)
    if kind == "rademacher":
        return np.where(h >> np.uint64(63), np.float32(1), np.float32(-1))
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
    u2 = ((h & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)).astype(np.float32)


# Coders sum projections in fixed point: entries are rounded to multiples of 2^-20 and held
# as int32, sums as int64, so a node's sum is exact and the same in any order of its
# neighbours (a relabelled graph lists them in another order) and on any machine.
FIXED_POINT_BITS = 20
FIXED_POINT_SCALE = float(1 << FIXED_POINT_BITS)


def projection_fixed(keys: np.ndarray, start: int, stop: int, seed: int,
                     kind: str = "gaussian") -> np.ndarray:
    """:func:`projection` in fixed point: ``int32 [k, stop - start]`` = round(R · 2^20)."""
    return np.rint(projection(keys, start, stop, seed, kind).astype(np.float64)
                   * FIXED_POINT_SCALE).astype(np.int32)


def tie_rank(keys: np.ndarray, bit: int, seed: int) -> np.ndarray:
    """``uint64 [k]``: a stable pseudo-random rank of each key for bit ``bit`` (tie-breaking)."""
    return _hashes(np.asarray(keys, dtype=np.uint64) ^ _TIE_SALT, bit, bit + 1, seed)[:, 0]


# random codes draw from their own family of the counter hash, apart from hash projections
_RANDOM_CODE_SALT = np.uint64(0x72616E646F6D2D63)  # "random-c"


def random_bits(keys: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """Bits ``start … stop-1`` of the random codes (ALONE-style baseline) of ``keys``:
    ``bool [k, stop - start]``, the sign of a keyed ±1 draw, so a node's random code depends
    on its key only (and an unseen node gets one the same way)."""
    keys = np.asarray(keys, dtype=np.uint64) ^ _RANDOM_CODE_SALT
    return projection(keys, start, stop, seed, "rademacher") > 0


def new_node_bits(own_key: int, neighbour_keys: np.ndarray, thresholds: np.ndarray, seed: int,
                  kind: str = "gaussian") -> np.ndarray:
    """The hash coder's bits for one node that was not in the graph: ``bool [c]``.

    ``p = R[own] + sum_u R[u]`` over the node's neighbours, in the coder's fixed point, and
    ``bit_j = p_j > threshold_j`` with the per-bit thresholds stored at coding time — the bits
    the coder gives a node of the graph with these neighbours, except where ``p_j`` equals the
    threshold exactly (there the coder broke ties to balance the bit; here the bit is 0).

    Args:
        own_key: the node's key (:meth:`hashembed.core.idmap.IdMap.keys` rule applied to its id).
        neighbour_keys: ``uint64 [k]`` its neighbours' keys (distinct).
        thresholds: ``float64 [c]`` medians of ``p`` in projection units (exact).
    """
    c = int(np.asarray(thresholds).shape[0])
    keys = np.concatenate([np.array([own_key], dtype=np.uint64),
                           np.asarray(neighbour_keys, dtype=np.uint64)])
    p = projection_fixed(keys, 0, c, seed, kind).astype(np.int64).sum(axis=0)
    return p > np.asarray(thresholds, dtype=np.float64) * FIXED_POINT_SCALE
