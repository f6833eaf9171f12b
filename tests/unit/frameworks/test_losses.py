"""The losses by `LossType`: each framework against a float64 numpy oracle and against the other
framework (CTC: optax and torch are independent implementations), masks, label smoothing, NaN
labels and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from algoperf import spec

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402

from algoperf.frameworks import losses_jax, losses_pytorch  # noqa: E402

RNG = np.random.default_rng(0)
TOL = {"rtol": 2e-5, "atol": 2e-6}


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _run(loss_type, labels, logits, mask=None, smoothing=0.0, **options):
    """The loss in both frameworks, outputs as float64 numpy."""

    def conv_j(x):
        return (
            None
            if x is None
            else (tuple(map(jnp.asarray, x)) if isinstance(x, tuple) else jnp.asarray(x))
        )

    def conv_t(x):
        return (
            None
            if x is None
            else (tuple(map(torch.from_numpy, x)) if isinstance(x, tuple) else torch.from_numpy(x))
        )

    j = losses_jax.loss_fn_for(loss_type)(
        conv_j(labels), conv_j(logits), conv_j(mask), smoothing, **options
    )
    t = losses_pytorch.loss_fn_for(loss_type)(
        conv_t(labels), conv_t(logits), conv_t(mask), smoothing, **options
    )
    j = {k: np.asarray(v, np.float64) for k, v in j.items()}
    t = {k: v.detach().double().numpy() for k, v in t.items()}
    return j, t


def _check(out, per_example, n_valid):
    for name, o in zip(("jax", "pytorch"), out, strict=True):
        np.testing.assert_allclose(o["per_example"], per_example, **TOL, err_msg=name)
        np.testing.assert_allclose(o["summed"], per_example.sum(), rtol=1e-5, err_msg=name)
        assert float(o["n_valid_examples"]) == n_valid, name


def test_every_loss_type_has_one_function_per_framework():
    assert set(losses_jax.LOSSES) == set(spec.LossType) == set(losses_pytorch.LOSSES)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 7)])
def test_softmax_cross_entropy_ids_soft_labels_and_mask(shape, smoothing):
    logits = RNG.normal(size=shape).astype(np.float32) * 3
    ids = RNG.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    onehot = np.eye(shape[-1])[ids]
    target = (1 - smoothing) * onehot + smoothing / shape[-1]
    expected = -(target * _log_softmax(logits)).sum(-1)
    _check(
        _run(spec.LossType.SOFTMAX_CROSS_ENTROPY, ids, logits, smoothing=smoothing),
        expected,
        ids.size,
    )
    soft = onehot.astype(np.float32)
    _check(
        _run(spec.LossType.SOFTMAX_CROSS_ENTROPY, soft, logits, smoothing=smoothing),
        expected,
        ids.size,
    )
    mask = (RNG.random(shape[:-1]) > 0.3).astype(np.float32)
    mask.flat[0] = 0
    logits_nan = logits.copy()
    logits_nan.reshape(-1, shape[-1])[0] = np.nan  # a padded entry's NaN must not leak
    out = _run(spec.LossType.SOFTMAX_CROSS_ENTROPY, ids, logits_nan, mask, smoothing)
    _check(out, np.where(mask > 0, expected, 0.0), mask.sum())


def test_softmax_cross_entropy_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="do not fit logits"):
        losses_jax.softmax_cross_entropy(jnp.zeros((2, 3, 4)), jnp.zeros((2,)))
    with pytest.raises(ValueError, match="do not fit logits"):
        losses_pytorch.softmax_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_masked_sigmoid_cross_entropy_with_nan_labels(smoothing):
    logits = (RNG.normal(size=(8, 16)) * 5).astype(np.float32)
    labels = (RNG.random((8, 16)) > 0.5).astype(np.float32)
    mask = (RNG.random((8, 16)) > 0.25).astype(np.float32)
    labels_nan = np.where(mask > 0, labels, np.nan).astype(np.float32)
    z = (1 - smoothing) * labels + smoothing / 16
    x = logits.astype(np.float64)
    expected = np.where(mask > 0, np.logaddexp(0, x) - x * z, 0.0)
    out = _run(spec.LossType.SIGMOID_CROSS_ENTROPY, labels_nan, logits, mask, smoothing)
    _check(out, expected, mask.sum())
    # NaN labels must not reach the gradient either.
    g = jax.grad(
        lambda lg: losses_jax.sigmoid_cross_entropy(
            jnp.asarray(labels_nan), lg, jnp.asarray(mask), smoothing
        )["summed"]
    )(jnp.asarray(logits))
    assert np.isfinite(np.asarray(g)).all()
    lt = torch.from_numpy(logits).requires_grad_()
    losses_pytorch.sigmoid_cross_entropy(
        torch.from_numpy(labels_nan), lt, torch.from_numpy(mask), smoothing
    )["summed"].backward()
    assert torch.isfinite(lt.grad).all()


def test_sigmoid_cross_entropy_can_ignore_label_smoothing_and_counts_examples():
    """Criteo's form: (B,) logits, per-example mask, smoothing ignored."""
    logits = RNG.normal(size=(10,)).astype(np.float32)
    labels = (RNG.random(10) > 0.5).astype(np.float32)
    mask = np.r_[np.ones(7), np.zeros(3)].astype(np.float32)
    x = logits.astype(np.float64)
    expected = np.where(mask > 0, np.logaddexp(0, x) - x * labels, 0.0)
    out = _run(
        spec.LossType.SIGMOID_CROSS_ENTROPY, labels, logits, mask, 0.3, apply_label_smoothing=False
    )
    _check(out, expected, 7)


def test_mean_absolute_and_squared_error_per_example():
    out_arr = RNG.normal(size=(4, 6, 5)).astype(np.float32)
    target = RNG.normal(size=(4, 6, 5)).astype(np.float32)
    diff = out_arr.astype(np.float64) - target
    mask = np.array([1, 1, 0, 1], np.float32)
    mae = np.abs(diff).mean(axis=(1, 2))
    _check(_run(spec.LossType.MEAN_ABSOLUTE_ERROR, target, out_arr, smoothing=0.5), mae, 4)
    _check(_run(spec.LossType.MEAN_ABSOLUTE_ERROR, target, out_arr, mask), mae * mask, 3)
    mse = (diff**2).mean(axis=(1, 2))
    _check(_run(spec.LossType.MEAN_SQUARED_ERROR, target, out_arr, mask), mse * mask, 3)


def _ctc_oracle(logprobs, target, blank=0):
    """Plain forward algorithm (float64) over the extended label sequence."""
    ext = [blank]
    for t in target:
        ext += [int(t), blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = logprobs[0, blank]
    if len(ext) > 1:
        alpha[1] = logprobs[0, ext[1]]
    for t in range(1, len(logprobs)):
        new = np.full(len(ext), -np.inf)
        for s in range(len(ext)):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + logprobs[t, ext[s]]
        alpha = new
    return -np.logaddexp(alpha[-1], alpha[-2] if len(ext) > 1 else -np.inf)


def test_ctc_loss_against_forward_algorithm_and_token_count():
    b, frames, vocab, tmax = 3, 12, 6, 4
    logits = RNG.normal(size=(b, frames, vocab)).astype(np.float32)
    in_len = np.array([12, 9, 10])
    tgt_len = np.array([4, 2, 3])
    logit_pad = (np.arange(frames)[None] >= in_len[:, None]).astype(np.float32)
    target_pad = (np.arange(tmax)[None] >= tgt_len[:, None]).astype(np.float32)
    targets = RNG.integers(1, vocab, size=(b, tmax)).astype(np.int32) * (1 - target_pad).astype(
        np.int32
    )
    lp = _log_softmax(logits)
    expected = np.array(
        [_ctc_oracle(lp[i, : in_len[i]], targets[i, : tgt_len[i]]) for i in range(b)]
    )
    out = _run(spec.LossType.CTC_LOSS, (targets, target_pad), (logits, logit_pad))
    _check(out, expected, tgt_len.sum())
    mask = np.array([1, 0, 1], np.float32)
    out = _run(spec.LossType.CTC_LOSS, (targets, target_pad), (logits, logit_pad), mask)
    _check(out, expected * mask, 7)


def test_workload_loss_fn_dispatches_by_loss_type():
    """A family declares only its `LossType` (and options); `loss_fn` is the framework's."""
    import types

    from algoperf.frameworks.jax_workload import JaxWorkload
    from algoperf.frameworks.pytorch_workload import PyTorchWorkload

    target = RNG.normal(size=(3, 4)).astype(np.float32)
    out = RNG.normal(size=(3, 4)).astype(np.float32)
    family = types.SimpleNamespace(
        loss_type=spec.LossType.MEAN_ABSOLUTE_ERROR, loss_function_type=None, loss_options={}
    )
    for cls, conv in ((JaxWorkload, jnp.asarray), (PyTorchWorkload, torch.from_numpy)):
        family.loss_functions = cls.loss_functions
        got = cls.loss_fn(family, conv(target), conv(out))
        np.testing.assert_allclose(
            np.asarray(got["per_example"]), np.abs(out - target).mean(1), rtol=1e-6
        )
    labels = (target > 0).astype(np.float32)
    family = types.SimpleNamespace(
        loss_type=spec.LossType.SIGMOID_CROSS_ENTROPY,
        loss_options={"apply_label_smoothing": False},
        loss_functions=JaxWorkload.loss_functions,
        loss_function_type=None,
    )
    plain = losses_jax.sigmoid_cross_entropy(jnp.asarray(labels), jnp.asarray(out))["summed"]
    smoothed = JaxWorkload.loss_fn(family, jnp.asarray(labels), jnp.asarray(out), None, 0.5)
    assert float(smoothed["summed"]) == float(plain)
    # A family computing another loss than it declares (upstream's ogbg) names it.
    family.loss_type, family.loss_function_type = (
        spec.LossType.SOFTMAX_CROSS_ENTROPY,
        spec.LossType.SIGMOID_CROSS_ENTROPY,
    )
    assert float(JaxWorkload.loss_fn(family, jnp.asarray(labels), jnp.asarray(out))["summed"]) == (
        float(plain)
    )


# Families that still define their own `loss_fn`: each must say why, and the entry goes once it
# uses the framework's (`loss_function_type` / `loss_options` cover the cases seen so far).
OWN_LOSS_FN: dict[str, str] = {
    # Upstream's criteo1tb flattens (B,) labels and (B, 1) logits and ignores label smoothing;
    # the shared sigmoid loss refuses mismatched shapes, which guards every other family.
    "criteo1tb": "flattened labels/logits, no label smoothing, as upstream",
}


def test_every_family_uses_the_framework_loss_fn():
    """No per-family loss subclasses: each implemented workload's `loss_fn` is the framework
    layer's, chosen by its `LossType`."""
    from algoperf import registry
    from algoperf.workload_base import ConfiguredWorkload

    seen = set()
    for name in registry.workload_names():
        for framework in registry.implemented_frameworks(name):
            cls = registry.workload_class(name, framework)
            family = registry.get_config(name).family
            seen.add(family)
            shared = cls.loss_fn is ConfiguredWorkload.loss_fn
            if family in OWN_LOSS_FN:
                assert not shared, f"{family} uses the shared loss_fn now: drop it from OWN_LOSS_FN"
            else:
                assert shared, f"{name} ({framework}) defines its own loss_fn"
                assert (
                    cls.loss_function_type or registry.get_config(name).loss_type
                ) in cls.loss_functions
    assert {"mnist", "cifar", "imagenet", "fastmri", "ogbg"} <= seen
