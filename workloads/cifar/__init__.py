"""The cifar workload family."""
