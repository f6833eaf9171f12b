"""LibriSpeech audio pipeline: utterances per second per core, against what 8 accelerators consume.

Writes an OpenSLR-format tarball of `--utterances` FLAC utterances of LibriSpeech-like length
(uniform 2-20 s, mean about 11 s), then times, in this process (one core):

* ``prepare``: streaming the tarball once and decoding every FLAC into int16 shards
  (`workloads.librispeech.data.scan_tarball`, once per dataset);
* ``batch``: building upstream-shaped batches from the shards (`data.make_batch`: float32 audio
  padded to 320,000 samples plus paddings, ids padded to 256), what every training step needs.

The consumption figure is upstream's JAX baseline in the published v0.6 logs
(librispeech_conformer, external tuning, study 0, trial 1): 13,209 steps of 256 utterances in
57,937 s of submission time, i.e. about 58 utterances per second.

Usage: python benchmarks/librispeech_pipeline.py [--utterances 64] [--batch 256] [--batches 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workloads.librispeech import data, testing  # noqa: E402

UPSTREAM_STEP_S = 57_936.6 / 13_209  # conformer JAX baseline, v0.6 logs
UPSTREAM_BATCH = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=64)
    ap.add_argument("--batch", type=int, default=UPSTREAM_BATCH)
    ap.add_argument("--batches", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    utts = []
    for i in range(args.utterances):
        n = int(rng.integers(2 * data.SAMPLE_RATE, 20 * data.SAMPLE_RATE))
        words = ["WORD"] * (n // 480 + 1)
        audio = testing._tones(rng, words)[:n]
        utts.append((f"1-{i // 50}-{i % 50:04d}", audio, "WORD"))
    with tempfile.TemporaryDirectory() as tmp:
        tar = testing.write_tarball(Path(tmp) / "dev-clean.tar.gz", "dev-clean", utts)
        c0 = time.process_time()
        scanned = data.scan_tarball(tar, "dev-clean", Path(tmp) / "out")
        decode = len(scanned.positions) / (time.process_time() - c0)
        ids = sorted(scanned.positions)
        pos = np.array([scanned.positions[k] for k in ids])
        audio = data._ShardAudio(Path(tmp) / "out", pos[:, 0], pos[:, 1], pos[:, 2])
        tokens = [np.arange(3, 60, dtype=np.int32)] * len(ids)
        c0 = time.process_time()
        for _ in range(args.batches):
            rows = rng.integers(0, len(ids), args.batch)
            data.make_batch(
                [audio[int(r)] for r in rows], [tokens[int(r)] for r in rows], args.batch
            )
        batch = args.batches * args.batch / (time.process_time() - c0)
    need = UPSTREAM_BATCH / UPSTREAM_STEP_S
    print(f"upstream consumption (8 accelerators, batch {UPSTREAM_BATCH}): {need:.1f} utt/s")
    print(f"prepare (tar stream + FLAC decode): {decode:.1f} utt/s per core (once per dataset)")
    print(f"batch building: {batch:.1f} utt/s per core = {batch / need:.1f}x the consumption")


if __name__ == "__main__":
    main()
