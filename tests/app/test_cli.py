"""The command line: each command end to end, and one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hashembed.app.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hashembed", *map(str, args)],
                          capture_output=True, text=True)


def test_train_export_predict_from_user_files(tmp_path):
    rng = np.random.default_rng(0)
    # two dense communities; labels are the community
    n = 60
    community = np.arange(n) // 30
    pairs = rng.integers(0, n, (600, 2))
    pairs = pairs[community[pairs[:, 0]] == community[pairs[:, 1]]]
    (tmp_path / "edges.csv").write_text("src,dst\n" + "\n".join(f"{a},{b}" for a, b in pairs))
    (tmp_path / "labels.txt").write_text("\n".join(f"{v} c{community[v]}" for v in range(n)))
    assert main(["train", "--edges", str(tmp_path / "edges.csv"), "--labels",
                 str(tmp_path / "labels.txt"), "--bits", "32", "--epochs", "40", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["bits_per_node"] == 32 and metrics["test"] > 0.8
    assert metrics["config"]["decoder"]["hidden_dim"] == metrics["config"]["model"]["hidden_dim"]
    assert main(["train", "--edges", str(tmp_path / "edges.csv"), "--labels",
                 str(tmp_path / "labels.txt"), "--bits", "32", "--epochs", "40", "--quiet",
                 "--metric", "roc_auc", "--decoder-hidden", "24", "--hidden", "40",
                 "--out", str(tmp_path / "run_auc")]) == 0
    auc = json.loads((tmp_path / "run_auc" / "metrics.json").read_text())
    assert auc["metric"] == "roc_auc" and auc["test"] > 0.8
    # the decoder's and the GNN's hidden widths are separate flags
    assert (auc["config"]["decoder"]["hidden_dim"], auc["config"]["model"]["hidden_dim"]) == (24, 40)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")]) == 0
    assert main(["predict", str(tmp_path / "bundle"), "--nodes", "0,59", "--output",
                 str(tmp_path / "p.npy"), "--what", "labels"]) == 0
    assert np.load(tmp_path / "p.npy").tolist() == [0, 1]


def test_predict_prints_json(sage_bundle, tmp_path):
    (tmp_path / "ids.txt").write_text("3\n17, 42\n")
    result = run_cli("predict", sage_bundle, "--nodes-file", tmp_path / "ids.txt", "--embeddings")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["node"] for r in rows] == [3, 17, 42]
    assert len(rows[0]["logits"]) == 7 and len(rows[0]["embedding"]) == 16


@pytest.mark.parametrize("args, message", [
    (["--nodes", "1,x"], "'x' is not an integer node id"),
    (["--nodes", "99999"], "node id 99999 is not in the graph"),
    (["--nodes", "-4"], "node id -4 is negative"),
])
def test_predict_errors_are_one_line(sage_bundle, args, message):
    result = run_cli("predict", sage_bundle, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("hashembed: error: ")
    assert message in errors[0] and "Traceback" not in result.stderr


def test_missing_bundle_and_bad_edges_are_named(tmp_path):
    result = run_cli("predict", tmp_path / "nothing", "--nodes", "1")
    assert result.returncode == 2 and "does not exist" in result.stderr
    (tmp_path / "e.csv").write_text("0,1\n1,2\n2,oops\n")
    (tmp_path / "l.csv").write_text("0,0\n1,1\n")
    result = run_cli("train", "--edges", tmp_path / "e.csv", "--labels", tmp_path / "l.csv",
                     "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "node ids mix integers" in result.stderr and "line 3 ('oops')" in result.stderr
    assert not (tmp_path / "run").exists()
    result = run_cli("train", "--dataset", "cora", "--metric", "roc_auc", "--out", tmp_path / "r")
    assert result.returncode == 2 and "roc_auc needs two classes, the graph has 7" in result.stderr


def test_demo_runs_the_main_job(tmp_path):
    result = run_cli("demo", "--out", tmp_path / "demo", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test"] > summary["majority_class_test"] + 0.3
    assert summary["served_test_accuracy"] == pytest.approx(summary["test"], abs=1e-6)
    assert (tmp_path / "demo" / "bundle" / "manifest.json").is_file()


def test_bench_decode_command_writes_json(tmp_path, capsys):
    out = tmp_path / "decode.json"
    assert main(["bench", "decode", "--num-nodes", "400", "--batch", "200", "--bits", "32",
                 "--dim", "8", "--repeats", "1", "--out", str(out)]) == 0
    assert "| fp32 table gather |" in capsys.readouterr().out
    assert json.loads(out.read_text())["config"]["num_nodes"] == 400


def test_hops_auto_trains_exports_and_serves_new_nodes(tmp_path):
    """``--hops auto`` on bundled Cora: the probe's choice and scores are recorded, the
    multi-hop bundle carries its shifts, and a new node is served from its neighbours."""
    from hashembed.core.bundle import read_manifest

    assert main(["train", "--dataset", "cora", "--hops", "auto", "--bits", "32", "--epochs",
                 "3", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    probe = metrics["hops_probe"]
    assert set(probe["probe"]) == {"1", "2", "3"} and probe["metric"] == "accuracy"
    assert metrics["hops"] == probe["chosen"] == max(
        (1, 2, 3), key=lambda k: (probe["probe"][str(k)], -k))
    assert metrics["config"]["run"]["hops"] == "auto"
    assert metrics["config"]["code_spec"]["hops"] == metrics["hops"]
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "b"),
                 "--probe-nodes", "16"]) == 0
    manifest = read_manifest(tmp_path / "b")
    assert manifest.code_spec.hops == metrics["hops"]
    assert (manifest.hop_shifts is None) == (metrics["hops"] == 1)
    (tmp_path / "new.json").write_text('[{"neighbors": [3, 17, 42]}]')
    done = run_cli("predict", tmp_path / "b", "--new-node-neighbors", tmp_path / "new.json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)[0]["logits"]) == 7

