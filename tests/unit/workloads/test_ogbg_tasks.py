"""The ogbg family on a dataset other than ogbg-molpcba: its folder and task count come from the
config (``dataset``, ``model['num_outputs']``) and the labels, checked against each other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from algoperf import registry
from algoperf.data import DatasetError
from workloads.ogbg import data


def _write(root, dataset: str, num_tasks: int, sizes=(12, 4, 4)):
    rng = np.random.default_rng(0)
    graphs = data.random_graphs(rng, sum(sizes), max_nodes=12, num_tasks=num_tasks)
    bounds = np.cumsum((0, *sizes))
    splits = {
        s: np.arange(bounds[i], bounds[i + 1], dtype=np.int32)
        for i, s in enumerate(("train", "validation", "test"))
    }
    arrays = {f.name: getattr(graphs, f.name) for f in dataclasses.fields(graphs)}
    arrays.update({f"split_{s}": v for s, v in splits.items()})
    data.save_arrays(root / dataset, arrays)
    return graphs


def _config(dataset: str = "ogbg_solubility"):
    return dataclasses.replace(
        registry.get_config("ogbg_solubility"),
        dataset=dataset,
        num_train_examples=12,
        num_eval_train_examples=4,
        num_validation_examples=4,
        num_test_examples=4,
    )


def test_batches_read_the_configs_dataset_and_its_task_count(tmp_path):
    _write(tmp_path, "ogbg_solubility", num_tasks=2)
    _write(tmp_path, "ogbg", num_tasks=data.NUM_TASKS, sizes=(5, 5, 5))
    config = _config()
    batch = next(data.numpy_batches(tmp_path, config, "train", 4, seed=0))
    assert batch["targets"].shape == batch["weights"].shape == (5, 2)
    assert data.load(tmp_path, "ogbg_solubility").num_tasks == 2
    assert data.load(tmp_path).num_tasks == data.NUM_TASKS  # ogbg's folder is the default
    groups = list(
        data.eval_groups(data.load(tmp_path, "ogbg_solubility"), np.arange(3), data.Budget(2), 3)
    )
    assert [shard["targets"].shape for shard, _ in groups[-1]] == [
        (3, 2)
    ] * 3  # padded with empties


def test_synthetic_batch_has_the_models_outputs():
    batch = data.synthetic_batch(registry.get_config("ogbg_solubility"), 6, seed=1)
    assert batch["targets"].shape == (6, 2)
    assert data.synthetic_batch(registry.get_config("ogbg"), 6, seed=1)["targets"].shape == (6, 128)


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_check_data_refuses_labels_that_are_not_the_models_tasks(tmp_path, framework):
    _write(tmp_path, "ogbg_solubility", num_tasks=3)
    workload = registry.get_workload("ogbg_solubility", framework)
    workload.config = _config()
    with pytest.raises(DatasetError, match=r"ogbg_solubility/labels\.npy: 3 tasks.*predicts 2"):
        workload.check_data(str(tmp_path))


def test_a_missing_dataset_names_its_prepare_command(tmp_path):
    with pytest.raises(DatasetError, match="algoperf datasets prepare ogbg_solubility"):
        data.load(tmp_path, "ogbg_solubility")


def test_split_size_errors_name_the_dataset(tmp_path):
    _write(tmp_path, "ogbg_solubility", num_tasks=2)
    wrong = dataclasses.replace(_config(), num_validation_examples=99)
    graphs = data.load(tmp_path, "ogbg_solubility")
    with pytest.raises(DatasetError, match=r"split_validation\.npy: 4 graphs.*not ogbg_solubility"):
        data.split_indices(graphs, wrong, "validation", tmp_path)
