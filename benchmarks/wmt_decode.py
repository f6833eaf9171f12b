"""wmt translation speed: `decode_jax.translate` vs `decode_pytorch.translate`, side by side.

Both frameworks get the same weights (a PyTorch init copied into flax by the parameter map) and
the same random sources; EOS is set to an id the model never emits (-1), so every search runs its
full ``max_decode_len - 1`` steps and the figures do not depend on when a random model happens to
stop. JAX's first call (compilation) is timed apart; then each framework runs ``--repeats`` times
and the median counts. Output: one JSON row per (framework, beam) with seconds per batch and
output tokens per second (batch x (max_decode_len - 1) / seconds; a beam search steps ``beam``
decoder rows per output token), and the JAX/PyTorch time ratios.

Usage::

    python benchmarks/wmt_decode.py [--emb_dim 128] [--num_layers 2] [--batch 8] [--src_len 32]
        [--max_decode_len 64] [--beams 1 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab_size", type=int, default=1000)
    parser.add_argument("--emb_dim", type=int, default=128)
    parser.add_argument("--num_heads", type=int, default=4)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--mlp_dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--src_len", type=int, default=32)
    parser.add_argument("--max_decode_len", type=int, default=64)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from workloads.wmt import decode_jax, decode_pytorch, model_jax, model_pytorch, param_map

    sizes = ("vocab_size", "emb_dim", "num_heads", "num_layers", "mlp_dim")
    options = {k: getattr(args, k) for k in sizes}
    options["max_len"] = max(args.max_decode_len, args.src_len)
    torch.manual_seed(0)
    pt = model_pytorch.build_model(options).eval()
    state = {k: v.numpy() for k, v in pt.state_dict().items()}
    params = jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, options))
    jm = model_jax.build_model(options)
    src = np.random.default_rng(0).integers(3, args.vocab_size, (args.batch, args.src_len))
    src_pt = torch.from_numpy(src)
    kw = {"max_decode_len": args.max_decode_len, "eos_id": -1}
    tokens = args.batch * (args.max_decode_len - 1)

    def median_seconds(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    rows = []
    for beam in args.beams:
        start = time.perf_counter()
        decode_jax.translate(jm, params, src, beam_size=beam, **kw)
        first = time.perf_counter() - start
        t_jax = median_seconds(
            lambda b=beam: decode_jax.translate(jm, params, src, beam_size=b, **kw)
        )
        decode_pytorch.translate(pt, src_pt, beam_size=beam, **kw)  # warm-up
        t_pt = median_seconds(
            lambda b=beam: decode_pytorch.translate(pt, src_pt, beam_size=b, **kw)
        )
        for framework, seconds in (("jax", t_jax), ("pytorch", t_pt)):
            row = {"framework": framework, "beam": beam, "s_per_batch": round(seconds, 4)}
            row["tokens_per_s"] = round(tokens / seconds, 1)
            if framework == "jax":
                row["first_call_s"] = round(first, 2)
            rows.append(row)
        rows.append({"beam": beam, "jax_over_pytorch_time": round(t_jax / t_pt, 3)})
    print(json.dumps({"options": options, **{k: getattr(args, k) for k in ("batch", "src_len")}}))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
