"""Fixtures of the reliability suite (defined in harness.py, with its helpers)."""

from reliability.harness import graph_files, trained_run  # noqa: F401
