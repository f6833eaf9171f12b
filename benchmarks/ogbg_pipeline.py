"""ogbg input pipeline: graphs per second per core, against what 8 accelerators consume.

Writes an OGB-format ``pcba.zip`` of ``--graphs`` molecule-like graphs (`workloads.ogbg.testing`:
2-40 atoms, bonds about 1.1 per atom; molpcba averages 26 atoms and 28 bonds), prepares it with
the real `workloads.ogbg.data.prepare` (the conversion rate is printed, with the time that implies
for molpcba's 437,929 graphs), then times the real batch iterator (`data.numpy_batches`):

* ``train``: shuffled stream, global batch ``--batch`` (upstream's baseline: 512) packed into 1
  and into 8 device shards (upstream's budgets: 26 b + 1 nodes, 56 b edges, b + 1 graphs);
* ``eval``: the validation-style in-order pass in 4,096-graph device shards.

Rates are graphs per CPU-second of this process (one core; the iterator is single-threaded) and
per wall second. The consumption figure is upstream's JAX NAdamW baseline on 8 V100s: 512 graphs
per 0.320 s step (reference, measured step times), i.e. 1,600 graphs/s.

Usage: python benchmarks/ogbg_pipeline.py [--graphs 20000] [--batch 512] [--batches 40]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from algoperf.registry import get_config  # noqa: E402
from workloads.ogbg import data, testing  # noqa: E402

UPSTREAM_STEP_S = 0.320  # JAX NAdamW baseline, 8x V100, batch 512
UPSTREAM_BATCH = 512
MOLPCBA_GRAPHS = 437_929


def _rate(batches, n: int, shards: int) -> tuple[float, float, int]:
    """(graphs per CPU-second, graphs per wall second, graphs) over `n` batches."""
    next(batches)  # warm-up (first permutation, page-in)
    graphs = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        b = next(batches, None)
        if b is None:
            break
        # Every graph has an atom; each shard has one padding graph with nodes.
        graphs += int((b["n_node"] > 0).sum()) - shards
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return graphs / cpu, graphs / wall, graphs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graphs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=UPSTREAM_BATCH)
    ap.add_argument("--batches", type=int, default=40)
    args = ap.parse_args()
    need = UPSTREAM_BATCH / UPSTREAM_STEP_S
    with tempfile.TemporaryDirectory() as tmp:
        n_train = int(args.graphs * 0.8)
        n_val = (args.graphs - n_train) // 2
        fx = testing.write_archive(
            Path(tmp) / "src" / data.ARCHIVE,
            num_train=n_train,
            num_valid=n_val,
            num_test=args.graphs - n_train - n_val,
        )
        t0 = time.perf_counter()
        data.prepare(tmp, source=testing.fixture_source(fx), progress=False)
        convert_s = time.perf_counter() - t0
        config = testing.fixture_config(get_config("ogbg"), fx)
        g = data.load(tmp)
        print(
            f"# {args.graphs} graphs, {g.node_feat.shape[0] / args.graphs:.1f} atoms and "
            f"{g.edge_feat.shape[0] / args.graphs / 2:.1f} bonds per graph; prepare (unzip, CSV, "
            f"convert) {convert_s:.2f} s = {args.graphs / convert_s:,.0f} graphs/s (molpcba: "
            f"~{MOLPCBA_GRAPHS / (args.graphs / convert_s):.0f} s)"
        )
        print(f"{'pipeline':<28}{'graphs/CPU-s':>14}{'graphs/s':>11}{'x 8-GPU need':>14}")
        cases = [
            ("train, 1 shard", "train", args.batch, 1),
            ("train, 8 shards", "train", args.batch, 8),
            ("eval, 4096-graph shards", "validation", 4096, 1),
        ]
        for label, split, batch, shards in cases:
            # Eval passes are finite: chain enough of them for `--batches` batches.
            it = itertools.chain.from_iterable(
                data.numpy_batches(tmp, config, split, batch, seed=0, num_shards=shards)
                for _ in range(args.batches + 1)
            )
            per_cpu, per_wall, _ = _rate(it, args.batches, shards)
            print(f"{label:<28}{per_cpu:>14,.0f}{per_wall:>11,.0f}{per_cpu / need:>14.1f}")
        print(
            f"# need: {UPSTREAM_BATCH} graphs per {UPSTREAM_STEP_S} s step on 8 V100s = "
            f"{need:,.0f} graphs/s; 'x 8-GPU need' = one core's rate over that"
        )


if __name__ == "__main__":
    main()
