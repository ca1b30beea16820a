"""Torch-free foundations every stage imports: the code format, the counter-based
projection, node id maps, sorted-set helpers, errors, checksums, atomic writes, the
evaluation metrics and the on-disk formats of graph directories and bundles."""
