"""Layers and workload plumbing shared by families (families never import each other)."""
