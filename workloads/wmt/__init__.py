"""The wmt workload family."""
