"""The run directory that ``hashembed train`` writes and ``hashembed export`` reads.

    RUN_DIR/
      checkpoint.pt   configs (plain dicts) + model state_dict; rebuilds the model alone
      codes.npy       uint8 [n, c/8] packed codes (absent for --coding none)
      graph.npz       num_nodes, edge_index int64 [2, E], labels int64 [n], split masks
      metrics.json    scores and memory accounting

Each file is written to a temporary name and renamed, so a crash never leaves a truncated one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hashembed.atomic import atomic_write
from hashembed.codeformat import CodeSpec, check_packed
from hashembed.errors import ConfigError, GraphInputError
from hashembed.train.decoder import DecoderConfig
from hashembed.train.graph import SPLIT_NAMES, Graph
from hashembed.train.model import ModelConfig, NodeClassifier, build_model
from hashembed.train.trainer import TrainConfig

RUN_FORMAT = "hashembed-run"
RUN_FORMAT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
CODES_FILE = "codes.npy"
GRAPH_FILE = "graph.npz"
METRICS_FILE = "metrics.json"


@dataclass
class Run:
    """Everything a finished training run left behind, rebuilt from its directory."""

    path: Path
    model: NodeClassifier
    graph: Graph
    code_spec: CodeSpec | None
    thresholds: np.ndarray | None
    codes: np.ndarray | None
    model_config: ModelConfig
    decoder_config: DecoderConfig | None
    train_config: TrainConfig
    metrics: dict

    def node_input(self) -> torch.Tensor:
        """What the encoder takes for all nodes: codes ``uint8 [n, c/8]`` or ids ``int64 [n]``."""
        if self.codes is not None:
            return torch.from_numpy(np.array(self.codes))  # a writable copy of the memory map
        return torch.arange(self.graph.num_nodes)


def save_run(run_dir: str | Path, model: NodeClassifier, graph: Graph, code_spec: CodeSpec | None,
             thresholds: np.ndarray | None, codes: np.ndarray | None, train_config: TrainConfig,
             metrics: dict) -> Path:
    """Write a run directory (see module docstring)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    decoder_config = getattr(model.encoder, "config", None)
    checkpoint = {
        "format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION,
        "code_spec": None if code_spec is None else code_spec.to_dict(),
        "thresholds": None if thresholds is None else thresholds.tolist(),
        "decoder": None if decoder_config is None else decoder_config.to_dict(),
        "model": model.config.to_dict(),
        "train": train_config.to_dict(),
        "num_nodes": graph.num_nodes,
        "embedding_dim": int(model.convs[0].in_channels),
        "state_dict": model.state_dict(),
    }
    atomic_write(run_dir / CHECKPOINT_FILE, lambda f: torch.save(checkpoint, f))
    if codes is not None:
        atomic_write(run_dir / CODES_FILE, lambda f: np.save(f, codes, allow_pickle=False))
    masks = graph.masks or {}
    atomic_write(run_dir / GRAPH_FILE, lambda f: np.savez(
        f, name=np.array(graph.name), num_nodes=np.int64(graph.num_nodes),
        edge_index=graph.edge_index, labels=graph.labels,
        **{f"mask_{k}": masks[k] for k in SPLIT_NAMES if k in masks}))
    atomic_write(run_dir / METRICS_FILE, (json.dumps(metrics, indent=2) + "\n").encode())
    return run_dir


def load_run(run_dir: str | Path) -> Run:
    """Rebuild model, graph and codes from a run directory."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise ConfigError(f"{run_dir} is not a training run: {CHECKPOINT_FILE} is missing")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise ConfigError(f"{ckpt_path} cannot be read: {e}") from None
    if ckpt.get("format") != RUN_FORMAT or ckpt.get("format_version") != RUN_FORMAT_VERSION:
        raise ConfigError(f"{ckpt_path} is not a version {RUN_FORMAT_VERSION} {RUN_FORMAT} "
                          "checkpoint")
    code_spec = None if ckpt["code_spec"] is None else CodeSpec.from_dict(ckpt["code_spec"])
    decoder_config = None if ckpt["decoder"] is None else DecoderConfig(**ckpt["decoder"])
    model_config = ModelConfig(**ckpt["model"])
    model = build_model(model_config, decoder_config, ckpt["num_nodes"], ckpt["embedding_dim"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()

    graph_path = run_dir / GRAPH_FILE
    if not graph_path.is_file():
        raise GraphInputError(f"{graph_path} is missing")
    with np.load(graph_path) as data:
        masks = {k: data[f"mask_{k}"] for k in SPLIT_NAMES if f"mask_{k}" in data}
        graph = Graph(str(data["name"]), int(data["num_nodes"]), data["edge_index"],
                      data["labels"], masks or None)
    codes = None
    if code_spec is not None:
        codes = np.load(run_dir / CODES_FILE, mmap_mode="r", allow_pickle=False)
        check_packed(codes, code_spec.bits)
        if codes.shape[0] != graph.num_nodes:
            raise ConfigError(f"{run_dir / CODES_FILE} has {codes.shape[0]} rows, the graph "
                              f"has {graph.num_nodes} nodes")
    metrics = {}
    if (run_dir / METRICS_FILE).is_file():
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    thresholds = None if ckpt["thresholds"] is None else np.array(ckpt["thresholds"], np.float32)
    return Run(run_dir, model, graph, code_spec, thresholds, codes, model_config,
               decoder_config, TrainConfig(**ckpt["train"]), metrics)
