"""criteo1tb PyTorch embedding step: upstream's four concatenated chunks vs one table, side by side.

Upstream's PyTorch DLRM keeps its (vocab, 128) table as four parameters and runs
``torch.cat(chunks)[ids]`` on every forward pass, copying the whole table (2 GiB at the real
vocabulary) each step and, in backward, building a dense gradient of the concatenation that is
then split back into the chunks. `workloads.criteo1tb.model_pytorch` keeps one parameter and
calls ``F.embedding``. One step here = the lookup of ``--batch`` rows x 26 ids (``id % vocab``),
a weighted sum of the rows, backward, and an in-place SGD update of the table (what the table
costs in a training step, without the MLPs, which are the same in both).

Each layout runs in its own subprocess (so peak memory is its own): the table and inputs are
allocated, one warm-up step and then ``--steps`` timed steps run; it reports the median step
time and the peak resident memory above the resident memory before the first step (table and
inputs already there), i.e. what a step adds: the table's gradient, the looked-up rows and, for
upstream's layout, the concatenated copy and its gradient. Output: one row per layout and the
upstream/one-table ratios.

Usage::

    python benchmarks/criteo1tb_embedding.py [--vocab 1048576] [--batch 8192] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_layout(layout: str, vocab: int, batch: int, steps: int) -> dict[str, float]:
    """Time `steps` steps of one layout in this process; memory figures in MiB."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    if layout == "upstream_chunks":
        params = [torch.nn.Parameter(torch.rand(vocab // 4, 128)) for _ in range(4)]
    else:
        params = [torch.nn.Parameter(torch.rand(vocab, 128))]
    ids = torch.randint(0, 2**30, (batch, 26)).to(torch.float32)
    weights = torch.randn(batch, 26, 128)

    def step() -> None:
        idx = ids.to(torch.int32) % vocab
        if layout == "upstream_chunks":
            rows = torch.cat(params, dim=0)[idx.reshape(-1)].reshape(batch, 26, 128)
        else:
            rows = F.embedding(idx, params[0])
        (rows * weights).sum().backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-0.01)
                p.grad = None

    base = _rss_mib()
    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "step_s": statistics.median(times),
        "table_mib": vocab * 128 * 4 / 2**20,
        "rss_before_steps_mib": base,
        "extra_peak_mib": max(_peak_mib() - base, 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=1_048_576)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", choices=("upstream_chunks", "one_table"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vocab % 4:
        parser.error(f"--vocab {args.vocab} must be a multiple of 4 (upstream's four chunks)")
    if args.child:
        print(json.dumps(run_layout(args.child, args.vocab, args.batch, args.steps)))
        return
    results = {}
    for layout in ("upstream_chunks", "one_table"):
        cmd = [sys.executable, __file__, "--child", layout, "--vocab", str(args.vocab)]
        cmd += ["--batch", str(args.batch), "--steps", str(args.steps)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[layout] = json.loads(out.strip().splitlines()[-1])
    table = results["one_table"]["table_mib"]
    print(f"vocab {args.vocab:,} x 128 fp32 ({table:,.0f} MiB), batch {args.batch:,} x 26 ids")
    print(f"{'layout':<16} {'step (s)':>10} {'extra peak memory (MiB)':>24}")
    for layout, r in results.items():
        print(f"{layout:<16} {r['step_s']:>10.4f} {r['extra_peak_mib']:>24.0f}")
    up, one = results["upstream_chunks"], results["one_table"]
    print(f"step time upstream/one_table: {up['step_s'] / one['step_s']:.2f}x")
    print(
        f"extra peak memory: upstream {up['extra_peak_mib']:.0f} MiB, "
        f"one table {one['extra_peak_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
