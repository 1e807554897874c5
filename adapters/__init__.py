"""Adapters at the edges: persistence, configuration, keys, clocks."""
