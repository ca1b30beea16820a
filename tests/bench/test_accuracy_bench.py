"""The accuracy study runs end to end on a tiny suite and reports every method (no timing asserts)."""

import json
from dataclasses import replace

import pytest
import torch

from hashembed.bench.accuracy import (METHODS, SUITES, DatasetSpec, Suite, run_accuracy_bench,
                                      select)
from hashembed.core.errors import CodeFormatError, ConfigError
from hashembed.train.encoders import budget_rows, qr_rows
from hashembed.graph.memory import Graph, symmetrize
from hashembed.train.linkpred import LinkScorer, LinkTrainConfig, fit_links
from hashembed.train.model import ModelConfig, NodeClassifier

from helpers import two_cliques_split


def test_tiny_suite_writes_json_markdown_and_plot(data_root, tmp_path):
    suite = Suite(datasets=(DatasetSpec("email-eu-core"),), bits=(32,), seeds=(0, 1), epochs=3,
                  dim=8, hidden=8)
    payload = run_accuracy_bench(suite, data_root, tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {r["method"] for r in saved["summary"]} == set(METHODS)
    assert len(saved["runs"]) == 2 * len(METHODS)
    assert all(0 <= r["test"] <= 1 and 0 <= r["train"] <= 1 for r in saved["runs"])
    assert all(1 <= r["best_epoch"] <= 3 for r in saved["runs"])
    assert "| email-eu-core | accuracy | hash | 32 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "accuracy_vs_bytes.png").read_bytes()[:4] == b"\x89PNG"
    assert payload["summary"][0]["seeds"] == 2
    assert payload["config"]["bits_per_index"] == 8


def test_runs_take_the_suite_shapes_and_the_dataset_settings():
    suite = Suite(datasets=(), bits=(64,), seeds=(0,), epochs=7, link_epochs=3, dim=16,
                  hidden=24, bits_per_index=4, codebook_dim=8, decoder_hidden=40)
    config = suite.run_config(DatasetSpec("tolokers", metric="roc_auc"), "hash", 64, seed=5)
    assert config.code_spec().bits_per_index == 4 and config.code_spec().seed == 5
    decoder = config.decoder_config()
    assert (decoder.bits, decoder.codebook_dim, decoder.hidden_dim, decoder.embedding_dim) == (
        64, 8, 40, 16)
    assert config.model_config(2).hidden_dim == 24 and config.train_config().epochs == 7
    assert config.task(multilabel=False).metric == "roc_auc"
    link = suite.run_config(DatasetSpec("ogbl-ddi", task="link", metric="hits@20"), "table",
                            None, seed=0)
    assert link.coding == "none" and link.link_config().epochs == 3


def test_dataset_overrides_split_per_seed_and_selection(data_root, tmp_path):
    """Seed k trains on Tolokers' official split k, with the dataset's own methods and epochs."""
    suite = Suite(datasets=(DatasetSpec("tolokers", split="official:{seed}", metric="roc_auc",
                                        seeds=(2, 7), methods=("degree",), epochs=2),
                            DatasetSpec("email-eu-core")),
                  bits=(32,), seeds=(0,), epochs=3, dim=8, hidden=8)
    payload = run_accuracy_bench(suite, data_root, tmp_path, progress=False,
                                 datasets=["tolokers"])
    runs = payload["runs"]
    assert [(r["dataset"], r["method"], r["split"]) for r in runs] == [
        ("tolokers", "degree", "official:2"), ("tolokers", "degree", "official:7")]
    with pytest.raises(ConfigError, match=r"\['cora'\] are not in this suite"):
        select(SUITES["full"], ["cora"])
    with pytest.raises(ConfigError, match=r"methods \['hashed'\] are unknown"):
        select(SUITES["full"], methods=["hashed"])
    with pytest.raises(CodeFormatError, match="b=3"):
        select(SUITES["full"], bits_per_index=3)
    ddi = select(SUITES["full"], ["ogbl-ddi"], methods=["hash", "qr"], bits_per_index=4)
    assert [(d.name, d.methods) for d in ddi.datasets] == [("ogbl-ddi", ("hash",))]
    assert ddi.methods == ("hash", "qr") and ddi.bits_per_index == 4
    # code lengths: the suite's and each dataset's own cut to those asked; a dataset left
    # with none is dropped; the degree field reaches the coded methods' runs only
    at128 = select(SUITES["full"], ["tolokers", "planetoid-cora"], bits=[128],
                   degree_field=True)
    assert at128.bits == (128,) and [d.name for d in at128.datasets] == [
        "planetoid-cora", "tolokers"]
    assert at128.run_config(at128.datasets[0], "hash", 128, 0).degree_field
    assert not at128.run_config(at128.datasets[0], "qr", 128, 0).degree_field
    at32 = select(SUITES["full"], ["tolokers", "planetoid-cora"], bits=[32])
    assert [d.name for d in at32.datasets] == ["planetoid-cora"]
    with pytest.raises(ConfigError, match=r"code lengths \[100\] are not in this suite"):
        select(SUITES["full"], bits=[100])


def test_budgets_match_the_code_bytes(cora):
    """Bytes per node are the runs' own memory accounting: QR and the hashing trick cost
    what the codes cost, a table 4·d."""
    from hashembed.bench.accuracy import _run

    suite = Suite(datasets=(), bits=(256,), seeds=(0,), epochs=1, dim=16, hidden=8)
    dataset = DatasetSpec("cora")
    for method in ("hashing_trick", "qr"):
        per_node = _run(suite, dataset, cora, None, method, 256, 0)["bytes_per_node"]
        assert per_node == pytest.approx(256 / 8, rel=0.05), method
    assert budget_rows(10_000, 128, 64) == 625
    assert qr_rows(10_000, 8, 64) == 100  # the budget is below 2·sqrt(n): K = sqrt(n)
    assert _run(suite, dataset, cora, None, "table", None, 0)["bytes_per_node"] == 4 * 16


def test_link_training_learns_a_planted_structure():
    """Two cliques; held-out intra-clique pairs must outscore cross-clique pairs."""
    n, split = 40, two_cliques_split()
    torch.manual_seed(0)
    gnn = NodeClassifier(torch.nn.Embedding(n, 8), 8, ModelConfig("sage", 2, 16, 16, 0.0))
    result = fit_links(gnn, LinkScorer(16, 16, dropout=0.0), torch.arange(n), n, split,
                       LinkTrainConfig(epochs=60, batch_size=128, lr=0.01, eval_every=10),
                       progress=False)
    assert result["test"] > 0.5 and result["best_epoch"] > 0


@pytest.mark.parametrize("method, bits", [("table", None), ("qr", 32), ("degree", None)])
def test_link_runs_record_the_best_epoch(method, bits):
    """Every method of the quick suite trains ogbl-ddi's task (tables, budgets and degrees)."""
    from hashembed.bench.accuracy import _run

    split = two_cliques_split()
    suite = Suite(datasets=(), bits=(32,), seeds=(0,), dim=8, hidden=8)
    dataset = DatasetSpec("planted", task="link", metric="hits@20", epochs=20)
    scores = _run(suite, dataset, Graph("planted", 40, symmetrize(split.train, 40)), split,
                  method, bits, seed=0)
    assert set(scores) == {"val", "test", "best_epoch", "bytes_per_node"}
    assert scores["best_epoch"] in range(1, 21) and 0 <= scores["test"] <= 1


def test_merge_reruns_one_dataset_and_keeps_the_others(data_root, tmp_path):
    suite = Suite(datasets=(DatasetSpec("email-eu-core"), DatasetSpec("twitch-PTBR")),
                  bits=(32,), seeds=(0,), methods=("degree",), epochs=2, dim=8, hidden=8)
    first = run_accuracy_bench(suite, data_root, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        run_accuracy_bench(suite, data_root, tmp_path / "empty", progress=False,
                           datasets=["email-eu-core"], merge=True)
    longer = Suite(datasets=(DatasetSpec("email-eu-core", epochs=4), DatasetSpec("twitch-PTBR")),
                   bits=(32,), seeds=(0,), methods=("degree",), epochs=2, dim=8, hidden=8)
    merged = run_accuracy_bench(longer, data_root, tmp_path, progress=False,
                                datasets=["email-eu-core"], merge=True)
    assert [r["dataset"] for r in merged["runs"]] == ["email-eu-core", "twitch-PTBR"]
    assert merged["runs"][1] == first["runs"][1]  # twitch kept as it was
    assert [(p["datasets"], p["methods"]) for p in merged["parts"]] == [
        (["twitch-PTBR"], ["degree"]), (["email-eu-core"], ["degree"])]
    assert merged["config"]["datasets"][0]["epochs"] == 4
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {r["dataset"] for r in saved["summary"]} == {"email-eu-core", "twitch-PTBR"}


def test_resume_skips_the_runs_logged_before_a_crash(data_root, tmp_path, monkeypatch):
    import hashembed.bench.accuracy as accuracy

    suite = Suite(datasets=(DatasetSpec("email-eu-core"),), bits=(32,), seeds=(0, 1, 2),
                  methods=("degree",), epochs=2, dim=8, hidden=8)
    real_run, seeds_run = accuracy._run, []

    def crash_on_seed_2(*args):
        seeds_run.append(args[-1])
        if args[-1] == 2:
            raise KeyboardInterrupt  # the session ends part way
        return real_run(*args)

    monkeypatch.setattr(accuracy, "_run", crash_on_seed_2)
    with pytest.raises(KeyboardInterrupt):
        run_accuracy_bench(suite, data_root, tmp_path, progress=False)
    assert not (tmp_path / "results.json").exists()
    logged = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert len(logged) == 3  # header + seeds 0 and 1
    with open(tmp_path / "progress.jsonl", "a") as f:
        f.write('{"dataset": "email-eu')  # a line cut off by the crash is dropped

    other = replace(suite, epochs=3)
    with pytest.raises(ConfigError, match="another selection"):
        run_accuracy_bench(other, data_root, tmp_path, progress=False, resume=True)

    seeds_run.clear()
    monkeypatch.setattr(accuracy, "_run",
                        lambda *args: seeds_run.append(args[-1]) or real_run(*args))
    payload = run_accuracy_bench(suite, data_root, tmp_path, progress=False, resume=True)
    assert seeds_run == [2]
    assert [r["seed"] for r in payload["runs"]] == [0, 1, 2]
    assert [r["test"] for r in payload["runs"][:2]] == [json.loads(line)["test"]
                                                      for line in logged[1:]]
    assert payload["seconds"] >= sum(r["seconds"] for r in payload["runs"])
    assert not (tmp_path / "progress.jsonl").exists()


def test_merge_replaces_only_the_methods_it_runs(data_root, tmp_path):
    suite = Suite(datasets=(DatasetSpec("email-eu-core"),), bits=(32,), seeds=(0,),
                  methods=("table", "hash", "degree"), epochs=2, dim=8, hidden=8)
    first = run_accuracy_bench(suite, data_root, tmp_path, progress=False)
    merged = run_accuracy_bench(suite, data_root, tmp_path, progress=False,
                                methods=["hash"], merge=True)
    assert [r["method"] for r in merged["runs"]] == ["table", "hash", "degree"]
    assert merged["runs"][0] == first["runs"][0] and merged["runs"][2] == first["runs"][2]
    assert [(p["datasets"], p["methods"]) for p in merged["parts"]] == [
        (["email-eu-core"], ["table", "degree"]), (["email-eu-core"], ["hash"])]
    assert list(merged["config"]["methods"]) == ["table", "hash", "degree"]
    # the dataset now lists fewer methods: the dropped one's old runs go with the re-run
    fewer = Suite(datasets=(DatasetSpec("email-eu-core", methods=("table", "hash")),),
                  bits=(32,), seeds=(0,), methods=("table", "hash", "degree"), epochs=2, dim=8,
                  hidden=8)
    again = run_accuracy_bench(fewer, data_root, tmp_path, progress=False, methods=["table"],
                               merge=True)
    assert [r["method"] for r in again["runs"]] == ["table", "hash"]
    with pytest.raises(ConfigError, match="b=8, this call with b=4"):
        run_accuracy_bench(suite, data_root, tmp_path, progress=False, methods=["hash"],
                           bits_per_index=4, merge=True)
    assert again["config"]["bit_flip"] == suite.bit_flip
    with pytest.raises(ConfigError, match=rf"--bit-flip {suite.bit_flip}, this call with 0.0"):
        run_accuracy_bench(suite, data_root, tmp_path, progress=False, methods=["hash"],
                           bit_flip=0.0, merge=True)
