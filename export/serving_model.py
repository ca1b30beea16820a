"""The model as it is exported: the trained weights, message passing written for ONNX Runtime.

PyG's convs sum messages with a scatter-add, which the ONNX exporter writes as
``ScatterElements(reduction="add")`` over an ``[E, F]`` index (plus the ``Expand`` that builds
it). ONNX Runtime's CPU provider runs that element by element: on a 64-node query of a
10⁵-node graph (5,700 nodes, 7,800 edges) it was 12.6 of a 20 ms call. Here a layer sums its
messages by segments instead::

    order   = argsort(target)                      edges grouped by target node
    P[0] = 0, P[k] = Σ_{i<k} m[order[i]]           prefix sums, float64 ([E + 1, F])
    end_v   = Σ_{u<=v} in_degree(u),  start_v = end_v - in_degree(v)
    sum_v   = P[end_v] - P[start_v]                a node's messages, exact to float64

which exports as ``TopK`` + ``Gather`` + ``CumSum`` + ``Sub``, all vectorised. In-degrees
are a scatter-add over ``[E]`` only. The float64 prefix sum keeps the difference as accurate
as a direct float32 sum (its rounding error is about ``E · 2⁻⁵³`` of the total).

:class:`ServingModel` wraps a trained :class:`~hashembed.train.model.NodeClassifier` (same
parameters, no copies) and computes the same outputs on any ``edge_index``: each supported
PyG conv is re-expressed through :func:`segment_sum`, and a test compares the two.

    SAGEConv (mean):  out_v = W_l · mean_{u→v} x_u + b_l + W_r · x_v
    GCNConv:          out_v = Σ_{u→v or u=v} (deg_u deg_v)^(-1/2) · W x_u + b,
                      deg = in-degree + 1 (the self-loop GCN adds)

The linear map of a SAGE neighbour term commutes with the mean, so it is applied before
aggregating when that makes the summed rows narrower (the last layer: ``K`` classes instead of
the hidden width).
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GCNConv, SAGEConv

from hashembed.core.errors import ConfigError
from hashembed.train.model import NodeClassifier


def in_degree(target: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Edges into each node: ``int64 [E]`` targets -> ``int64 [N]``."""
    return torch.zeros(num_nodes, dtype=torch.int64, device=target.device).index_add(
        0, target, torch.ones_like(target))


def segment_sum(messages: torch.Tensor, target: torch.Tensor, degree: torch.Tensor
                ) -> torch.Tensor:
    """Per-target sums of edge messages, without a scatter over ``[E, F]``.

    Args:
        messages: ``float32 [E, F]``, row ``i`` for edge ``i``.
        target: ``int64 [E]`` the node each edge points at, in ``[0, N)``.
        degree: ``int64 [N]`` edges into each node (:func:`in_degree` of ``target``).

    Returns:
        ``float32 [N, F]``: row ``v`` is the sum of the messages of edges into ``v`` (zero
        for a node without any).
    """
    # index_select traces to Gather; advanced indexing would give the slower GatherND
    order = torch.argsort(target)
    prefix = torch.cumsum(messages.index_select(0, order).double(), dim=0)
    prefix = torch.cat([prefix.new_zeros((1, messages.shape[1])), prefix])
    end = torch.cumsum(degree, dim=0)
    sums = prefix.index_select(0, end) - prefix.index_select(0, end - degree)
    return sums.to(messages.dtype)


def _sage(conv: SAGEConv, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
          degree: torch.Tensor) -> torch.Tensor:
    """``conv(x, edge_index)`` for PyG's default SAGEConv (mean, root weight, no project)."""
    count = degree.clamp(min=1).to(x.dtype).unsqueeze(1)
    if conv.lin_l.out_channels < conv.lin_l.in_channels:  # map first: narrower rows to sum
        neighbours = segment_sum(x.index_select(0, source) @ conv.lin_l.weight.T, target,
                                 degree) / count
        neighbours = neighbours + conv.lin_l.bias
    else:
        neighbours = conv.lin_l(segment_sum(x.index_select(0, source), target, degree) / count)
    return neighbours + conv.lin_r(x)


def _gcn(conv: GCNConv, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
         degree: torch.Tensor) -> torch.Tensor:
    """``conv(x, edge_index)`` for PyG's default GCNConv on a graph without self-loops."""
    scale = (degree + 1).to(x.dtype).rsqrt().unsqueeze(1)  # (in-degree + self-loop)^(-1/2)
    h = conv.lin(x) * scale
    return (segment_sum(h.index_select(0, source), target, degree) + h) * scale + conv.bias


def _lowering(conv: nn.Module):
    """The segment-sum form of ``conv``, or a ConfigError for a conv it does not cover."""
    if isinstance(conv, SAGEConv):
        if (str(conv.aggr) != "mean" or conv.normalize or conv.project
                or not conv.root_weight or conv.lin_l.bias is None):
            raise ConfigError(f"export supports SAGEConv with the defaults (mean, root "
                              f"weight, no normalize/project); got {conv}")
        return _sage
    if isinstance(conv, GCNConv):
        if not conv.normalize or not conv.add_self_loops or conv.improved \
                or conv.bias is None:
            raise ConfigError(f"export supports GCNConv with the defaults (normalize, self "
                              f"loops, bias); got {conv}")
        return _gcn
    raise ConfigError(f"export has no segment-sum form of {type(conv).__name__}")


class ServingModel(nn.Module):
    """A trained :class:`NodeClassifier` in the form that is exported (evaluation only).

    Shapes:
        forward(codes uint8 [N, c/8], edge_index int64 [2, E]) ->
        (logits float32 [N, K], embeddings float32 [N, d]), equal to ``model``'s outputs
        up to float rounding. ``edge_index`` may list edges in any order; it must hold no
        self-loops (graphs never do: ``graph build`` drops them).
    """

    def __init__(self, model: NodeClassifier):
        super().__init__()
        self.model = model
        self.layers = [_lowering(conv) for conv in model.convs]
        self.eval()

    def forward(self, codes: torch.Tensor, edge_index: torch.Tensor):
        embeddings = self.model.encoder(codes)
        source, target = edge_index[0], edge_index[1]
        degree = in_degree(target, embeddings.shape[0])
        h = embeddings
        for i, (layer, conv) in enumerate(zip(self.layers, self.model.convs)):
            h = layer(conv, h, source, target, degree)
            if i < len(self.layers) - 1:
                h = h.relu()
        return h, embeddings
