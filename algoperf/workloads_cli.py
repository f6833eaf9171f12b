"""`algoperf workloads`: every registered workload and variant, from the workload specs."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from algoperf import registry


def count_params(name: str, framework: str) -> int:
    """Trainable parameters of `name` in `framework`, from shapes only: nothing is allocated.

    JAX: ``init_model_fn`` under `jax.eval_shape` (abstract arrays). PyTorch: ``init_model_fn``
    with PyTorch's meta device as the default device (tensors without storage; initialisers run
    as no-ops), moves to a real device skipped. So the largest models (539M parameters) count in
    well under a second and a few MB.
    """
    workload = registry.get_workload(name, framework)
    if framework == "jax":
        import jax
        import numpy as np

        params, _ = jax.eval_shape(workload.init_model_fn, jax.random.PRNGKey(0))
        return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
    from algoperf.frameworks import pytorch as fpt

    with _torch_meta_device():
        params, _ = workload.init_model_fn([0, 0])
    return fpt.count_params(params)


@contextlib.contextmanager
def _torch_meta_device() -> Iterator[None]:
    """Build PyTorch modules on the meta device; ``Module.to`` leaves meta modules where they are
    (``init_model_fn`` moves its model to the run's device, which a meta tensor cannot do)."""
    import torch

    original = torch.nn.Module.to

    def to(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
            return module
        return original(module, *args, **kwargs)

    torch.nn.Module.to = to  # type: ignore[method-assign]
    try:
        with torch.device("meta"):
            yield
    finally:
        torch.nn.Module.to = original  # type: ignore[method-assign]


def rows(with_params: bool = False) -> list[dict[str, Any]]:
    """One dict per workload: the facts `algoperf workloads` prints."""
    out = []
    for name, c in registry.all_configs().items():
        frameworks = registry.implemented_frameworks(name)
        row: dict[str, Any] = {
            "workload": name,
            "base": c.base_name,
            "dataset": c.dataset,
            "metric": f"{c.target_metric_name} {'max' if c.maximize else 'min'}",
            "validation_target": c.validation_target_value,
            "test_target": c.test_target_value,
            "budget_sec": c.max_allowed_runtime_sec,
            "step_hint": c.step_hint,
            "eval_period_sec": c.eval_period_time_sec,
            "eval_batch_size": c.eval_batch_size,
            "kind": "benchmark" if c.benchmark else ("dev" if c.dev_only else "variant"),
            "frameworks": ",".join(frameworks) or "-",
        }
        if with_params:
            for fw in registry.FRAMEWORKS:
                row[f"params_{fw}"] = count_params(name, fw) if fw in frameworks else None
        out.append(row)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="algoperf workloads", description=__doc__)
    parser.add_argument("--params", action="store_true", help="add trainable parameter counts")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    table = rows(args.params)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    columns = list(table[0])
    cells = [[_fmt(r[c]) for c in columns] for r in table]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    return 0
