"""The JAX back-end's batch placement: the fast host path equals `jax.device_put` exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from algoperf.frameworks import jax as fjax  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _batch(rows: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "inputs": rng.normal(size=(rows, 4, 4, 1)).astype(np.float32),
        "targets": rng.integers(0, 10, size=rows),  # int64 on the host, int32 on the device
        "weights": np.ones(rows, np.float32),
    }


@pytest.mark.parametrize("rows", [8, 4096])  # the jitted path, and `device_put` for large ones
def test_host_batch_equals_device_put(rows):
    batch = _batch(rows)
    small = sum(v.nbytes for v in batch.values()) <= fjax.SMALL_BATCH_BYTES
    assert small == (rows == 8)
    got = fjax.shard_batch(batch)
    want = jax.device_put(_batch(rows), fjax.batch_sharding())
    for key in batch:
        assert got[key].dtype == want[key].dtype
        assert got[key].shape == want[key].shape
        assert got[key].sharding == fjax.batch_sharding()
        assert got[key].committed
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]))


def test_small_host_batch_is_copied():
    batch = _batch()
    got = fjax.shard_batch(batch)
    before = np.asarray(got["inputs"]).copy()
    batch["inputs"][:] = -7.0
    np.testing.assert_array_equal(np.asarray(got["inputs"]), before)


def test_device_arrays_and_mixed_trees_still_placed():
    on_device = jax.numpy.arange(8.0)
    got = fjax.shard_batch({"inputs": on_device, "targets": np.arange(8)})
    assert got["inputs"].sharding == fjax.batch_sharding()
    np.testing.assert_array_equal(np.asarray(got["inputs"]), np.arange(8.0))
    np.testing.assert_array_equal(np.asarray(got["targets"]), np.arange(8))


def test_two_host_devices_split_the_batch_rows():
    code = textwrap.dedent(
        """
        import numpy as np, jax
        from algoperf.frameworks import jax as fjax
        batch = {"inputs": np.arange(24, dtype=np.float32).reshape(6, 4), "targets": np.arange(6)}
        out = fjax.shard_batch(batch)
        assert jax.device_count() == 2
        for key, value in out.items():
            shards = sorted(value.addressable_shards, key=lambda s: s.index[0].start)
            assert [s.data.shape[0] for s in shards] == [3, 3], key
            np.testing.assert_array_equal(np.asarray(value), batch[key])
        print("ok")
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
