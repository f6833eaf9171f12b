"""Where the running algoperf came from: the image's lock file hash and the source's git sha.

`docker/install.sh` (the one install path of the Docker and Apptainer images) writes
``<venv>/algoperf-provenance.json`` with the hashed lock it installed from and the git sha of the
build context. Images carry no ``.git``, so that file is the only place the source revision
survives; outside an image (a development checkout) the file is absent and the sha comes from git.
Every run record carries `record()` under ``provenance``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROVENANCE_FILE = "algoperf-provenance.json"
ENV_OVERRIDE = "ALGOPERF_PROVENANCE"  # path of a provenance file to use instead


def provenance_path() -> Path:
    """The provenance file of this interpreter's environment (or `ENV_OVERRIDE`)."""
    return Path(os.environ.get(ENV_OVERRIDE) or Path(sys.prefix) / PROVENANCE_FILE)


def _git_sha(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def record() -> dict[str, Any]:
    """``lock_sha256``, ``lock_file``, ``git_sha`` and ``source`` ("image" or "checkout").

    ``lock_sha256`` is None outside an image installed from a lock (a plain ``pip install``).
    """
    path = provenance_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("lock_sha256"):
        return {
            "source": "image",
            "lock_file": data.get("lock_file"),
            "lock_sha256": data.get("lock_sha256"),
            "git_sha": data.get("git_sha"),
            "framework": data.get("framework"),
            "accelerator": data.get("accelerator"),
            "provenance_file": str(path),
        }
    return {
        "source": "checkout",
        "lock_file": None,
        "lock_sha256": None,
        "git_sha": _git_sha(Path(__file__).resolve().parents[1]),
    }
