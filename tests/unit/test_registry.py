"""Families register themselves: a toy family from a temporary package shows up everywhere.

The toy family is written at test time into a temporary folder, never into the repository, and
registered the two ways a family can be: as an installed package (an ``algoperf.workloads``
entry point in a ``.dist-info`` folder on ``sys.path``) and as a folder of the ``workloads``
package (a temporary folder added to ``workloads.__path__``). Its implementations are the MNIST
classes (any `spec.Workload` class configured by its config works); its data module, prepare
function, prepare option, fixture writer and parameter counts are its own, so every consumer is
seen reading the toy's declaration: the registry, ``algoperf workloads``, ``algoperf datasets``
(list, prepare with the toy's option, ``--fixture``), ``algoperf check`` and the contract suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import workloads
from algoperf import check, registry, workloads_cli
from algoperf.data import cli as data_cli

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"

SPEC = """
from algoperf.registry import Dataset, Family, PrepareOption
from workloads.mnist.spec import MNIST

BASE = MNIST.variant("{p}_mlp", base_name="{p}_mlp", family="{family}", dataset="{p}_digits",
                     dev_only=False, notes="toy family")
VARIANTS = {{c.name: c for c in (BASE, BASE.variant("{p}_mlp_miscounted"))}}
FAMILY = Family(
    name="{family}",
    variants=VARIANTS,
    implementations={{
        "jax": "workloads.mnist.workload_jax:MnistWorkload",
        "pytorch": "workloads.mnist.workload_pytorch:MnistWorkload",
    }},
    datasets=(
        Dataset(
            name="{p}_digits",
            prepare="{module}.data:prepare",
            fixture="{module}.data:write_fixture",
            options=(PrepareOption("--{p}_digits_source", "source", "where the digits are"),),
            description="toy digits",
        ),
    ),
    synthetic_batch="{module}.data:synthetic_batch",
    # The second workload's PyTorch count is deliberately wrong (a per-framework mapping, as
    # DeepSpeech declares): the contract suite must fail on it in PyTorch only.
    param_counts={{"{p}_mlp": 101_770, "{p}_mlp_miscounted": {{"jax": 101_770, "pytorch": 1}}}},
    rank=-1,
)
"""

DATA = """
import json
from pathlib import Path

from workloads.mnist import data as mnist_data

CALLS = []


def synthetic_batch(config, global_batch_size, seed):
    CALLS.append((config.name, global_batch_size, seed))
    return mnist_data.synthetic_batch(config, global_batch_size, seed)


def prepare(dataset, data_dir, *, offline_fallback=True, progress=True, source=None):
    folder = Path(data_dir) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prepared.json").write_text(json.dumps({{"source": source, "progress": progress}}))
    return folder


def write_fixture(dataset, data_dir):
    folder = Path(data_dir) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "digits.bin").write_bytes(bytes(range(100)))
    return {{"num_train_examples": 80, "num_validation_examples": 10,
            "num_eval_train_examples": 10, "num_test_examples": 10, "eval_batch_size": 5}}
"""


def _write_family(folder: Path, module: str, family: str, prefix: str, under: str = "") -> Path:
    """Write a toy family package `module` into `folder` (imported as `under` + `module`)."""
    package = folder / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A toy workload family."""\n')
    (package / "spec.py").write_text(SPEC.format(p=prefix, family=family, module=under + module))
    (package / "data.py").write_text(DATA.format())
    return package


def _write_dist(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution: metadata and entry points, as pip would leave them."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


def _forget(prefixes: tuple[str, ...]) -> None:
    for name in [m for m in sys.modules if m.startswith(prefixes)]:
        del sys.modules[name]
    registry.clear_cache()


@pytest.fixture
def installed_toy(tmp_path, monkeypatch):
    """A toy family installed as a package (entry point); yields its site folder."""
    site = tmp_path / "site"
    _write_family(site, "toy_family", "toy", "toy")
    _write_dist(site, "toy-family", {"toy": "toy_family.spec"})
    monkeypatch.syspath_prepend(str(site))
    registry.clear_cache()
    yield site
    monkeypatch.undo()
    _forget(("toy_family",))


@pytest.fixture
def folder_toy(tmp_path, monkeypatch):
    """A toy family as a folder of the `workloads` package."""
    extra = tmp_path / "extra_workloads"
    _write_family(extra, "toyfolder", "toyfolder", "toyfolder", under="workloads.")
    monkeypatch.setattr(workloads, "__path__", [*workloads.__path__, str(extra)])
    registry.clear_cache()
    yield extra
    monkeypatch.undo()
    _forget(("workloads.toyfolder",))


# Registry ---------------------------------------------------------------------------------------


def test_builtin_families_are_discovered_from_their_folders():
    names = set(registry.families())
    folders = {p.name for p in (REPO / "workloads").iterdir() if (p / "spec.py").is_file()}
    assert names == folders
    assert list(registry.families())[:2] == ["mnist", "cifar"]  # ranks, then names
    for family in registry.families().values():
        assert all(c.family == family.name for c in family.variants.values())


@pytest.mark.parametrize("route", ["installed_toy", "folder_toy"])
def test_toy_family_registers_in_the_registry(route, request):
    request.getfixturevalue(route)
    p = "toy" if route == "installed_toy" else "toyfolder"
    assert next(iter(registry.families())) == p  # rank -1 lists it first
    assert f"{p}_mlp" in registry.workload_names()
    assert registry.implemented_frameworks(f"{p}_mlp") == ("jax", "pytorch")
    family = registry.get_family(f"{p}_mlp_miscounted")
    assert family.param_counts[f"{p}_mlp"] == 101_770
    assert family.param_count(f"{p}_mlp", "pytorch") == 101_770
    assert family.param_count(f"{p}_mlp_miscounted", "jax") == 101_770
    assert family.param_count(f"{p}_mlp_miscounted", "pytorch") == 1
    assert family.param_count("no_such_workload", "jax") is None
    assert f"{p}_digits" in registry.datasets()
    workload = registry.get_workload(f"{p}_mlp", "pytorch")
    assert workload.config.family == p and workload.config.dataset == f"{p}_digits"
    batch = registry.synthetic_batch_fn(f"{p}_mlp")(workload.config, 3, 0)
    assert batch["inputs"].shape[0] == 3


def test_toy_family_gone_after_clearing(installed_toy):
    assert "toy_mlp" in registry.workload_names()
    sys.path.remove(str(installed_toy))
    registry.clear_cache()
    assert "toy_mlp" not in registry.workload_names()
    sys.path.insert(0, str(installed_toy))


def test_workloads_cli_lists_the_toy_and_counts_its_parameters(installed_toy, capsys):
    assert workloads_cli.main(["--json"]) == 0
    rows = {r["workload"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["toy_mlp"]["frameworks"] == "jax,pytorch"
    assert rows["toy_mlp"]["dataset"] == "toy_digits"
    assert rows["toy_mlp_miscounted"]["kind"] == "variant"
    for framework in ("jax", "pytorch"):
        assert workloads_cli.count_params("toy_mlp", framework) == 101_770


def test_datasets_cli_reads_the_toys_declaration(installed_toy, tmp_path, capsys):
    root = tmp_path / "data"
    assert data_cli.main(["list", f"--data_dir={root}"]) == 0
    listing = capsys.readouterr().out
    assert "toy_digits" in listing and "toy digits" in listing
    # Its own option reaches its prepare function...
    argv = ["prepare", "toy_digits", f"--data_dir={root}", "--toy_digits_source=/somewhere"]
    assert data_cli.main([*argv, "--quiet"]) == 0
    record = json.loads((root / "toy_digits" / "prepared.json").read_text())
    assert record == {"source": "/somewhere", "progress": False}
    # ... and is refused with any other dataset.
    assert data_cli.main(["prepare", "mnist", f"--data_dir={root}", "--toy_digits_source=x"]) == 2
    assert "only apply to `algoperf datasets prepare toy_digits`" in capsys.readouterr().err
    # A real dataset folder is never overwritten by a fixture.
    assert data_cli.main(["prepare", "toy_digits", "--fixture", f"--data_dir={root}"]) == 1
    assert "not a fixture" in capsys.readouterr().err


def test_fixture_of_the_toy_sizes_its_config(installed_toy, tmp_path, capsys):
    root = tmp_path / "data"
    assert data_cli.main(["prepare", "toy_digits", "--fixture", f"--data_dir={root}"]) == 0
    assert (root / "toy_digits" / "digits.bin").is_file()
    assert json.loads((root / "toy_digits" / registry.FIXTURE_FILE).read_text())["config"] == {
        "num_train_examples": 80,
        "num_validation_examples": 10,
        "num_eval_train_examples": 10,
        "num_test_examples": 10,
        "eval_batch_size": 5,
    }
    registered = registry.get_config("toy_mlp")
    sized = registry.get_config("toy_mlp", root)
    assert (sized.num_train_examples, sized.num_validation_examples) == (80, 10)
    assert sized.eval_batch_size == 5 and registered.eval_batch_size == 10_000
    assert "fixture data in" in sized.notes and "fixture" not in registered.notes
    assert sized.model == registered.model and sized.validation_target_value == 0.97
    # The dataset folder itself may be passed as the data root.
    assert registry.get_config("toy_mlp", root / "toy_digits") == sized
    # Real preparation never mixes with a fixture.
    assert data_cli.main(["prepare", "toy_digits", f"--data_dir={root}", "--quiet"]) == 1
    assert "holds a fixture" in capsys.readouterr().err
    assert data_cli.main(["list", f"--data_dir={root}"]) == 0
    assert "fixture" in capsys.readouterr().out


def test_check_smoke_runs_the_toy_on_its_own_synthetic_batches(installed_toy, tmp_path, capsys):
    assert "toy_mlp" in check.default_workloads("pytorch")
    from toy_family import data

    data.CALLS.clear()
    # A submission sizes its batches by workload name: the baseline's, knowing the toy.
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text(
        "from submissions.baselines.nadamw.pytorch.submission import *  # noqa: F403\n\n\n"
        "def get_batch_size(workload_name):\n    return 16\n"
    )
    (folder / "tuning_search_space.json").write_text(
        (NADAMW / "tuning_search_space.json").read_text()
    )
    argv = [str(folder / "submission.py"), "--framework=pytorch", "--workloads=toy_mlp"]
    assert check.main(argv) == 0
    assert "PASS  toy_mlp:" in capsys.readouterr().out
    assert data.CALLS and all(name == "toy_mlp" for name, _, _ in data.CALLS)


def test_contract_suite_runs_the_toy_with_its_declared_counts(installed_toy):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_toy), str(REPO)])}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-k",
            "toy_mlp",
            "tests/contracts/test_workloads.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = out.stdout + out.stderr
    assert "1 failed, 3 passed" in text, text[-3000:]
    failed = {line.split("::")[-1] for line in text.splitlines() if line.startswith("FAILED")}
    assert {f.split(" ")[0] for f in failed} == {
        "test_workload_contract[toy_mlp_miscounted-pytorch]"
    }


# Malformed declarations fail loudly --------------------------------------------------------------


def test_family_that_cannot_import_is_an_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _write_dist(site, "broken-family", {"broken": "no_such_module_anywhere.spec"})
    monkeypatch.syspath_prepend(str(site))
    registry.clear_cache()
    try:
        with pytest.raises(registry.RegistrationError, match=r"entry point broken.*cannot be"):
            registry.families()
    finally:
        monkeypatch.undo()
        registry.clear_cache()


def test_workload_registered_twice_is_an_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    package = _write_family(site, "dup_family", "dup", "dup")
    (package / "spec.py").write_text(
        (package / "spec.py")
        .read_text()
        .replace('MNIST.variant("dup_mlp"', 'MNIST.variant("cifar"')
    )
    _write_dist(site, "dup-family", {"dup": "dup_family.spec"})
    monkeypatch.syspath_prepend(str(site))
    registry.clear_cache()
    try:
        with pytest.raises(registry.RegistrationError, match="workload 'cifar' registered by"):
            registry.families()
    finally:
        monkeypatch.undo()
        _forget(("dup_family",))


def test_declaration_is_validated():
    from workloads.mnist.spec import MNIST

    with pytest.raises(registry.RegistrationError, match="declares family 'mnist', not 'other'"):
        registry._validate(registry.Family("other", {"mnist": MNIST}), "here")
    with pytest.raises(registry.RegistrationError, match=r"not declared in FAMILY\.datasets"):
        registry._validate(
            registry.Family("mnist", {"mnist": MNIST}, datasets=(registry.Dataset("x", "m:f"),)),
            "here",
        )
    with pytest.raises(registry.RegistrationError, match="unknown framework 'tf'"):
        registry._validate(registry.Family("mnist", {"mnist": MNIST}, {"tf": "m:C"}), "here")
    with pytest.raises(registry.RegistrationError, match="must start with '--'"):
        registry.PrepareOption("source", "source", "help")
    with pytest.raises(registry.RegistrationError, match=r"param_counts\['mnist'\] must be an int"):
        registry._validate(
            registry.Family("mnist", {"mnist": MNIST}, param_counts={"mnist": {"tf": 3}}), "here"
        )


# Shape-only parameter counts ---------------------------------------------------------------------

BIG = """
import jax
import torch

from algoperf.registry import Family
from workloads.mnist.spec import MNIST

ROWS, WIDTH = 4_211_000, 128  # 539,008,000 parameters: 2.2 GB in float32


class JaxBig:
    def __init__(self, config):
        self.config = config

    def init_model_fn(self, rng):
        return {"embedding": jax.random.normal(rng, (ROWS, WIDTH))}, None


class TorchBig:
    def __init__(self, config):
        self.config = config

    def init_model_fn(self, rng):
        model = torch.nn.Embedding(ROWS, WIDTH)
        torch.nn.init.normal_(model.weight)
        return model.to("cpu"), None


BIG = MNIST.variant("big_table", base_name="big_table", family="big", dataset="mnist")
FAMILY = Family(
    name="big",
    variants={"big_table": BIG},
    implementations={"jax": "big_family.spec:JaxBig", "pytorch": "big_family.spec:TorchBig"},
)
"""

COUNT = """
import resource, sys
from algoperf import workloads_cli
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(workloads_cli.count_params("big_table", sys.argv[1]))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_539m_parameters_are_counted_without_allocating_them(framework, tmp_path):
    site = tmp_path / "site"
    (site / "big_family").mkdir(parents=True)
    (site / "big_family" / "__init__.py").write_text("")
    (site / "big_family" / "spec.py").write_text(textwrap.dedent(BIG))
    _write_dist(site, "big-family", {"big": "big_family.spec"})
    # Import the framework first, so that what counting adds is measured on its own.
    script = f"import {'jax' if framework == 'jax' else 'torch'}\n" + COUNT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-c", script, framework],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count, grown_mb = (int(x) for x in out.stdout.split())
    assert count == 539_008_000
    assert grown_mb < 300, f"counting grew the process by {grown_mb} MB (the table is 2,156 MB)"


def test_spec_without_family_is_an_error(tmp_path, monkeypatch):
    extra = tmp_path / "extra_workloads"
    package = _write_family(extra, "nofamily", "nofamily", "nofamily", under="workloads.")
    text = (package / "spec.py").read_text()
    (package / "spec.py").write_text(text[: text.index("FAMILY = Family(")])
    monkeypatch.setattr(workloads, "__path__", [*workloads.__path__, str(extra)])
    registry.clear_cache()
    try:
        with pytest.raises(
            registry.RegistrationError, match=r"workloads\.nofamily\.spec defines no"
        ):
            registry.families()
    finally:
        monkeypatch.undo()
        _forget(("workloads.nofamily",))
