"""Named datasets: the bundled default graph and the real graphs in a data root.

``cora`` ships inside the package (``hashembed/data/cora.npz``, built from the Planetoid
files by ``scripts/build_default_graph.py``) and needs nothing else. The others are read from
a data root laid out like ``../shared/data`` (see each folder's ``SOURCE.md``); nothing is
ever downloaded.

=================== ============================== ================= ======================
name                folder                          labels            official split
=================== ============================== ================= ======================
cora                (bundled)                       7 classes         public (Planetoid)
planetoid-cora      planetoid/raw/ind.cora.*        7 classes         public
planetoid-citeseer  planetoid/raw/ind.citeseer.*    6 classes         public
planetoid-pubmed    planetoid/raw/ind.pubmed.*      3 classes         public
tolokers            tolokers/tolokers.npz           2 classes         10 splits
email-eu-core       email-eu-core/                  42 classes        none
twitch-<LANG>       twitch-musae/<LANG>/            mature (2)        none
blogcatalog         blogcatalog/blogcatalog.mat     39 (multi-label)  none
ogbl-ddi            ogbl-ddi/raw/edge.csv.gz        none (links)      link split
=================== ============================== ================= ======================
"""

from __future__ import annotations

import gzip
import pickle
from importlib import resources
from dataclasses import replace
from pathlib import Path

import numpy as np

from hashembed.core.errors import ConfigError, GraphInputError
from hashembed.graph.memory import Graph, symmetrize
from hashembed.graph.splits import SplitSpec, random_split

TWITCH_LANGS = ("DE", "ENGB", "ES", "FR", "PTBR", "RU", "TW")
DATASETS = ("cora", "planetoid-cora", "planetoid-citeseer", "planetoid-pubmed", "tolokers",
            "email-eu-core", "blogcatalog", "ogbl-ddi",
            *(f"twitch-{lang}" for lang in TWITCH_LANGS))
DEFAULT_SPLIT = SplitSpec("random", (0.6, 0.2, 0.2))


def _require(path: Path) -> Path:
    if not path.exists():
        raise GraphInputError(f"{path} does not exist: is --data-root pointing at the data folder?")
    return path


def _masks_from_indices(n: int, parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    masks = {}
    for name, idx in parts.items():
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        masks[name] = mask
    return masks


def load_bundled_cora() -> Graph:
    """The default graph shipped with the package (Cora, 2,708 nodes, 5,278 edges)."""
    with resources.files("hashembed.graph").joinpath("data/cora.npz").open("rb") as f:
        data = np.load(f)
        n = int(data["num_nodes"])
        masks = {k: data[f"mask_{k}"] for k in ("train", "val", "test")}
        return Graph("cora", n, data["edge_index"].astype(np.int64),
                     data["labels"].astype(np.int64), splits={"official": masks})


def load_planetoid(root: Path, name: str) -> Graph:
    """A Planetoid graph from the ``ind.<name>.*`` pickles (features are not read)."""
    raw = _require(root / "planetoid" / "raw")

    def load(part: str):
        with open(_require(raw / f"ind.{name}.{part}"), "rb") as f:
            return pickle.load(f, encoding="latin1")

    ally, ty, graph = load("ally"), load("ty"), load("graph")
    y_train = load("y")
    test_index = np.loadtxt(_require(raw / f"ind.{name}.test.index"), dtype=np.int64)
    n = max(max(graph.keys()), int(test_index.max())) + 1
    labels = np.full(n, -1, dtype=np.int64)
    labelled = np.asarray(ally).sum(1) > 0
    labels[: len(ally)][labelled] = np.asarray(ally).argmax(1)[labelled]
    has = np.asarray(ty).sum(1) > 0  # CiteSeer's isolated test "holes" have all-zero rows
    labels[test_index[has]] = np.asarray(ty).argmax(1)[has]
    edges = np.array([(u, v) for u, nbrs in graph.items() for v in nbrs], dtype=np.int64)
    masks = _masks_from_indices(n, {
        "train": np.arange(len(y_train)),
        "val": np.arange(len(y_train), len(y_train) + 500),
        "test": test_index[has],
    })
    return Graph(f"planetoid-{name}", n, symmetrize(edges, n), labels,
                 splits={"official": masks})


def load_tolokers(root: Path) -> Graph:
    data = np.load(_require(root / "tolokers" / "tolokers.npz"))
    labels = data["node_labels"].astype(np.int64)
    n = labels.shape[0]
    splits = {str(k): {"train": data["train_masks"][k], "val": data["val_masks"][k],
                       "test": data["test_masks"][k]} for k in range(data["train_masks"].shape[0])}
    return Graph("tolokers", n, symmetrize(data["edges"], n), labels, splits=splits)


def load_email_eu_core(root: Path) -> Graph:
    folder = _require(root / "email-eu-core")
    edges = np.loadtxt(_require(folder / "email-Eu-core.txt"), dtype=np.int64)
    lab = np.loadtxt(_require(folder / "email-Eu-core-department-labels.txt"), dtype=np.int64)
    n = int(max(edges.max(), lab[:, 0].max())) + 1
    labels = np.full(n, -1, dtype=np.int64)
    labels[lab[:, 0]] = lab[:, 1]
    return Graph("email-eu-core", n, symmetrize(edges, n), labels)


def load_twitch(root: Path, lang: str) -> Graph:
    if lang not in TWITCH_LANGS:
        raise ConfigError(f"twitch language {lang!r} is not one of {TWITCH_LANGS}")
    folder = _require(root / "twitch-musae" / lang)
    edges = np.loadtxt(_require(folder / f"musae_{lang}_edges.csv"), delimiter=",", skiprows=1,
                       dtype=np.int64)
    target = np.loadtxt(_require(folder / f"musae_{lang}_target.csv"), delimiter=",",
                        skiprows=1, dtype=str)
    ids = target[:, 5].astype(np.int64)  # columns: id,days,mature,views,partner,new_id
    mature = (np.char.lower(target[:, 2]) == "true").astype(np.int64)
    n = int(max(edges.max(), ids.max())) + 1
    labels = np.full(n, -1, dtype=np.int64)
    labels[ids] = mature  # duplicate rows (FR) agree on `mature`
    return Graph(f"twitch-{lang}", n, symmetrize(edges, n), labels)


def load_blogcatalog(root: Path) -> Graph:
    """BlogCatalog; its 39 labels are multi-label, kept as ``Graph.multilabels``."""
    from scipy.io import loadmat

    mat = loadmat(_require(root / "blogcatalog" / "blogcatalog.mat"))
    adj = mat["network"].tocoo()
    n = adj.shape[0]
    return Graph("blogcatalog", n, symmetrize(np.stack([adj.row, adj.col], 1), n),
                 multilabels=np.asarray(mat["group"].todense(), dtype=bool))


def read_ogbl_ddi_train_edges(root: Path) -> np.ndarray:
    """``int64 [1067911, 2]``: ogbl-ddi's training edges, each pair once (= ``raw/edge.csv.gz``)."""
    with gzip.open(_require(Path(root) / "ogbl-ddi" / "raw" / "edge.csv.gz"), "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.int64)


def load_ogbl_ddi(root: Path) -> Graph:
    """ogbl-ddi's training graph (official split; link prediction, no node labels)."""
    return Graph("ogbl-ddi", 4267, symmetrize(read_ogbl_ddi_train_edges(root), 4267))


def load_dataset(name: str, root: str | Path | None = None) -> Graph:
    """Load a named dataset (see the module table). ``root`` is the data folder.

    Graphs with official splits carry them in ``Graph.splits`` (``{"official": masks}`` or
    ``{"0": masks, …}``); :func:`apply_split` picks the one training uses (``Graph.masks``).
    """
    if name == "cora":
        return load_bundled_cora()
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if root is None:
        raise ConfigError(f"dataset {name!r} is read from a data folder: pass --data-root")
    root = Path(root)
    if name.startswith("planetoid-"):
        return load_planetoid(root, name.removeprefix("planetoid-"))
    if name.startswith("twitch-"):
        return load_twitch(root, name.removeprefix("twitch-"))
    return {"tolokers": load_tolokers, "email-eu-core": load_email_eu_core,
            "blogcatalog": load_blogcatalog, "ogbl-ddi": load_ogbl_ddi}[name](root)


def apply_split(graph: Graph, split: SplitSpec | None, seed: int) -> Graph:
    """A shallow copy of ``graph`` whose ``masks`` are train/val/test per ``split``; ``graph``
    itself is unchanged, so one loaded graph can be split several ways (Tolokers' 10 splits).

    ``None`` means the default: random 60/20/20 for every graph (featureless learning from
    Planetoid's 20 labels per class is too weak to compare methods); pass ``official`` for a
    dataset's own split.
    """
    if graph.labels is None and graph.multilabels is None:
        raise ConfigError(f"{graph.name} has no node labels (a link-prediction graph?); "
                          "node classification needs labels")
    split = split or DEFAULT_SPLIT
    if split.kind == "random":
        # a multi-label graph splits the nodes that carry at least one label
        labelled = graph.labels if graph.labels is not None else \
            np.where(graph.multilabels.any(axis=1), 0, -1)
        return replace(graph, masks=random_split(labelled, split.fractions, seed))
    shipped = graph.splits or {}
    key = "official" if "official" in shipped else str(split.index)
    if key not in shipped:
        if not shipped:
            raise ConfigError(f"{graph.name} has no official split; use --split random:…")
        raise ConfigError(f"{graph.name} has {len(shipped)} official splits; "
                          f"--split official:{split.index} is out of range")
    return replace(graph, masks=shipped[key])
