"""`algorithmic_efficiency.*` (upstream's pre-v0.6 package name) is `algoperf.*`, not a copy."""

import importlib
import subprocess
import sys

import pytest

# Every submodule the published submissions (mlcommons/submissions_algorithms) import under
# either name, plus the compatibility modules upstream documents.
SUBMODULES = ["spec", "pytorch_utils", "jax_sharding_utils", "param_utils", "random_utils"]


@pytest.mark.parametrize("name", SUBMODULES)
def test_alias_is_the_same_module(name: str) -> None:
    if name == "pytorch_utils":
        pytest.importorskip("torch")  # e.g. the JAX-only upstream-pin virtualenv
    old = importlib.import_module(f"algorithmic_efficiency.{name}")
    new = importlib.import_module(f"algoperf.{name}")
    assert old is new
    assert old.__spec__.name == f"algoperf.{name}"  # the real spec is not overwritten


def test_from_import_and_classes_agree() -> None:
    from algoperf import spec
    from algorithmic_efficiency import spec as old_spec

    assert old_spec.LossType.SOFTMAX_CROSS_ENTROPY is spec.LossType.SOFTMAX_CROSS_ENTROPY
    assert old_spec.Workload is spec.Workload
    import algorithmic_efficiency

    assert algorithmic_efficiency.spec is spec


def test_missing_module_names_both_names() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"algorithmic_efficiency\.no_such.*algoperf"):
        importlib.import_module("algorithmic_efficiency.no_such")


def test_alias_import_loads_no_framework() -> None:
    code = (
        "import sys, algorithmic_efficiency.spec, algorithmic_efficiency.param_utils; "
        "print('jax' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
