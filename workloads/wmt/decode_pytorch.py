"""wmt translation in PyTorch: greedy or upstream's beam search over the model's decoding cache.

The search rules are `decode_common`'s, run in its Python loop with torch operations on the
model's device; the decoder takes one cached step per iteration (`model_pytorch.decode_step`) and
the per-layer caches follow their beams' parents.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workloads.wmt import decode_common, model_pytorch


class TorchOps(decode_common.NumpyOps):
    """`decode_common.ArrayOps` in torch; top-k by a stable sort (ties as ``lax.top_k``)."""

    def __init__(self) -> None:
        super().__init__(torch)

    def top_k(self, x, k):
        values, idx = torch.sort(x, dim=-1, descending=True, stable=True)
        return values[..., :k], idx[..., :k]

    def take(self, x, idx):
        return x[torch.arange(x.shape[0], device=x.device)[:, None], idx]

    def set_position(self, seqs, index, ids):
        out = seqs.clone()
        out[:, :, index] = ids.to(seqs.dtype)
        return out

    def flip1(self, x):
        return torch.flip(x, (1,))

    def min1(self, x):
        return x.amin(1, keepdim=True)

    def log_softmax(self, x):
        return F.log_softmax(x, dim=-1)

    def asarray_like(self, x, like):
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)


_OPS = TorchOps()


@torch.no_grad()
def translate(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    *,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_decode_len: int = 256,
    eos_id: int = decode_common.EOS_ID,
) -> np.ndarray:
    """(batch, max_decode_len) int32 translations of the 0-padded (batch, src_len) `inputs`.

    `model` is the wmt `model_pytorch.Transformer` (DDP, DataParallel, torch.compile unwrapped),
    `inputs` a LongTensor on its device; ``beam_size=1`` is greedy. Rows are cut after the first
    EOS (kept), as `decode_common.finalize` says. Runs in eval mode, restoring the mode after.
    """
    model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if not isinstance(model, model_pytorch.Transformer):
        raise TypeError(
            f"workloads/wmt/decode_pytorch.py: translate needs the wmt Transformer, got "
            f"{type(model).__name__}"
        )
    was_training = model.training
    model.eval()
    try:
        seqs = _search(model, inputs.long(), beam_size, alpha, max_decode_len, eos_id)
    finally:
        model.train(was_training)
    return decode_common.finalize(seqs.cpu().numpy(), eos_id)


def _search(model, inputs, beam_size, alpha, max_decode_len, eos_id) -> torch.Tensor:
    batch = inputs.shape[0]
    flat_inputs = inputs.repeat_interleave(beam_size, 0)
    memory_kv = model_pytorch.memory_kv(model, model.encode(inputs).repeat_interleave(beam_size, 0))
    cache = model_pytorch.init_cache(model, batch * beam_size, max_decode_len)
    state = decode_common.search_init(batch, beam_size, max_decode_len)
    state = type(state)(*(torch.as_tensor(x, device=inputs.device) for x in state))

    filled = [0]  # cache positions written so far (only those need reordering)

    def next_logits(tokens: torch.Tensor, index: int) -> torch.Tensor:
        filled[0] = index + 1
        return model_pytorch.decode_step(model, memory_kv, flat_inputs, tokens, cache, index)

    def reorder(rows: torch.Tensor) -> None:
        n = filled[0]
        for layer in cache:
            for x in layer.values():
                x[:, :, :n] = x[:, :, :n].index_select(0, rows)

    return decode_common.run_search(
        _OPS,
        state,
        next_logits,
        reorder,
        alpha=alpha,
        max_decode_len=max_decode_len,
        eos_id=eos_id,
    )
