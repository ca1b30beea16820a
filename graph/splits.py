"""Train/validation/test splits: the ``--split`` option.

``random:0.6,0.2,0.2`` splits the labelled nodes at random (seeded); ``official`` keeps the
split the dataset ships (``official:K`` picks split ``K`` where a dataset ships several, as
Tolokers does); ``public`` is a synonym of ``official`` for Planetoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashembed.core.errors import ConfigError


@dataclass(frozen=True)
class SplitSpec:
    """A parsed ``--split`` value: ``kind`` is ``"random"`` or ``"official"``."""

    kind: str
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    index: int = 0

    def __str__(self) -> str:
        if self.kind == "random":
            return "random:" + ",".join(f"{f:g}" for f in self.fractions)
        return f"official:{self.index}"


def parse_split(text: str) -> SplitSpec:
    """Parse ``random:TRAIN,VAL,TEST`` | ``official[:K]`` | ``public``."""
    kind, _, rest = text.partition(":")
    if kind == "random":
        try:
            fractions = tuple(float(x) for x in (rest or "0.6,0.2,0.2").split(","))
        except ValueError:
            raise ConfigError(f"--split {text!r}: fractions must be numbers") from None
        if len(fractions) != 3 or min(fractions) < 0 or not 0 < sum(fractions) <= 1 + 1e-9:
            raise ConfigError(
                f"--split {text!r}: need three non-negative fractions summing to at most 1"
            )
        return SplitSpec("random", fractions)  # type: ignore[arg-type]
    if kind in ("official", "public"):
        if rest and not rest.isdigit():
            raise ConfigError(f"--split {text!r}: split index must be a non-negative integer")
        return SplitSpec("official", index=int(rest or 0))
    raise ConfigError(f"--split {text!r}: expected random:TRAIN,VAL,TEST, official[:K] or public")


def random_split(labels: np.ndarray, fractions: tuple[float, float, float],
                 seed: int) -> dict[str, np.ndarray]:
    """Split the labelled nodes (``labels >= 0``) at random.

    Shapes:
        labels: ``int64 [n]`` with ``-1`` for unlabelled nodes.
        returns: ``{"train", "val", "test"}`` -> ``bool [n]``, disjoint.
    """
    labelled = np.nonzero(labels >= 0)[0]
    order = np.random.default_rng(seed).permutation(labelled)
    n_train = int(round(fractions[0] * len(order)))
    n_val = int(round(fractions[1] * len(order)))
    n_test = min(int(round(fractions[2] * len(order))), len(order) - n_train - n_val)
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:n_train + n_val + n_test]}
    masks = {}
    for name, nodes in parts.items():
        mask = np.zeros(labels.shape[0], dtype=bool)
        mask[nodes] = True
        masks[name] = mask
    return masks
