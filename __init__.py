"""hashembed: hash-code node embeddings for featureless GNNs.

Stages live in sub-packages whose imports flow one way::

    hashembed.core.codeformat, hashembed.core.bundle   torch-free formats (codes, bundles)
    hashembed.kernels                        the decode (reference + Triton)
    hashembed.train                          graphs, codes, decoder, GNN, training
    hashembed.export                         ONNX graph + bundle writer + parity check
    hashembed.serve                          ONNX Runtime serving (no torch)

Shape symbols used in every docstring: ``n`` nodes, ``c`` bits per node, ``b`` bits per
index, ``m = c / b`` codebooks, ``d_c`` codebook width, ``d`` embedding dim, ``B`` batch,
``N``/``E`` nodes/edges of a subgraph.
"""

__version__ = "0.1.0"
