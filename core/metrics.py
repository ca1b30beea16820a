"""Evaluation metrics, each as its benchmark defines it (numpy in, float out).

- ``hits_at_k``: OGB link prediction (``ogb.linkproppred.Evaluator``): the fraction of positive
  edges scored **strictly above** the K-th highest negative score; 1.0 when there are fewer
  than K negatives.
- ``roc_auc``: binary ROC-AUC (Tolokers' published metric), from ranks (Mann-Whitney U), ties
  counted as one half.
- ``multilabel_f1``: micro and macro F1 for multi-label nodes (BlogCatalog) under the standard
  protocol of DeepWalk/node2vec papers: each node predicts its ``k`` highest-scored labels,
  ``k`` being its true label count.
- ``accuracy``: arg-max class equals the label.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def hits_at_k(pos_scores: np.ndarray, neg_scores: np.ndarray, k: int = 20) -> float:
    """Shapes: ``pos_scores [P]``, ``neg_scores [Q]`` (any float dtype)."""
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if neg.size < k:
        return 1.0
    kth = np.partition(neg, neg.size - k)[neg.size - k]  # K-th largest negative
    return float((pos > kth).mean())


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Shapes: ``labels [N]`` in {0, 1}, ``scores [N]`` (higher = class 1)."""
    labels = np.asarray(labels).astype(bool).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64).ravel())  # ties get the mean rank
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def multilabel_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(micro_f1, macro_f1)``. Shapes: ``labels bool [N, L]``, ``scores [N, L]``."""
    labels = np.asarray(labels, dtype=bool)
    counts = labels.sum(axis=1)
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")
    predicted = np.zeros_like(labels)
    rows = np.repeat(np.arange(labels.shape[0]), counts)
    cols = order[np.arange(order.shape[1])[None, :] < counts[:, None]]
    predicted[rows, cols] = True
    tp = (predicted & labels).sum(axis=0).astype(np.float64)
    fp = (predicted & ~labels).sum(axis=0)
    fn = (~predicted & labels).sum(axis=0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    denom = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(micro), float(per_label.mean())


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    """Shapes: ``labels int [N]``, ``scores [N, K]``."""
    return float((np.asarray(scores).argmax(axis=1) == np.asarray(labels)).mean())
