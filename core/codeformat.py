"""The packed code format: the one definition of how a node's bits are stored and read.

A node's code is ``c`` bits ``bit[0] … bit[c-1]``. Codes are stored packed, 8 bits per byte,
as ``uint8 [n, c/8]``, **least significant bit first**::

    bit j  lives in  byte j // 8,  at bit position j % 8   (value 1 << (j % 8))

(``numpy.packbits(..., bitorder="little")``). With the optional degree field
(``CodeSpec.degree_field``) a row has one byte more, after the ``c/8`` bytes of bits: the
node's degree bucket (:func:`degree_buckets`), which the decoder embeds on its own; rows are
then ``uint8 [n, c/8 + 1]`` and ``bytes_per_node`` says so. The decoder reads the bits as
``m = c / b``
unsigned integers of ``b`` bits, again least significant bit first::

    index_i = sum_{t < b} bit[i*b + t] << t          for i in 0 .. m-1

so with ``b = 8`` index ``i`` is simply byte ``i``; with ``b = 16`` it is the little-endian
``uint16`` at bytes ``2i, 2i+1``; with ``b < 8`` byte ``k`` holds indices ``k*8/b …`` from the
low bits up. ``b`` is one of 1, 2, 4, 8, 16 so that no index straddles a byte boundary
unevenly. This module is torch-free; the torch version of the index read is
:func:`hashembed.kernels.reference.codes_to_indices`, tested against :func:`codes_to_indices`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hashembed.core.errors import CodeFormatError, ConfigError

SUPPORTED_BITS_PER_INDEX = (1, 2, 4, 8, 16)
# b = 4 by default: a codebook row is then shared by every node whose 4 bits at that place
# agree, so codes close in Hamming distance share more rows than with b = 8, and hash codes
# came 0.5-6 points closer to a full table on 7 of 8 graphs (docs/accuracy.md). The decode
# gathers c/8 rows either way (kernels.reference.byte_codebooks).
DEFAULT_BITS_PER_INDEX = 4
CODE_SCHEMES = ("hash", "random")
PROJECTIONS = ("gaussian", "rademacher")
MAX_HOPS = 4  # walk lengths the hash coder sums (hops = 1 is the paper's coding)
# the degree field's buckets: a byte (half-octave buckets of 1 + degree use 0 … 61)
DEGREE_BUCKETS = 256
_DEGREE_CLIP = (1 << 31) - 1  # (1 + degree)^2 stays inside int64 below this


@dataclass(frozen=True)
class CodeSpec:
    """How node codes are made and read.

    Args:
        scheme: ``"hash"`` (random projection of the adjacency row, the method) or
            ``"random"`` (uniform random bits, the ALONE-style baseline).
        bits: ``c``, bits per node; a multiple of 8 and of ``bits_per_index``.
        bits_per_index: ``b``, bits read as one codebook index; one of 1, 2, 4, 8, 16.
        seed: seed of the random projection (hash) or of the bits (random).
        projection: distribution of the hash projection, ``"gaussian"`` or ``"rademacher"``
            (±1). Both are zero-mean, so the bits do not encode degree.
        hops: ``K``, the hash scheme projects ``(A + I)^K R``: the walks of up to ``K``
            steps from a node, so ``K = 1`` is the paper's coding (the node's own
            neighbour set) and ``K = 2, 3`` reach the community a class lives in
            (:mod:`hashembed.coding.coder`). ``1`` for random codes.
        degree_field: each row carries one more byte, the node's degree bucket
            (:func:`degree_buckets`), embedded by the decoder beside the codebooks.

    Example:
        >>> spec = CodeSpec("hash", bits=128, bits_per_index=8)
        >>> spec.num_codebooks, spec.bytes_per_node
        (16, 16)
        >>> CodeSpec("hash", bits=128, degree_field=True).bytes_per_node
        17
    """

    scheme: str = "hash"
    bits: int = 128
    bits_per_index: int = DEFAULT_BITS_PER_INDEX
    seed: int = 0
    projection: str = "gaussian"
    hops: int = 1
    degree_field: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.degree_field, bool):
            raise ConfigError(f"degree_field={self.degree_field!r} must be True or False")
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) \
                or not 1 <= self.hops <= MAX_HOPS:
            raise ConfigError(f"hops={self.hops!r} must be an integer from 1 to {MAX_HOPS}")
        if self.scheme == "random" and self.hops != 1:
            raise ConfigError(f"random codes read no graph: hops={self.hops} needs "
                              "scheme='hash'")
        if self.scheme not in CODE_SCHEMES:
            raise ConfigError(f"code scheme {self.scheme!r} is not one of {CODE_SCHEMES}")
        if self.projection not in PROJECTIONS:
            raise ConfigError(f"projection {self.projection!r} is not one of {PROJECTIONS}")
        if self.bits_per_index not in SUPPORTED_BITS_PER_INDEX:
            raise ConfigError(
                f"bits per index b={self.bits_per_index} is not one of {SUPPORTED_BITS_PER_INDEX}"
            )
        if self.bits <= 0 or self.bits % 8 or self.bits % self.bits_per_index:
            raise ConfigError(
                f"code length c={self.bits} must be a positive multiple of 8 and of "
                f"b={self.bits_per_index}"
            )

    @property
    def num_codebooks(self) -> int:
        """``m = c / b``."""
        return self.bits // self.bits_per_index

    @property
    def codebook_size(self) -> int:
        """Rows per codebook, ``2^b``."""
        return 1 << self.bits_per_index

    @property
    def bytes_per_node(self) -> int:
        """A stored row: ``c / 8`` bytes of bits, plus the degree byte with ``degree_field``."""
        return self.bits // 8 + int(self.degree_field)

    @property
    def bit_bytes(self) -> int:
        """``c / 8``: the row's bytes that hold bits (the degree byte, if any, follows)."""
        return self.bits // 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CodeSpec":
        return cls(**data)


def pack_codes(bits: np.ndarray) -> np.ndarray:
    """Pack a bit matrix into the stored format.

    Shapes:
        bits: ``bool`` (or 0/1 integers) ``[n, c]`` with ``c`` a multiple of 8.
        returns: ``uint8 [n, c/8]``.
    """
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] % 8:
        raise CodeFormatError(f"bits must be [n, c] with c a multiple of 8, got shape {bits.shape}")
    return np.packbits(bits.astype(bool), axis=1, bitorder="little")


def unpack_codes(packed: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``uint8 [n, c/8]`` -> ``bool [n, c]``."""
    packed = np.asarray(packed)
    check_packed(packed, bits)
    return np.unpackbits(packed, axis=1, bitorder="little").astype(bool)


def take_codes(packed: np.ndarray, node_ids: np.ndarray) -> np.ndarray:
    """The codes of ``node_ids``: ``uint8 [n, c/8]`` (may be a memmap), ``int [B]`` ->
    contiguous ``uint8 [B, c/8]`` in memory.

    ``np.take`` along axis 0 copies whole rows; fancy indexing ``packed[ids]`` on a 2-D uint8
    array was 3-7x slower (1 M ids out of 10 M codes: 57 ms vs 9 ms in RAM, 29 ms vs 8 ms
    from a memmap, 2-core CPU).
    """
    return np.asarray(np.take(packed, node_ids, axis=0))


def check_packed(packed: np.ndarray, bits: int | None = None) -> None:
    """Raise :class:`CodeFormatError` unless ``packed`` is ``uint8 [n, c/8]``."""
    if packed.dtype != np.uint8:
        raise CodeFormatError(f"packed codes must be uint8, got {packed.dtype}")
    if packed.ndim != 2:
        raise CodeFormatError(f"packed codes must be 2-D [n, c/8], got shape {packed.shape}")
    if bits is not None and packed.shape[1] * 8 != bits:
        raise CodeFormatError(
            f"codes have {packed.shape[1]} bytes per node, the code spec says {bits // 8}"
        )


def check_table(packed: np.ndarray, spec: CodeSpec) -> None:
    """Raise :class:`CodeFormatError` unless ``packed`` is a stored code table of ``spec``:
    ``uint8 [n, spec.bytes_per_node]`` (the bits, then the degree byte if the spec has one)."""
    check_packed(packed)
    if packed.shape[1] != spec.bytes_per_node:
        field = " and a degree byte" if spec.degree_field else ""
        raise CodeFormatError(f"codes have {packed.shape[1]} bytes per node, the code spec "
                              f"says {spec.bytes_per_node} ({spec.bit_bytes} of bits{field})")


def degree_buckets(degrees: np.ndarray) -> np.ndarray:
    """The degree field: ``uint8 [n]`` half-octave buckets of ``1 + degree``.

    ``bucket = floor(2 log2(1 + d))`` computed in integers (``e = floor(log2(1 + d))``, then
    one more when ``(1 + d)^2 >= 2^(2e + 1)``), so it is the same on every machine:
    degrees 0, 1, 2, 3, 4, 5 give 0, 2, 3, 4, 4, 5, and every degree from about 1.5·10^9
    on (``1 + d >= 2^30.5``) the last bucket, 61.

    Shapes:
        degrees: integers ``[n]`` (``>= 0``).
        returns: ``uint8 [n]``.
    """
    x = np.minimum(np.asarray(degrees, dtype=np.int64), _DEGREE_CLIP - 1) + 1  # 1 … 2^31 - 1
    if x.size and x.min() < 1:
        raise CodeFormatError("degrees must be non-negative")
    e = np.zeros(x.shape, dtype=np.int64)
    for step in (16, 8, 4, 2, 1):  # e = floor(log2 x), by halving search
        big = (x >> (e + step)) > 0
        e += np.where(big, step, 0)
    upper = x * x >= np.left_shift(np.int64(1), 2 * e + 1)
    return (2 * e + upper).astype(np.uint8)


def check_bits_per_index(bits_per_index: int) -> None:
    """Raise :class:`CodeFormatError` unless ``b`` is one of :data:`SUPPORTED_BITS_PER_INDEX`."""
    if bits_per_index not in SUPPORTED_BITS_PER_INDEX:
        raise CodeFormatError(f"bits per index b={bits_per_index} is not one of "
                              f"{SUPPORTED_BITS_PER_INDEX}")


def codes_to_indices(packed: np.ndarray, bits_per_index: int) -> np.ndarray:
    """Read packed codes as codebook indices (numpy; the spec's plain statement).

    Shapes:
        packed: ``uint8 [n, c/8]``.
        returns: ``int64 [n, m]`` with values in ``[0, 2^b)``.
    """
    check_packed(packed)
    check_bits_per_index(bits_per_index)
    b = bits_per_index
    x = packed.astype(np.int64)
    if b == 16:
        return x[:, 0::2] | (x[:, 1::2] << 8)
    per_byte = 8 // b
    shifts = np.arange(per_byte, dtype=np.int64) * b
    idx = (x[:, :, None] >> shifts) & ((1 << b) - 1)  # [n, c/8, 8/b]
    return idx.reshape(packed.shape[0], -1)
