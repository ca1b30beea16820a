"""The run directory that ``hashembed train`` writes and ``hashembed export`` reads.

    RUN_DIR/
      checkpoint.pt   the run's whole RunConfig ("run") and the resolved configs (plain
                      dicts), class names, model state_dict, the run id and the sha256 of
                      codes.npy and graph.npz; rebuilds the model alone
      codes.npy       uint8 [n, c/8] packed codes (absent for --coding none)
      graph.npz       num_nodes, edge_index int64 [2, E], labels int64 [n] (or multilabels
                      bool [n, L] for a multi-label graph), split masks
      ids_*.npy       the users' own node ids of the rows, when they are not 0 .. n-1
                      (:mod:`hashembed.core.idmap`)
      holdout.json    with --holdout-nodes: the held-out nodes' ids, labels, neighbours
      graph_ref.json  instead of the edges and ids, for a graph directory
                      (``train --graph``): its path and header digest
      metrics.json    scores, memory accounting and the configs (``config.run``: the whole
                      RunConfig; ``hashembed train --config metrics.json`` repeats the run)
      run.json        written last: format + version, run id, size + sha256 of every file above,
                      and a digest of itself

The directory is written like a bundle (:class:`~hashembed.core.atomic.StagedDirectory`): staged
beside the target and renamed into place, so a killed ``train`` leaves the previous run whole.
:func:`load_run` refuses a run whose files do not all match ``run.json`` or whose checkpoint
names another run id or other codes: parts of two runs never load together.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hashembed import __version__
from hashembed.coding.coder import Codes
from hashembed.core.artifact import ArtifactFormat, ArtifactWriter, utc_now
from hashembed.core.codeformat import CodeSpec, check_table
from hashembed.core.errors import HashembedError, RunCorruptError, RunExistsError
from hashembed.core.idmap import IdMap
from hashembed.core.integrity import json_safe, sha256_file
from hashembed.train.decoder import DecoderConfig
from hashembed.train.encoders import IdEncoderConfig
from hashembed.graph.memory import SPLIT_NAMES, Graph
from hashembed.train.model import ModelConfig, NodeClassifier, build_model
from hashembed.train.runconfig import RunConfig
from hashembed.train.trainer import TrainConfig

if TYPE_CHECKING:
    from hashembed.graph.holdout import HeldOut

RUN_FORMAT = ArtifactFormat("hashembed-run", 2, "run.json", "run directory",
                            error=RunCorruptError, exists_error=RunExistsError,
                            remake="train again")
RUN_MANIFEST = RUN_FORMAT.header
CHECKPOINT_FILE = "checkpoint.pt"
CODES_FILE = "codes.npy"
GRAPH_FILE = "graph.npz"
METRICS_FILE = "metrics.json"
GRAPH_REF_FILE = "graph_ref.json"
HOLDOUT_FILE = "holdout.json"  # nodes taken out before training (train --holdout-nodes)


@dataclass
class Run:
    """Everything a finished training run left behind, rebuilt from its directory."""

    path: Path
    run_id: str
    model: NodeClassifier
    graph: Graph
    codes: Codes | None  # the run's code table (memory-mapped) and its spec; None for ids
    model_config: ModelConfig
    decoder_config: DecoderConfig | None
    train_config: TrainConfig
    metrics: dict
    config: RunConfig  # the run's whole config
    holdout: "HeldOut | None" = None

    def node_input(self) -> torch.Tensor:
        """What the encoder takes for all nodes: codes ``uint8 [n, c/8]`` or ids ``int64 [n]``."""
        if self.codes is not None:
            # a writable copy of the memory map
            return torch.from_numpy(np.array(self.codes.packed))
        return torch.arange(self.graph.num_nodes)


def check_run_dir(out_dir: str | Path, overwrite: bool = False, inputs=()) -> Path:
    """Raise unless ``out_dir`` may receive a run (checked before any work starts)."""
    return RUN_FORMAT.check_target(out_dir, overwrite, inputs)


class RunWriter(ArtifactWriter):
    """Stage a run directory beside ``out_dir``; :meth:`save` writes it, :meth:`commit` moves it.

    Create it before training so a bad ``--out`` fails at once, not after the last epoch.
    ``overwrite`` replaces only a directory that already holds a run.
    """

    def __init__(self, out_dir: str | Path, overwrite: bool = False, inputs=()):
        super().__init__(RUN_FORMAT, out_dir, overwrite=overwrite, inputs=inputs)

    def save(self, model: NodeClassifier, graph: Graph, codes: Codes | None,
             train_config: TrainConfig, metrics: dict, holdout=None,
             extra: dict | None = None) -> str:
        """Write every file into the staging directory, ``run.json`` last; returns the run id.

        ``extra``: more entries for ``checkpoint.pt`` (a link run's scorer weights)."""
        run_id = uuid.uuid4().hex
        if codes is not None:
            self.save_array(CODES_FILE, codes.packed)
        masks = graph.masks or {}
        # a graph read from a graph directory is referenced, not copied (labels and the
        # run's split are kept here either way)
        edges = {} if graph.source_dir is not None else {"edge_index": graph.edge_index}
        with open(self.file(GRAPH_FILE), "wb") as f:
            targets = {key: value for key, value in (("labels", graph.labels),
                                                     ("multilabels", graph.multilabels))
                       if value is not None}
            np.savez(f, name=np.array(graph.name), num_nodes=np.int64(graph.num_nodes),
                     **targets, **edges,
                     **{f"mask_{k}": masks[k] for k in SPLIT_NAMES if k in masks})
        self.add_file(GRAPH_FILE)
        if graph.source_dir is not None:
            source = graph.source_dir
            self.save_json(GRAPH_REF_FILE, {"graph_dir": str(Path(source.path).resolve()),
                                            "digest": source.digest})
        else:
            graph.ids.save(self.save_array)
        if holdout is not None:
            self.save_json(HOLDOUT_FILE, holdout.to_dict())
        decoder_config = getattr(model.encoder, "config", None)
        id_config = getattr(model.encoder, "id_config", None)
        checkpoint = {
            "format": RUN_FORMAT.name, "format_version": RUN_FORMAT.version, "run_id": run_id,
            "parts": {name: sha256_file(self.file(name)) for name in self._files},
            "code_spec": None if codes is None else codes.spec.to_dict(),
            **(codes.record() if codes is not None else
               {"thresholds": None, "hop_shifts": None}),
            "decoder": None if decoder_config is None else decoder_config.to_dict(),
            "id_encoder": None if id_config is None else id_config.to_dict(),
            "model": model.config.to_dict(),
            "train": train_config.to_dict(),
            "num_nodes": graph.num_nodes,
            "id_kind": graph.ids.kind,
            "class_names": None if graph.class_names is None else list(graph.class_names),
            "embedding_dim": int(model.convs[0].in_channels),
            "state_dict": model.state_dict(),
        }
        clash = set(extra or {}) & set(checkpoint)
        if clash:
            raise ValueError(f"extra checkpoint entries {sorted(clash)} would replace the run's")
        checkpoint.update(extra or {})
        torch.save(checkpoint, self.file(CHECKPOINT_FILE))
        self.add_file(CHECKPOINT_FILE)
        self.save_json(METRICS_FILE, json_safe({**metrics, "run_id": run_id}))
        self.write_header({"run_id": run_id, "package_version": __version__,
                           "created": utc_now()})
        return run_id


def _read_run_manifest(run_dir: Path) -> dict:
    manifest = RUN_FORMAT.read_header(run_dir)
    RUN_FORMAT.check_files(run_dir, manifest["files"],
                           hint=" (corrupt, or copied from another run)")
    return manifest


def _referenced_graph(run_dir: Path, num_nodes: int) -> Graph:
    """The graph directory a run references, checked to be the one it was trained on."""
    from hashembed.core.graphdir import open_graph
    from hashembed.graph.memory import graph_from_dir

    ref = json.loads((run_dir / GRAPH_REF_FILE).read_text())
    try:
        source = open_graph(ref["graph_dir"])
    except HashembedError as e:
        raise RunCorruptError(f"{run_dir} was trained on the graph directory "
                              f"{ref['graph_dir']}, which cannot be opened: {e}") from None
    if source.digest != ref["digest"] or source.num_nodes != num_nodes:
        raise RunCorruptError(f"the graph directory {ref['graph_dir']} has changed since "
                              f"{run_dir} was trained on it (header digest differs)")
    return graph_from_dir(source)


def _saved_codes(run_dir: Path, ckpt: dict, spec: CodeSpec, num_nodes: int) -> Codes:
    """The run's code table (``uint8 [n, bytes_per_node]``, mapped) with the thresholds and hop
    shifts its checkpoint recorded, checked against the spec and the graph's ``n``."""
    packed = np.load(run_dir / CODES_FILE, mmap_mode="r", allow_pickle=False)
    check_table(packed, spec)
    if packed.shape[0] != num_nodes:
        raise RunCorruptError(f"{run_dir / CODES_FILE} has {packed.shape[0]} rows, the graph "
                              f"has {num_nodes} nodes")
    return Codes.from_record(spec, packed, ckpt)


def load_run(run_dir: str | Path) -> Run:
    """Rebuild model, graph and codes from a run directory, refusing mixed or corrupt parts."""
    run_dir = Path(run_dir)
    manifest = _read_run_manifest(run_dir)
    ckpt_path = run_dir / CHECKPOINT_FILE
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise RunCorruptError(f"{ckpt_path} cannot be read: {e}") from None
    missing = sorted({"run", "id_encoder", "code_spec", "decoder", "model", "train",
                      "state_dict", "parts"} - set(ckpt))
    if missing:
        raise RunCorruptError(f"{ckpt_path} lacks {', '.join(missing)}: saved by an earlier "
                              "hashembed (train again)")
    if ckpt.get("run_id") != manifest["run_id"]:
        raise RunCorruptError(f"{ckpt_path} belongs to run {ckpt.get('run_id')!r}, the "
                              f"directory to run {manifest['run_id']!r}: parts of two runs")
    for name, digest in ckpt["parts"].items():
        if manifest["files"].get(name, {}).get("sha256") != digest:
            raise RunCorruptError(f"{run_dir / name} is not the file {CHECKPOINT_FILE} was "
                                  "trained with: parts of two runs")
    code_spec = None if ckpt["code_spec"] is None else CodeSpec.from_dict(ckpt["code_spec"])
    decoder_config = None if ckpt["decoder"] is None else DecoderConfig(**ckpt["decoder"])
    model_config = ModelConfig(**ckpt["model"])
    id_config = None if ckpt["id_encoder"] is None else IdEncoderConfig(**ckpt["id_encoder"])
    model = build_model(model_config, decoder_config, ckpt["num_nodes"], ckpt["embedding_dim"],
                        id_config)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()

    with np.load(run_dir / GRAPH_FILE) as data:
        masks = {k: data[f"mask_{k}"] for k in SPLIT_NAMES if f"mask_{k}" in data}
        name, n = str(data["name"]), int(data["num_nodes"])
        labels = data["labels"] if "labels" in data else None
        multilabels = data["multilabels"] if "multilabels" in data else None
        edge_index = data["edge_index"] if "edge_index" in data else None
    if (run_dir / GRAPH_REF_FILE).is_file():
        graph = _referenced_graph(run_dir, n)
        graph.name, graph.labels, graph.masks = name, labels, masks or None
        graph.class_names, graph.multilabels = ckpt["class_names"], multilabels
    else:
        graph = Graph(name, n, edge_index, labels, masks or None,
                      class_names=ckpt["class_names"], multilabels=multilabels)
        if ckpt["id_kind"] != "dense":
            graph.id_map = IdMap.load(ckpt["id_kind"], graph.num_nodes, run_dir)
    codes = None if code_spec is None else _saved_codes(run_dir, ckpt, code_spec,
                                                        graph.num_nodes)
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    holdout = None
    if (run_dir / HOLDOUT_FILE).is_file():
        from hashembed.graph.holdout import HeldOut

        holdout = HeldOut.from_dict(json.loads((run_dir / HOLDOUT_FILE).read_text()))
    # runs saved before bit flips existed trained without them, whatever today's default
    config = RunConfig.from_dict({"bit_flip": 0.0, **ckpt["run"]}, strict=False)
    return Run(run_dir, manifest["run_id"], model, graph, codes, model_config, decoder_config,
               TrainConfig(**ckpt["train"]), metrics, config, holdout)
