"""Build the bundled default graph ``graph/data/cora.npz`` from the Planetoid files.

Run once by a maintainer (the result is committed):
    python scripts/build_default_graph.py ../shared/data graph/data/cora.npz
"""

import sys

import numpy as np

from hashembed.graph.datasets import load_planetoid


def main(root: str, out: str) -> None:
    from pathlib import Path

    graph = load_planetoid(Path(root), "cora")
    masks = graph.splits["official"]
    np.savez_compressed(
        out, num_nodes=np.int64(graph.num_nodes), edge_index=graph.edge_index.astype(np.int32),
        labels=graph.labels.astype(np.int8),
        **{f"mask_{k}": v for k, v in masks.items()},
    )
    print(f"wrote {out}: {graph}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
