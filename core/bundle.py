"""The bundle format: one directory that serving needs, written atomically, read with checks.

Layout (format version 2)::

    BUNDLE/
      manifest.json   the typed :class:`Manifest`: code spec, thresholds, model summary, class
                      names, graph sizes, opset written, sha256 + size (+ per-4 MiB sha256 for
                      the arrays) of every file, and a ``digest`` of the manifest itself
      model.onnx      packed codes uint8 [N, c/8] + edge_index int64 [2, E] -> logits, embeddings
      codes.npy       uint8 [n, c/8], the packed code table (memory-mapped at serving time)
      indptr.npy      int64 [n + 1], CSR row pointers of the graph (row v = v's neighbours)
      indices.npy     int32 [nnz] while n < 2^31, else int64: CSR column indices (the graph
                      directory's own file, hard-linked where it can be)
      ids_*.npy       the users' own node ids, when they are not 0 .. n-1 (hashembed.core.idmap)

Writing goes through :class:`BundleWriter` (a :class:`~hashembed.core.atomic.StagedDirectory`):
everything lands in a hidden staging directory beside the target, the manifest is written
last, the caller validates the staged bundle, and only :meth:`BundleWriter.commit` renames it
into place. ``overwrite`` replaces only a directory that already holds a bundle.

Reading goes through :func:`open_bundle`, which checks the format name and version, the
manifest's digest and its internal consistency, every file's size, and either every file's
sha256 (``verify="full"``) or, for very large tables, each 4 MiB piece of an array the first
time a request touches it (``verify="lazy"``). Torch-free: serving imports this module only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from hashembed import __version__
from hashembed.core.artifact import ArtifactFormat, ArtifactWriter, utc_now
from hashembed.core.codeformat import CodeSpec
from hashembed.core.errors import (
    BundleChecksumError,
    BundleCorruptError,
    BundleExistsError,
    BundleMissingFileError,
    BundleVersionError,
    ConfigError,
)
from hashembed.core.graphdir import index_dtype
from hashembed.core.idmap import ID_ARRAY_SPECS, ID_FILES, ID_KINDS, IdMap
from hashembed.core.integrity import LazyVerifiedArray, sha256_file

MODEL_FILE = "model.onnx"
CODES_FILE = "codes.npy"
INDPTR_FILE = "indptr.npy"
INDICES_FILE = "indices.npy"
ARRAY_FILES = (CODES_FILE, INDPTR_FILE, INDICES_FILE)
BUNDLE_FORMAT = ArtifactFormat(
    "hashembed-bundle", 2, "manifest.json", "bundle", error=BundleCorruptError,
    exists_error=BundleExistsError, missing_error=BundleMissingFileError,
    version_error=BundleVersionError, digest_error=BundleChecksumError,
    checksum_error=BundleChecksumError, remake="export the run again",
    chunked=frozenset(ARRAY_FILES))
MANIFEST_NAME = BUNDLE_FORMAT.header
REQUIRED_FILES = (MODEL_FILE, *ARRAY_FILES)
VERIFY_MODES = ("full", "lazy")

# The ONNX model's signature (N nodes of a subgraph, E edges, both dynamic).
INPUT_CODES = "codes"              # uint8 [N, c/8]
INPUT_EDGES = "edge_index"         # int64 [2, E], local ids, row 0 = source
OUTPUT_LOGITS = "logits"           # float32 [N, K]
OUTPUT_EMBEDDINGS = "embeddings"   # float32 [N, d], decoded node embeddings


@dataclass(frozen=True)
class GraphInfo:
    """The graph a bundle serves: ``n`` nodes, undirected edges, CSR entries (``2 × edges``)."""

    name: str
    num_nodes: int
    num_edges: int
    num_csr_entries: int


@dataclass(frozen=True)
class ModelInfo:
    """What serving needs to know of the model; ``config`` is the training configuration.

    Attributes:
        num_classes: ``K``, width of ``logits``.
        embedding_dim: ``d``, width of ``embeddings``.
        num_layers: message-passing layers ``L``.
        edge_hops: hops of in-edges the model needs for an exact output (``>= L``).
        config: the GNN's configuration as trained (``ModelConfig.to_dict()``).
        decoder: the decoder's configuration (``DecoderConfig.to_dict()``).
    """

    num_classes: int
    embedding_dim: int
    num_layers: int
    edge_hops: int
    config: dict = field(default_factory=dict)
    decoder: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Everything ``manifest.json`` says, typed and checked for consistency.

    Attributes:
        code_spec: how codes were made and are read.
        thresholds: per-bit medians ``float [c]`` of the hash projection (``None`` for random
            codes); what codes an unseen node.
        hop_shifts: ``int [K - 1][c]``, how multi-hop hash codes rescaled each further hop
            (:mod:`hashembed.coding.coder`); ``None`` for 1-hop and random codes.
        graph, model: see :class:`GraphInfo`, :class:`ModelInfo`.
        opset: the ONNX opset the model file actually declares.
        tolerance: max abs ONNX Runtime vs PyTorch difference the export accepted.
        class_names: ``K`` label names when the labels had names, else ``None``.
        id_kind: how node ids map to rows (:mod:`hashembed.core.idmap`): ``"dense"`` (ids are
            rows), ``"int"`` or ``"str"`` (an id map ships with the bundle).
        fanout_cap: at most this many in-edges per node in a served neighbourhood (a
            deterministic choice, :func:`hashembed.serve.subgraph.k_hop_subgraph`), or
            ``None``: exact neighbourhoods, outputs equal to the full-graph model's.
        run_id: the training run the bundle was exported from.
        package_version, created: provenance.
        files: file name -> ``{"bytes", "sha256", ["chunk_bytes", "chunk_sha256"]}``.
    """

    code_spec: CodeSpec
    thresholds: tuple[float, ...] | None
    graph: GraphInfo
    model: ModelInfo
    opset: int
    tolerance: float
    class_names: tuple[str, ...] | None = None
    id_kind: str = "dense"
    fanout_cap: int | None = None
    run_id: str = ""
    package_version: str = __version__
    created: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    hop_shifts: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        problems = []
        spec = self.code_spec
        want_shifts = spec.scheme == "hash" and spec.hops > 1
        if (self.hop_shifts is not None) != want_shifts or (want_shifts and (
                len(self.hop_shifts) != spec.hops - 1
                or any(len(row) != spec.bits for row in self.hop_shifts))):
            shape = "absent" if self.hop_shifts is None else \
                f"{len(self.hop_shifts)} x {sorted({len(r) for r in self.hop_shifts})}"
            problems.append(f"hop shifts {shape} for {spec.scheme} codes of {spec.hops} hops "
                            f"and c = {spec.bits} (multi-hop hash codes have K - 1 x c)")
        if self.thresholds is not None and len(self.thresholds) != self.code_spec.bits:
            problems.append(f"{len(self.thresholds)} thresholds for c = {self.code_spec.bits} "
                            "bits")
        if self.model.num_classes < 2 or self.model.embedding_dim < 1:
            problems.append(f"num_classes {self.model.num_classes}, embedding_dim "
                            f"{self.model.embedding_dim}")
        if not 1 <= self.model.num_layers <= self.model.edge_hops:
            problems.append(f"edge_hops {self.model.edge_hops} is less than the model's "
                            f"{self.model.num_layers} layers")
        if self.class_names is not None and len(self.class_names) != self.model.num_classes:
            problems.append(f"{len(self.class_names)} class names for "
                            f"{self.model.num_classes} classes")
        g = self.graph
        if g.num_nodes < 1 or g.num_edges < 0 or g.num_csr_entries != 2 * g.num_edges:
            problems.append(f"graph sizes n={g.num_nodes}, edges={g.num_edges}, "
                            f"csr={g.num_csr_entries}")
        if self.id_kind not in ID_KINDS:
            problems.append(f"id kind {self.id_kind!r}")
        if self.fanout_cap is not None and (isinstance(self.fanout_cap, bool)
                                            or not isinstance(self.fanout_cap, int)
                                            or self.fanout_cap < 1):
            problems.append(f"fanout_cap {self.fanout_cap!r}")
        if problems:
            raise BundleCorruptError("inconsistent manifest: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (without format header and digest)."""
        return {
            "package_version": self.package_version,
            "created": self.created,
            "run_id": self.run_id,
            "code_spec": {**self.code_spec.to_dict(),
                          "num_codebooks": self.code_spec.num_codebooks},
            "thresholds": None if self.thresholds is None else list(self.thresholds),
            "hop_shifts": None if self.hop_shifts is None else [list(r) for r in self.hop_shifts],
            "graph": asdict(self.graph),
            "model": asdict(self.model),
            "onnx": {"opset": self.opset, "file": MODEL_FILE},
            "tolerance": self.tolerance,
            "class_names": None if self.class_names is None else list(self.class_names),
            "id_kind": self.id_kind,
            "serving": {"fanout_cap": self.fanout_cap},
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "manifest") -> "Manifest":
        """Parse the JSON form; any missing or mistyped field is a :class:`BundleCorruptError`."""
        try:
            spec = dict(data["code_spec"])
            spec.pop("num_codebooks", None)
            thresholds = data["thresholds"]
            names = data["class_names"]
            return cls(
                code_spec=CodeSpec.from_dict(spec),
                thresholds=None if thresholds is None else tuple(float(t) for t in thresholds),
                # manifests written before multi-hop codes have none: their codes are 1-hop
                hop_shifts=None if data.get("hop_shifts") is None else tuple(
                    tuple(_typed({"shift": s}, "shift", "int") for s in row)
                    for row in data["hop_shifts"]),
                graph=GraphInfo(**{f.name: _typed(data["graph"], f.name, f.type)
                                   for f in fields(GraphInfo)}),
                model=ModelInfo(**{f.name: _typed(data["model"], f.name, f.type)
                                   for f in fields(ModelInfo)}),
                opset=_typed(data["onnx"], "opset", "int"),
                tolerance=_typed(data, "tolerance", "float"),
                class_names=None if names is None else tuple(str(n) for n in names),
                id_kind=_typed(data, "id_kind", "str"),
                fanout_cap=data["serving"]["fanout_cap"],
                run_id=str(data["run_id"]),
                package_version=str(data["package_version"]),
                created=str(data["created"]),
                files=dict(data["files"]),
            )
        except BundleCorruptError as e:
            raise BundleCorruptError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise BundleCorruptError(f"{where} lacks or mistypes a field: {e}") from None


def _typed(section: dict, name: str, kind: str):
    value = section[name]
    expected = {"int": int, "float": (int, float), "str": str, "dict": dict}[kind]
    if not isinstance(value, expected) or isinstance(value, bool):
        raise BundleCorruptError(f"field {name!r} is {value!r}, expected {kind}")
    return float(value) if kind == "float" else value


class BundleWriter(ArtifactWriter):
    """Stage a bundle next to ``out_dir`` and move it into place only on :meth:`commit`.

    Args:
        out_dir: the bundle directory to create.
        overwrite: replace ``out_dir`` if it holds a bundle (anything else is refused).
        inputs: paths the bundle is made from (the run directory); ``out_dir`` may not be one
            of them or contain one.

    Example:
        >>> with BundleWriter(out_dir, inputs=[run_dir]) as writer:   # doctest: +SKIP
        ...     writer.save_array(CODES_FILE, codes)
        ...     writer.save_bytes(MODEL_FILE, onnx_bytes)
        ...     writer.write_manifest(manifest)
        ...     check(writer.path)                          # raise here -> nothing written
        ...     writer.commit()
    """

    def __init__(self, out_dir: str | os.PathLike, overwrite: bool = False, inputs=()):
        super().__init__(BUNDLE_FORMAT, out_dir, overwrite=overwrite, inputs=inputs)

    def write_manifest(self, manifest: Manifest) -> Manifest:
        """Write ``manifest.json`` last: ``manifest`` plus file records, sealed by a digest."""
        content = self.write_header({**manifest.to_dict(),
                                     "created": manifest.created or utc_now()})
        return replace(manifest, files=content["files"], created=content["created"])


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk.

    Attributes:
        path: the bundle directory.
        manifest: the parsed :class:`Manifest`.
        codes: ``uint8 [n, c/8]`` memory-mapped code table.
        indptr: ``int64 [n + 1]`` CSR row pointers.
        indices: ``int32|int64 [nnz]`` CSR neighbours
            (:func:`~hashembed.core.graphdir.index_dtype`).
        ids: the node id map (external ids <-> rows).
        model: the verified bytes of ``model.onnx`` (what ONNX Runtime loads).
        verify: ``"full"`` (every file hashed on open) or ``"lazy"`` (the arrays are
            :class:`~hashembed.core.integrity.LazyVerifiedArray`: each piece hashed on first use).
    """

    path: Path
    manifest: Manifest
    codes: np.ndarray | LazyVerifiedArray
    indptr: np.ndarray | LazyVerifiedArray
    indices: np.ndarray | LazyVerifiedArray
    ids: IdMap
    model: bytes = field(repr=False, default=b"")
    verify: str = "full"

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def num_nodes(self) -> int:
        return self.manifest.graph.num_nodes


def read_manifest(bundle_dir: str | os.PathLike) -> Manifest:
    """Parse ``manifest.json``: format name and version, digest, fields, consistency."""
    path = Path(bundle_dir)
    content = BUNDLE_FORMAT.read_header(path)
    return Manifest.from_dict(content, str(path / MANIFEST_NAME))


def check_listed_files(bundle_dir: str | os.PathLike, manifest: Manifest) -> None:
    """Every file the format needs is listed, lies inside the bundle, exists, has its size."""
    path = Path(bundle_dir)
    for name in (*REQUIRED_FILES, *ID_FILES[manifest.id_kind]):
        if name not in manifest.files:
            raise BundleCorruptError(f"manifest of {path} does not list {name}")
    for name, info in manifest.files.items():
        file = path / name
        if Path(name).name != name:
            raise BundleCorruptError(f"manifest lists a file outside the bundle: {name!r}")
        if not file.is_file():
            raise BundleMissingFileError(f"bundle file {file} is missing")
        _check_size(file, file.stat().st_size, info)


def _check_size(file: Path, size: int, record: dict) -> None:
    if size != record.get("bytes"):
        raise BundleChecksumError(f"{file} has {size} bytes, the manifest says "
                                  f"{record.get('bytes')} (truncated or replaced)")


def _check_sha256(file: Path, handle, record: dict) -> None:
    if sha256_file(handle) != record.get("sha256"):
        raise BundleChecksumError(f"{file} does not match its sha256 in the manifest (corrupt)")


def _open_array(path: Path, dtype: np.dtype, shape: tuple, record: dict, lazy: bool):
    """Open ``path`` once: check its size, hash it (or wrap it for lazy checks) and memory-map
    it, all through the same open file, so what is verified is what is served even if the
    path is replaced meanwhile."""
    handle = open(path, "rb")
    try:
        _check_size(path, os.fstat(handle.fileno()).st_size, record)
        if not lazy:
            _check_sha256(path, handle, record)
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not one np.save writes")
            header = read_header(handle)  # (shape, fortran_order, dtype)
        except (ValueError, OSError) as e:
            raise BundleCorruptError(f"{path} is not a readable .npy array: {e}") from None
        got_shape, fortran, got_dtype = header
        if got_dtype != dtype or fortran or len(got_shape) != len(shape) or any(
            want is not None and got != want for got, want in zip(got_shape, shape)
        ):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise BundleCorruptError(f"{path} holds {got_dtype} {list(got_shape)}, the manifest "
                                     f"implies {dtype} {want}")
        offset = handle.tell()
        if int(np.prod(got_shape)) == 0:
            array = np.zeros(got_shape, dtype)
        else:
            array = np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=got_shape)
        if not lazy:
            return array
        digests = record.get("chunk_sha256")
        chunk_bytes = record.get("chunk_bytes")
        if not isinstance(digests, list) or not isinstance(chunk_bytes, int):
            raise BundleCorruptError(f"manifest lists no chunk_sha256 for {path.name}")
        lazy_array = LazyVerifiedArray(array, handle, path, digests, chunk_bytes, offset,
                                       BundleChecksumError)
        handle = None  # the lazy array keeps the file open for its checks
        lazy_array.verify(slice(0, 1))  # the first piece holds the .npy header just parsed
        return lazy_array
    finally:
        if handle is not None:
            handle.close()


def _read_model(path: Path, record: dict) -> bytes:
    """The ONNX model's bytes, read once and checked (ONNX Runtime loads these bytes)."""
    with open(path, "rb") as handle:
        data = handle.read()
    _check_size(path, len(data), record)
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise BundleChecksumError(f"{path} does not match its sha256 in the manifest (corrupt)")
    return data


def open_bundle(bundle_dir: str | os.PathLike, verify: str = "full") -> Bundle:
    """Verify a bundle and memory-map its arrays.

    Args:
        bundle_dir: the directory written by ``hashembed export``.
        verify: ``"full"`` hashes every file against the manifest now (reads each file once);
            ``"lazy"`` checks sizes now and hashes each piece of the code table and the CSR
            (4 MiB, as the manifest records) the first time it is read, so opening a huge
            bundle costs no full read and no byte is ever served unverified. The model and
            the id map are always hashed whole.

    Raises:
        BundleMissingFileError, BundleVersionError, BundleChecksumError, BundleCorruptError.
    """
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify={verify!r} is not one of {VERIFY_MODES}")
    path = Path(bundle_dir)
    manifest = read_manifest(path)
    check_listed_files(path, manifest)
    lazy = verify == "lazy"
    model = _read_model(path / MODEL_FILE, manifest.files[MODEL_FILE])
    n, nnz = manifest.graph.num_nodes, manifest.graph.num_csr_entries
    arrays = {
        name: _open_array(path / name, np.dtype(dtype), shape, manifest.files[name], lazy)
        for name, dtype, shape in ((CODES_FILE, np.uint8, (n, manifest.code_spec.bytes_per_node)),
                                   (INDPTR_FILE, np.int64, (n + 1,)),
                                   (INDICES_FILE, index_dtype(n), (nnz,)))}
    indptr = arrays[INDPTR_FILE]
    if indptr[0] != 0 or indptr[n] != nnz:
        raise BundleCorruptError(f"{path / INDPTR_FILE} does not span the {nnz} CSR entries")

    def load_id_array(file: Path) -> np.ndarray:
        dtype, length = ID_ARRAY_SPECS[file.name]
        return _open_array(file, np.dtype(dtype), (length(n),), manifest.files[file.name],
                           lazy=False)

    ids = IdMap.load(manifest.id_kind, n, path, load_id_array)
    return Bundle(path=path, manifest=manifest, codes=arrays[CODES_FILE], indptr=indptr,
                  indices=arrays[INDICES_FILE], ids=ids, model=model, verify=verify)
