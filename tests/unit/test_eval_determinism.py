"""Eval metrics are bit-identical whatever the eval batch size, the padding of the last batch, or
the number of loader workers (upstream's open issue #732: the worker count changed ImageNet
results). Without the fixed-shape device chunks of `algoperf.workload_base`, the summed losses
differ in the last digits between batch sizes (matrix-multiply blocking follows the batch
dimension), so these tests check real behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from algoperf import registry
from algoperf import rng as rng_lib
from algoperf.data.loader import ParallelBatchLoader
from algoperf.workload_base import fixed_shape_chunks
from workloads.mnist import data as mnist_data

BATCH_SIZES = (10_000, 4096, 999, 7)


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _workload(framework: str, cls=None):
    rng_lib.configure_process(framework)
    wl = (cls or registry.workload_class("fashion_mnist", framework))(
        registry.get_config("fashion_mnist")
    )
    key = rng_lib.train_rngs(rng_lib.trial_rng(3, framework, "external")).model_init
    params, state = wl.init_model_fn(key)
    return wl, params, state


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
@pytest.mark.parametrize("num_examples", [10_000, 9_999])
def test_eval_batch_size_and_padding_do_not_change_metrics(framework, num_examples, mnist_data_dir):
    wl, params, state = _workload(framework)
    shapes = []
    inner = wl._eval_batch

    def spy(p, s, batch, rng):
        shapes.append(tuple(batch["inputs"].shape))
        return inner(p, s, batch, rng)

    wl._eval_batch = spy
    results = {
        bs: wl._eval_model_on_split(
            "validation", num_examples, bs, params, state, None, str(mnist_data_dir)
        )
        for bs in BATCH_SIZES
    }
    first = results[BATCH_SIZES[0]]
    assert set(first) == {"accuracy", "loss"} and 0 < first["loss"] < 10
    for bs, metrics in results.items():
        assert metrics == first, f"eval batch size {bs} changed the metrics"
    # The device always saw the same shape: eval_rows_per_device rows.
    rows = wl.eval_rows_per_device
    assert rows == 10_000 // 8
    assert {s[0] for s in shapes} == {rows}


class _Rows:
    """A loader `BatchFn` cutting eval batches out of in-memory MNIST arrays."""

    def __init__(self, arrays):
        self.arrays = arrays

    def output_spec(self, item):
        size = item[2]
        return {
            "inputs": ((size, 28, 28, 1), np.float32),
            "targets": ((size,), np.int32),
            "weights": ((size,), np.float32),
        }

    def fill(self, item, out, lo, hi):
        start, stop, _ = item
        for r in range(lo, hi):
            if start + r < stop:
                out["inputs"][r] = self.arrays["inputs"][start + r]
                out["targets"][r] = self.arrays["targets"][start + r]
                out["weights"][r] = 1.0
            else:
                out["inputs"][r] = 0.0
                out["targets"][r] = 0
                out["weights"][r] = 0.0


def _worker_loader_class(framework: str):
    base = registry.workload_class("fashion_mnist", framework)

    class WorkerLoaded(base):
        """MNIST whose eval batches come from a multi-worker loader (eval_num_workers)."""

        def _numpy_batches(
            self, split, data_dir, global_batch_size, seed, num_examples=None, start_step=0
        ):
            if split == "train":
                return super()._numpy_batches(
                    split, data_dir, global_batch_size, seed, num_examples, start_step
                )
            arrays = mnist_data.load_split(data_dir, self.config, split)
            total = num_examples or len(arrays["targets"])
            items = [
                (s, min(s + global_batch_size, total), global_batch_size)
                for s in range(0, total, global_batch_size)
            ]
            return ParallelBatchLoader(
                _Rows(arrays),
                items,
                num_workers=self.eval_num_workers or 0,
                backend="thread",
                chunk_rows=97,
            )

    return WorkerLoaded


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_loader_worker_count_does_not_change_metrics(framework, mnist_data_dir):
    wl, params, state = _workload(framework, _worker_loader_class(framework))
    results = []
    for workers, bs in ((0, 10_000), (1, 999), (3, 999), (3, 4096)):
        wl.eval_num_workers = workers
        results.append(
            wl._eval_model_on_split("test", 10_000, bs, params, state, None, str(mnist_data_dir))
        )
    assert all(r == results[0] for r in results), results
    plain, p2, s2 = _workload(framework)
    assert (
        plain._eval_model_on_split("test", 10_000, 10_000, p2, s2, None, str(mnist_data_dir))
        == results[0]
    )


def test_fixed_shape_chunks_recut_any_split_exactly():
    rng = np.random.default_rng(0)
    data = np.arange(1000, dtype=np.float32)
    for _ in range(20):
        cuts = np.sort(rng.choice(np.arange(1, 1000), size=rng.integers(0, 30), replace=False))
        batches = []
        for part in np.split(data, cuts):
            pad = int(rng.integers(0, 5))
            batches.append(
                {
                    "x": np.concatenate([part, np.zeros(pad, np.float32)]),
                    "weights": np.concatenate([np.ones(len(part)), np.zeros(pad)]).astype(
                        np.float32
                    ),
                }
            )
        chunks = list(fixed_shape_chunks(iter(batches), 64))
        assert all(len(c["x"]) == 64 for c in chunks)
        joined = np.concatenate([c["x"][c["weights"] > 0] for c in chunks])
        np.testing.assert_array_equal(joined, data)
        assert len(chunks) == -(-1000 // 64)
        assert chunks[-1]["weights"].sum() == 1000 % 64


def test_two_dimensional_weights_mark_padding_rows():
    batch = {
        "tokens": np.arange(12).reshape(4, 3),
        "weights": np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32),
    }
    (chunk,) = fixed_shape_chunks(iter([batch]), 5)
    assert chunk["tokens"].shape == (5, 3)
    np.testing.assert_array_equal(chunk["weights"][:2], batch["weights"][:2])
    assert not chunk["weights"][2:].any()


class _CapturedError(Exception):
    pass


def _sharded_class():
    base = registry.workload_class("fashion_mnist", "pytorch")

    class Sharded(base):
        """MNIST whose loader takes ``shard`` (as ImageNet's does) and records decoded rows."""

        rank = 0
        decoded: list

        def _numpy_batches(
            self,
            split,
            data_dir,
            global_batch_size,
            seed,
            num_examples=None,
            start_step=0,
            shard=(0, 1),
            **options,
        ):
            index, count = shard
            per = global_batch_size // count
            for batch in super()._numpy_batches(
                split, data_dir, global_batch_size, seed, num_examples, start_step
            ):
                local = {k: v[index * per : (index + 1) * per] for k, v in batch.items()}
                self.decoded.append(len(local["weights"]))
                yield local

        def _data_shard(self):
            return (self.rank, 2)

        def _eval_num_shards(self):
            return 2

    return Sharded


def test_ddp_ranks_decode_only_their_rows_and_match_one_process(mnist_data_dir):
    """Two simulated DDP ranks: each decodes eval_rows_per_device rows of every chunk, and the
    gathered metrics equal the single-process ones bit for bit."""
    cls = _sharded_class()
    wl, params, state = _workload("pytorch", cls)
    plain, p2, s2 = _workload("pytorch")
    assert plain._eval_num_shards() == 1
    expected = plain._eval_model_on_split(
        "validation", 9_999, 4096, p2, s2, None, str(mnist_data_dir)
    )
    parts = {}
    for rank in (1, 0):
        wl.rank, wl.decoded = rank, []

        def gather(local, rank=rank):
            parts[rank] = local
            if rank == 1:
                raise _CapturedError
            return [parts[0], parts[1]]

        wl._gather_eval_parts = gather
        try:
            got = wl._eval_model_on_split(
                "validation", 9_999, 4096, params, state, None, str(mnist_data_dir)
            )
        except _CapturedError:
            continue
        # Every batch this rank decoded held only its share of the fixed device chunk.
        assert set(wl.decoded) == {wl.eval_rows_per_device}
        assert len(wl.decoded) == -(-9_999 // (2 * wl.eval_rows_per_device))
    assert got == expected


def test_pytorch_layer_shards_families_whose_loader_takes_shard(monkeypatch):
    """The framework layer passes ``shard`` (and splits the loader workers over the ranks) only
    to families whose `_numpy_batches` accepts it; others decode whole batches and slice."""
    import types

    from algoperf.data.loader import default_num_workers
    from algoperf.frameworks.pytorch_workload import PyTorchWorkload

    monkeypatch.delenv("ALGOPERF_NUM_DATA_WORKERS", raising=False)
    config = registry.get_config("fashion_mnist")
    plain = registry.workload_class("fashion_mnist", "pytorch")(config)
    sharded = _sharded_class()(config)
    sharded.rank = 1
    for wl in (plain, sharded):
        wl._dist = types.SimpleNamespace(world_size=2, rank=1, device=plain.device)
    assert plain._data_shard() is None and plain._loader_options("train") == {}
    assert PyTorchWorkload._data_shard(sharded) == (1, 2)  # the framework layer's rule
    workers = max(1, default_num_workers() // 2)
    assert sharded._loader_options("train") == {"shard": (1, 2), "num_workers": workers}
    sharded.eval_num_workers = 3  # an explicit eval count is kept
    assert sharded._loader_options("validation") == {"shard": (1, 2)}
    batch = {"weights": np.arange(8.0), "targets": np.arange(8)}
    np.testing.assert_array_equal(plain._to_device(batch)["targets"].numpy(), [4, 5, 6, 7])
    np.testing.assert_array_equal(sharded._local_to_device(batch)["targets"].numpy(), np.arange(8))
