"""Training-step time of the vision models, JAX vs PyTorch, measured side by side in one run.

One step = forward in train mode (batch norm on batch statistics and updating its running
statistics; ViT dropout through the traced-rate path at rate 0, as a workload runs it) +
softmax cross-entropy + backward + a plain SGD update (``optax.sgd`` / ``torch.optim.SGD``,
lr 0.01). JAX: one jitted step with donated params, state and optimizer state; compilation and
``--warmup`` steps are excluded. PyTorch: eager, ``torch.get_num_threads()`` threads. Batches
are fixed random arrays (JAX NHWC, PyTorch NCHW), so no input pipeline is timed.

For each model the frameworks alternate in ``--repeats`` blocks of ``--steps`` steps (so that
drift in machine load hits both alike); the table shows the median step time over all timed
steps and the PyTorch/JAX ratio (> 1: JAX is faster).

Usage::

    python benchmarks/model_step.py [--models cifar,resnet50,vit_s16] [--steps 5]
        [--repeats 2] [--warmup 2] [--imagenet-batch 8] [--cifar-batch 32] [--ogbg-batch 64]
        [--json PATH]

ogbg: the GNN on a synthetic batch of ``--ogbg-batch`` graph slots (one device shard with
upstream's static budgets), train mode at dropout rate 0, masked sigmoid cross-entropy.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from algoperf.registry import get_config  # noqa: E402
from workloads.cifar import model_jax as cifar_jax  # noqa: E402
from workloads.cifar import model_pytorch as cifar_pt  # noqa: E402
from workloads.imagenet import resnet_jax, resnet_pytorch, vit_jax, vit_pytorch  # noqa: E402

# model key -> (workload config, kind, image size)
MODELS = {
    "cifar": ("cifar", "resnet", 32),
    "resnet50": ("imagenet_resnet", "resnet", 224),
    "vit_s16": ("imagenet_vit", "vit", 224),
    "ogbg": ("ogbg", "gnn", 0),  # batch = graphs (static budgets: 26 b + 1 nodes, 56 b edges)
    "fastmri": ("fastmri", "unet", 320),  # U-Net on (B, 320, 320) slices, per-slice MAE
}
LR = 0.01

Step = Callable[[], None]


def _batch(size: int, batch: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    return x, rng.integers(0, num_classes, batch).astype(np.int32)


def _gnn_batch(workload: str, batch: int) -> dict[str, np.ndarray]:
    from workloads.ogbg import data as ogbg_data

    return ogbg_data.synthetic_batch(get_config(workload), batch, seed=0)


def _gnn_jax_step(workload: str, batch: int) -> Step:
    """One jitted GNN step: dropout through the traced-rate path at rate 0, masked sigmoid CE."""
    from algoperf.frameworks.losses_jax import sigmoid_cross_entropy
    from workloads.ogbg import model_jax
    from workloads.ogbg.workload_jax import to_graphs_tuple

    model = model_jax.build_model(get_config(workload).model)
    params = model_jax.init(model, jax.random.key(0))
    tx = optax.sgd(LR)
    b = jax.tree.map(jnp.asarray, to_graphs_tuple(_gnn_batch(workload, batch)))

    def loss_fn(params, rng, rate):
        logits = model.apply(
            {"params": params}, b["inputs"], train=True, dropout_rate=rate, rngs={"dropout": rng}
        )
        out = sigmoid_cross_entropy(b["targets"], logits, b["weights"])
        return out["summed"] / out["n_valid_examples"]

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, rng, rate):
        loss, grads = jax.value_and_grad(loss_fn)(params, rng, rate)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    carry = {"state": (params, tx.init(params)), "rng": jax.random.key(1)}

    def run() -> None:
        carry["rng"], rng = jax.random.split(carry["rng"])
        *state, loss = step(*carry["state"], rng, jnp.float32(0.0))
        carry["state"] = tuple(state)
        jax.block_until_ready((state, loss))

    return run


def _gnn_pytorch_step(workload: str, batch: int) -> Step:
    """One eager GNN step in train mode at dropout rate 0, masked sigmoid CE."""
    from algoperf.frameworks.losses_pytorch import sigmoid_cross_entropy
    from workloads.ogbg import model_pytorch

    torch.manual_seed(0)
    model = model_pytorch.build_model(get_config(workload).model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    b = {k: torch.from_numpy(v) for k, v in _gnn_batch(workload, batch).items()}
    for k in ("senders", "receivers", "n_node", "n_edge"):
        b[k] = b[k].long()
    graph = model_pytorch.Graphs(
        b["nodes"], b["edges"], b["receivers"], b["senders"], {}, b["n_node"], b["n_edge"]
    )

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        out = sigmoid_cross_entropy(b["targets"], model(graph, 0.0), b["weights"])
        (out["summed"] / out["n_valid_examples"]).backward()
        opt.step()

    return run


def _unet_jax_step(workload: str, batch: int) -> Step:
    from algoperf.frameworks.losses_jax import mean_absolute_error
    from workloads.fastmri import data as mri_data
    from workloads.fastmri import model_jax

    model = model_jax.build_model(get_config(workload).model)
    params = model_jax.init(model, jax.random.key(0))
    tx = optax.sgd(LR)
    b = {k: jnp.asarray(v) for k, v in mri_data.synthetic_batch(None, batch, 0).items()}

    def loss_fn(params, rng):
        out = model.apply(
            {"params": params}, b["inputs"], train=True, dropout_rate=0.0, rngs={"dropout": rng}
        )
        return mean_absolute_error(b["targets"], out)["per_example"].mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, rng):
        loss, grads = jax.value_and_grad(loss_fn)(params, rng)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    carry = {"state": (params, tx.init(params)), "rng": jax.random.key(1)}

    def run() -> None:
        carry["rng"], rng = jax.random.split(carry["rng"])
        *state, loss = step(*carry["state"], rng)
        carry["state"] = tuple(state)
        jax.block_until_ready((state, loss))

    return run


def _unet_pytorch_step(workload: str, batch: int) -> Step:
    from algoperf.frameworks.losses_pytorch import mean_absolute_error
    from workloads.fastmri import data as mri_data
    from workloads.fastmri import model_pytorch

    torch.manual_seed(0)
    model = model_pytorch.build_model(get_config(workload).model).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    b = {k: torch.from_numpy(v) for k, v in mri_data.synthetic_batch(None, batch, 0).items()}

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(b["inputs"], dropout_rate=0.0)
        mean_absolute_error(b["targets"], out)["per_example"].mean().backward()
        opt.step()

    return run


def jax_step(key: str, batch: int) -> Step:
    """A closure running one compiled JAX training step (compiled on first call)."""
    workload, kind, size = MODELS[key]
    if kind == "gnn":
        return _gnn_jax_step(workload, batch)
    if kind == "unet":
        return _unet_jax_step(workload, batch)
    options = get_config(workload).model
    if key == "cifar":
        model, init = cifar_jax.build_model(options), cifar_jax.init
    elif kind == "resnet":
        model, init = resnet_jax.build_model(options), resnet_jax.init
    else:
        model, init = vit_jax.build_model(options), vit_jax.init
    params, model_state = init(model, jax.random.key(0), (1, size, size, 3))
    tx = optax.sgd(LR)
    opt_state = tx.init(params)
    x_np, y_np = _batch(size, batch, options["num_classes"])
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def loss_fn(params, model_state, rng, rate):
        if kind == "vit":
            logits = vit_jax.forward(model, params, x, train=True, rng=rng, dropout_rate=rate)
        else:
            logits, model_state = resnet_jax.forward(
                model, params, model_state, x, update_batch_norm=True
            )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, model_state

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, model_state, opt_state, rng, rate):
        (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, model_state, rng, rate
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), model_state, opt_state, loss

    carry = {"state": (params, model_state, opt_state), "rng": jax.random.key(1)}

    def run() -> None:
        carry["rng"], rng = jax.random.split(carry["rng"])
        *state, loss = step(*carry["state"], rng, jnp.float32(0.0))
        carry["state"] = tuple(state)
        jax.block_until_ready((state, loss))

    return run


def pytorch_step(key: str, batch: int) -> Step:
    """A closure running one eager PyTorch training step."""
    workload, kind, size = MODELS[key]
    if kind == "gnn":
        return _gnn_pytorch_step(workload, batch)
    if kind == "unet":
        return _unet_pytorch_step(workload, batch)
    options = get_config(workload).model
    torch.manual_seed(0)
    if key == "cifar":
        model = cifar_pt.build_model(options)
    elif kind == "resnet":
        model = resnet_pytorch.build_model(options)
    else:
        model = vit_pytorch.build_model(options)
    if kind == "resnet":
        resnet_pytorch.set_mode(model, train=True, update_batch_norm=True)
    else:
        model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x_np, y_np = _batch(size, batch, options["num_classes"])
    x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(y_np).long()

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        logits = model(x) if kind == "resnet" else model(x, dropout_rate=0.0)
        F.cross_entropy(logits, y).backward()
        opt.step()

    return run


def _time(step: Step, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def bench(key: str, batch: int, steps: int, repeats: int, warmup: int) -> dict:
    """Median seconds per step for both frameworks on one model, plus the compile time."""
    t0 = time.perf_counter()
    j = jax_step(key, batch)
    j()  # compile + first step
    compile_s = time.perf_counter() - t0
    p = pytorch_step(key, batch)
    _time(j, warmup)
    _time(p, warmup)
    times: dict[str, list[float]] = {"jax": [], "pytorch": []}
    for r in range(repeats):
        order = [("jax", j), ("pytorch", p)] if r % 2 == 0 else [("pytorch", p), ("jax", j)]
        for name, step in order:
            times[name] += _time(step, steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": key,
        "batch": batch,
        "jax_s": med["jax"],
        "pytorch_s": med["pytorch"],
        "ratio_pt_over_jax": med["pytorch"] / med["jax"],
        "jax_compile_s": compile_s,
        "steps_timed": steps * repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--imagenet-batch", type=int, default=8)
    ap.add_argument("--cifar-batch", type=int, default=32)
    ap.add_argument("--ogbg-batch", type=int, default=64, help="graphs per ogbg batch")
    ap.add_argument("--fastmri-batch", type=int, default=2, help="320x320 slices per batch")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args()
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__} "
        f"({jax.devices()[0].platform}); median of {args.steps * args.repeats} steps after "
        f"{args.warmup} warm-up steps"
    )
    print(f"{'model':<10}{'batch':>6}{'JAX s/step':>13}{'PyTorch s/step':>16}{'PT/JAX':>9}"
          f"{'JAX compile s':>15}")  # fmt: skip
    results = []
    for key in keys:
        batch = args.cifar_batch if key == "cifar" else args.imagenet_batch
        batch = args.ogbg_batch if key == "ogbg" else batch
        batch = args.fastmri_batch if key == "fastmri" else batch
        r = bench(key, batch, args.steps, args.repeats, args.warmup)
        results.append(r)
        print(
            f"{key:<10}{batch:>6}{r['jax_s']:>13.3f}{r['pytorch_s']:>16.3f}"
            f"{r['ratio_pt_over_jax']:>9.2f}{r['jax_compile_s']:>15.1f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
