"""The ogbg workload family."""
