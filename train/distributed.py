"""Data-parallel training under ``torchrun``: each rank draws its share of every batch, the
decoder and GNN are replicated (DDP), evaluation is split and gathered, rank 0 writes the run.

Launch::

    torchrun --nproc-per-node N -m hashembed train --graph G --codes C --batch-size B ...

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in each
process's environment; :meth:`Distributed.from_environment` reads them when the run starts
(never at import) and joins the process group: gloo on the CPU, NCCL on CUDA (each rank on
GPU ``LOCAL_RANK``).

What each rank holds: the code table and the graph's CSR memory-mapped from shared storage
(the page cache serves every rank of a machine once), the model (codes + decoder + GNN are
small: that is the method's point) and its optimiser state. Per epoch every rank draws the
same seeded permutation of the training nodes; step ``i`` takes the next ``N × B`` of it
and rank ``r`` trains on the ``r``-th ``B`` (:class:`ShardedSeedLoader`), so the ranks'
batches are disjoint and their union is the batch one process would take with ``N × B``.
DDP averages the ranks' gradients, which equals the gradient of the union's mean loss (equal
shares). Validation and test seeds are cut into ``N`` contiguous shares, scored where they
lie and gathered, so every rank sees the same scores and stops at the same epoch.

Tables (``--coding none``, ``qr``, ``hashing-trick``) are per-node parameters trained with
sparse gradients and ``SparseAdam``: DDP's all-reduce serves dense gradients only (NCCL has
no sparse all-reduce), so they are refused by name.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from hashembed.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job.

    Attributes:
        rank: ``0 … world_size - 1``; rank 0 writes the run.
        world_size: processes training together.
        local_rank: the rank within its machine (its GPU).
    """

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_environment(cls, environ=None) -> "Distributed | None":
        """The job ``torchrun`` described in the environment, or ``None`` for a lone process
        (no ``WORLD_SIZE``, or 1)."""
        environ = os.environ if environ is None else environ
        world = int(environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        try:
            return cls(int(environ["RANK"]), world, int(environ.get("LOCAL_RANK", "0")))
        except (KeyError, ValueError):
            raise ConfigError("WORLD_SIZE is set but RANK is not: launch distributed training "
                              "with torchrun") from None

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def start(self, device: str) -> str:
        """Join the process group (gloo on the CPU, NCCL on CUDA); returns the device this rank
        trains on (``"cuda"`` means GPU ``local_rank``)."""
        import torch.distributed as dist

        cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if cuda:
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if self.local_rank >= gpus:
                raise ConfigError(f"torchrun rank {self.rank} (local rank {self.local_rank}) "
                                  f"needs a GPU of its own, this machine has {gpus}: start "
                                  "at most one process per GPU, or train with --device cpu")
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        log.info("rank %d of %d (%s)", self.rank, self.world_size, "nccl" if cuda else "gloo")
        return "cuda" if cuda else "cpu"

    def stop(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` replicated with DDP (rank 0's weights broadcast, gradients averaged)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index if device.index is not None else self.local_rank] \
            if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def share(self, seeds: np.ndarray) -> np.ndarray:
        """This rank's contiguous share of ``seeds`` (for scoring; shares differ by at most
        one node)."""
        return np.array_split(np.asarray(seeds), self.world_size)[self.rank]

    def gather(self, array: np.ndarray) -> np.ndarray:
        """Every rank's ``array`` concatenated in rank order (on every rank)."""
        import torch.distributed as dist

        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, array)
        parts = [p for p in parts if p is not None and len(p)]
        return np.concatenate(parts) if parts else array

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def check_split_shares(masks: dict[str, np.ndarray], world_size: int) -> None:
    """Raise unless the train and validation splits have a node for each of ``world_size``
    ranks. Every rank checks the same masks before any collective, so all stop alike: a rank
    left without seeds would skip the step's all-reduce the others wait in."""
    for split in ("train", "val"):
        count = int(np.count_nonzero(masks[split])) if split in masks else 0
        if count < world_size:
            raise ConfigError(f"the {split} split has {count} nodes, fewer than the "
                              f"{world_size} torchrun ranks: each rank needs one")


def epoch_shares(seeds: np.ndarray, batch_size: int, world_size: int, rank: int, seed: int,
                 epoch: int) -> np.ndarray:
    """Rank ``rank``'s training seeds of epoch ``epoch``, batch after batch: ``int64 [k]``.

    Every rank draws the same permutation (seeded by ``seed`` and ``epoch``), padded with its
    own first nodes to a multiple of ``world_size`` (at most ``world_size - 1`` repeats), and
    cut into global batches of ``world_size × batch_size``; rank ``r`` keeps the ``r``-th of
    the ``world_size`` equal shares of each. So every rank takes the same number of steps,
    each step's shares are disjoint, and a full step's union is ``world_size × batch_size``
    nodes.
    """
    order = np.random.default_rng([seed, epoch]).permutation(np.asarray(seeds, np.int64))
    pad = -order.shape[0] % world_size
    order = np.concatenate([order, order[:pad]])
    step = world_size * batch_size
    return np.concatenate([np.array_split(order[lo:lo + step], world_size)[rank]
                           for lo in range(0, order.shape[0], step)])


class ShardedSeedLoader:
    """The training loader of one rank: a new :func:`epoch_shares` each time it is iterated,
    batched by PyG's ``NodeLoader`` (:func:`~hashembed.train.minibatch.node_loader`).

    Args:
        make_loader: ``seeds int64 [k] -> NodeLoader`` batching them in order, ``B`` at a time.
        seeds: ``int64 [k]`` every training node.
        batch_size: ``B``, seeds per rank per step.
        scoring: the loader that scores this split after training (this rank's contiguous
            share, no padding), used by :func:`~hashembed.train.trainer.fit`.
    """

    def __init__(self, make_loader, seeds: np.ndarray, batch_size: int, dist: Distributed,
                 seed: int, scoring=None):
        self.make_loader, self.seeds, self.batch_size = make_loader, seeds, batch_size
        self.dist, self.seed, self.epoch = dist, seed, 0
        self.scoring = scoring

    def __len__(self) -> int:
        padded = -(-len(self.seeds) // self.dist.world_size) * self.dist.world_size
        return -(-padded // (self.dist.world_size * self.batch_size))

    def __iter__(self):
        self.epoch += 1
        shares = epoch_shares(self.seeds, self.batch_size, self.dist.world_size,
                              self.dist.rank, self.seed, self.epoch)
        return iter(self.make_loader(shares))


def check_distributed_run(config, link: bool, graph_dir, codes_dir) -> None:
    """Refuse, by name, what data-parallel training does not do."""
    if link:
        raise ConfigError("torchrun: link prediction (ogbl-ddi) trains full-graph on one "
                          "process; run it without torchrun")
    if config.coding not in ("hash", "random"):
        raise ConfigError(f"torchrun: --coding {config.coding} trains a per-node table with "
                          "sparse gradients, which DDP does not all-reduce; train tables on "
                          "one process, or codes (hash, random) with torchrun")
    if config.batch_size is None:
        raise ConfigError("torchrun: data-parallel training samples mini-batches; give "
                          "--batch-size (seeds per rank per step)")
    if graph_dir is None or codes_dir is None:
        raise ConfigError("torchrun: every rank memory-maps the same graph directory and code "
                          "table; give --graph and --codes (make codes first with hashembed "
                          "codes, --engine dask at scale)")
    if config.holdout_nodes is not None:
        raise ConfigError("torchrun: --holdout-nodes rewrites the graph in memory; run it on "
                          "one process")
