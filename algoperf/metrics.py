"""Eval metric accumulation in numpy: exact sums, concatenated arrays, per-group statistics.

The framework layer evaluates a split in fixed-shape chunks (`algoperf.workload_base`) and hands
every chunk's per-example values to an `Accumulator`, built from the family's declaration, an
`Accumulation`. The accumulator keeps, for the chunk's real rows only (padding dropped):

* ``means`` / ``sums``: per-example values of any trailing shape (a loss, BLEU's n-gram match
  counts, WER's edit and word counts) summed exactly over the split, streaming in constant
  memory (`ExactSum`: the correctly rounded sum of all per-example values, so independent of
  chunking, order, batch size and device count); integers in int64. A ``means`` key is also
  reported as its sum divided by the split's example count (upstream's per-example means);
* ``concat``: per-example arrays concatenated in example order (predictions, labels and masks for
  mean average precision, which is no sum of per-example values);
* ``group_sums``: per-example values summed exactly per integer group id read from the
  ``group_by`` key (SSIM or errors per MRI volume, per speaker, per document), returned in
  ascending id order with the number of examples of each group.

`Accumulation.finalize` then turns the split's `SplitValues` into the reported metrics, in numpy.
Nothing here imports JAX or PyTorch.

How a family declares its eval (its workload class; the framework layer does the rest)::

    from algoperf import metrics

    def _finalize(v: metrics.SplitValues) -> dict[str, float]:
        per_volume = v.group_sums["ssim"] / v.group_counts  # mean SSIM of each volume
        return {"ssim_per_volume": float(per_volume.mean()),
                "mean_average_precision": my_map(v.arrays["logits"], v.arrays["targets"])}

    class MyWorkload(JaxWorkload):
        eval_accumulation = metrics.Accumulation(
            means=("loss", "ssim"),            # reported as per-example means
            concat=("logits", "targets"),      # model outputs and batch fields, example order
            group_by="volume_id", group_sums=("ssim",),
            finalize=_finalize)

        def _per_example_metrics(self, params, model_state, batch, rng):  # traced / no_grad
            out, _ = self.model_fn(params, batch, model_state, EVAL, rng, False, 0.0)
            return {"loss": self.loss_fn(batch["targets"], out)["per_example"],
                    "ssim": ssim(out, batch["targets"]), "logits": out}

Keys are looked up first in what `_per_example_metrics` returned (after the optional numpy hook
`_host_eval_values`, e.g. to decode and count n-grams on the host), then in the numpy chunk itself
(``targets``, ``weights``, ``volume_id``, ...). A family whose chunks are not rows of one padded
array (graph batches) builds an `Accumulator` itself and calls `add` with its real rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class SplitValues:
    """Everything accumulated over one split, handed to `Accumulation.finalize`.

    Attributes:
        num_examples: real examples seen (padding excluded).
        sums: key -> exact float64 (or int64) sum over examples, shape = the per-example shape.
        arrays: key -> per-example arrays of the split concatenated in example order.
        groups: sorted unique group ids (int64, empty without ``group_by``).
        group_counts: examples per group, aligned with `groups`.
        group_sums: key -> (num_groups, *per-example shape) exact per-group sums.
    """

    num_examples: int
    sums: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    groups: np.ndarray
    group_counts: np.ndarray
    group_sums: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Accumulation:
    """A family's declaration of what its eval keeps per example and how it finalises.

    Attributes:
        means: keys summed exactly and reported as ``sum / num_examples`` (scalar per example).
        sums: further keys summed exactly (any per-example shape), for `finalize` only.
        concat: keys concatenated over the split in example order, for `finalize` only.
        group_by: key of a per-example integer group id; required with `group_sums`.
        group_sums: keys summed exactly per group, for `finalize` only.
        finalize: numpy function of the split's `SplitValues` -> further reported metrics.
    """

    means: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()
    concat: tuple[str, ...] = ()
    group_by: str | None = None
    group_sums: tuple[str, ...] = ()
    finalize: Callable[[SplitValues], dict[str, float]] | None = None

    def __post_init__(self) -> None:
        if self.group_sums and self.group_by is None:
            raise ValueError("Accumulation: group_sums needs group_by (the group id key)")
        if not (self.means or self.sums or self.concat or self.group_sums):
            raise ValueError("Accumulation: declare at least one of means/sums/concat/group_sums")

    @property
    def keys(self) -> frozenset[str]:
        """Every per-example key the accumulator reads."""
        group = (self.group_by,) if self.group_by else ()
        return frozenset((*self.means, *self.sums, *self.concat, *group, *self.group_sums))


# Classification families (MNIST, CIFAR, ImageNet): upstream's per-example means.
CLASSIFICATION = Accumulation(means=("accuracy", "loss"))


class Accumulator:
    """Collects per-example values chunk by chunk; `result` finalises a split."""

    def __init__(self, spec: Accumulation) -> None:
        self.spec = spec
        self.num_examples = 0
        # Sums stream (constant memory); only what must be concatenated or grouped is kept.
        self._sums = {k: ExactSum() for k in dict.fromkeys((*spec.means, *spec.sums))}
        group = (spec.group_by,) if spec.group_by else ()
        kept = (*spec.concat, *group, *spec.group_sums)
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in kept}

    def add(self, values: Mapping[str, Any], rows: np.ndarray | None = None) -> None:
        """Keep the rows where `rows` is True (all rows when None) of every declared key.

        `values` maps keys to arrays whose leading axis is the example; extra keys are ignored.
        """
        missing = self.spec.keys - values.keys()
        if missing:
            raise KeyError(
                f"eval values lack {sorted(missing)} (have {sorted(values)}): return them from "
                "_per_example_metrics or put them in the batch"
            )
        kept = None if rows is None else np.asarray(rows, dtype=bool)
        count = None
        for key in self.spec.keys:
            value = np.asarray(values[key])
            if kept is not None:
                if len(value) != len(kept):
                    raise ValueError(f"eval value {key!r}: {len(value)} rows, mask {len(kept)}")
                value = value[kept]
            if count is None:
                count = len(value)
            elif len(value) != count:
                raise ValueError(f"eval value {key!r} has {len(value)} rows, others {count}")
            if key in self._sums:
                self._sums[key].add(value)
            if key in self._parts:
                self._parts[key].append(value)
        self.num_examples += count or 0

    def _joined(self, key: str) -> np.ndarray:
        parts = self._parts[key]
        if not parts:
            return np.zeros((0,))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def values(self) -> SplitValues:
        """The split's exact sums, concatenated arrays and per-group sums."""
        spec = self.spec
        sums = {k: acc.value() for k, acc in self._sums.items()}
        arrays = {k: self._joined(k) for k in spec.concat}
        groups = np.zeros((0,), np.int64)
        counts = np.zeros((0,), np.int64)
        group_sums: dict[str, np.ndarray] = {}
        if spec.group_by is not None:
            ids = self._joined(spec.group_by)
            integral = np.issubdtype(ids.dtype, np.integer) or np.array_equal(ids, np.round(ids))
            if ids.size and not integral:
                raise ValueError(f"group ids {spec.group_by!r} must be integers")
            ids = ids.astype(np.int64).reshape(len(ids))
            order = np.argsort(ids, kind="stable")
            groups, starts, counts = np.unique(ids[order], return_index=True, return_counts=True)
            for key in spec.group_sums:
                value = self._joined(key)[order]
                group_sums[key] = (
                    np.stack(
                        [exact_sum(value[s : s + c]) for s, c in zip(starts, counts, strict=True)]
                    )
                    if len(groups)
                    else np.zeros((0, *value.shape[1:]))
                )
        return SplitValues(self.num_examples, sums, arrays, groups, counts, group_sums)

    def result(self) -> dict[str, float]:
        """The reported metrics: the declared means, then whatever `finalize` adds."""
        values = self.values()
        n = values.num_examples
        out = {k: float(values.sums[k]) / n if n else float("nan") for k in self.spec.means}
        if self.spec.finalize is not None:
            out.update(self.spec.finalize(values))
        return out


# Exact float sums: every finite float64 is ``m * 2**(e - 53)`` with an integer |m| < 2**53
# (`np.frexp`); m is split into 26-bit halves whose per-exponent sums `np.bincount` computes
# exactly in float64 (for up to 2**26 rows per call), and the halves are added into Python
# integers. The split's sum is then one big integer over a power of two, which Python's int
# division rounds correctly: the correctly rounded sum, in a few vectorised passes and
# constant memory however many values stream in.
_EXP_BINS = 2100  # frexp exponents of float64, -1073..1024, shifted by 1074
_EXP_SHIFT = 1074
_HALF = 26
_MAX_ROWS = 1 << 26


class ExactSum:
    """Streaming, correctly rounded sum over the leading axis of float or integer arrays."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] | None = None
        self._integer = True
        self._ints: np.ndarray | None = None  # int64 column sums (integer inputs)
        self._bins: list[dict[int, int]] = []  # per column: exponent bin -> exact integer sum
        self._nonfinite: np.ndarray | None = None  # float64 sum of the non-finite values

    def add(self, values: np.ndarray) -> None:
        """Add every row of `values` (shape (n, *per_example_shape))."""
        values = np.asarray(values)
        shape = values.shape[1:]
        if self._shape is None:
            self._shape = shape
            width = int(np.prod(shape, dtype=np.int64))
            self._bins = [{} for _ in range(width)]
            self._ints = np.zeros(width, np.int64)
            self._nonfinite = np.zeros(width, np.float64)
        elif shape != self._shape:
            raise ValueError(f"exact sum: per-example shape {shape}, earlier {self._shape}")
        flat = values.reshape(len(values), len(self._bins))
        if values.dtype == bool or np.issubdtype(values.dtype, np.integer):
            self._ints += flat.astype(np.int64).sum(axis=0)
            return
        self._integer = False
        for start in range(0, len(flat), _MAX_ROWS):
            self._add_floats(flat[start : start + _MAX_ROWS].astype(np.float64))

    def _add_floats(self, flat: np.ndarray) -> None:
        finite = np.isfinite(flat)
        if not finite.all():
            with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in any sum
                self._nonfinite += np.where(finite, 0.0, flat).sum(axis=0)
            flat = np.where(finite, flat, 0.0)
        mantissa, exponent = np.frexp(flat)
        m = (mantissa * float(1 << 53)).astype(np.int64)
        hi = m >> _HALF
        lo = m - (hi << _HALF)
        cols = flat.shape[1]
        index = (exponent + _EXP_SHIFT) + _EXP_BINS * np.arange(cols)[None, :]
        size = _EXP_BINS * cols
        hi_sums = np.bincount(index.ravel(), weights=hi.ravel().astype(np.float64), minlength=size)
        lo_sums = np.bincount(index.ravel(), weights=lo.ravel().astype(np.float64), minlength=size)
        for flat_bin in np.nonzero((hi_sums != 0) | (lo_sums != 0))[0].tolist():
            col, b = divmod(flat_bin, _EXP_BINS)
            exact = (int(hi_sums[flat_bin]) << _HALF) + int(lo_sums[flat_bin])
            self._bins[col][b] = self._bins[col].get(b, 0) + exact

    def value(self) -> np.ndarray:
        """The sums: int64 for integer inputs only, else correctly rounded float64."""
        if self._shape is None:
            return np.zeros((), np.float64)
        if self._integer:
            return self._ints.reshape(self._shape)
        out = np.empty(len(self._bins), np.float64)
        for col, bins in enumerate(self._bins):
            total = sum(v << b for b, v in bins.items()) + (
                int(self._ints[col]) << (53 + _EXP_SHIFT)
            )
            try:
                out[col] = total / (1 << (53 + _EXP_SHIFT))
            except OverflowError:
                out[col] = math.inf if total > 0 else -math.inf
        nonfinite = self._nonfinite
        with np.errstate(invalid="ignore"):
            out = np.where(nonfinite != 0, out + nonfinite, out)
        out = np.where(np.isnan(nonfinite), np.nan, out)
        return out.reshape(self._shape)


def exact_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the leading axis, exactly: int64 for integers, correctly rounded float64 else.

    Correct rounding makes the result independent of the order and grouping of the values.
    """
    values = np.asarray(values)
    acc = ExactSum()
    acc.add(values.reshape(len(values), *values.shape[1:]) if values.ndim else values[None])
    out = acc.value()
    if len(values) == 0 and not (values.dtype == bool or np.issubdtype(values.dtype, np.integer)):
        return np.zeros(values.shape[1:], np.float64)
    return out
