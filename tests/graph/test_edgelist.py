import numpy as np
import pytest

from hashembed.core.errors import GraphInputError
from hashembed.graph.edgelist import load_edge_list_graph
from hashembed.graph.labels import read_labels
from hashembed.graph.readers import read_edges
from hashembed.graph.memory import symmetrize, to_csr


def test_symmetrize_dedups_and_drops_loops():
    ei = symmetrize(np.array([[0, 1], [1, 0], [0, 1], [2, 2], [2, 0]]), 3)
    assert ei.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]


def test_csr_lists_neighbours():
    indptr, indices = to_csr(symmetrize(np.array([[0, 1], [0, 2]]), 4), 4)
    assert indptr.tolist() == [0, 2, 3, 4, 4]
    assert indices.tolist() == [1, 2, 0, 0]


@pytest.mark.parametrize("text", [
    "0,1\n1,2\n", "src,dst\n0,1\n1,2\n", "0\t1\n1\t2\n", "# comment\n0 1\n\n1   2\n",
    "from to\n0 1\n1 2\n",
])
def test_text_formats_are_detected(tmp_path, text):
    path = tmp_path / "edges.txt"
    path.write_text(text)
    assert read_edges(path).tolist() == [[0, 1], [1, 2]]


def test_npy_both_orientations_and_parquet(tmp_path):
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    np.save(tmp_path / "e.npy", edges)
    np.save(tmp_path / "t.npy", edges.T)
    assert read_edges(tmp_path / "e.npy").tolist() == edges.tolist()
    assert read_edges(tmp_path / "t.npy").tolist() == edges.tolist()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"src": edges[:, 0], "dst": edges[:, 1]}), tmp_path / "e.parquet")
    assert read_edges(tmp_path / "e.parquet").tolist() == edges.tolist()


@pytest.mark.parametrize("text, message", [
    ("0,1\n1,-2\n", "line 2: node id -2 is negative"),
    ("0,1\n1,2.5\n", "line 2: node id '2.5' is not an integer"),
    ("src,dst\n0,1\n1,9\n", "line 3: node id 9 is beyond --num-nodes 5"),
    ("0,1\n3\n", "line 2: expected 2 fields"),
])
def test_bad_text_rows_are_named(tmp_path, text, message):
    path = tmp_path / "edges.csv"
    path.write_text(text)
    with pytest.raises(GraphInputError, match=message):
        read_edges(path, num_nodes=5)


def test_bad_binary_rows_are_named(tmp_path):
    np.save(tmp_path / "neg.npy", np.array([[0, 1], [2, -1]]))
    with pytest.raises(GraphInputError, match="row 1: node id -1 is negative"):
        read_edges(tmp_path / "neg.npy")
    np.save(tmp_path / "float.npy", np.array([[0, 1.5], [2, 1]]))
    with pytest.raises(GraphInputError, match="must be integers"):
        read_edges(tmp_path / "float.npy")
    np.save(tmp_path / "shape.npy", np.zeros((4, 3), np.int64))
    with pytest.raises(GraphInputError, match=r"\[E, 2\] or \[2, E\]"):
        read_edges(tmp_path / "shape.npy")
    with pytest.raises(GraphInputError, match="does not exist"):
        read_edges(tmp_path / "missing.csv")


def test_labels_with_names_and_graph_assembly(tmp_path):
    (tmp_path / "e.tsv").write_text("0\t1\n1\t2\n2\t0\n3\t4\n")
    (tmp_path / "l.txt").write_text("node label\n0 cat\n1 dog\n4 cat\n")
    nodes, labels, names = read_labels(tmp_path / "l.txt")
    assert names == ["cat", "dog"] and labels.tolist() == [0, 1, 0]
    g = load_edge_list_graph(tmp_path / "e.tsv", tmp_path / "l.txt")
    assert g.num_nodes == 5 and g.num_edges == 8
    assert g.labels.tolist() == [0, 1, -1, -1, 0]
    (tmp_path / "dup.txt").write_text("0 1\n0 2\n")
    with pytest.raises(GraphInputError, match="line 2: node 0 is labelled twice"):
        read_labels(tmp_path / "dup.txt")
