"""Workload families: one package per dataset family (framework-free spec and data, thin framework files)."""
