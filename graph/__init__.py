"""Graph input: edge-list and label readers, node ids, the in-memory graph, out-of-core
graph build, synthetic graphs, named datasets, splits and node hold-out."""
