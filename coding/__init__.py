"""Coding: hash and random codes for every node, in memory or streamed over a graph
directory, and the codes directory that stores them."""
