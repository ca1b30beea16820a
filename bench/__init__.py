"""Benchmarks (``hashembed bench …``): scripts that print a table and write JSON, never tests."""
