"""Framework-free batch iterators over in-memory numpy arrays (shared by JAX and PyTorch).

Batches are dicts of numpy arrays with the keys of the input mapping ('inputs', 'targets', ...);
eval batches add a float32 'weights' mask. Both iterators are pure functions of their arguments:

* `train_batches`: infinite; each epoch is a permutation from ``np.random.default_rng([seed,
  epoch])``; the incomplete last batch of an epoch is dropped. Batch ``k`` depends only on
  ``(seed, k)``, so ``start_step=k`` resumes exactly where a run stopped at the cost of one
  permutation, never by replaying batches. An augmentation `transform` gets a generator seeded from
  ``(seed, k)`` so it is deterministic and resumable too.
* `eval_batches`: finite, in data order, the last batch zero-padded to the global batch size with
  weight 0, so metrics summed with the weights (in float64) do not depend on how examples are split
  into batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

Batch = dict[str, np.ndarray]
Transform = Callable[[Batch, np.random.Generator], Batch]

# Extra entropy words that keep the per-batch augmentation streams apart from the epoch
# permutations (which use [seed, epoch]) and from each other.
_TRAIN_TRANSFORM_TAG = 0x7472  # "tr"
_EVAL_TRANSFORM_TAG = 0x6576  # "ev"


def _num_examples(arrays: Mapping[str, np.ndarray]) -> int:
    if not arrays:
        raise ValueError("no arrays given")
    sizes = {key: len(value) for key, value in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"arrays differ in their number of examples: {sizes}")
    return next(iter(sizes.values()))


def _seed_word(seed: int) -> int:
    # SeedSequence entropy must be non-negative; map negative seeds to their 64-bit pattern.
    return int(seed) % (1 << 64)


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one training epoch (what `train_batches` uses)."""
    return np.random.default_rng([_seed_word(seed), epoch]).permutation(num_examples)


def train_batches(
    arrays: Mapping[str, np.ndarray],
    global_batch_size: int,
    seed: int,
    *,
    start_step: int = 0,
    transform: Transform | None = None,
) -> Iterator[Batch]:
    """Infinite shuffled training batches; batch ``k`` is a function of ``(seed, k)`` only.

    Args:
        arrays: equally long arrays, e.g. {'inputs': (N, ...), 'targets': (N,)}.
        global_batch_size: examples per batch; epochs hold ``N // global_batch_size`` batches.
        seed: data seed; epoch ``e`` uses ``np.random.default_rng([seed, e]).permutation(N)``.
        start_step: index of the first batch yielded (resume after ``start_step`` steps).
        transform: optional ``transform(batch, rng) -> batch`` (augmentation) with ``rng`` seeded
            from ``(seed, step)``.
    """
    n = _num_examples(arrays)
    if global_batch_size <= 0:
        raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
    if global_batch_size > n:
        raise ValueError(
            f"global_batch_size {global_batch_size} exceeds the {n} training examples; "
            "use a smaller batch size or a larger training split"
        )
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    steps_per_epoch = n // global_batch_size
    return _train_iter(arrays, global_batch_size, seed, start_step, transform, n, steps_per_epoch)


def _train_iter(arrays, batch_size, seed, start_step, transform, n, steps_per_epoch):
    step = start_step
    epoch, perm = -1, None
    while True:
        e, i = divmod(step, steps_per_epoch)
        if e != epoch:
            epoch, perm = e, epoch_permutation(n, seed, e)
        idx = perm[i * batch_size : (i + 1) * batch_size]
        batch = {key: value[idx] for key, value in arrays.items()}
        if transform is not None:
            rng = np.random.default_rng([_seed_word(seed), step, _TRAIN_TRANSFORM_TAG])
            batch = transform(batch, rng)
        yield batch
        step += 1


def eval_batches(
    arrays: Mapping[str, np.ndarray],
    global_batch_size: int,
    num_examples: int | None = None,
    transform: Transform | None = None,
) -> Iterator[Batch]:
    """Finite eval batches over the first `num_examples` examples, in order, padded at the end.

    Args:
        arrays: equally long arrays; an existing 'weights' array is kept (padding gets 0).
        global_batch_size: examples per batch; the last batch is zero-padded up to it.
        num_examples: how many examples to cover (default: all); more than the arrays hold
            cycles over them again from the start (as upstream's repeated eval iterators do).
        transform: optional deterministic ``transform(batch, rng) -> batch``, applied to the real
            examples before padding; ``rng`` is seeded from the batch index.

    Every batch has a float32 'weights' array: 1 for real examples, 0 for padding (per example,
    or the given per-example weights with padding rows set to 0).
    """
    n = _num_examples(arrays)
    if global_batch_size <= 0:
        raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
    total = n if num_examples is None else int(num_examples)
    if total < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    if total > 0 and n == 0:
        raise ValueError(f"asked for {total} eval examples from empty arrays")
    return _eval_iter(arrays, global_batch_size, total, transform, n)


def _eval_iter(arrays, batch_size, total, transform, n):
    for k, start in enumerate(range(0, total, batch_size)):
        stop = min(start + batch_size, total)
        if stop <= n:
            # Copies, so that a consumer may modify a batch without touching the (cached) arrays.
            batch = {key: value[start:stop].copy() for key, value in arrays.items()}
        else:
            idx = np.arange(start, stop) % n
            batch = {key: value[idx] for key, value in arrays.items()}
        real = stop - start
        if "weights" not in batch:
            batch["weights"] = np.ones(real, np.float32)
        else:
            batch["weights"] = np.asarray(batch["weights"], np.float32)
        if transform is not None:
            batch = transform(batch, np.random.default_rng([_EVAL_TRANSFORM_TAG, k]))
        if real < batch_size:
            batch = {key: _pad(value, batch_size) for key, value in batch.items()}
        yield batch


def _pad(value: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *value.shape[1:]), value.dtype)
    out[: len(value)] = value
    return out


def synthetic_batch(
    spec: Mapping[str, tuple],
    batch_size: int,
    seed: int,
) -> Batch:
    """A random batch shaped by `spec` (for smoke runs, compile warm-up and tests).

    Args:
        spec: ``key -> (per_example_shape, dtype)`` or ``(per_example_shape, dtype, high)``.
            Floating dtypes get standard-normal values; integer dtypes uniform values in
            ``[0, high)`` (default ``high`` 2); bool dtypes fair coin flips.
        batch_size: leading dimension of every array.
        seed: the batch is a pure function of (spec, batch_size, seed).
    """
    rng = np.random.default_rng(_seed_word(seed))
    batch: Batch = {}
    for key, entry in spec.items():
        shape, dtype = tuple(entry[0]), np.dtype(entry[1])
        full = (batch_size, *shape)
        if dtype == np.bool_:
            batch[key] = rng.random(full) < 0.5
        elif np.issubdtype(dtype, np.integer):
            high = int(entry[2]) if len(entry) > 2 else 2
            batch[key] = rng.integers(0, high, size=full, dtype=dtype)
        elif np.issubdtype(dtype, np.floating):
            batch[key] = rng.standard_normal(full).astype(dtype)
        else:
            raise ValueError(f"synthetic_batch: unsupported dtype {dtype} for {key!r}")
    return batch
