"""Block-computed per-step keys equal upstream's one-step-at-a-time derivation exactly."""

import numpy as np
import pytest

from algoperf import random_utils, step_keys
from algoperf import rng as rng_lib


@pytest.mark.parametrize("first", [0, 1, 123456789, 2**31 - 2])
def test_numpy_block_equals_random_state(first):
    steps = np.concatenate([np.arange(0, 300), np.arange(2**31 - 40, 2**31 - 1)]) % (2**31 - 1)
    block = step_keys.numpy_split4_block(first, steps)
    want = np.stack(
        [
            np.random.RandomState([first, int(s)]).randint(
                0, 2**31 - 1, dtype=np.int32, size=[4, 2]
            )
            for s in steps
        ]
    )
    np.testing.assert_array_equal(block, want)
    assert block.dtype == np.int32


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_step_rngs_equal_fold_in_then_split_across_block_boundaries(framework):
    rng_lib.configure_process(framework)
    random_utils.set_framework(framework)
    loop = rng_lib.train_rngs(rng_lib.trial_rng(42, framework, "external")).loop
    size = step_keys.JAX_BLOCK if framework == "jax" else step_keys.BLOCK
    for step in (0, 1, size - 1, size, size + 1, 3 * size + 5, 2):
        got = rng_lib.step_rngs(loop, step)
        want = random_utils.split(random_utils.fold_in(loop, step), 4)
        for k in range(4):
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))
