"""Framework back-ends: what differs between JAX and PyTorch (devices, sharding, sync, params)."""
