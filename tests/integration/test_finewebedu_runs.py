"""finewebedu_lm end to end: `algoperf run` with the NAdamW baseline on the fineweb-edu fixture.

The fixture is what ``algoperf datasets prepare finewebedu --fixture`` writes: fineweb-edu-shaped
parquet tokenised by the real prepare code into uint16 windows of 1,025 tokens (a small BPE ranks
file, so ids stay below 269), with its split sizes recorded so that ``--data_dir`` sizes the
config for it. The 252M-parameter decoder does not fit a CPU test, so the runs swap in the same
decoder at a small width (``SMALL``: 2 layers of width 32, vocab 320, sequence 1,024, float32
compute), in this process only, by patching `registry.all_configs`; everything else is the
registered workload. The baseline's batch size (64) becomes 4 through a two-line submission that
re-exports the baseline.

Also here: the eval does not depend on the eval batch size, it counts every real token of the
split once, the train stream resumes exactly, DDP ranks split every batch, and the registered
config refuses the fixture.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import DatasetError
from algoperf.data import cli as data_cli
from workloads.finewebedu_lm import common, data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install 'algoperf[text]'")
pytest.importorskip("tiktoken", reason="tiktoken not installed: pip install 'algoperf[text]'")

REPO = Path(__file__).parents[2]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
NAME = "finewebedu_lm"
SMALL = {
    "vocab_size": 320,
    "model_dim": 32,
    "num_heads": 2,
    "num_layers": 2,
    "mlp_dim": 64,
    "multiple_of": 32,
    "compute_dtype": "float32",
}
_SUBMISSION = """from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403


def get_batch_size(workload_name):
    return 4
"""


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """``algoperf datasets prepare finewebedu --fixture``: parquet tokenised for real."""
    root = tmp_path_factory.mktemp("finewebedu_data")
    assert (
        data_cli.main(["prepare", "finewebedu", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    )
    return root


@pytest.fixture()
def small_model(monkeypatch):
    """Serve the registered workload with the small decoder (`registry.all_configs` patched)."""
    config = registry.get_config(NAME).variant(NAME, model=SMALL)
    patched = {**registry.all_configs(), NAME: config}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)
    return config


def _rng(framework: str):
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(0)
    return np.array([0, 0], np.uint32)


def _run(framework: str, name: str, data_root: Path, tmp_path: Path, seed: int) -> list[dict]:
    """`algoperf run` of `name` with the NAdamW baseline for 3 steps; the eval rows."""
    submission = tmp_path / f"nadamw_small_{framework}.py"
    submission.write_text(_SUBMISSION.format(framework=framework))
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={submission}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=lm",
        f"--data_dir={data_root}",
        f"--rng_seed={seed}",
        "--max_global_steps=3",
        "--progress=false",
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")
    with (exp / "lm" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_nadamw_runs_end_to_end(framework, fixture_root, small_model, tmp_path):
    rows = _run(framework, NAME, fixture_root, tmp_path, seed=3)
    assert rows[0]["global_step"] == "1" and rows[-1]["global_step"] == "3"
    sizes = registry.fixture_overrides("finewebedu", fixture_root)
    for row in rows:
        assert int(row["validation/num_examples"]) == sizes["num_validation_examples"]
        assert not any(key.startswith("test/") and row[key] for key in row)  # no test split
        for split in ("train", "validation"):
            loss, ppl = float(row[f"{split}/loss"]), float(row[f"{split}/ppl"])
            # A fresh model predicts about uniformly over its 320 ids.
            assert math.isfinite(loss) and 0.5 * math.log(320) < loss < 2 * math.log(320)
            assert ppl == pytest.approx(math.exp(loss), rel=1e-12)


@pytest.fixture(scope="module")
def bible_root(tmp_path_factory):
    """``algoperf datasets prepare lm_bible --fixture``: chapters through the real prepare."""
    pytest.importorskip("sentencepiece", reason="needs sentencepiece: pip install 'algoperf[text]'")
    root = tmp_path_factory.mktemp("lm_bible_data")
    assert data_cli.main(["prepare", "lm_bible", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    return root


# The registered lm_bible model, unchanged. PyTorch in the default suite (about 14 s on a loaded
# 2-core machine); JAX's compile makes its run slow.
@pytest.mark.parametrize("framework", [pytest.param("jax", marks=pytest.mark.slow), "pytorch"])
def test_lm_bible_runs_end_to_end(framework, bible_root, tmp_path):
    rows = _run(framework, "lm_bible", bible_root, tmp_path, seed=2)
    assert rows[-1]["global_step"] == "3"
    sizes = registry.fixture_overrides("lm_bible", bible_root)
    for row in rows:
        assert int(row["validation/num_examples"]) == sizes["num_validation_examples"]
        for split in ("train", "validation"):
            loss, ppl = float(row[f"{split}/loss"]), float(row[f"{split}/ppl"])
            # A fresh model spreads over its 2,048 outputs (the fixture uses fewer ids).
            assert math.isfinite(loss) and 0.5 * math.log(2048) < loss < 1.5 * math.log(2048)
            assert ppl == pytest.approx(math.exp(loss), rel=1e-12)
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_eval_is_the_whole_split_for_any_eval_batch_size(framework, fixture_root, small_model):
    """Token-mean CE over every real token of the split, the same for any eval batch size, and
    equal to a direct computation from the windows."""
    workload = registry.get_workload(NAME, framework, data_dir=fixture_root)
    rng = _rng(framework)
    params, state = workload.init_model_fn(rng)
    results = [
        workload._eval_model_on_split(
            "validation",
            workload.num_validation_examples,
            size,
            params,
            state,
            rng,
            str(fixture_root),
        )
        for size in (1, 3, 64)
    ]
    assert results[0] == results[1] == results[2]
    # Direct: window by window (the chunk's shape: no new compile), the loss over all tokens.
    windows = data.load_windows(fixture_root, "validation")
    loss_sum, tokens = 0.0, 0.0
    for row in range(len(windows)):
        batch = data.window_batch(windows, np.array([row]))
        batch["weights"] = np.ones(batch["targets"].shape, np.float32)
        out = workload._eval_batch(params, state, workload._to_device(batch), rng)
        loss_sum += float(out["loss_sum"][0])
        tokens += float(out["num_tokens"][0])
    assert tokens == windows.shape[0] * 1024
    direct = loss_sum / tokens
    assert results[0]["loss"] == pytest.approx(direct, rel=1e-6)
    assert results[0]["ppl"] == pytest.approx(math.exp(direct), rel=1e-6)


def test_batches_follow_upstreams_windows_and_resume(fixture_root):
    windows = data.load_windows(fixture_root, "train")
    first = list(zip(range(5), common.train_batches(windows, 4, seed=9), strict=False))
    resumed = next(common.train_batches(windows, 4, seed=9, start_step=3))
    for key in ("inputs", "targets"):
        np.testing.assert_array_equal(resumed[key], first[3][1][key])
    b = first[0][1]
    assert set(b) == {"inputs", "targets"} and b["inputs"].shape == (4, 1024)
    assert b["inputs"].dtype == np.int32
    np.testing.assert_array_equal(b["inputs"][:, 1:], b["targets"][:, :-1])  # shifted by one
    # Eval batches: in order, padding windows weighted 0 per token.
    evals = list(common.eval_batches(data.load_windows(fixture_root, "validation"), 3, 4))
    assert [e["weights"].sum() for e in evals] == [3 * 1024, 1024]
    np.testing.assert_array_equal(evals[1]["inputs"][1:], 0)
    np.testing.assert_array_equal(
        evals[0]["targets"][0], data.load_windows(fixture_root, "validation")[0, 1:]
    )


def test_ddp_ranks_split_every_batch(fixture_root, small_model):
    workload = registry.get_workload(NAME, "pytorch", data_dir=fixture_root)
    whole = next(workload._numpy_batches("train", str(fixture_root), 4, seed=1))
    parts = [
        next(workload._numpy_batches("train", str(fixture_root), 4, seed=1, shard=(r, 2)))
        for r in range(2)
    ]
    np.testing.assert_array_equal(np.concatenate([p["inputs"] for p in parts]), whole["inputs"])


def test_registered_config_refuses_the_fixture(fixture_root):
    """Without the fixture sizing the run stops before training: 100,000 windows expected."""
    with pytest.raises(DatasetError, match=r"validation.bin: 4 windows.*expects 100000"):
        registry.get_workload(NAME, "jax").check_data(str(fixture_root))
    small_vocab = registry.get_config(NAME, data_dir=fixture_root).variant(
        NAME, model={"vocab_size": 100}
    )
    workload = registry.get_workload(NAME, "jax", data_dir=fixture_root)
    workload.config = small_vocab
    with pytest.raises(DatasetError, match=r"meta.json: 269 token ids.*embeds only 100"):
        workload.check_data(str(fixture_root))
