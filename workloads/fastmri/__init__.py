"""The fastmri workload family."""
