"""Choosing the walk length of hash codes by a linear probe on the bits alone (``--hops auto``).

For each candidate ``K`` the graph is coded (``(A + I)^K R``, :mod:`hashembed.coding.coder`)
and a ridge regression from the bits, read as ``±1``, to one-hot training labels is scored by
2-fold cross-validation **within the training nodes** (no validation or test label is read):
the accuracy of its arg-max (single-label graphs) or, as the benchmarks score multi-label
graphs, the micro-F1 of each node's ``k`` highest outputs, ``k`` its label count (a fixed
threshold such as 0.5 predicts almost no label where labels are sparse, and scores every
``K`` near 0). The ``K`` whose bits carry the most class is chosen (the smallest on a
tie). It costs the coding of each candidate and a ``c × c`` solve: seconds, no GNN.

Why a probe: the GNN already reads a node's neighbours' codes, so what codes must add is what
lies further out; which ``K`` reaches a graph's classes depends on the graph (docs/accuracy.md),
and the bits-only probe picked the best ``K`` on every graph tried when this was designed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from hashembed.coding.coder import Codes, make_codes
from hashembed.core.codeformat import CodeSpec, unpack_codes
from hashembed.core.errors import ConfigError
from hashembed.core.metrics import accuracy, multilabel_f1
from hashembed.graph.memory import Graph

log = logging.getLogger(__name__)

RIDGE = 1.0        # λ of (XᵀX + λI) W = XᵀY, X the ±1 bits and a bias column
FOLDS = 2


@dataclass(frozen=True)
class HopsProbe:
    """What ``--hops auto`` chose and why.

    Attributes:
        hops: the chosen ``K``.
        scores: ``K`` -> the probe's cross-validated score on the training nodes (empty when
            too few training nodes are labelled to probe: ``K`` is then 1).
        metric: ``"accuracy"`` or ``"micro_f1"``.
        codes: the chosen ``K``'s codes (made while probing, so not made twice).
    """

    hops: int
    scores: dict[int, float]
    metric: str
    codes: Codes

    def record(self) -> dict:
        """The ``metrics.json`` entry."""
        return {"chosen": self.hops, "metric": self.metric,
                "probe": {str(k): round(v, 6) for k, v in self.scores.items()}}


def probe_score(bits: np.ndarray, targets: np.ndarray, multilabel: bool, seed: int) -> float:
    """Cross-validated score of a ridge probe from bits to targets: each training node is
    scored by the fold that did not fit it, then the benchmark's own metric is taken over
    all of them (:func:`~hashembed.core.metrics.accuracy`, or
    :func:`~hashembed.core.metrics.multilabel_f1`'s micro-F1: each node's ``k`` highest
    outputs, ``k`` its label count).

    Shapes:
        bits: ``bool [L, c]`` of the labelled training nodes.
        targets: ``int64 [L]`` classes, or ``bool [L, T]`` labels when ``multilabel``.
    """
    x = np.concatenate([bits.astype(np.float64) * 2 - 1, np.ones((bits.shape[0], 1))], axis=1)
    if multilabel:
        y = targets.astype(np.float64)
    else:
        y = np.zeros((targets.shape[0], int(targets.max()) + 1))
        y[np.arange(targets.shape[0]), targets] = 1.0
    fold = np.random.default_rng(seed).permutation(x.shape[0]) % FOLDS
    scores = np.zeros_like(y)  # out-of-fold outputs [L, classes or T]
    scored = np.zeros(x.shape[0], dtype=bool)
    for k in range(FOLDS):
        fit, held = fold != k, fold == k
        if not fit.any() or not held.any():
            continue
        # W = (XᵀX + λI)⁻¹ XᵀY on the other folds
        a = x[fit].T @ x[fit] + RIDGE * np.eye(x.shape[1])
        scores[held] = x[held] @ np.linalg.solve(a, x[fit].T @ y[fit])
        scored |= held
    if not scored.any():
        return 0.0
    if multilabel:
        return multilabel_f1(targets[scored], scores[scored])[0]
    return accuracy(targets[scored], scores[scored])


def choose_hops(graph: Graph, spec: CodeSpec, candidates=(1, 2, 3), progress: bool = True
                ) -> HopsProbe:
    """Code ``graph`` with each candidate walk length and keep the one whose bits best predict
    the training labels (module docstring). ``graph.masks["train"]`` names the training nodes.
    """
    if spec.scheme != "hash":
        raise ConfigError("--hops auto chooses the walk length of hash codes; random codes "
                          "read no graph")
    if not graph.masks or "train" not in graph.masks:
        raise ConfigError(f"{graph.name}: --hops auto needs a training split to probe")
    train = np.asarray(graph.masks["train"], dtype=bool)
    multilabel = graph.labels is None
    if multilabel:
        targets = np.asarray(graph.multilabels)[train]
        labelled = np.ones(targets.shape[0], dtype=bool)
    else:
        targets = np.asarray(graph.labels)[train]
        labelled = targets >= 0
        targets = targets[labelled]
    metric = "micro_f1" if multilabel else "accuracy"
    if targets.shape[0] < 2 * FOLDS or (not multilabel and np.unique(targets).size < 2):
        log.warning("%s: %d labelled training nodes are too few to probe the walk length; "
                    "--hops auto takes K = 1", graph.name, targets.shape[0])
        return HopsProbe(1, {}, metric, make_codes(graph, replace(spec, hops=1),
                                                   progress=progress))
    rows = np.nonzero(train)[0][labelled]
    scores: dict[int, float] = {}
    best = kept = None  # only the leading candidate's table is kept: one n x c/8 at a time
    for hops in candidates:
        codes = make_codes(graph, replace(spec, hops=hops), progress=progress)
        bits = unpack_codes(np.asarray(codes.packed)[rows, :spec.bit_bytes], spec.bits)
        scores[hops] = probe_score(bits, targets, multilabel, spec.seed)
        log.info("hops %d: bits-only probe %.4f on %d training nodes", hops, scores[hops],
                 rows.size)
        if best is None or (scores[hops], -hops) > (scores[best], -best):  # ties: smaller K
            best, kept = hops, codes
        del codes, bits
    return HopsProbe(best, scores, metric, kept)
