"""Out-of-core graph build: the same CSR as the in-memory path, whatever the input form."""

import json

import numpy as np
import pytest

from hashembed.core.errors import GraphInputError
from hashembed.core.graphdir import HEADER_NAME, open_graph
from hashembed.graph.edgelist import load_edge_list_graph
from hashembed.graph.memory import symmetrize, to_csr
from hashembed.graph.build import build_graph
from helpers import random_edges


def expected_csr(edges):
    n = int(edges.max()) + 1
    return to_csr(symmetrize(edges, n), n)


@pytest.mark.parametrize("memory_gb", [4.0, 1e-5])  # one bucket, and many
def test_build_equals_the_in_memory_symmetrise(tmp_path, memory_gb):
    edges = random_edges()
    (tmp_path / "e.csv").write_text("src,dst\n" + "\n".join(f"{a},{b}" for a, b in edges))
    build_graph([tmp_path / "e.csv"], tmp_path / "g", memory_gb=memory_gb, progress=False)
    graph = open_graph(tmp_path / "g", verify=True)
    indptr, indices = expected_csr(edges)
    np.testing.assert_array_equal(graph.indptr, indptr)
    np.testing.assert_array_equal(graph.indices, indices)
    assert graph.indices.dtype == np.int32 and graph.ids.kind == "dense"


def test_parts_in_a_directory_npy_and_parquet_give_one_graph(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    edges = random_edges(1)
    parts = tmp_path / "parts"
    parts.mkdir()
    third = len(edges) // 3
    np.save(parts / "a.npy", edges[:third])
    (parts / "b.tsv").write_text("\n".join(f"{a}\t{b}" for a, b in edges[third:2 * third]))
    pq.write_table(pa.table({"id": np.arange(len(edges) - 2 * third), "source":
                             edges[2 * third:, 0], "target": edges[2 * third:, 1]}),
                   parts / "c.parquet")
    build_graph([parts], tmp_path / "g", progress=False)
    graph = open_graph(tmp_path / "g")
    indptr, indices = expected_csr(edges)
    np.testing.assert_array_equal(graph.indptr, indptr)
    np.testing.assert_array_equal(graph.indices, indices)


def test_parquet_is_read_batch_by_batch_and_errors_give_the_file_row(tmp_path, monkeypatch):
    """A Parquet file of several row groups is read in chunks of at most CHUNK_EDGES rows
    (never whole), builds the same graph, and a bad id names its row in the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import hashembed.graph.build as graphbuild
    from hashembed.graph.readers import parquet_chunks

    edges = random_edges(3)
    pq.write_table(pa.table({"src": edges[:, 0], "dst": edges[:, 1]}),
                   tmp_path / "e.parquet", row_group_size=500)
    chunks = list(parquet_chunks(tmp_path / "e.parquet", None, None, rows=700))
    assert max(len(c) for c in chunks) <= 700 and len(chunks) >= len(edges) // 700
    np.testing.assert_array_equal(np.concatenate(chunks), edges)
    monkeypatch.setattr(graphbuild, "CHUNK_EDGES", 700)
    build_graph([tmp_path / "e.parquet"], tmp_path / "g", memory_gb=1e-5, progress=False)
    indptr, indices = expected_csr(edges)
    np.testing.assert_array_equal(open_graph(tmp_path / "g").indices, indices)

    bad = edges.astype(np.float64)
    bad[2345, 1] = 0.5
    pq.write_table(pa.table({"src": pa.array(bad[:, 0].astype(np.int64)),
                             "dst": pa.array(bad[:, 1])}), tmp_path / "mixed.parquet")
    with pytest.raises(GraphInputError, match="holds double"):
        list(parquet_chunks(tmp_path / "mixed.parquet", None, None))
    missing = pa.array([int(v) if i != 1500 else None for i, v in enumerate(edges[:, 1])])
    pq.write_table(pa.table({"src": edges[:, 0], "dst": missing}), tmp_path / "null.parquet",
                   row_group_size=500)
    with pytest.raises(GraphInputError, match="'dst' has a missing value at row 1500"):
        list(parquet_chunks(tmp_path / "null.parquet", None, None, rows=700))


def test_npy_chunks_name_the_file_row_of_a_bad_id(tmp_path, monkeypatch):
    import hashembed.graph.build as graphbuild

    edges = random_edges(4).astype(np.float64)
    edges[2100, 0] = 1.5
    np.save(tmp_path / "e.npy", edges)
    monkeypatch.setattr(graphbuild, "CHUNK_EDGES", 1000)
    with pytest.raises(GraphInputError, match="first non-integer at row 2100"):
        build_graph([tmp_path / "e.npy"], tmp_path / "g", progress=False)
    assert not (tmp_path / "g").exists()


def test_string_ids_and_labels_match_the_in_memory_reader(tmp_path):
    edges = random_edges(2, n=200, e=1000)
    (tmp_path / "e.tsv").write_text("\n".join(f"user {a}\tuser {b}" for a, b in edges) + "\n")
    (tmp_path / "l.txt").write_text("\n".join(f"user {v}\t{'odd' if v % 2 else 'even'}"
                                              for v in range(0, 200, 3)) + "\n")
    build_graph([tmp_path / "e.tsv"], tmp_path / "g", labels_path=tmp_path / "l.txt",
                memory_gb=1e-5, progress=False)
    built = open_graph(tmp_path / "g")
    reference = load_edge_list_graph(tmp_path / "e.tsv", tmp_path / "l.txt")
    indptr, indices = to_csr(reference.edge_index, reference.num_nodes)
    assert built.ids.kind == "str" and built.num_nodes == reference.num_nodes
    np.testing.assert_array_equal(built.indptr, indptr)
    np.testing.assert_array_equal(built.indices, indices)
    np.testing.assert_array_equal(built.labels, reference.labels)
    assert built.header.class_names == ("even", "odd")
    assert built.ids.rows(["user 7"]).tolist() == reference.ids.rows(["user 7"]).tolist()
    named = {f"user {v}" for v in edges.ravel()} | {f"user {v}" for v in range(0, 200, 3)}
    assert built.ids.external(np.arange(built.num_nodes)) == sorted(named)  # sorted order


def test_bad_rows_and_edited_headers_are_named(tmp_path):
    (tmp_path / "e.csv").write_text("0,1\n1,2\n2,x\n")
    with pytest.raises(GraphInputError, match="e.csv"):
        build_graph([tmp_path / "e.csv"], tmp_path / "g", id_type="int", progress=False)
    assert not (tmp_path / "g").exists()
    (tmp_path / "ok.csv").write_text("0,1\n1,2\n")
    build_graph([tmp_path / "ok.csv"], tmp_path / "g", progress=False)
    header = json.loads((tmp_path / "g" / HEADER_NAME).read_text())
    header["num_nodes"] = 4
    (tmp_path / "g" / HEADER_NAME).write_text(json.dumps(header))
    with pytest.raises(GraphInputError, match="does not match its digest"):
        open_graph(tmp_path / "g")


def test_a_missing_id_late_in_a_file_and_a_stray_dense_id_are_named(tmp_path):
    lines = [f"{i},{i + 1}" for i in range(1100)] + ["5000,", "9007199254740993,7"]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(GraphInputError, match="a node id is missing"):
        build_graph([tmp_path / "e.csv"], tmp_path / "g", progress=False)
    (tmp_path / "stray.txt").write_text("0 1\n1 2\n19999999 0\n")
    with pytest.raises(GraphInputError, match="would make the graph 20,000,000 nodes"):
        build_graph([tmp_path / "stray.txt"], tmp_path / "g", id_type="dense", progress=False)


def test_string_ids_with_colliding_fingerprints_build_the_same_graph(tmp_path, monkeypatch):
    """The builder looks string ids up by a 64-bit fingerprint; when fingerprints collide (forced
    here: the fingerprint is the id's length) the rows are resolved on the bytes. Also: integer
    ids of a ``.npy`` part read as strings become their decimal text."""
    import hashembed.core.idmap as idmap

    edges = random_edges(3, n=150, e=800)
    (tmp_path / "e.csv").write_text("".join(f"n{a},n{b}\n" for a, b in edges[:500]))
    (tmp_path / "f.csv").write_text("".join(f"{a},{b}\n" for a, b in edges[500:]))
    np.save(tmp_path / "g.npy", edges[500:])
    reference = load_edge_list_graph(tmp_path / "e.csv", id_type="str")
    build_graph([tmp_path / "e.csv"], tmp_path / "exact", id_type="str", progress=False)
    monkeypatch.setattr(idmap, "utf8_fingerprints", lambda offsets, data:
                        np.diff(np.asarray(offsets, dtype=np.int64)).astype(np.uint64))
    build_graph([tmp_path / "e.csv"], tmp_path / "collided", id_type="str", memory_gb=1e-5,
                progress=False)
    indptr, indices = to_csr(reference.edge_index, reference.num_nodes)
    for name in ("exact", "collided"):
        built = open_graph(tmp_path / name, verify=True)
        np.testing.assert_array_equal(built.indptr, indptr)
        np.testing.assert_array_equal(built.indices, indices)
        assert built.ids.external(np.arange(built.num_nodes)) == \
            reference.ids.external(np.arange(reference.num_nodes))
    build_graph([tmp_path / "f.csv"], tmp_path / "text", id_type="str", progress=False)
    build_graph([tmp_path / "g.npy"], tmp_path / "npy", id_type="str", progress=False)
    text, npy = open_graph(tmp_path / "text"), open_graph(tmp_path / "npy")
    assert npy.ids.kind == "str" and npy.ids.external([0, 1]) == text.ids.external([0, 1])
    np.testing.assert_array_equal(npy.indices, text.indices)


def test_text_string_ids_are_read_as_the_in_memory_reader_reads_them(tmp_path, monkeypatch):
    """Fields stripped, a late comment line skipped; an empty id, a bad byte and scattered
    integer ids are handled as the in-memory reader handles them."""
    (tmp_path / "e.csv").write_text("a, b\nc ,d\n# a late comment\ne,\tf\nb,c\n")
    build_graph([tmp_path / "e.csv"], tmp_path / "g", id_type="str", progress=False)
    built, reference = open_graph(tmp_path / "g"), load_edge_list_graph(tmp_path / "e.csv")
    assert built.ids.external(np.arange(built.num_nodes)) == list("abcdef") == \
        reference.ids.external(np.arange(reference.num_nodes))
    np.testing.assert_array_equal(built.indices, to_csr(reference.edge_index, 6)[1])

    (tmp_path / "empty.csv").write_text("a,b\nc, \n")
    with pytest.raises(GraphInputError, match="data row 2: a node id is missing"):
        build_graph([tmp_path / "empty.csv"], tmp_path / "h", id_type="str", progress=False)
    (tmp_path / "bytes.csv").write_bytes(b"a,b\n" * 2000 + b"c,\xff\xfe\n")
    with pytest.raises(GraphInputError, match="not a UTF-8 text file"):
        build_graph([tmp_path / "bytes.csv"], tmp_path / "h", id_type="str", progress=False)
    assert not (tmp_path / "h").exists()

    edges = random_edges(4, n=300, e=2000) * 7919 + 10**12  # scattered integer ids
    (tmp_path / "i.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in edges))
    build_graph([tmp_path / "i.tsv"], tmp_path / "i", progress=False)
    built, reference = open_graph(tmp_path / "i"), load_edge_list_graph(tmp_path / "i.tsv")
    assert built.ids.kind == reference.ids.kind == "int"
    assert built.ids.external(np.arange(built.num_nodes)) == \
        reference.ids.external(np.arange(reference.num_nodes))
    np.testing.assert_array_equal(built.indices,
                                  to_csr(reference.edge_index, reference.num_nodes)[1])
    import hashembed.graph.build as graphbuild

    monkeypatch.setattr(graphbuild, "CHUNK_EDGES", 100)  # 20 chunks of ids to merge
    np.save(tmp_path / "i.npy", edges)
    build_graph([tmp_path / "i.npy"], tmp_path / "n", progress=False)
    chunked = open_graph(tmp_path / "n")
    np.testing.assert_array_equal(chunked.ids.arrays["ids_sorted.npy"],
                                  built.ids.arrays["ids_sorted.npy"])
    np.testing.assert_array_equal(chunked.indices, built.indices)


def test_parquet_string_ids_equal_the_same_ids_as_text(tmp_path, monkeypatch):
    """Read 37 rows at a time into 8 buckets of distinct ids, de-duplicated one by one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import hashembed.graph.build as graphbuild

    edges = random_edges(5, n=120, e=600)
    names = np.array([f" u{v}\t" if v % 7 == 0 else f"u{v}" for v in range(120)], dtype=object)
    pq.write_table(pa.table({"src": names[edges[:, 0]], "dst": names[edges[:, 1]]}),
                   tmp_path / "e.parquet", row_group_size=100)
    (tmp_path / "e.csv").write_text("".join(f"u{a},u{b}\n" for a, b in edges))
    build_graph([tmp_path / "e.csv"], tmp_path / "t", progress=False)
    scans = []

    class Recorded(graphbuild.DistinctStringBuckets):
        def distinct(self):
            scans.append(self.batches)
            return super().distinct()

    monkeypatch.setattr(graphbuild, "CHUNK_EDGES", 37)
    monkeypatch.setattr(graphbuild, "string_id_buckets", lambda files, memory_gb: 8)
    monkeypatch.setattr(graphbuild, "DistinctStringBuckets", Recorded)
    build_graph([tmp_path / "e.parquet"], tmp_path / "p", progress=False)
    assert len(scans[0]) == 8 and min(scans[0]) > 2  # every bucket took ids of many chunks
    parquet, text = open_graph(tmp_path / "p"), open_graph(tmp_path / "t")
    assert parquet.ids.kind == "str"
    assert parquet.ids.external(np.arange(parquet.num_nodes)) == \
        text.ids.external(np.arange(text.num_nodes))
    np.testing.assert_array_equal(parquet.indices, text.indices)


def test_string_id_buckets_follow_the_budget(tmp_path):
    from hashembed.graph.build import string_id_buckets

    path = tmp_path / "e.csv"
    path.write_bytes(b"x" * 1_000_000)
    assert string_id_buckets([path], memory_gb=1.0) == 1
    # 8 bytes held per byte of ids: 8 MB of scan for a 1 MB budget -> 8 buckets
    assert string_id_buckets([path], memory_gb=2**-10) == 8
    assert string_id_buckets([path], memory_gb=1e-9) == 1024  # capped
