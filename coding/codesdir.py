"""``hashembed codes``: the code table of a graph directory, written as a codes directory.

    CODES_DIR/
      codes.json   format + version, the code spec, per-bit thresholds (and the hop shifts
                   of multi-hop codes), n, the graph it codes
                   (its header digest), seconds, size + sha256 of codes.npy, digest
      codes.npy    uint8 [n, c/8] packed codes (hashembed.core.codeformat)

Streams over the graph directory's memory-mapped CSR
(:func:`~hashembed.coding.coder.hash_codes_csr`) with a block size chosen from ``memory_gb``; written like every artifact here (staged, renamed).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hashembed.coding.coder import Codes, block_bits_for, hash_codes_csr, random_codes
from hashembed.core.artifact import ArtifactFormat, ArtifactWriter, utc_now
from hashembed.core.codeformat import CodeSpec, check_table
from hashembed.core.errors import CodeFormatError
from hashembed.core.graphdir import open_graph

CODES_FORMAT = ArtifactFormat("hashembed-codes", 1, "codes.json", "codes directory",
                              error=CodeFormatError, remake="make the codes again")
CODES_HEADER = CODES_FORMAT.header
CODES_FILE = "codes.npy"


def write_codes(graph_dir: str | os.PathLike, spec: CodeSpec, out_dir: str | os.PathLike,
                memory_gb: float = 4.0, overwrite: bool = False, progress: bool = True,
                client=None, partitions: int | None = None) -> dict:
    """Code every node of ``graph_dir`` under ``spec``; returns the summary in ``codes.json``.

    Args:
        memory_gb: the coder's budget (with ``client``: each task's).
        client: a ``distributed.Client``: hash codes are made by Dask tasks
            (:func:`~hashembed.coding.dask_coder.dask_hash_codes`, bit-identical); ``None``
            codes in this process. Random codes need no graph pass and are always made here.
        partitions: node ranges of the Dask coder (default twice its workers).
    """
    graph = open_graph(graph_dir)
    started = time.perf_counter()
    with ArtifactWriter(CODES_FORMAT, out_dir, overwrite, inputs=[graph_dir]) as writer:
        # the table is written block by block into a memory map of its file, never whole in RAM
        packed = writer.open_array(CODES_FILE, np.uint8,
                                   (graph.num_nodes, spec.bytes_per_node))
        engine = {"engine": "local"}
        if spec.scheme == "hash" and client is not None:
            from hashembed.coding.dask_coder import dask_hash_codes

            packed.flush()
            del packed  # the tasks fill the staged file; a failed task leaves it unsealed
            codes, info = dask_hash_codes(client, graph_dir, spec, writer.file(CODES_FILE),
                                           memory_gb=memory_gb, partitions=partitions,
                                           progress=progress)
            packed, block = codes.packed, info.pop("block_bits")
            engine = {"engine": "dask", "dask_workers": len(
                client.scheduler_info().get("workers", {})), **info}
        elif spec.scheme == "hash":
            block = block_bits_for(graph.num_nodes, memory_gb, spec.bits)
            codes = hash_codes_csr(graph.indptr, graph.indices, graph.ids.keys(), spec,
                                   block_bits=block, memory_gb=memory_gb, progress=progress,
                                   out=packed)
        else:
            block, codes = None, random_codes(graph.ids.keys(), spec, out=packed,
                                              indptr=graph.indptr)
        packed.flush()
        record = codes.record()
        del packed, codes  # close the memory map before the file is hashed
        seconds = time.perf_counter() - started
        summary = {
            "code_spec": spec.to_dict(),
            **record,
            "num_nodes": graph.num_nodes, "graph": str(Path(graph_dir).resolve()),
            "graph_digest": graph.digest, "block_bits": block, **engine,
            "seconds": round(seconds, 3),
            "edges_per_second": round(graph.header.num_csr_entries / max(seconds, 1e-9)),
        }
        writer.write_header({**summary, "created": utc_now()})
        writer.commit()
    return {k: v for k, v in summary.items() if k not in ("thresholds", "hop_shifts")}


def read_codes(codes_dir: str | os.PathLike, graph_digest: str | None = None,
               verify: bool = True) -> Codes:
    """Open a codes directory: its :class:`~hashembed.coding.coder.Codes` (``packed`` a
    ``uint8 [n, c/8]`` memory map).

    Args:
        graph_digest: if given, the codes must have been made from the graph directory with
            this header digest.
        verify: check the table's sha256 (reads it whole); ``False`` checks sizes only, for
            the torchrun ranks whose rank 0 verifies the same file.
    """
    path = Path(codes_dir)
    content = CODES_FORMAT.read_header(path)
    if graph_digest is not None and content["graph_digest"] != graph_digest:
        raise CodeFormatError(f"{path} codes another graph (its graph digest differs)")
    if CODES_FILE not in content["files"]:
        raise CodeFormatError(f"{path / CODES_HEADER} does not list {CODES_FILE}")
    CODES_FORMAT.check_files(path, content["files"], hashed=verify)
    file = path / CODES_FILE
    spec = CodeSpec.from_dict(content["code_spec"])
    packed = np.load(file, mmap_mode="r", allow_pickle=False)
    check_table(packed, spec)
    return Codes.from_record(spec, packed, content)
