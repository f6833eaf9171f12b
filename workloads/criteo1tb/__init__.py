"""The criteo1tb workload family."""
