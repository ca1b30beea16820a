"""Data-parallel training under torchrun: 2 CPU processes take the step one process takes on
the union of their batches; the run rank 0 writes exports and serves."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hashembed.core.errors import ConfigError
from hashembed.train.distributed import (Distributed, check_distributed_run,
                                         check_split_shares, epoch_shares)
from hashembed.train.runconfig import RunConfig


@pytest.mark.parametrize("num_seeds,batch,world", [(10, 3, 2), (7, 2, 3), (1, 4, 2), (12, 2, 2)])
def test_epoch_shares_are_disjoint_equal_and_cover_the_seeds(num_seeds, batch, world):
    seeds = np.arange(100, 100 + num_seeds)
    shares = [epoch_shares(seeds, batch, world, r, seed=0, epoch=1) for r in range(world)]
    steps = [-(-len(s) // batch) for s in shares]
    assert len(set(steps)) == 1  # every rank takes as many steps
    covered = np.concatenate(shares)
    assert set(covered) == set(seeds)
    assert len(covered) - num_seeds == -num_seeds % world  # padding: under one per rank
    for step in range(steps[0]):  # each step's batches are disjoint across ranks
        batches = [s[step * batch:(step + 1) * batch] for s in shares]
        assert len({len(b) for b in batches}) == 1
        joined = np.concatenate(batches)
        assert len(np.unique(joined)) == len(joined) or num_seeds < world
    again = epoch_shares(seeds, batch, world, 0, seed=0, epoch=1)
    np.testing.assert_array_equal(again, shares[0])  # every rank draws the same permutation
    assert not np.array_equal(epoch_shares(seeds, batch, world, 0, seed=0, epoch=2),
                              shares[0]) or num_seeds < 3


def test_splits_smaller_than_the_job_are_refused_before_any_rank_trains():
    masks = {"train": np.array([1, 1, 1, 0, 0, 0], bool), "val": np.array([0, 0, 0, 1, 1, 0], bool)}
    check_split_shares(masks, 2)
    with pytest.raises(ConfigError, match="train split has 3 nodes, fewer than the 4"):
        check_split_shares(masks, 4)
    with pytest.raises(ConfigError, match="val split has 2 nodes, fewer than the 3"):
        check_split_shares(masks, 3)
    with pytest.raises(ConfigError, match="val split has 0 nodes"):
        check_split_shares({"train": masks["train"]}, 2)


def test_a_rank_without_a_gpu_of_its_own_is_refused_by_name():
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=f"needs a GPU of its own, this machine has {gpus}"):
        Distributed(rank=1, world_size=2, local_rank=gpus).start("cuda")


def test_the_environment_names_the_job():
    assert Distributed.from_environment({}) is None
    assert Distributed.from_environment({"WORLD_SIZE": "1"}) is None
    job = Distributed.from_environment({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (job.rank, job.world_size, job.is_writer) == (2, 4, False)
    with pytest.raises(ConfigError, match="torchrun"):
        Distributed.from_environment({"WORLD_SIZE": "2"})


@pytest.mark.parametrize("change,message", [
    (dict(coding="qr"), "sparse gradients"),
    (dict(coding="none"), "sparse gradients"),
    (dict(batch_size=None), "--batch-size"),
])
def test_what_ddp_cannot_train_is_refused_by_name(change, message):
    config = RunConfig(**{"batch_size": 64, **change})
    with pytest.raises(ConfigError, match=message):
        check_distributed_run(config, False, "g", "c")


def test_torchrun_needs_a_graph_directory_and_codes():
    with pytest.raises(ConfigError, match="--graph and --codes"):
        check_distributed_run(RunConfig(batch_size=64), False, "g", None)
    with pytest.raises(ConfigError, match="link prediction"):
        check_distributed_run(RunConfig(batch_size=64), True, None, None)


def _cli(*args):
    return [sys.executable, "-m", "hashembed", *map(str, args)]


def _train_flags(graph, codes, batch):
    # one step an epoch (300 training nodes), every neighbour (no sampling), no dropout and
    # no bit flips: the two runs see the same subgraphs and draw nothing at random
    return ["train", "--graph", graph, "--codes", codes, "--bits", 32, "--hops", 1,
            "--split", "random:0.5,0.25,0.25", "--epochs", 1, "--batch-size", batch,
            "--fanout=-1,-1", "--dropout", 0, "--bit-flip", 0, "--lr", 0.01, "--quiet"]


@pytest.mark.slow
def test_two_processes_take_the_step_of_one_process_on_the_union(tmp_path):
    from hashembed.pipeline import load_run

    graph, codes = tmp_path / "g", tmp_path / "c"
    subprocess.run(_cli("synth", "--num-nodes", 600, "--out", graph, "--quiet"), check=True,
                   capture_output=True)
    subprocess.run(_cli("codes", graph, "--bits", 32, "--out", codes, "--quiet"), check=True,
                   capture_output=True)
    one = subprocess.run(_cli(*_train_flags(graph, codes, 300), "--out", tmp_path / "one"),
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", "-m", "hashembed",
                          *map(str, _train_flags(graph, codes, 150)), "--out",
                          tmp_path / "two"], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 1
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["world_size"] == 1
    # the control: one process with the share of one rank (two steps of 150) ends elsewhere
    half = subprocess.run(_cli(*_train_flags(graph, codes, 150), "--out", tmp_path / "half"),
                          capture_output=True, text=True)
    assert half.returncode == 0, half.stderr[-2000:]
    union, ranks, control = (load_run(tmp_path / name).model.state_dict()
                             for name in ("one", "two", "half"))
    compared = [k for k, v in union.items() if v.is_floating_point()]
    assert len(compared) > 4
    for name in compared:
        torch.testing.assert_close(ranks[name], union[name], rtol=1e-4, atol=1e-5, msg=name)
    assert max(float((control[k] - union[k]).abs().max()) for k in compared) > 1e-3

    # the run rank 0 wrote exports (with its ONNX Runtime parity check) and serves
    from hashembed.pipeline import export, predictor

    export(tmp_path / "two", tmp_path / "bundle")
    served = predictor(tmp_path / "bundle").predict(np.arange(10))
    assert served.logits.shape[0] == 10 and np.isfinite(served.logits).all()
