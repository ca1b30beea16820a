"""Defects that lost users' files or served wrong answers without a word (issue 13, part 1).

Each test reproduces the reported case and checks the guarantee in docs/reliability.md.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from reliability.harness import QUICK, kill_at, one_error_line, train, write_graph
from hashembed.core.bundle import CODES_FILE, MANIFEST_NAME, open_bundle
from hashembed.app.cli import main
from hashembed.core.errors import BundleChecksumError, GraphInputError, RunCorruptError
from hashembed.core.integrity import sha256_file
from hashembed.serve import Predictor
from hashembed.train.checkpoint import CHECKPOINT_FILE, RUN_MANIFEST, load_run


def tree(folder):
    """``{relative path: sha256}`` of every file below ``folder``."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file()}


# 1. export --overwrite deleted whatever was at --out ------------------------------------

def test_export_over_its_own_run_is_refused_and_the_run_survives(trained_run, capsys):
    before = tree(trained_run)
    assert main(["export", str(trained_run), "--out", str(trained_run), "--overwrite"]) == 2
    assert "an input of this bundle" in one_error_line(capsys)
    assert main(["export", str(trained_run), "--out", str(trained_run.parent),
                 "--overwrite"]) == 2
    assert f"contains {trained_run}" in one_error_line(capsys)
    assert tree(trained_run) == before
    load_run(trained_run)


def test_export_overwrite_refuses_an_unrelated_folder(trained_run, tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"\xff\xd8 precious")
    assert main(["export", str(trained_run), "--out", str(mine), "--overwrite"]) == 2
    assert "is not a hashembed bundle; refusing to replace it" in one_error_line(capsys)
    assert (mine / "holiday.jpg").read_bytes() == b"\xff\xd8 precious"


def test_export_overwrite_replaces_a_bundle(trained_run, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 0
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 2
    assert "already holds a bundle" in one_error_line(capsys)
    assert main(["export", str(trained_run), "--out", str(bundle), "--overwrite",
                 "--probe-nodes", "8"]) == 0
    open_bundle(bundle)


# 2. a killed train left a new checkpoint beside old codes --------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("point", ["run-files", "exchange", "rename"])
def test_killed_train_leaves_the_previous_run_whole(graph_files, tmp_path, point):
    edges, labels = graph_files
    run = tmp_path / "run"
    assert train(edges, labels, run) == 0
    before = tree(run)
    other_labels = tmp_path / "labels2.txt"  # a different run: other seed and labels
    other_labels.write_text(labels.read_text().replace("team a", "team c"))
    kill_at(point, ["train", "--edges", str(edges), "--labels", str(other_labels), *QUICK,
                    "--seed", "7", "--out", str(run), "--overwrite"], tmp_path)
    # the previous run is still there (put back by the reader if it was moved aside) ...
    loaded = load_run(run)
    assert tree(run) == before and loaded.graph.class_names == ["team a", "team b"]
    # ... and the next train cleans what the killed one left behind
    assert train(edges, other_labels, run, "--overwrite") == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")) == []
    assert load_run(run).graph.class_names == ["team b", "team c"]


def test_parts_of_two_runs_never_load_together(graph_files, tmp_path, capsys):
    edges, labels = graph_files
    a, b = tmp_path / "a", tmp_path / "b"
    assert train(edges, labels, a) == 0
    assert train(edges, labels, b, "--seed", "1") == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(a, mixed)
    shutil.copy(b / CHECKPOINT_FILE, mixed / CHECKPOINT_FILE)  # new checkpoint, old codes
    with pytest.raises(RunCorruptError, match="does not match its size and sha256"):
        load_run(mixed)
    shutil.copy(b / RUN_MANIFEST, mixed / RUN_MANIFEST)  # and its manifest: codes differ now
    with pytest.raises(RunCorruptError, match=r"codes\.npy does not match"):
        load_run(mixed)
    assert main(["export", str(mixed), "--out", str(tmp_path / "bundle")]) == 2
    assert "does not match" in one_error_line(capsys)
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("point", ["bundle-check", "exchange", "rename"])
def test_killed_export_leaves_the_previous_bundle_whole(trained_run, tmp_path, point):
    bundle = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 0
    before = tree(bundle)
    kill_at(point, ["export", str(trained_run), "--out", str(bundle), "--overwrite",
                    "--probe-nodes", "8"], tmp_path)
    Predictor(bundle)  # opens: restored if it had been moved aside
    assert tree(bundle) == before
    assert main(["export", str(trained_run), "--out", str(bundle), "--overwrite",
                 "--probe-nodes", "8"]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.")] == []


# 3. manifest.json had no checksum ---------------------------------------------------------

def test_an_edited_manifest_is_refused(trained_run, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 0
    path = bundle / MANIFEST_NAME
    path.write_text(path.read_text().replace('"edge_hops": 2', '"edge_hops": 0'))
    assert main(["predict", str(bundle), "--nodes", "0,1"]) == 2
    assert "does not match its digest" in one_error_line(capsys)


# 4. / 5. graph input took the wrong columns or dropped rows --------------------------------

def test_parquet_columns_are_chosen_by_name(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hashembed.graph.readers import read_edges

    table = {"edge_id": [0, 1, 2], "src": [5, 6, 7], "dst": [6, 7, 8]}
    pq.write_table(pa.table(table), tmp_path / "named.parquet")
    assert read_edges(tmp_path / "named.parquet").tolist() == [[5, 6], [6, 7], [7, 8]]
    pq.write_table(pa.table({"edge_id": [0, 1], "a": [5, 6], "b": [6, 7]}),
                   tmp_path / "anon.parquet")
    edges, labels = write_graph(tmp_path)
    assert main(["train", "--edges", str(tmp_path / "anon.parquet"), "--labels", str(labels),
                 "--out", str(tmp_path / "run")]) == 2
    assert "cannot tell which columns of ['edge_id', 'a', 'b']" in one_error_line(capsys)
    assert read_edges(tmp_path / "anon.parquet", src_col="a", dst_col="b").tolist() == \
        [[5, 6], [6, 7]]


def test_a_text_header_names_the_columns(tmp_path):
    from hashembed.graph.readers import read_edges

    (tmp_path / "e.csv").write_text("edge_id,source,target\n0,5,6\n1,6,7\n")
    assert read_edges(tmp_path / "e.csv").tolist() == [[5, 6], [6, 7]]


def test_a_byte_order_mark_keeps_the_first_edge(tmp_path, caplog):
    from hashembed.graph.readers import read_edges

    (tmp_path / "bom.csv").write_bytes("\ufeff0,1\n1,2\n".encode("utf-8"))
    assert read_edges(tmp_path / "bom.csv").tolist() == [[0, 1], [1, 2]]
    (tmp_path / "mixed.csv").write_text("a1,2\n1,2\n")  # one field is an id: not a header
    with pytest.raises(GraphInputError, match=r"line 1: node id 'a1' is not an integer"):
        read_edges(tmp_path / "mixed.csv")
    (tmp_path / "h.csv").write_text("from,to\n0,1\n")
    with caplog.at_level("INFO"):
        assert read_edges(tmp_path / "h.csv").tolist() == [[0, 1]]
    assert "line 1 is a header" in caplog.text


def test_label_names_stay_whole_and_travel_to_the_bundle(trained_run, tmp_path):
    run = load_run(trained_run)
    assert run.graph.class_names == ["team a", "team b"]
    bundle = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 0
    predictor = Predictor(bundle)
    assert predictor.manifest.class_names == ("team a", "team b")
    rows = predictor.predict([0, 59]).to_json()
    assert {row["class"] for row in rows} <= {"team a", "team b"}
    assert all(row["class"] == ("team a", "team b")[row["label"]] for row in rows)


def test_labels_mixing_integers_and_names_are_refused(tmp_path, capsys):
    edges, _ = write_graph(tmp_path)
    (tmp_path / "mixed.txt").write_text("0 3\n1 cat\n")
    assert main(["train", "--edges", str(edges), "--labels", str(tmp_path / "mixed.txt"),
                 "--out", str(tmp_path / "run")]) == 2
    assert "labels mix integers (line 1: '3') and names (line 2: 'cat')" in \
        one_error_line(capsys)


# 6. Predictor(verify="lazy") served a flipped code byte -----------------------------------

@pytest.fixture(scope="module")
def small_piece_bundle(sage_run, tmp_path_factory):
    """Cora's bundle written with 1 KiB pieces: its code table and CSR span many pieces."""
    from hashembed.core import integrity
    from hashembed.export.exporter import export_run

    out = tmp_path_factory.mktemp("pieces") / "bundle"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(integrity, "CHUNK_BYTES", 1024)
        export_run(sage_run, out, probe_nodes=16)
    return out


def test_the_cheap_check_refuses_a_flipped_byte_when_a_query_reads_it(small_piece_bundle,
                                                                      tmp_path):
    from hashembed.serve.subgraph import k_hop_subgraph

    bundle = tmp_path / "bundle"
    shutil.copytree(small_piece_bundle, bundle)
    clean = Predictor(bundle)
    victim = clean.num_nodes - 1  # flip a bit of the last node's code
    path = bundle / CODES_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    # a query whose 2-hop neighbourhood stays far from the last 1 KiB piece is served ...
    codes = clean.bundle.codes
    safe = next(q for q in range(clean.num_nodes)
                if k_hop_subgraph(clean.bundle.indptr, clean.bundle.indices, np.array([q]),
                                  2).nodes.max() < victim - 1024 // codes.shape[1] - 1)
    lazy = Predictor(bundle, verify="lazy")  # opens: sizes match, only the first piece is hashed
    np.testing.assert_array_equal(lazy.predict([safe]).logits, clean.predict([safe]).logits)
    # ... and the one that reads the flipped byte is refused, as is everything after it
    with pytest.raises(BundleChecksumError, match="do not match their sha256"):
        lazy.predict([victim])
    with pytest.raises(BundleChecksumError):
        lazy.predict([safe])


# --- found in review: more ways to lose files ----------------------------------------------

def test_predict_output_never_clobbers_an_input_or_an_existing_file(trained_run, tmp_path,
                                                                    capsys):
    bundle = tmp_path / "bundle"
    assert main(["export", str(trained_run), "--out", str(bundle), "--probe-nodes", "8"]) == 0
    before = tree(bundle)
    ids = tmp_path / "ids.txt"
    ids.write_text("1 2\n")
    assert main(["predict", str(bundle), "--nodes-file", str(ids), "--output", str(ids)]) == 2
    assert "would overwrite an input" in one_error_line(capsys)
    assert main(["predict", str(bundle), "--nodes", "1", "--output",
                 str(bundle / CODES_FILE)]) == 2
    assert "would overwrite an input" in one_error_line(capsys)
    keep = tmp_path / "keep.json"
    keep.write_text("[]")
    assert main(["predict", str(bundle), "--nodes", "1", "--output", str(keep)]) == 2
    assert "already exists; choose another name or pass --overwrite" in one_error_line(capsys)
    assert main(["predict", str(bundle), "--nodes", "1", "--output", str(tmp_path / "p.csv")]) == 2
    assert "write .json or .npy" in one_error_line(capsys)
    assert main(["predict", str(bundle), "--nodes", "1", "--output", str(keep),
                 "--overwrite"]) == 0
    assert ids.read_text() == "1 2\n" and tree(bundle) == before


def test_overwrite_refuses_a_run_that_holds_other_files(trained_run, graph_files, tmp_path,
                                                        capsys):
    run = shutil.copytree(trained_run, tmp_path / "run")
    assert main(["export", str(run), "--out", str(run / "bundle"), "--probe-nodes", "8"]) == 0
    assert train(*graph_files, run, "--overwrite") == 2
    assert "holds files that are not part of its run directory (bundle)" in one_error_line(capsys)
    open_bundle(run / "bundle")


def test_train_into_the_current_directory_is_refused(graph_files, tmp_path, monkeypatch,
                                                     capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert train(*graph_files, work) == 2
    assert "is or contains the current directory" in one_error_line(capsys)
    assert train(*graph_files, tmp_path / "work" / "run") == 0
