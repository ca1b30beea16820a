"""Mini-batch training over a graph directory: memory stays below an n × d matrix."""

import pytest


@pytest.mark.slow
def test_mini_batch_training_never_holds_an_n_by_d_matrix(tmp_path):
    """`hashembed train --graph --codes --batch-size` in a subprocess: the peak RSS it adds over
    its start-up stays below one dense n × d float32 array (what full-batch training or a table
    would hold), on a graph where that array is 256 MB."""
    import subprocess
    import sys

    from hashembed.app.cli import main
    from hashembed.graph.synth import SynthConfig, synth_graph

    n = 1_000_000
    synth_graph(SynthConfig(n, avg_degree=4, seed=0), tmp_path / "g", progress=False)
    assert main(["codes", str(tmp_path / "g"), "--bits", "64", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 0
    script = (
        "from hashembed.bench.harness import peak_rss_bytes\n"
        "from hashembed.app.cli import main\n"
        "import hashembed.train.run, hashembed.train.minibatch  # imports before baseline\n"
        "base = peak_rss_bytes()\n"
        f"assert main(['train', '--graph', {str(tmp_path / 'g')!r}, '--codes', "
        f"{str(tmp_path / 'c')!r}, '--bits', '64', '--dim', '64', '--hidden', '32', "
        "'--split', 'random:0.002,0.001,0.001', '--epochs', '1', '--batch-size', '256', "
        f"'--fanout', '5,5', '--out', {str(tmp_path / 'r')!r}, '--quiet']) == 0\n"
        "print(peak_rss_bytes() - base)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    added = int(out.stdout.strip().splitlines()[-1])
    dense = n * 64 * 4  # 256 MB
    assert added < dense, f"training added {added / 2**20:.0f} MiB at peak"
