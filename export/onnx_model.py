"""Trace a trained :class:`~hashembed.train.model.NodeClassifier` into ONNX.

Graph signature (dynamic ``N`` and ``E``)::

    codes       uint8 [N, c/8]     packed codes of a subgraph's nodes
    edge_index  int64 [2, E]       local ids, row 0 = source, row 1 = target
    -> logits      float32 [N, K]
       embeddings  float32 [N, d]  decoded node embeddings
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from hashembed.core.bundle import INPUT_CODES, INPUT_EDGES, OUTPUT_EMBEDDINGS, OUTPUT_LOGITS
from hashembed.export.serving_model import ServingModel
from hashembed.train.model import NodeClassifier

DEFAULT_OPSET = 20
# torch's exporter builds opset 18 and converts to the opset asked for; below 18 (or above
# what the installed onnx knows) it silently writes 18, so those are refused up front.
MIN_OPSET = 18


def max_opset() -> int:
    """The newest default-domain opset the installed ``onnx`` package knows."""
    import onnx

    return int(onnx.defs.onnx_opset_version())


def declared_opset(path: str | Path) -> int:
    """The default-domain opset an ONNX file declares (what was actually written)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


@contextlib.contextmanager
def quiet_onnx_export():
    """Silence the exporter's chatter for the block: onnx_ir and onnxscript log every pass at
    WARNING/INFO and print to stdout, and torch's pytree raises FutureWarnings. Restores the
    loggers' levels afterwards."""
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def export_onnx(model: NodeClassifier, bytes_per_node: int, path: str | Path,
                opset: int = DEFAULT_OPSET) -> None:
    """Write ``model`` (with a code decoder) as an ONNX file at ``path``, in its
    :class:`~hashembed.export.serving_model.ServingModel` form (segment sums, no scatter).

    The example inputs only fix dtypes and ranks: their sizes are marked dynamic.
    """
    generator = torch.Generator().manual_seed(0)
    example_nodes, example_edges = 7, 11  # not 0/1, which torch.export would specialise
    codes = torch.randint(0, 256, (example_nodes, bytes_per_node), dtype=torch.uint8,
                          generator=generator)
    edge_index = torch.randint(0, example_nodes, (2, example_edges), generator=generator)
    dynamic_shapes = ({0: torch.export.Dim("num_nodes")}, {1: torch.export.Dim("num_edges")})
    model = ServingModel(model.eval())
    with torch.no_grad(), quiet_onnx_export():
        program = torch.onnx.export(
            model, (codes, edge_index), dynamo=True, opset_version=opset,
            dynamic_shapes=dynamic_shapes, input_names=[INPUT_CODES, INPUT_EDGES],
            output_names=[OUTPUT_LOGITS, OUTPUT_EMBEDDINGS], verbose=False)
    program.save(str(path))
