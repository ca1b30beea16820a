"""``hashembed codes``: the code table of a graph directory, written as a codes directory.

    CODES_DIR/
      codes.json   format + version, the code spec, per-bit thresholds, n, the graph it codes
                   (its header digest), seconds, size + sha256 of codes.npy, digest
      codes.npy    uint8 [n, c/8] packed codes (hashembed.codeformat)

Streams over the graph directory's memory-mapped CSR (:func:`~hashembed.train.coding.hash_codes_csr`)
with a block size chosen from ``memory_gb``; written like every artifact here (staged, renamed).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from hashembed.atomic import StagedDirectory, replaceable_artifact
from hashembed.codeformat import CodeSpec
from hashembed.errors import OutputPathError
from hashembed.graphdir import HEADER_NAME, open_graph
from hashembed.integrity import file_record, seal
from hashembed.train.coding import block_bits_for, hash_codes_csr, random_codes

CODES_FORMAT = "hashembed-codes"
CODES_FORMAT_VERSION = 1
CODES_HEADER = "codes.json"
CODES_FILE = "codes.npy"


_replaceable_codes = replaceable_artifact(CODES_HEADER, CODES_FORMAT, "codes directory")


def write_codes(graph_dir: str | os.PathLike, spec: CodeSpec, out_dir: str | os.PathLike,
                memory_gb: float = 4.0, overwrite: bool = False, progress: bool = True) -> dict:
    """Code every node of ``graph_dir`` under ``spec``; returns the summary in ``codes.json``."""
    graph = open_graph(graph_dir)
    started = time.perf_counter()
    with StagedDirectory(out_dir, "codes directory", _replaceable_codes, overwrite,
                         inputs=[graph_dir], exists_error=OutputPathError) as staged:
        keys = graph.ids.keys()
        # the table is written block by block into a memory map of its file, never whole in RAM
        packed = np.lib.format.open_memmap(staged.path / CODES_FILE, mode="w+", dtype=np.uint8,
                                           shape=(graph.num_nodes, spec.bytes_per_node))
        if spec.scheme == "hash":
            block = block_bits_for(graph.num_nodes, memory_gb, spec.bits)
            codes = hash_codes_csr(graph.indptr, graph.indices, keys, spec, block_bits=block,
                                   memory_gb=memory_gb, progress=progress, out=packed)
        else:
            block, codes = None, random_codes(keys, spec, out=packed)
        packed.flush()
        thresholds = codes.thresholds
        del packed, codes  # close the memory map before the file is hashed
        header = json.loads((Path(graph_dir) / HEADER_NAME).read_text())
        summary = {
            "code_spec": spec.to_dict(),
            "thresholds": None if thresholds is None else thresholds.tolist(),
            "num_nodes": graph.num_nodes, "graph": str(Path(graph_dir).resolve()),
            "graph_digest": header["digest"], "block_bits": block,
            "seconds": round(time.perf_counter() - started, 3),
            "edges_per_second": round(graph.header.num_csr_entries
                                      / max(time.perf_counter() - started, 1e-9)),
        }
        content = seal({"format": CODES_FORMAT, "format_version": CODES_FORMAT_VERSION,
                        **summary, "files": {CODES_FILE: file_record(staged.path / CODES_FILE)}})
        (staged.path / CODES_HEADER).write_text(json.dumps(content, indent=2) + "\n")
        staged.commit()
    return {k: v for k, v in summary.items() if k != "thresholds"}


def read_codes(codes_dir: str | os.PathLike, graph_digest: str | None = None):
    """Open a codes directory: ``(CodeSpec, packed uint8 [n, c/8] memory map, thresholds)``.

    Args:
        graph_digest: if given, the codes must have been made from the graph directory with
            this header digest.
    """
    from hashembed.codeformat import check_packed
    from hashembed.errors import CodeFormatError
    from hashembed.integrity import check_files, read_sealed

    path = Path(codes_dir)
    content = read_sealed(path / CODES_HEADER, CODES_FORMAT, CODES_FORMAT_VERSION,
                          CodeFormatError, " (make the codes again)")
    if graph_digest is not None and content["graph_digest"] != graph_digest:
        raise CodeFormatError(f"{path} codes another graph (its graph digest differs)")
    if CODES_FILE not in content["files"]:
        raise CodeFormatError(f"{path / CODES_HEADER} does not list {CODES_FILE}")
    check_files(path, content["files"], CodeFormatError, CODES_HEADER)
    file = path / CODES_FILE
    spec = CodeSpec.from_dict(content["code_spec"])
    packed = np.load(file, mmap_mode="r", allow_pickle=False)
    check_packed(packed, spec.bits)
    thresholds = None if content["thresholds"] is None else np.array(content["thresholds"],
                                                                     np.float64)
    return spec, packed, thresholds
