"""Every implemented workload x framework honours the `spec.Workload` contract.

Init, parameter count equal to upstream's (the family's declared `param_counts`, counted from
shapes only), complete param types, synthetic-batch forward and loss (the family's declared
`synthetic_batch`), and eval on a tiny split. Parametrised over the registry, so a new workload is
covered as soon as its family declares it.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from algoperf import registry, spec

# Base workloads run in the default suite; variants (same code paths, other options) are slow.
_FAST = {"mnist", "fashion_mnist", "cifar", "imagenet_resnet", "imagenet_vit"}
CASES = [
    pytest.param(name, fw, marks=() if name in _FAST else pytest.mark.slow)
    for name in registry.workload_names()
    for fw in registry.implemented_frameworks(name)
]


def test_every_registered_workload_has_consistent_config():
    for name, config in registry.all_configs().items():
        assert config.name == name
        assert config.base_name in registry.all_configs()
        assert config.eval_period_time_sec > 0 and config.max_allowed_runtime_sec > 0
        assert config.num_eval_train_examples > 0 and config.num_validation_examples > 0


@pytest.mark.parametrize("family", list(registry.families().values()), ids=lambda f: f.name)
def test_every_implemented_family_declares_what_the_suite_needs(family):
    """Counts for every workload, synthetic batches, and a dataset with a fixture writer."""
    if not family.implementations:
        pytest.skip(f"{family.name} is listed with upstream's numbers only (no implementation)")
    missing = [
        n
        for n in family.variants
        for fw in family.implementations
        if family.param_count(n, fw) is None
    ]
    assert not missing, f"declare upstream's parameter counts of {', '.join(sorted(set(missing)))}"
    assert family.synthetic_batch is not None
    registry.load_target(family.synthetic_batch)  # the string names a real function
    for target in family.implementations.values():
        module = target.partition(":")[0]
        assert importlib.util.find_spec(module) is not None, f"{target}: no such module"
    datasets = {d.name: d for d in family.datasets}
    assert {c.dataset for c in family.variants.values()} <= set(datasets)
    assert all(d.fixture for d in datasets.values()), "every dataset needs a fixture writer"


@pytest.mark.parametrize(("name", "framework"), CASES)
def test_workload_contract(name, framework):
    from algoperf.workloads_cli import count_params

    expected = registry.get_family(name).param_count(name, framework)
    assert expected is not None, f"declare the upstream parameter count of {name} in param_counts"
    assert count_params(name, framework) == expected
    workload = registry.get_workload(name, framework)
    assert isinstance(workload, spec.Workload)
    rng = _rng(framework)
    params, model_state = workload.init_model_fn(rng)
    shapes, types = workload.param_shapes, workload.model_params_types
    _assert_same_keys(shapes, types)
    assert all(isinstance(t, spec.ParameterType) for t in _leaves(types))
    assert any(workload.is_output_params(k) for k in _keys(types))

    batch = registry.synthetic_batch_fn(name)(workload.config, 4, seed=0)
    device_batch = workload._to_device(batch)
    logits, _ = workload.model_fn(
        params,
        device_batch,
        model_state,
        spec.ForwardPassMode.TRAIN,
        rng,
        True,
        workload.dropout_rate,
    )
    # Sequence models return upstream's ``(logits, logit_paddings)`` pair (speech).
    first = logits[0] if isinstance(logits, tuple) else logits
    assert next(iter(first.shape)) == 4
    loss = workload.loss_fn(device_batch["targets"], logits)
    assert set(loss) == {"summed", "n_valid_examples", "per_example"}
    summed = loss["summed"]
    assert np.isfinite(float(summed.detach() if hasattr(summed, "detach") else summed))
    metrics = workload._eval_batch(params, model_state, device_batch, rng)
    assert all(np.asarray(v).shape == (4,) for v in metrics.values())


def _rng(framework):
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(0)
    return np.array([0, 0], dtype=np.int32)


def _leaves(tree):
    for v in tree.values():
        if isinstance(v, dict):
            yield from _leaves(v)
        else:
            yield v


def _keys(tree):
    yield from tree.keys()


def _assert_same_keys(a, b):
    assert set(a) == set(b)
    for k in a:
        if isinstance(a[k], dict):
            _assert_same_keys(a[k], b[k])
