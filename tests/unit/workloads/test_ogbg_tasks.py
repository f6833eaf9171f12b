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


def test_each_dataset_packs_at_its_own_mean_molecule(tmp_path):
    """ogbg-molpcba keeps upstream's 26 nodes / 56 edges a graph slot (and so does a dataset not
    listed); the solubility set's smaller molecules pack at their own means."""
    assert data.per_device_budget(512, 8) == data.Budget(64, 26, 56)
    assert data.budget_for("another_set", 4) == data.Budget(4, 26, 56)
    small = data.per_device_budget(32, 1, "ogbg_solubility")
    assert (small.max_nodes, small.max_edges, small.max_graphs) == (13 * 32 + 1, 27 * 32, 33)
    _write(tmp_path, "ogbg_solubility", num_tasks=2)
    batch = next(data.numpy_batches(tmp_path, _config(), "train", 4, seed=0))
    assert batch["nodes"].shape == (13 * 4 + 1, 9) and batch["edges"].shape == (27 * 4, 3)
    # A shard of one graph slot still takes the set's largest molecule (ogbg's stays upstream's).
    graphs = data.load(tmp_path, "ogbg_solubility")
    one = data.budget_for("ogbg_solubility", 1, graphs)
    assert one.max_nodes == max(13, graphs.num_nodes.max()) + 1
    assert one.max_edges == max(27, graphs.num_edges.max())
    assert data.budget_for("ogbg", 1, graphs) == data.Budget(1)


def test_eval_shards_use_the_datasets_budget(tmp_path, monkeypatch):
    _write(tmp_path, "ogbg_solubility", num_tasks=2)
    workload = registry.get_workload("ogbg_solubility", "pytorch")
    workload.config = _config()
    seen = []

    def logits(params, model_state, batch, rng):
        seen.append((len(batch["nodes"]), len(batch["edges"])))
        return np.zeros((len(batch["n_node"]), 2), np.float32)

    monkeypatch.setattr(workload, "_eval_logits", logits)
    monkeypatch.setattr(workload, "_eval_num_shards", lambda: 1)
    workload._eval_model_on_split("validation", 4, 0, None, None, None, str(tmp_path))
    rows = workload.eval_rows_per_device
    assert seen == [(13 * rows + 1, 27 * rows)]


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
