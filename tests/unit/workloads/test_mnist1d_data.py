"""MNIST-1D: generation by the mnist1d package, the npz format, splits, fixture and errors."""

from __future__ import annotations

import importlib.metadata
import json
import random

import numpy as np
import pytest

from algoperf import registry
from algoperf.data import DatasetError
from algoperf.data import cli as data_cli
from algoperf.data.download import MANIFEST_NAME, manifest_status
from workloads.mnist import data, mnist1d, testing
from workloads.mnist.spec import FAMILY, VARIANTS

CONFIG = VARIANTS["mnist1d"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist1d")
    testing.write_dataset_fixture("mnist1d", root)
    return root


def test_spec_numbers():
    assert (CONFIG.num_train_examples + CONFIG.num_validation_examples) == int(
        0.8 * mnist1d.NUM_SAMPLES
    )
    assert CONFIG.num_test_examples == mnist1d.NUM_SAMPLES - int(0.8 * mnist1d.NUM_SAMPLES)
    assert CONFIG.dev_only and not CONFIG.benchmark
    assert tuple(CONFIG.model["input_shape"]) == mnist1d.INPUT_SHAPE
    count = 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert FAMILY.param_count("mnist1d", "jax") == FAMILY.param_count("mnist1d", "pytorch") == count
    # The other two datasets' numbers are untouched by the variant.
    assert VARIANTS["mnist"].model["hidden_widths"] == (128,)
    assert VARIANTS["fashion_mnist"].model == VARIANTS["mnist"].model


def test_fixture_splits_are_slices_of_the_stored_parts(fixture_root):
    config = testing.fixture_config("mnist1d")
    stored = np.load(fixture_root / "mnist1d" / mnist1d.FILE_NAME)
    splits = {s: data.load_split(fixture_root, config, s) for s in data.SPLITS}
    n_train, n_val = config.num_train_examples, config.num_validation_examples
    np.testing.assert_array_equal(splits["train"]["inputs"], stored["x"][:n_train])
    np.testing.assert_array_equal(
        splits["validation"]["inputs"], stored["x"][n_train : n_train + n_val]
    )
    np.testing.assert_array_equal(splits["validation"]["targets"], stored["y"][n_train:][:n_val])
    np.testing.assert_array_equal(
        splits["eval_train"]["inputs"], stored["x"][: config.num_eval_train_examples]
    )
    np.testing.assert_array_equal(splits["test"]["targets"], stored["y_test"])
    for split in splits.values():
        assert split["inputs"].dtype == np.float32 and split["inputs"].shape[1:] == (40,)
        assert split["targets"].dtype == np.int32
        assert not split["inputs"].flags.writeable
    assert manifest_status(fixture_root / "mnist1d") == "ready"


def test_fixture_through_the_cli_records_its_sizes(tmp_path, capsys):
    assert data_cli.main(["prepare", "mnist1d", "--fixture", f"--data_dir={tmp_path}"]) == 0
    sized = registry.get_config("mnist1d", tmp_path)
    assert (sized.num_train_examples, sized.num_validation_examples) == (1_000, 200)
    assert sized.num_test_examples == 200 and sized.model == CONFIG.model


def test_fixture_is_learnable_but_not_trivial(fixture_root):
    """Nearest class mean on the raw signals is well above chance, not perfect."""
    config = testing.fixture_config("mnist1d")
    train = data.load_split(fixture_root, config, "train")
    val = data.load_split(fixture_root, config, "validation")
    means = np.stack([train["inputs"][train["targets"] == k].mean(0) for k in range(10)])
    dist = ((val["inputs"][:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = float((dist.argmin(1) == val["targets"]).mean())
    assert 0.3 < accuracy < 0.97


def test_synthetic_batch_has_the_signal_shape():
    batch = data.synthetic_batch(CONFIG, 8, 0)
    assert batch["inputs"].shape == (8, 40) and batch["targets"].shape == (8,)


def test_real_generator_small_is_the_package_recipe_and_idempotent(tmp_path):
    """prepare = the package's make_dataset (default recipe, seed 42) for num_samples examples."""
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(7)
    random.seed(7)
    before = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    folder = mnist1d.prepare("mnist1d", tmp_path, num_samples=200, progress=False)
    # The caller's global random streams are untouched by the generator's seeding.
    assert (np.random.random(), random.random()) == before
    args = get_dataset_args()
    args.num_samples = 200
    expected = make_dataset(args)
    stored = mnist1d.load_arrays(tmp_path)
    for name in mnist1d.ARRAYS:
        np.testing.assert_array_equal(stored[name], expected[name].astype(stored[name].dtype))
    assert stored["x"].shape == (160, 40) and stored["x_test"].shape == (40, 40)
    counts = np.bincount(np.concatenate([stored["y"], stored["y_test"]]), minlength=10)
    assert counts.tolist() == [20] * 10  # the ten templates' classes, balanced
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["recipe"] == {"package": "mnist1d==0.0.2.post1", "num_samples": 200}
    assert manifest["sha256"] == mnist1d.array_digests(
        {k: np.load(folder / mnist1d.FILE_NAME)[k] for k in mnist1d.ARRAYS}
    )
    stamp = (folder / mnist1d.FILE_NAME).stat().st_mtime_ns
    mnist1d.prepare("mnist1d", tmp_path, num_samples=200, progress=False)
    assert (folder / mnist1d.FILE_NAME).stat().st_mtime_ns == stamp  # kept, not regenerated
    mnist1d.prepare("mnist1d", tmp_path, num_samples=300, progress=False)
    assert mnist1d.load_arrays(tmp_path)["x"].shape == (240, 40)  # another recipe: regenerated


@pytest.mark.slow
def test_prepare_the_real_dataset(tmp_path):
    """``algoperf datasets prepare mnist1d``: the 50,000 examples the workload reads (~15 s)."""
    assert data_cli.main(["prepare", "mnist1d", f"--data_dir={tmp_path}", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "mnist1d" / MANIFEST_NAME).read_text())
    # The labels depend only on the recipe's seeded permutation: pinned across platforms.
    assert manifest["sha256"]["y"] == (
        "d00e2b0793a5634295aba81aaac4aa0ad3d32ae6e1f2fa871a503d2591dfff42"
    )
    assert manifest["sha256"]["y_test"] == (
        "c0e1562fe9d28c9298bd086ca1359f71d187566a84f1b390be634d0efdb4bf6c"
    )
    splits = {s: data.load_split(tmp_path, CONFIG, s) for s in data.SPLITS}
    sizes = {s: len(v["targets"]) for s, v in splits.items()}
    assert sizes == {"train": 35_000, "eval_train": 5_000, "validation": 5_000, "test": 10_000}
    allx = np.concatenate([splits["train"]["inputs"], splits["test"]["inputs"]])
    assert abs(float(allx.mean())) < 0.05 and abs(float(allx.std()) - 1.0) < 0.05


def test_missing_or_other_package_version_says_what_to_install(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(DatasetError, match=r"pip install 'mnist1d==0\.0\.2\.post1'"):
        mnist1d.prepare("mnist1d", tmp_path, progress=False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1")
    with pytest.raises(DatasetError, match=r"mnist1d 0\.0\.1 is installed"):
        mnist1d.prepare("mnist1d", tmp_path, progress=False)


def test_missing_and_corrupt_files_name_the_fix(tmp_path):
    with pytest.raises(DatasetError, match=r"mnist1d\.npz is missing; run `algoperf datasets"):
        data.load_split(tmp_path, CONFIG, "train")
    (tmp_path / "mnist1d").mkdir()
    (tmp_path / "mnist1d" / mnist1d.FILE_NAME).write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="corrupt or incomplete"):
        data.load_split(tmp_path, CONFIG, "train")


def test_too_small_for_the_config(fixture_root):
    with pytest.raises(
        DatasetError, match=r"holds 1200 train examples; the train split of mnist1d"
    ):
        data.load_split(fixture_root, CONFIG, "train")


def test_wrong_shapes_are_rejected(tmp_path):
    arrays = {
        "x": np.zeros((10, 39)),
        "y": np.zeros(10),
        "x_test": np.zeros((2, 40)),
        "y_test": np.zeros(2),
    }
    with pytest.raises(DatasetError, match=r"not \(N, 40\)"):
        mnist1d.write_arrays(tmp_path / "mnist1d", arrays)
