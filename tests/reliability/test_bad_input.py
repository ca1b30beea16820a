"""Bad input gets one line, ``hashembed: error: …``, exit 2, before any work (issue 13, part 2).

Where the check must come first, the test proves the order: the bad option is reported even
though another input (an edge file that does not exist) would fail later.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reliability.harness import QUICK, one_error_line, train, write_graph
from hashembed.core.bundle import read_manifest
from hashembed.app.cli import main
from hashembed.core.errors import ConfigError
from hashembed.export.onnx_model import declared_opset
from hashembed.serve import Predictor


@pytest.fixture
def bundle(trained_run, tmp_path):
    out = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(out), "--probe-nodes", "8"]) == 0
    return out


def train_cli(*args):
    return main(["train", *args, *QUICK])


# --- graph input --------------------------------------------------------------------------

@pytest.mark.parametrize("big, id_type, message", [
    (2**40, "dense", "node id 1,099,511,627,776 would make the graph 1,099,511,627,777 nodes, "
                     "but only 61 distinct ids appear"),
    (2**70, "auto", "line 3: node id 1180591620717411303424 does not fit in 64 bits (pass "
                    "--id-type str"),
])
def test_a_huge_id_is_refused_before_anything_is_allocated(tmp_path, capsys, big, id_type,
                                                            message):
    edges, labels = write_graph(tmp_path)
    lines = edges.read_text().splitlines()
    edges.write_text("\n".join(lines[:2] + [f"0,{big}"] + lines[2:]) + "\n")
    assert train_cli("--edges", str(edges), "--labels", str(labels), "--id-type", id_type,
                     "--out", str(tmp_path / "run")) == 2
    assert message in one_error_line(capsys)


def test_a_huge_id_is_an_ordinary_node_of_a_mapped_graph(tmp_path, capsys):
    edges, labels = write_graph(tmp_path)
    edges.write_text(edges.read_text() + f"0,{2**40}\n")
    assert train_cli("--edges", str(edges), "--labels", str(labels),
                     "--out", str(tmp_path / "run")) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["num_nodes"] == 61


def test_a_huge_num_nodes_is_refused(tmp_path, capsys):
    edges, labels = write_graph(tmp_path)
    assert train_cli("--edges", str(edges), "--labels", str(labels), "--num-nodes",
                     str(2**40), "--out", str(tmp_path / "run")) == 2
    assert "GiB for per-node arrays; this machine has" in one_error_line(capsys)


def test_labels_with_absurd_class_ids_are_refused(tmp_path, capsys):
    edges, _ = write_graph(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"{v} {v * 33_333}" for v in range(60)) + "\n")
    assert train_cli("--edges", str(edges), "--labels", str(labels),
                     "--out", str(tmp_path / "run")) == 2
    assert "label 1966647 makes 1,966,648 classes for 60 labelled nodes" in \
        one_error_line(capsys)


def test_a_fake_parquet_file_is_named(tmp_path, capsys):
    _, labels = write_graph(tmp_path)
    (tmp_path / "edges.parquet").write_text("0,1\n1,2\n")
    assert train_cli("--edges", str(tmp_path / "edges.parquet"), "--labels", str(labels),
                     "--out", str(tmp_path / "run")) == 2
    assert "edges.parquet is not a readable Parquet file" in one_error_line(capsys)


# --- options, checked before the graph is read -------------------------------------------

@pytest.mark.parametrize("option, message", [
    (["--lr", "nan"], "lr=nan must be a positive finite number"),
    (["--lr", "-1"], "lr=-1.0 must be a positive finite number"),
    (["--weight-decay", "inf"], "weight_decay=inf must be a non-negative finite number"),
])
def test_non_finite_options_are_refused_first(tmp_path, capsys, option, message):
    assert train_cli("--edges", str(tmp_path / "missing.csv"), "--labels", "x.txt",
                     "--out", str(tmp_path / "run"), *option) == 2
    assert message in one_error_line(capsys)


def test_train_out_is_checked_before_training(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    missing = str(tmp_path / "missing.csv")  # would fail later, when the graph is read
    assert train_cli("--edges", missing, "--labels", "x", "--out", str(tmp_path / "a-file")) == 2
    assert "a-file is a file, not a run directory" in one_error_line(capsys)
    assert train_cli("--edges", missing, "--labels", "x",
                     "--out", str(tmp_path / "a-file" / "run")) == 2
    assert "a-file is not a writable directory" in one_error_line(capsys)


def test_train_refuses_to_overwrite_a_run_or_a_folder_silently(trained_run, graph_files,
                                                              tmp_path, capsys):
    edges, labels = graph_files
    assert train(edges, labels, trained_run) == 2
    assert "already holds a run directory; choose another path or pass --overwrite" in \
        one_error_line(capsys)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    assert train(edges, labels, tmp_path / "notes", "--overwrite") == 2
    assert "is not a hashembed run directory; refusing to replace it" in one_error_line(capsys)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_a_split_without_test_nodes_writes_null_not_nan(graph_files, tmp_path):
    assert train(*graph_files, tmp_path / "run", "--split", "random:0.8,0.2,0") == 0
    text = (tmp_path / "run" / "metrics.json").read_text()
    metrics = json.loads(text)  # strict JSON: NaN would not parse in other languages
    assert "NaN" not in text and metrics["test"] is None
    assert metrics["majority_class_test"] is None and metrics["val"] is not None


# --- export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", ["7", "17", "99"])
def test_unsupported_opsets_are_refused(trained_run, tmp_path, capsys, opset):
    assert main(["export", str(trained_run), "--out", str(tmp_path / "b"), "--opset",
                 opset]) == 2
    assert f"--opset {opset} is not supported" in one_error_line(capsys)
    assert not (tmp_path / "b").exists()


def test_the_manifest_records_the_opset_written(bundle):
    assert read_manifest(bundle).opset == declared_opset(bundle / "model.onnx") == 20


def test_probe_nodes_zero_says_skipped(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--out", str(tmp_path / "b"), "--probe-nodes",
                 "0"]) == 0
    assert "check skipped (--probe-nodes 0)" in capsys.readouterr().out
    assert main(["export", str(trained_run), "--out", str(tmp_path / "c"), "--tolerance",
                 "nan"]) == 2
    assert "--tolerance nan must be a positive finite number" in one_error_line(capsys)


# --- predict --------------------------------------------------------------------------------

def test_an_id_beyond_64_bits_is_unknown(bundle, capsys):
    assert main(["predict", str(bundle), "--nodes", "99999999999999999999"]) == 2
    assert "node id 99999999999999999999 is not in the graph (n = 60)" in one_error_line(capsys)


def test_a_binary_nodes_file_is_named(bundle, tmp_path, capsys):
    (tmp_path / "ids.bin").write_bytes(bytes(range(256)))
    assert main(["predict", str(bundle), "--nodes-file", str(tmp_path / "ids.bin")]) == 2
    assert "is not a text file of node ids" in one_error_line(capsys)


def test_output_into_a_directory_is_refused_and_leaves_nothing(bundle, tmp_path, capsys):
    out = tmp_path / "outdir"
    out.mkdir()
    assert main(["predict", str(bundle), "--nodes", "1", "--output", str(out)]) == 2
    assert f"--output {out} is a directory; give a file name" in one_error_line(capsys)
    assert list(out.iterdir()) == [] and not list(tmp_path.glob(".outdir*"))
    assert main(["predict", str(bundle), "--nodes", "1", "--output",
                 str(tmp_path / "no" / "p.json")]) == 2
    assert f"directory {tmp_path / 'no'} does not exist" in one_error_line(capsys)


def test_predict_json_names_the_class(bundle, capsys):
    assert main(["predict", str(bundle), "--nodes", "0,59"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["node"] for row in rows] == [0, 59]
    assert all(row["class"] in ("team a", "team b") for row in rows)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_a_bad_batch_size_is_named(bundle, batch_size):
    with pytest.raises(ConfigError, match="batch_size=.* must be a positive integer"):
        Predictor(bundle, batch_size=batch_size)


def test_uint64_ids_above_2_63_are_unknown_not_negative(bundle):
    from hashembed.core.errors import UnknownNodeError

    with pytest.raises(UnknownNodeError, match="node id 9223372036854775809 is not in"):
        Predictor(bundle).predict(np.array([1, 2**63 + 1], dtype=np.uint64))


# --- found in review: ids ---------------------------------------------------------------------

def test_string_id_files_keep_their_first_line(tmp_path):
    from hashembed.graph.edgelist import load_edge_list_graph

    (tmp_path / "e.csv").write_text("alice,bob\nuser7,42\n")
    graph = load_edge_list_graph(tmp_path / "e.csv", id_type="str")
    assert graph.ids.external(np.arange(graph.num_nodes)) == ["42", "alice", "bob", "user7"]
    (tmp_path / "q.csv").write_text('"Smith, J","Doe, A"\n"Doe, A",Roe\n')
    graph = load_edge_list_graph(tmp_path / "q.csv")
    assert graph.ids.external(np.arange(graph.num_nodes)) == ["Doe, A", "Roe", "Smith, J"]


def test_only_ascii_digits_are_integer_ids(tmp_path, capsys):
    from hashembed.core.errors import GraphInputError
    from hashembed.graph.edgelist import load_edge_list_graph

    (tmp_path / "e.csv").write_text("1,2\n\u0661,2\n")
    with pytest.raises(GraphInputError, match="mix integers"):
        load_edge_list_graph(tmp_path / "e.csv")


def test_odd_predict_ids_are_named(bundle, tmp_path, capsys):
    assert main(["predict", str(bundle), "--nodes", "1_0"]) == 2
    assert "'1_0' is not an integer node id" in one_error_line(capsys)
    np.save(tmp_path / "zero_d.npy", np.array(5))
    assert main(["predict", str(bundle), "--nodes-file", str(tmp_path / "zero_d.npy")]) == 0
    assert Predictor(bundle).predict(i for i in (1, 2)).logits.shape[0] == 2


def test_string_ids_from_binary_edges(tmp_path):
    from hashembed.graph.edgelist import load_edge_list_graph

    np.save(tmp_path / "e.npy", np.array([[10, 20], [20, 30]]))
    graph = load_edge_list_graph(tmp_path / "e.npy", id_type="str")
    assert graph.ids.kind == "str" and graph.ids.rows(["20"]).tolist() == [1]
