"""The training settings' defaults and choices, torch-free: one home for each.

:class:`~hashembed.train.runconfig.RunConfig` (and so ``hashembed train``'s flags) shows
them, and the configs derived from it (:class:`~hashembed.train.trainer.TrainConfig`,
:class:`~hashembed.train.minibatch.BatchConfig`,
:class:`~hashembed.train.linkpred.LinkTrainConfig`) default to them; both import them from
here, so neither imports the other's module.
"""

from hashembed.core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
NODE_EPOCHS, NODE_LR, NODE_PATIENCE = 300, 0.01, 50  # TrainConfig's defaults
BIT_FLIP = 0.1  # RunConfig's: the share of code bits flipped while training (docs/accuracy.md)
LINK_EPOCHS, LINK_LR = 20, 0.005  # LinkTrainConfig's (an epoch passes over every edge)
LINK_BATCH_SIZE = 65536  # LinkTrainConfig's: training edges per step
EVAL_BATCH_SIZE = 4096  # BatchConfig's: seed nodes per batch when scoring


def check_bit_flip(rate: float) -> None:
    """Refuse a bit-flip rate outside ``[0, 0.5)`` by name (at 0.5 every code is noise)."""
    if not 0 <= rate < 0.5:
        raise ConfigError(f"bit_flip={rate} must be in [0, 0.5) (0.5 would replace every code "
                          "by noise)")
