"""Users' own node ids end to end: scattered 64-bit integers and strings, on Cora.

The graph is written three times (dense rows, ids scattered over the int64 range, strings),
trained, exported and served through the command line by the ids the user wrote.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashembed.core.bundle import read_manifest
from hashembed.app.cli import main
from hashembed.serve import Predictor
from hashembed.train.checkpoint import load_run

pytestmark = pytest.mark.slow  # trains and serves Cora three times

EPOCHS = ["--epochs", "80", "--patience", "80", "--bits", "64", "--quiet"]


def write_cora(folder, cora, name_of):
    """Cora's edges and labels in user files, node ``v`` written as ``name_of[v]``."""
    src, dst = cora.edge_index[:, cora.edge_index[0] < cora.edge_index[1]]
    order = np.random.default_rng(0).permutation(src.size)  # lines in no particular order
    (folder / "edges.tsv").write_text("".join(f"{name_of[a]}\t{name_of[b]}\n"
                                              for a, b in zip(src[order], dst[order])))
    labelled = np.nonzero(cora.labels >= 0)[0]
    (folder / "labels.tsv").write_text("".join(f"{name_of[v]}\tclass-{cora.labels[v]}\n"
                                               for v in labelled))
    return folder / "edges.tsv", folder / "labels.tsv"


@pytest.fixture(scope="module")
def served(cora, tmp_path_factory):
    """{scheme: (names, run dir, bundle dir, served test accuracy)} for three id schemes."""
    n = cora.num_nodes
    rng = np.random.default_rng(7)
    schemes = {
        "dense": [str(v) for v in range(n)],
        "int": [str(v) for v in rng.choice(2**62, n, replace=False) * 2 - 2**62 + 1],
        "str": [f"paper {v:05d}-{h:08x}" for v, h in enumerate(rng.integers(0, 2**32, n))],
    }
    out = {}
    for scheme, names in schemes.items():
        folder = tmp_path_factory.mktemp(scheme)
        edges, labels = write_cora(folder, cora, names)
        # isolated Cora nodes have no edge and no label line: they are not in these files
        assert main(["train", "--edges", str(edges), "--labels", str(labels), *EPOCHS,
                     "--out", str(folder / "run")]) == 0
        assert main(["export", str(folder / "run"), "--out", str(folder / "bundle"),
                     "--probe-nodes", "64"]) == 0
        run = load_run(folder / "run")  # its own random split, over its own rows
        test_rows = np.nonzero(run.graph.masks["test"])[0]
        asked = run.graph.ids.external(test_rows)
        truth = [f"class-{cora.labels[names.index(str(name))]}" for name in asked]
        predictor = Predictor(folder / "bundle")
        names_served = np.array(predictor.manifest.class_names)[predictor.predict(asked).labels]
        accuracy = float((names_served == truth).mean())
        out[scheme] = (names, folder / "run", folder / "bundle", accuracy)
    return out


def test_the_bundle_records_the_kind_of_ids(served):
    kinds = {scheme: read_manifest(bundle).id_kind for scheme, (_, _, bundle, _) in
             served.items()}
    assert kinds == {"dense": "dense", "int": "int", "str": "str"}


def test_scattered_and_string_ids_serve_as_well_as_dense_rows(served):
    """Keys differ, so codes differ as with another seed; accuracy must not (4-point band)."""
    accuracy = {scheme: acc for scheme, (_, _, _, acc) in served.items()}
    assert accuracy["dense"] > 0.7
    assert abs(accuracy["int"] - accuracy["dense"]) < 0.04, accuracy
    assert abs(accuracy["str"] - accuracy["dense"]) < 0.04, accuracy


def test_the_id_map_round_trips_through_run_and_bundle(served):
    for scheme, (names, run_dir, bundle_dir, _) in served.items():
        run, bundle = load_run(run_dir), Predictor(bundle_dir).bundle
        asked = [int(x) for x in names] if scheme != "str" else names
        np.testing.assert_array_equal(run.graph.ids.rows(asked), bundle.ids.rows(asked))
        rows = run.graph.ids.rows(asked)
        assert run.graph.ids.external(rows) == asked


def test_predict_speaks_the_users_ids(served, capsys):
    names, _, bundle, _ = served["str"]
    assert main(["predict", str(bundle), "--nodes", f"{names[5]},{names[9]}"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["node"] for row in rows] == [names[5], names[9]]
    assert main(["predict", str(bundle), "--nodes", "nobody"]) == 2
    assert "node id 'nobody' is not in the graph" in capsys.readouterr().err
    int_names, _, int_bundle, _ = served["int"]
    assert main(["predict", str(int_bundle), "--nodes", int_names[3]]) == 0
    assert json.loads(capsys.readouterr().out)[0]["node"] == int(int_names[3])
    assert main(["predict", str(int_bundle), "--nodes", "3"]) == 2  # a row number is no id
    assert "node id 3 is not in the graph" in capsys.readouterr().err
