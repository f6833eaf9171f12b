"""Provenance in run records: the image's lock hash and git sha reach every run_record.json.

`algoperf run` copies `algoperf.provenance.record()` into the run record. In an image that record
comes from the file docker/install.sh writes; here a fake one is pointed to by
``ALGOPERF_PROVENANCE`` and a short run on the MNIST fixture must carry its values verbatim.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from algoperf import provenance
from algoperf.cli import main

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"


def test_run_record_carries_the_image_lock_hash_and_git_sha(tmp_path, monkeypatch):
    lock_sha = hashlib.sha256(b"a lock this test made up").hexdigest()
    fake = tmp_path / "algoperf-provenance.json"
    fake.write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "accelerator": "cpu",
                "lock_file": "pytorch-cpu.txt",
                "lock_sha256": lock_sha,
                "git_sha": "feedc0ffee",
            }
        )
    )
    monkeypatch.setenv(provenance.ENV_OVERRIDE, str(fake))
    data = tmp_path / "data"
    assert main(["datasets", "prepare", "mnist", "--fixture", "--data_dir", str(data)]) == 0
    argv = [
        "run",
        "--framework=pytorch",
        "--workload=mnist",
        f"--submission_path={NADAMW}/pytorch/submission.py",
        f"--tuning_search_space={NADAMW}/tuning_search_space.json",
        "--num_tuning_trials=1",
        f"--data_dir={data}",
        f"--experiment_dir={tmp_path / 'exp'}",
        "--experiment_name=provenance",
        "--max_global_steps=3",
        "--progress=false",
    ]
    assert main(argv) == 0
    (record_path,) = (tmp_path / "exp").rglob("run_record.json")
    got = json.loads(record_path.read_text())["provenance"]
    assert got == {
        "source": "image",
        "lock_file": "pytorch-cpu.txt",
        "lock_sha256": lock_sha,
        "git_sha": "feedc0ffee",
        "framework": "pytorch",
        "accelerator": "cpu",
        "provenance_file": str(fake),
    }


def test_a_checkout_reports_its_git_sha_and_no_lock(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.ENV_OVERRIDE, str(tmp_path / "absent.json"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    assert provenance.record() == {
        "source": "checkout",
        "lock_file": None,
        "lock_sha256": None,
        "git_sha": head,
    }


def test_meta_data_git_hash_falls_back_to_the_image_record(tmp_path, monkeypatch):
    """In an image (no .git) upstream's ``git_commit_hash`` comes from the provenance file."""
    from algoperf import logs

    fake = tmp_path / "algoperf-provenance.json"
    fake.write_text(json.dumps({"lock_sha256": "ab" * 32, "git_sha": "feedc0ffee"}))
    monkeypatch.setenv(provenance.ENV_OVERRIDE, str(fake))
    monkeypatch.setattr(logs, "_git", lambda *args, cwd: None)
    assert logs.environment_record("pytorch")["git_commit_hash"] == "feedc0ffee"
