"""Vision workloads end to end: `algoperf run` with the NAdamW baseline on tiny fixture datasets.

CIFAR-10 comes from a tiny ``cifar-10-python.tar.gz`` prepared by `workloads.cifar.data.prepare`,
ImageNet from tiny ILSVRC2012 / ImageNet-v2 archives prepared by ``algoperf datasets prepare
imagenet --imagenet_*`` (the same code path a user runs). Fixture sizes: the registered configs
keep upstream's split sizes (a real ImageNet run must evaluate exactly 50,000 validation images,
and the data loader refuses a folder holding any other number), so these tests swap in configs
sized for the fixtures, in this process only, by patching `registry.all_configs`; the
model (1000 classes for ImageNet) and everything else stay the registered ones. Eval batch sizes
are small so that each eval split is one small device chunk on the CPU.

Also here: the workload plumbing the runs rely on (batch-norm state, dropout, soft labels, output
parameters, seeding, DDP sharding of ImageNet batches) and the ``algoperf datasets prepare
imagenet`` options.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from algoperf import registry, spec
from algoperf.cli import main
from algoperf.data import DatasetError
from algoperf.data import cli as data_cli
from algoperf.workload_config import WorkloadConfig

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SUBMISSIONS = HERE / "submissions"
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"

RESNETS = [
    "imagenet_resnet",
    "imagenet_resnet_silu",
    "imagenet_resnet_gelu",
    "imagenet_resnet_large_bn_init",
]
VITS = ["imagenet_vit", "imagenet_vit_glu", "imagenet_vit_post_ln", "imagenet_vit_map"]

# Cheap enough for the default suite on a 2-core CPU; the other runs are marked slow.
DEFAULT_RUNS = {
    ("cifar", "jax"),
    ("cifar", "pytorch"),
    ("imagenet_resnet", "pytorch"),
    ("imagenet_vit", "pytorch"),
}
RUN_CASES = [
    pytest.param(
        name,
        fw,
        marks=() if (name, fw) in DEFAULT_RUNS else pytest.mark.slow,
        id=f"{name}-{fw}",
    )
    for name in ["cifar", *RESNETS, *VITS]
    for fw in ("jax", "pytorch")
]


@pytest.fixture(autouse=True)
def _cpu_settings(monkeypatch):
    """ImageNet loaders decode in the calling thread (no worker processes), and PyTorch computes
    with one thread: the suite runs one test process per core, and PyTorch's intra-op threads
    wait on each other when another process holds a core (measured on 2 busy cores: a CIFAR run
    takes 18 s with 2 threads, 3 s with 1)."""
    import torch

    monkeypatch.setenv("ALGOPERF_NUM_DATA_WORKERS", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Fixture datasets --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    from workloads.cifar import data, testing

    tmp = tmp_path_factory.mktemp("cifar")
    fixture = testing.write_tarball(tmp / "src" / data.ARCHIVE, per_train_batch=8, num_test=8)
    root = tmp / "data"
    data.prepare(root, urls=[fixture.archive.as_uri()], md5=fixture.md5, size=None, progress=False)
    return root


def cifar_config() -> WorkloadConfig:
    """The registered CIFAR config with the fixture's split sizes (40 train, 8 test images)."""
    return dataclasses.replace(
        registry.get_config("cifar"),
        num_train_examples=32,
        num_validation_examples=4,
        num_eval_train_examples=4,
        num_test_examples=4,
        eval_batch_size=32,  # one chunk of 4 rows per split
    )


@pytest.fixture(scope="module")
def imagenet_archives(tmp_path_factory):
    from workloads.imagenet import testing

    return testing.write_archives(
        tmp_path_factory.mktemp("imagenet_archives"),
        num_classes=2,
        train_per_class=2,
        val_per_class=1,
        v2_per_class=1,
    )


def _imagenet_flags(archives) -> list[str]:
    return [
        f"--imagenet_train_tar={archives.train_tar}",
        f"--imagenet_val_tar={archives.val_tar}",
        f"--imagenet_devkit_tar={archives.devkit_tar}",
        f"--imagenet_v2_tar={archives.v2_tar}",
    ]


@pytest.fixture(scope="module")
def imagenet_root(imagenet_archives, tmp_path_factory) -> Path:
    """ImageNet prepared with ``algoperf datasets prepare imagenet`` from the fixture archives."""
    root = tmp_path_factory.mktemp("imagenet_data")
    argv = [
        "prepare",
        "imagenet",
        f"--data_dir={root}",
        "--quiet",
        *_imagenet_flags(imagenet_archives),
    ]
    # The fixture archives are not the official files: their checksums cannot match.
    assert data_cli.main([*argv, "--imagenet_skip_checksums"]) == 0
    return root


def imagenet_config(name: str, archives) -> WorkloadConfig:
    """The registered config of `name` with the fixture's split sizes; the model is unchanged."""
    return dataclasses.replace(
        registry.get_config(name),
        num_train_examples=archives.num_train,
        num_validation_examples=archives.num_val,
        num_eval_train_examples=2,
        num_test_examples=archives.num_v2,
        eval_batch_size=16,  # 2 rows per chunk: each eval split is one chunk
    )


def use_configs(monkeypatch, *configs: WorkloadConfig) -> None:
    """Make the registry (and so `algoperf run`) serve `configs` instead of the registered ones."""
    patched = {**registry.all_configs(), **{c.name: c for c in configs}}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)


# End-to-end runs -------------------------------------------------------------------------------


def _run(framework: str, workload: str, data_dir: Path, exp: Path) -> list[dict[str, str]]:
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={workload}",
        f"--submission_path={SUBMISSIONS / f'nadamw_small_{framework}.py'}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=vision",
        f"--data_dir={data_dir}",
        "--rng_seed=7",
        "--max_global_steps=2",
        "--progress=false",
    ]
    assert main(argv) == 0
    tdir = exp / "vision" / f"{workload}_{framework}" / "trial_1"
    with (tdir / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, request, monkeypatch, tmp_path):
    if name == "cifar":
        config, data_dir = cifar_config(), request.getfixturevalue("cifar_root")
    else:
        archives = request.getfixturevalue("imagenet_archives")
        config, data_dir = imagenet_config(name, archives), request.getfixturevalue("imagenet_root")
    use_configs(monkeypatch, config)
    start = time.perf_counter()
    rows = _run(framework, name, data_dir, tmp_path / "exp")
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")

    # An eval after the first step and a final one after the last.
    assert rows[0]["global_step"] == "1"
    assert rows[-1]["global_step"] == "2"
    for row in rows:
        # The evaluation counted exactly the fixture's examples (the workload checks the count).
        assert int(row["validation/num_examples"]) == config.num_validation_examples
        assert int(row["test/num_examples"]) == config.num_test_examples
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/accuracy"]) <= 1.0
            loss = float(row[f"{split}/loss"])
            assert math.isfinite(loss) and loss > 0.0
    hparams = json.loads(
        (
            tmp_path / "exp" / "vision" / f"{name}_{framework}" / "trial_1" / "hparams.json"
        ).read_text()
    )
    assert {"dropout_rate", "label_smoothing"} <= set(hparams)


def test_registered_imagenet_config_refuses_a_partial_dataset(imagenet_root, tmp_path, capsys):
    """Without the test override the run stops before training: 50,000 validation images are
    expected, never fewer."""
    with pytest.raises(DatasetError, match="expects 50000"):
        registry.get_workload("imagenet_resnet", "pytorch").check_data(str(imagenet_root))
    argv = [
        "run",
        "--framework=pytorch",
        "--workload=imagenet_vit",
        f"--submission_path={SUBMISSIONS / 'nadamw_small_pytorch.py'}",
        f"--tuning_search_space={NADAMW_SPACE}",
        f"--experiment_dir={tmp_path / 'exp'}",
        "--experiment_name=vision",
        f"--data_dir={imagenet_root}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "index_validation.npz" in err and "50000" in err
    assert not list((tmp_path / "exp").glob("**/trial_*"))


# Registry and plumbing ---------------------------------------------------------------------------

OUTPUT_PARAMS = {
    ("resnet", "jax"): (["Dense_0"], ["BatchNorm_init", "Conv_init"]),
    ("resnet", "pytorch"): (["fc.weight", "fc.bias"], ["conv1.weight", "bn1.weight"]),
    ("vit", "jax"): (["head"], ["pre_logits", "Transformer"]),
    ("vit", "pytorch"): (["head.weight", "head.bias"], ["pre_logits.weight"]),
}


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_registry_builds_one_class_per_architecture(framework):
    """Every variant is served by its architecture's class, configured by the variant's config."""
    module = __import__(f"workloads.imagenet.workload_{framework}", fromlist=["x"])
    classes = {"resnet": module.ImagenetResNetWorkload, "vit": module.ImagenetVitWorkload}
    for arch, names in (("resnet", RESNETS), ("vit", VITS)):
        for name in names:
            assert registry.implemented_frameworks(name) == ("jax", "pytorch")
            workload = registry.get_workload(name, framework)
            assert type(workload) is classes[arch]
            assert isinstance(workload, module.ImagenetWorkload)
            assert workload.config is registry.get_config(name)
            assert type(copy.copy(workload)) is classes[arch]
            outputs, others = OUTPUT_PARAMS[(arch, framework)]
            assert all(workload.is_output_params(k) for k in outputs)
            assert not any(workload.is_output_params(k) for k in others)
    with pytest.raises(TypeError, match="needs the workload config"):
        module.ImagenetWorkload()
    odd = registry.get_config("imagenet_vit").variant("imagenet_odd", model={"arch": "convnext"})
    with pytest.raises(ValueError, match=r"workloads/imagenet/spec.py.*'convnext'"):
        module.ImagenetWorkload(config=odd)
    cifar = registry.get_workload("cifar", framework)
    assert cifar.is_output_params(OUTPUT_PARAMS[("resnet", framework)][0][0])
    assert registry.implemented_frameworks("cifar") == ("jax", "pytorch")


def test_workloads_cli_lists_vision_frameworks(capsys):
    assert main(["workloads", "--json"]) == 0
    rows = {r["workload"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ["cifar", *RESNETS, *VITS]:
        assert rows[name]["frameworks"] == "jax,pytorch"


def _batch(n: int, seed: int, size: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "inputs": rng.normal(size=(n, size, size, 3)).astype(np.float32),
        "targets": rng.integers(0, 10, n).astype(np.int32),
    }


def small_resnet(framework: str):
    """The CIFAR workload with a narrow one-block-per-stage ResNet (same plumbing, cheaper)."""
    workload = registry.get_workload("cifar", framework)
    workload.config = workload.config.variant(
        "cifar", model={"stage_sizes": (1, 1, 1, 1), "num_filters": 8}
    )
    return workload


def test_jax_resnet_batch_norm_state():
    """JAX: running statistics live in model_state and change only with update_batch_norm."""
    import jax

    workload = small_resnet("jax")
    rng = jax.random.PRNGKey(0)
    params, state = workload.init_model_fn(rng)
    assert set(state) == {"batch_stats"}
    batch = workload._to_device(_batch(4, 0))
    train, evaluate = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL

    _, updated = workload.model_fn(params, batch, state, train, rng, update_batch_norm=True)
    leaves = jax.tree.leaves
    assert any(not np.allclose(a, b) for a, b in zip(leaves(updated), leaves(state)))

    logits_eval, same = workload.model_fn(params, batch, updated, evaluate, rng, False)
    assert same is updated
    # As upstream: without an update, normalisation uses the running averages, in any mode.
    logits_frozen, same = workload.model_fn(params, batch, updated, train, rng, False)
    assert same is updated
    np.testing.assert_allclose(logits_frozen, logits_eval, rtol=1e-5, atol=1e-5)
    logits_avg, _ = workload.model_fn(
        params, batch, updated, train, rng, True, use_running_average_bn=True
    )
    np.testing.assert_allclose(logits_avg, logits_eval, rtol=1e-5, atol=1e-5)
    # Running averages: an example's logits do not depend on the rest of the batch.
    other = workload._to_device({k: v[:2] for k, v in _batch(4, 0).items()})
    logits_half, _ = workload.model_fn(params, other, updated, evaluate, rng, False)
    np.testing.assert_allclose(logits_half, logits_eval[:2], rtol=1e-4, atol=1e-5)


def test_pytorch_resnet_batch_norm_state():
    """PyTorch: statistics live in the module (model_state None), frozen unless updated."""
    import torch

    workload = small_resnet("pytorch")
    model, state = workload.init_model_fn(np.array([0, 0]))
    assert state is None
    batch = workload._to_device(_batch(4, 1))
    train, evaluate = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL

    def stats() -> list[torch.Tensor]:
        return [b.clone() for n, b in model.named_buffers() if n.endswith("running_mean")]

    before = stats()
    logits, state = workload.model_fn(model, batch, None, train, None, update_batch_norm=False)
    assert state is None and logits.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(before, stats()))
    workload.model_fn(model, batch, None, train, None, update_batch_norm=True)
    after = stats()
    assert any(not torch.equal(a, b) for a, b in zip(before, after))

    logits_eval, _ = workload.model_fn(model, batch, None, evaluate, None, False)
    assert not logits_eval.requires_grad and not model.training
    assert all(torch.equal(a, b) for a, b in zip(after, stats()))
    half = workload._to_device({k: v[:2] for k, v in _batch(4, 1).items()})
    logits_half, _ = workload.model_fn(model, half, None, evaluate, None, False)
    torch.testing.assert_close(logits_half, logits_eval[:2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="evaluation"):
        workload.model_fn(model, batch, None, evaluate, None, True)


def test_pytorch_init_is_seeded_by_the_rng():
    import torch

    workload = registry.get_workload("imagenet_vit", "pytorch")
    a, _ = workload.init_model_fn(np.array([5, 0]))
    b, _ = workload.init_model_fn(np.array([5, 1]))
    c, _ = workload.init_model_fn(np.array([6, 0]))
    key = "encoder.net.0.mlp3.linear1.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])


def _random_head(model) -> None:
    import torch

    with torch.no_grad():  # the head starts at zero, which would hide every difference
        model.head.weight.normal_(generator=torch.Generator().manual_seed(0))


def test_pytorch_vit_dropout_reaches_the_model():
    import torch

    workload = registry.get_workload("imagenet_vit", "pytorch")
    model, _ = workload.init_model_fn(np.array([0, 0]))
    _random_head(model)
    batch = workload._to_device(_batch(2, 2, size=224))
    train, evaluate = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL
    eval_logits, _ = workload.model_fn(model, batch, None, evaluate, None, False)
    no_drop, _ = workload.model_fn(model, batch, None, train, None, False, dropout_rate=0.0)
    dropped, _ = workload.model_fn(model, batch, None, train, None, False, dropout_rate=0.5)
    torch.testing.assert_close(no_drop.detach(), eval_logits, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(dropped.detach(), eval_logits, atol=1e-3)
    # EVAL never drops, whatever rate is passed.
    again, _ = workload.model_fn(model, batch, None, evaluate, None, False, dropout_rate=0.5)
    torch.testing.assert_close(again, eval_logits)


@pytest.mark.slow
def test_jax_vit_dropout_reaches_the_model():
    import jax

    workload = registry.get_workload("imagenet_vit", "jax")
    rng = jax.random.PRNGKey(0)
    params, state = workload.init_model_fn(rng)
    assert state is None
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: (
            jax.random.normal(rng, x.shape)
            if "head" in jax.tree_util.keystr(path) and x.ndim == 2
            else x
        ),
        params,
    )
    batch = workload._to_device(_batch(2, 2, size=224))
    train, evaluate = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL
    eval_logits, _ = workload.model_fn(params, batch, None, evaluate, rng, False, 0.5)
    no_drop, _ = workload.model_fn(params, batch, None, train, rng, False, 0.0)
    dropped, _ = workload.model_fn(params, batch, None, train, rng, False, 0.5)
    np.testing.assert_allclose(no_drop, eval_logits, rtol=1e-4, atol=1e-5)
    assert not np.allclose(dropped, eval_logits, atol=1e-3)


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_soft_labels_and_label_smoothing(framework):
    """ViT training batches carry mixup soft labels; the loss takes them, with smoothing."""
    workload = registry.get_workload("imagenet_vit", framework)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 1000)).astype(np.float32)
    soft = np.zeros((3, 1000), np.float32)
    soft[[0, 1, 2], [4, 5, 6]] = 0.7
    soft[[0, 1, 2], [7, 8, 9]] = 0.3
    hard = np.array([4, 5, 6], np.int32)
    if framework == "pytorch":
        import torch

        def convert(x):
            return torch.from_numpy(x)
    else:
        import jax.numpy as jnp

        convert = jnp.asarray

    def loss(labels, smoothing):
        out = workload.loss_fn(convert(labels), convert(logits), label_smoothing=smoothing)
        return np.asarray(out["per_example"]), float(out["n_valid_examples"])

    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for smoothing in (0.0, 0.1):
        target = soft * (1 - smoothing) + smoothing / 1000
        per_example, n = loss(soft, smoothing)
        np.testing.assert_allclose(per_example, -(target * logp).sum(-1), rtol=1e-5)
        assert n == 3
    onehot = np.eye(1000, dtype=np.float32)[hard]
    np.testing.assert_allclose(loss(hard, 0.1)[0], loss(onehot, 0.1)[0], rtol=1e-5)


def test_vit_and_resnet_training_batches(imagenet_archives, imagenet_root):
    """ViT train batches: mixup soft targets (B, 1000); ResNet: class ids; eval: weights."""
    import jax

    key = jax.random.PRNGKey(0)
    vit = registry.get_workload("imagenet_vit", "jax")
    vit.config = imagenet_config("imagenet_vit", imagenet_archives)
    batch = next(vit._build_input_queue(key, "train", str(imagenet_root), 4))
    targets = np.asarray(batch["targets"])
    assert batch["inputs"].shape == (4, 224, 224, 3) and targets.shape == (4, 1000)
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
    assert (np.count_nonzero(targets, axis=-1) <= 2).all()

    resnet = registry.get_workload("imagenet_resnet", "pytorch")
    resnet.config = imagenet_config("imagenet_resnet", imagenet_archives)
    batch = next(resnet._build_input_queue(key, "train", str(imagenet_root), 4))
    assert tuple(batch["inputs"].shape) == (4, 3, 224, 224)  # NCHW for PyTorch
    assert batch["targets"].dtype.is_floating_point is False
    evals = list(resnet._numpy_batches("validation", str(imagenet_root), 4, seed=0))
    assert [b["weights"].tolist() for b in evals] == [[1.0, 1.0, 0.0, 0.0]]


def test_pytorch_ddp_ranks_decode_their_rows(imagenet_archives, imagenet_root):
    """Under DDP each rank's ImageNet train batch is its slice of the single-process batch."""
    import torch

    from algoperf.frameworks.pytorch import DistInfo

    config = imagenet_config("imagenet_vit", imagenet_archives)
    key = np.array([0, 9], np.uint32)

    def first_batch(rank: int, world: int) -> dict[str, torch.Tensor]:
        workload = registry.get_workload("imagenet_vit", "pytorch")
        workload.config = config
        workload._dist = DistInfo(world > 1, rank, world, torch.device("cpu"), 0)
        queue = workload._build_input_queue(key, "train", str(imagenet_root), 4, start_step=1)
        return next(queue)

    whole = first_batch(0, 1)
    for rank in (0, 1):
        part = first_batch(rank, 2)
        for k in ("inputs", "targets"):
            torch.testing.assert_close(part[k], whole[k][2 * rank : 2 * rank + 2], rtol=0, atol=0)


def test_vit_eval_agrees_across_frameworks(imagenet_archives, imagenet_root):
    """The same ViT weights evaluated by both workloads on the fixture give the same metrics:
    the shared numpy pipeline, the NHWC -> NCHW layout and the per-example metrics agree."""
    import jax

    from workloads.imagenet import param_map

    config = imagenet_config("imagenet_vit", imagenet_archives)
    pt = registry.get_workload("imagenet_vit", "pytorch")
    jx = registry.get_workload("imagenet_vit", "jax")
    pt.config = jx.config = config
    model, _ = pt.init_model_fn(np.array([0, 0]))
    _random_head(model)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    jax.eval_shape(jx.init_model_fn, jax.random.PRNGKey(0))  # builds the flax model, no compute
    params, _ = param_map.vit_pytorch_to_jax(state, param_map.vit_layout(config.model))
    params = jax.tree.map(jax.numpy.asarray, params)
    for split, n in (
        ("validation", config.num_validation_examples),
        ("test", config.num_test_examples),
    ):
        kwargs = dict(
            split=split, num_examples=n, global_batch_size=4, rng=None, data_dir=str(imagenet_root)
        )
        torch_metrics = pt._eval_model_on_split(params=model, model_state=None, **kwargs)
        kwargs["rng"] = jax.random.PRNGKey(0)
        jax_metrics = jx._eval_model_on_split(params=params, model_state=None, **kwargs)
        assert torch_metrics.keys() == jax_metrics.keys() == {"accuracy", "loss"}
        assert torch_metrics["accuracy"] == jax_metrics["accuracy"]
        assert torch_metrics["loss"] == pytest.approx(jax_metrics["loss"], rel=1e-4)


# `algoperf datasets prepare imagenet` options -----------------------------------------------------


def test_datasets_cli_prepared_imagenet(imagenet_root, imagenet_archives):
    from workloads.imagenet import data

    for split, n in (
        ("train", imagenet_archives.num_train),
        ("validation", imagenet_archives.num_val),
        ("test", imagenet_archives.num_v2),
    ):
        paths, _ = data.load_index(imagenet_root, split)
        assert len(paths) == n


def test_datasets_cli_verifies_imagenet_checksums(imagenet_archives, tmp_path, capsys):
    argv = ["prepare", "imagenet", f"--data_dir={tmp_path}", "--quiet"]
    assert data_cli.main([*argv, *_imagenet_flags(imagenet_archives)]) == 1
    err = capsys.readouterr().err
    assert "ILSVRC2012_img_train.tar" in err and "does not match" in err


def test_datasets_cli_val_labels_file(imagenet_archives, tmp_path):
    flags = [f for f in _imagenet_flags(imagenet_archives) if "devkit" not in f]
    argv = ["prepare", "imagenet", f"--data_dir={tmp_path}", "--quiet", *flags]
    argv += [f"--imagenet_val_labels={imagenet_archives.valprep}", "--imagenet_skip_checksums"]
    assert data_cli.main(argv) == 0
    from workloads.imagenet import data

    assert len(data.load_index(tmp_path, "validation")[0]) == imagenet_archives.num_val


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prepare", "cifar10", "--imagenet_train_tar=x.tar"], "only apply to"),
        (["prepare", "cifar10", "--no-imagenet_download_v2"], "--no-imagenet_download_v2"),
        (
            ["prepare", "imagenet", "--imagenet_devkit_tar=a", "--imagenet_val_labels=b"],
            "not both",
        ),
    ],
)
def test_datasets_cli_rejects_misplaced_imagenet_options(argv, message, tmp_path, capsys):
    assert data_cli.main([*argv, f"--data_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_datasets_cli_missing_archive_names_the_file(tmp_path, capsys):
    argv = ["prepare", "imagenet", f"--data_dir={tmp_path}", "--quiet"]
    missing = tmp_path / "nowhere" / "ILSVRC2012_img_train.tar"
    assert data_cli.main([*argv, f"--imagenet_train_tar={missing}"]) == 1
    assert str(missing) in capsys.readouterr().err
