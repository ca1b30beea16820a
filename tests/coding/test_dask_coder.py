"""The Dask coder: bit-identical to the single-machine coder on a 2-worker cluster of
processes, for any partition; a failed or killed task never leaves codes that load."""

import json
import os

import numpy as np
import pytest

from hashembed.app.cli import main
from hashembed.coding.codesdir import read_codes, write_codes
from hashembed.coding import dask_coder
from hashembed.coding.dask_coder import (DistributedCodingError, Partition, _Rounds, connect,
                                         local_client, partition_rows)
from hashembed.core.codeformat import CodeSpec
from hashembed.core.errors import CodeFormatError, ConfigError


@pytest.fixture(scope="module")
def client():
    client = local_client(2)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def hub_graph_dir(tmp_path, n: int = 400, seed: int = 0):
    """A random tree plus random edges plus a hub joined to a third of the nodes, with the
    users' own integer ids (not 0 … n-1, so keys are scattered by row): a graph directory."""
    rng = np.random.default_rng(seed)
    tree = np.stack([np.arange(1, n), rng.integers(0, np.arange(1, n))], axis=1)
    hub = np.stack([np.zeros(n // 3, np.int64), rng.choice(np.arange(1, n), n // 3, False)], 1)
    pairs = np.concatenate([tree, rng.integers(0, n, (2 * n, 2)), hub])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    ids = rng.permutation(n) * 7 + 1000
    path = tmp_path / "edges.csv"
    path.write_text("\n".join(f"{ids[a]},{ids[b]}" for a, b in pairs))
    assert main(["graph", "build", "--edges", str(path), "--out", str(tmp_path / "g"),
                 "--quiet"]) == 0
    return tmp_path / "g"


def assert_same_codes(a, b):
    np.testing.assert_array_equal(np.asarray(a.packed), np.asarray(b.packed))
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert (a.hop_shifts is None) == (b.hop_shifts is None)
    if a.hop_shifts is not None:
        np.testing.assert_array_equal(a.hop_shifts, b.hop_shifts)


@pytest.mark.parametrize("hops", [1, 2, 3])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_dask_codes_equal_the_single_machine_coder(client, tmp_path, hops, projection):
    graph = hub_graph_dir(tmp_path, seed=hops)
    spec = CodeSpec("hash", bits=24, seed=3, projection=projection, hops=hops)
    # a budget of 5 bits a block: blocks that do not fill whole bytes, 5 passes of each round
    local = write_codes(graph, spec, tmp_path / "local", memory_gb=0.00005, progress=False)
    summary = write_codes(graph, spec, tmp_path / "dask", memory_gb=0.00002, progress=False,
                          client=client, partitions=3)
    assert summary["engine"] == "dask" and summary["partitions"] == 3
    assert summary["block_bits"] < 8 and local["block_bits"] < 24
    assert_same_codes(read_codes(tmp_path / "local"), read_codes(tmp_path / "dask"))


def test_odd_node_counts_isolated_nodes_and_uneven_partitions(client, tmp_path):
    """Dense ids with 37 isolated nodes (their sums tie at the median, broken by keyed rank
    across ranges), an odd n, and 1, 2 and 7 ranges of very unequal node counts."""
    rng = np.random.default_rng(5)
    n = 301
    pairs = rng.integers(0, 200, (700, 2))  # rows 200 … 300 appear in no edge ...
    pairs = np.concatenate([pairs[pairs[:, 0] != pairs[:, 1]], [[250, 251]] * 1])
    path = tmp_path / "edges.csv"
    path.write_text("\n".join(f"{a},{b}" for a, b in pairs))
    assert main(["graph", "build", "--edges", str(path), "--num-nodes", str(n), "--out",
                 str(tmp_path / "g"), "--quiet"]) == 0
    spec = CodeSpec("hash", bits=16, seed=1, projection="rademacher", hops=2)
    write_codes(tmp_path / "g", spec, tmp_path / "local", progress=False)
    reference = read_codes(tmp_path / "local")
    for parts in (1, 2, 7):
        out = tmp_path / f"dask{parts}"
        write_codes(tmp_path / "g", spec, out, progress=False, client=client, partitions=parts)
        assert_same_codes(reference, read_codes(out))


def test_dask_codes_carry_the_degree_field_as_the_single_coder_does(client, tmp_path):
    graph = hub_graph_dir(tmp_path, seed=7)
    spec = CodeSpec("hash", bits=16, seed=2, hops=2, degree_field=True)
    write_codes(graph, spec, tmp_path / "local", progress=False)
    write_codes(graph, spec, tmp_path / "dask", memory_gb=0.00002, progress=False,
                client=client, partitions=3)
    local, dask = read_codes(tmp_path / "local"), read_codes(tmp_path / "dask")
    assert local.packed.shape[1] == 3 and local.packed[:, 2].max() > 4  # the hub's bucket
    assert_same_codes(local, dask)


def test_partitions_cover_the_rows_in_order_with_about_equal_entries():
    degrees = np.array([100, 1, 1, 1, 1, 1, 1, 1, 1, 100])
    indptr = np.concatenate([[0], np.cumsum(degrees)])
    ranges = partition_rows(indptr, 2)
    assert ranges[0][0] == 0 and ranges[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert ranges == [(0, 5), (5, 10)]
    assert len(partition_rows(indptr, 50)) <= 10  # never an empty range
    with pytest.raises(ConfigError, match="at least 1"):
        partition_rows(indptr, 0)


def test_the_batched_gather_reads_the_rows_a_single_map_reads(tmp_path, monkeypatch):
    """Gathering through a map dropped every few rows (to bound the mapped pages) returns the
    rows, and the leading bits, that one fancy index of the whole level returns."""
    level = np.random.default_rng(0).integers(-1000, 1000, (50, 6)).astype(np.float64)
    np.save(tmp_path / "level1.npy", level)
    part = Partition(str(tmp_path), str(tmp_path), 0, 50, 1 << 12)
    rows = np.array([0, 1, 7, 8, 9, 23, 40, 48, 49], dtype=np.int64)
    monkeypatch.setattr(dask_coder, "GATHER_BATCH_ROWS", 4)  # three batches, the last short
    np.testing.assert_array_equal(part.gather(1, rows, 5), level[rows, :5])
    assert part.gather(1, rows[:0], 5).shape == (0, 5)


def test_a_scheduler_that_does_not_answer_is_named():
    with pytest.raises(DistributedCodingError, match="no Dask scheduler answers at"):
        connect("tcp://127.0.0.1:9", timeout=2)


def test_a_failing_task_leaves_no_codes_directory(tmp_path, monkeypatch):
    """A task that raises (here the write round, after every other round succeeded): a named
    error in the client, the staged directory discarded, nothing at --out that loads."""
    from distributed import Client, LocalCluster

    from hashembed.coding import dask_coder

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    graph = hub_graph_dir(tmp_path)
    monkeypatch.setattr(dask_coder, "_task_write", broken_write)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as threads:
        with pytest.raises(DistributedCodingError, match="write round: OSError: disk full"):
            write_codes(graph, CodeSpec("hash", 16), tmp_path / "c", progress=False,
                        client=threads)
    assert not (tmp_path / "c").exists()
    with pytest.raises(CodeFormatError):
        read_codes(tmp_path / "c")
    assert not list(tmp_path.glob(".dask-coding-*"))  # the scratch files are gone too


def test_a_killed_worker_is_retried_or_named(client, tmp_path):
    """A worker process that dies mid-task: Dask re-runs the task on a fresh worker (every
    task is a pure function of its inputs); one that kills every worker it lands on ends as
    a named error, not a hang."""
    marker = tmp_path / "died-once"

    def dies_once(part, value):
        if not marker.exists():
            marker.write_text("x")
            os._exit(1)
        return value + part

    assert _Rounds(client, [1, 2], bar=_NoBar())(dies_once, 10, what="test") == [11, 12]
    assert marker.exists()

    def always_dies(part):
        os._exit(1)

    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, processes=True, dashboard_address=":0",
                          memory_limit=0) as cluster, Client(cluster) as fragile:
            with pytest.raises(DistributedCodingError, match="test round: KilledWorker"):
                _Rounds(fragile, [1], bar=_NoBar())(always_dies, what="test")


class _NoBar:
    def update(self, _):
        pass


def test_the_codes_command_runs_on_a_local_cluster(tmp_path):
    graph = hub_graph_dir(tmp_path)
    assert main(["codes", str(graph), "--bits", "16", "--hops", "2", "--out",
                 str(tmp_path / "local"), "--quiet"]) == 0
    assert main(["codes", str(graph), "--bits", "16", "--hops", "2", "--engine", "dask",
                 "--workers", "2", "--out", str(tmp_path / "dask"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "dask" / "codes.json").read_text())
    assert summary["engine"] == "dask" and summary["dask_workers"] == 2
    assert_same_codes(read_codes(tmp_path / "local"), read_codes(tmp_path / "dask"))


def test_dask_options_without_the_dask_engine_are_refused(tmp_path, capsys):
    graph = hub_graph_dir(tmp_path)
    assert main(["codes", str(graph), "--workers", "2", "--out", str(tmp_path / "c")]) != 0
    assert "--engine dask" in capsys.readouterr().err
    assert main(["codes", str(graph), "--engine", "dask", "--workers", "2", "--scheduler",
                 "tcp://127.0.0.1:1", "--out", str(tmp_path / "c")]) != 0
    assert "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
