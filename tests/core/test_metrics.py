import numpy as np
import pytest

from hashembed.core.metrics import accuracy, hits_at_k, multilabel_f1, roc_auc


def test_hits_at_k_hand_worked():
    neg = np.array([0.1, 0.9, 0.5, 0.7])  # 2nd highest negative: 0.7
    pos = np.array([0.8, 0.7, 0.95, 0.2])  # strictly above 0.7: 0.8 and 0.95
    assert hits_at_k(pos, neg, k=2) == 0.5
    assert hits_at_k(pos, neg[:1], k=2) == 1.0  # fewer negatives than K


def test_hits_at_20_equals_ogb_evaluator():
    import torch
    from ogb.linkproppred import Evaluator  # in the test extra

    rng = np.random.default_rng(0)
    evaluator = Evaluator(name="ogbl-ddi")
    for trial in range(5):
        pos = rng.random(500).astype(np.float32)
        neg = rng.random(3000).astype(np.float32)
        if trial == 4:  # ties with the K-th negative must not count
            pos[:50] = np.sort(neg)[-20]
        expected = evaluator.eval({"y_pred_pos": torch.from_numpy(pos),
                                   "y_pred_neg": torch.from_numpy(neg)})["hits@20"]
        assert hits_at_k(pos, neg, 20) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_hand_worked_and_ties():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_multilabel_f1_top_k_protocol():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.9], [0.1, 0.2, 0.3]])
    # predictions: {0}, {2, 1}, {2} -> tp = 3 (0 at row 0, 1 at row 1, 2 at row 2), fp 1, fn 1
    micro, macro = multilabel_f1(labels, scores)
    assert micro == pytest.approx(6 / 8)
    # label 0: tp 1 fn 1 -> 2/3; label 1: tp 1 -> 1; label 2: tp 1 fp 1 -> 2/3
    assert macro == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_accuracy():
    assert accuracy([1, 0], [[0.1, 0.9], [0.3, 0.2]]) == 1.0
