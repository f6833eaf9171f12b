"""The imagenet workload family."""
