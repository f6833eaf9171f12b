"""Baseline submissions (NAdamW, AdamW, SGD with Nesterov momentum) in JAX and PyTorch."""
