"""The mnist workload family."""
