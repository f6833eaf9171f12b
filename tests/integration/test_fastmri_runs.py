"""fastMRI end to end: NYU-format archives from a real MRI slice, prepared, trained and evaluated.

The fixture (`workloads.fastmri.data.write_fixture`) writes ``knee_singlecoil_{train,val}.tar.xz``
holding h5 volumes with ``kspace``, ``reconstruction_esc`` and ``max`` made from matplotlib's
sample MRI slice, then `prepare` extracts and checks them: the code path a user runs. Images are
tiny (k-space 64 x 40, targets 32 x 32; the U-Net's four poolings need a multiple of 16) so the
runs fit the default suite; the registered configs are swapped for ones sized to the fixture's
splits in this process only. `algoperf run` trains 2 steps with the NAdamW baseline and
evaluates (after step 1 and at the end) in both frameworks; the variants' runs are slow-marked.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import DatasetError
from workloads.fastmri import data

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SUBMISSIONS = HERE / "submissions"
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SHAPES = {"kspace_shape": (64, 40), "target_shape": (32, 32)}

VARIANTS = ["fastmri_model_size", "fastmri_tanh", "fastmri_layernorm"]
RUN_CASES = [
    pytest.param(name, fw, marks=() if name == "fastmri" else pytest.mark.slow, id=f"{name}-{fw}")
    for name in ["fastmri", *VARIANTS]
    for fw in ("jax", "pytorch")
]


@pytest.fixture(autouse=True)
def _cpu_settings(monkeypatch):
    """Slices are processed in the calling thread; PyTorch uses one thread (see the vision runs)."""
    import torch

    monkeypatch.setenv("ALGOPERF_NUM_DATA_WORKERS", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fastmri_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fastmri_data")
    data.write_fixture(
        root, train_volumes=2, validation_volumes=2, test_volumes=1, slices=3, **SHAPES
    )
    return root


def use_config(monkeypatch, name: str, root: Path) -> None:
    config = dataclasses.replace(
        data.fixture_config(registry.get_config(name), root), eval_batch_size=48
    )
    patched = {**registry.all_configs(), name: config}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)


def test_fixture_prepares_in_the_nyu_layout(fastmri_root):
    root = data.dataset_dir(fastmri_root)
    assert sorted(p.name for p in (root / data.TRAIN_DIR).glob("*.h5")) == [
        "file1000000.h5",
        "file1000001.h5",
    ]
    assert len(list((root / data.VAL_DIR).glob("*.h5"))) == 3
    sizes = {s: len(data.load_split(fastmri_root, s)) for s in data.SPLITS}
    assert sizes == {"train": 6, "eval_train": 6, "validation": 6, "test": 3}
    # Preparing again is a no-op that finds the data ready.
    assert data.prepare(fastmri_root, progress=False) == root


def test_prepare_resumes_and_rejects_bad_volumes(tmp_path, capsys):
    archives = data.write_archives(
        tmp_path / "src", train_volumes=2, val_volumes=2, slices=1, **SHAPES
    )
    root = tmp_path / "d"
    # An interrupted extraction leaves a partial temp file and one finished volume.
    dest = root / "fastmri" / data.TRAIN_DIR
    dest.mkdir(parents=True)
    (dest / ".file1000001.h5.partial").write_bytes(b"junk")
    data.prepare(
        root,
        train_tar=archives["train"],
        val_tar=archives["val"],
        progress=True,
        num_validation_files=1,
    )
    assert len(data.load_split(root, "train")) == 2
    # Not the NYU archives' 973 / 199 volumes: prepared, with a warning that runs will refuse.
    assert "warning: 2 training and 2 validation volumes, not the NYU archives' 973 and 199" in (
        capsys.readouterr().err
    )
    assert not list(dest.glob(".*.partial"))
    # A truncated volume is named in a one-line error with the fix.
    bad = tmp_path / "bad" / "fastmri"
    (bad / data.TRAIN_DIR).mkdir(parents=True)
    data.write_volumes(bad / data.VAL_DIR, 1, slices=1, **SHAPES)
    (bad / data.TRAIN_DIR / "file1.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match=r"file1\.h5 cannot be read as HDF5.*prepare again"):
        data.prepare(tmp_path / "bad", progress=False)
    # Missing archives: say where to get them and which flag names them.
    with pytest.raises(DatasetError, match=r"fastmri\.med\.nyu\.edu.*--fastmri_train_tar"):
        data.prepare(tmp_path / "empty", progress=False)


def test_datasets_cli_prepares_the_nyu_archives_with_upstreams_split_rule(tmp_path):
    """``algoperf datasets prepare fastmri --fastmri_{train,val}_tar``: 101 validation volumes,
    so the default rule (first 100 sorted files = validation) leaves one for the test split."""
    from algoperf.data import cli as data_cli

    archives = data.write_archives(
        tmp_path / "nyu", train_volumes=2, val_volumes=101, slices=1, kspace_shape=(32, 24),
        target_shape=(16, 16),
    )  # fmt: skip
    argv = [
        "prepare",
        "fastmri",
        f"--data_dir={tmp_path / 'd'}",
        f"--fastmri_train_tar={archives['train']}",
        f"--fastmri_val_tar={archives['val']}",
        "--quiet",
    ]
    assert data_cli.main(argv) == 0
    sizes = {s: len(data.load_split(tmp_path / "d", s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 2, "validation": 100, "test": 1}
    assert data_cli.main(argv) == 0  # idempotent


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, fastmri_root, monkeypatch, tmp_path):
    use_config(monkeypatch, name, fastmri_root)
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={SUBMISSIONS / f'nadamw_small_{framework}.py'}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=mri",
        f"--data_dir={fastmri_root}",
        "--rng_seed=3",
        "--max_global_steps=2",
        "--progress=false",
    ]
    assert main(argv) == 0
    path = exp / "mri" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 1
    for row in rows:
        for split in ("train", "validation", "test"):
            ssim, loss = float(row[f"{split}/ssim"]), float(row[f"{split}/loss"])
            assert -1.0 <= ssim <= 1.0 and math.isfinite(ssim)
            assert 0.0 < loss < 10.0
    assert int(rows[-1]["global_step"]) >= 1


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_registered_config_refuses_the_fixture(framework, fastmri_root):
    """The registered config's slice counts (34,742 / 3,554 / 3,581) against the fixture's 6 / 6 /
    3: one line naming the data folder, the split, both counts and the fix; the fixture's own
    config passes, and an eval asking for more slices than its split holds is refused too."""
    root = data.dataset_dir(fastmri_root)
    workload = registry.get_workload("fastmri", framework)
    with pytest.raises(DatasetError) as caught:
        workload.check_data(str(fastmri_root))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"{root}: split 'train' holds 6 slices, the workload 'fastmri' expects 34742;"
    )
    assert f"algoperf datasets prepare fastmri --data_dir {fastmri_root}" in message
    sized = data.fixture_config(registry.get_config("fastmri"), fastmri_root)
    for split, field in (("validation", "num_validation_examples"), ("test", "num_test_examples")):
        wrong = dataclasses.replace(sized, **{field: getattr(sized, field) + 1})
        with pytest.raises(DatasetError, match=rf"split '{split}' holds \d+ slices, .* expects"):
            data.check_split_sizes(fastmri_root, wrong)
    too_many = dataclasses.replace(sized, num_eval_train_examples=7)
    with pytest.raises(
        DatasetError, match=r"'eval_train' takes 7 slices, the training split holds 6"
    ):
        data.check_split_sizes(fastmri_root, too_many)
    registry.workload_class("fastmri", framework)(sized).check_data(str(fastmri_root))
    with pytest.raises(DatasetError, match=r"validation eval asks for 7 slices, the split holds 6"):
        data.numpy_batches(fastmri_root, sized, "validation", 4, 0, 7, num_workers=0)
    with pytest.raises(DatasetError, match=r"eval_train eval asks for 7 slices"):
        data.numpy_batches(fastmri_root, sized, "eval_train", 4, 0, 7, num_workers=0)


def test_cli_fixture_records_its_sizes_and_runs(tmp_path):
    """``algoperf datasets prepare fastmri --fixture`` records the fixture's own slice counts, so
    the registered workload run on it (``get_config(name, data_dir)``) passes the data check."""
    assert main(["datasets", "prepare", "fastmri", "--fixture", "--data_dir", str(tmp_path)]) == 0
    config = registry.get_config("fastmri", tmp_path)
    assert data.check_split_sizes(tmp_path, config) == {"train": 34, "validation": 4, "test": 2}
    registry.get_workload("fastmri", "pytorch", data_dir=tmp_path).check_data(str(tmp_path))
    with pytest.raises(DatasetError, match="split 'train' holds 34 slices"):
        registry.get_workload("fastmri", "pytorch").check_data(str(tmp_path))


def test_eval_metrics_do_not_depend_on_the_eval_batch_size(fastmri_root):
    """Per-slice SSIM/MAE sums are exact: batch sizes 2 and 5 (padded) give identical metrics."""
    from workloads.fastmri.workload_pytorch import FastmriWorkload

    config = data.fixture_config(registry.get_config("fastmri"), fastmri_root)
    workload = FastmriWorkload(config=dataclasses.replace(config, eval_batch_size=16))
    params, state = workload.init_model_fn(np.array([0, 0], np.uint32))
    results = [
        workload._eval_model_on_split("validation", 6, bs, params, state, None, str(fastmri_root))
        for bs in (2, 5)
    ]
    assert results[0] == results[1]
    assert set(results[0]) == {"ssim", "loss"}
    assert np.isfinite(list(results[0].values())).all()
