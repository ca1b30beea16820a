"""The codes directory (``hashembed codes``): equal to the in-memory coder, within its budget."""

import json

import numpy as np
import pytest

from hashembed.graph.edgelist import load_edge_list_graph
from helpers import random_edges


def test_codes_of_a_graph_directory_equal_the_in_memory_coder(tmp_path):
    from hashembed.app.cli import main
    from hashembed.core.codeformat import CodeSpec
    from hashembed.coding.coder import hash_codes

    edges = random_edges(3)
    (tmp_path / "e.csv").write_text("\n".join(f"{a},{b}" for a, b in edges))
    assert main(["graph", "build", "--edges", str(tmp_path / "e.csv"), "--out",
                 str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["codes", str(tmp_path / "g"), "--bits", "64", "--seed", "4", "--memory-gb",
                 "0.00003", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    reference = hash_codes(load_edge_list_graph(tmp_path / "e.csv"),
                           CodeSpec("hash", 64, seed=4), progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "c" / "codes.npy"), reference.packed)
    summary = json.loads((tmp_path / "c" / "codes.json").read_text())
    # 32 KB hold R, p and the bits of 2 bits a block for 400 nodes (17 bytes each): 32 passes
    assert summary["block_bits"] == 2 and summary["num_nodes"] == 400


@pytest.mark.slow
def test_streaming_codes_stay_within_their_memory_budget(tmp_path):
    """`hashembed codes` in a subprocess: the peak RSS it adds over its start-up stays below
    one dense n × c float32 array (what an in-memory coder would hold) and near its budget
    (blocks of 6 bits fit it here, plus the packed table, a row chunk and the median's
    column: under 2×)."""
    import subprocess
    import sys

    from hashembed.graph.synth import SynthConfig, synth_graph

    n, bits = 300_000, 128
    synth_graph(SynthConfig(n, avg_degree=8, seed=0), tmp_path / "g", progress=False)
    script = (
        "from hashembed.bench.harness import peak_rss_bytes\n"
        "from hashembed.app.cli import main\n"
        "import hashembed.coding.codesdir, hashembed.coding.coder  # imports before baseline\n"
        "base = peak_rss_bytes()\n"
        f"assert main(['codes', {str(tmp_path / 'g')!r}, '--bits', '{bits}', '--memory-gb',"
        f" '0.05', '--out', {str(tmp_path / 'c')!r}, '--quiet']) == 0\n"
        "print(peak_rss_bytes() - base)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    added = int(out.stdout.strip().splitlines()[-1])
    dense = n * bits * 4  # 154 MB
    budget = 0.05 * 2**30  # 54 MB
    assert added < dense and added < 2 * budget, f"codes added {added / 2**20:.0f} MiB at peak"


def test_multi_hop_codes_directory_records_its_shifts_and_runs_refuse_other_hops(tmp_path,
                                                                                 capsys):
    from hashembed.app.cli import main
    from hashembed.coding.codesdir import read_codes
    from hashembed.coding.coder import hash_codes
    from hashembed.core.codeformat import CodeSpec

    edges = random_edges(5)
    (tmp_path / "e.csv").write_text("\n".join(f"{a},{b}" for a, b in edges))
    labels = np.random.default_rng(0).integers(0, 3, int(edges.max()) + 1)
    (tmp_path / "l.txt").write_text("\n".join(f"{v} {c}" for v, c in enumerate(labels)))
    assert main(["graph", "build", "--edges", str(tmp_path / "e.csv"), "--labels",
                 str(tmp_path / "l.txt"), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["codes", str(tmp_path / "g"), "--bits", "32", "--hops", "3", "--memory-gb",
                 "0.00003", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    codes = read_codes(tmp_path / "c")
    reference = hash_codes(load_edge_list_graph(tmp_path / "e.csv"),
                           CodeSpec("hash", 32, hops=3), progress=False)
    assert codes.spec.hops == 3 and codes.hop_shifts.shape == (2, 32)
    np.testing.assert_array_equal(np.asarray(codes.packed), reference.packed)
    np.testing.assert_array_equal(codes.hop_shifts, reference.hop_shifts)
    common = ["train", "--graph", str(tmp_path / "g"), "--codes", str(tmp_path / "c"),
              "--bits", "32", "--epochs", "1", "--quiet"]
    assert main([*common, "--hops", "2", "--out", str(tmp_path / "r")]) == 2
    assert "hops 3 (the run: 2)" in capsys.readouterr().err
    assert main([*common, "--hops", "3", "--out", str(tmp_path / "r")]) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["hops"] == 3 and metrics["hops_probe"] is None
    # auto has nothing to choose with codes given: it takes theirs
    assert main([*common, "--hops", "auto", "--out", str(tmp_path / "auto")]) == 0
    metrics = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert metrics["hops"] == 3 and metrics["hops_probe"] is None


def test_a_changed_table_is_named_unless_the_reader_leaves_the_hash_to_another(tmp_path):
    """A byte flipped in codes.npy (same size) fails the sha256 check; ``verify=False`` (the
    torchrun ranks after rank 0, which checks the same file) skips the hash, not the sizes."""
    from hashembed.app.cli import main
    from hashembed.coding.codesdir import read_codes
    from hashembed.core.errors import HashembedError

    edges = random_edges(3)
    (tmp_path / "e.csv").write_text("\n".join(f"{a},{b}" for a, b in edges))
    assert main(["graph", "build", "--edges", str(tmp_path / "e.csv"), "--out",
                 str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["codes", str(tmp_path / "g"), "--bits", "64", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 0
    table = tmp_path / "c" / "codes.npy"
    data = bytearray(table.read_bytes())
    data[-1] ^= 0xFF
    table.write_bytes(bytes(data))
    with pytest.raises(HashembedError, match="codes.npy"):
        read_codes(tmp_path / "c")
    assert read_codes(tmp_path / "c", verify=False).packed[-1, -1] == data[-1]
    table.write_bytes(bytes(data[:-8]))  # a short table fails either way
    with pytest.raises(HashembedError, match="codes.npy"):
        read_codes(tmp_path / "c", verify=False)


@pytest.mark.parametrize("scheme,hops", [("hash", 2), ("random", 1)])
def test_the_degree_field_is_the_last_byte_and_leaves_the_bits_as_they_are(tmp_path, scheme,
                                                                           hops):
    """``--degree-field``: the rows are the codes without it plus each node's degree bucket
    (read from the CSR), written by the streaming coder (sub-byte blocks here) and the
    in-memory one alike."""
    from hashembed.app.cli import main
    from hashembed.coding.codesdir import read_codes
    from hashembed.coding.coder import make_codes
    from hashembed.core.codeformat import CodeSpec, degree_buckets
    from hashembed.core.graphdir import open_graph

    edges = random_edges(5)
    (tmp_path / "e.csv").write_text("\n".join(f"{a},{b}" for a, b in edges))
    assert main(["graph", "build", "--edges", str(tmp_path / "e.csv"), "--out",
                 str(tmp_path / "g"), "--quiet"]) == 0
    flags = ["codes", str(tmp_path / "g"), "--scheme", scheme, "--bits", "32", "--hops",
             str(hops), "--memory-gb", "0.00003", "--quiet"]
    assert main(flags + ["--out", str(tmp_path / "plain")]) == 0
    assert main(flags + ["--degree-field", "--out", str(tmp_path / "field")]) == 0
    plain, field = read_codes(tmp_path / "plain"), read_codes(tmp_path / "field")
    assert field.spec.degree_field and field.packed.shape == (plain.packed.shape[0], 5)
    np.testing.assert_array_equal(field.packed[:, :4], plain.packed)
    graph = open_graph(tmp_path / "g")
    degrees = np.diff(np.asarray(graph.indptr))
    assert degrees.max() > 3  # several buckets are used
    np.testing.assert_array_equal(field.packed[:, 4], degree_buckets(degrees))
    in_memory = make_codes(load_edge_list_graph(tmp_path / "e.csv"),
                           CodeSpec(scheme, 32, hops=hops, degree_field=True), progress=False)
    np.testing.assert_array_equal(in_memory.packed, field.packed)
