"""Print the fingerprint of everything a docker/locks file is resolved from.

The fingerprint is a sha256 over pyproject's Python requirement, dependencies and extras, the
docker/requirements/*.in files and the resolution settings (Python, platform, exclude-newer).
docker/lock.sh writes it into every lock's header; the test suite recomputes it, so a change to
any input without `make lock` fails offline and deterministically, whatever the package index
holds that day.

Usage: python docker/lock_inputs.py PYTHON_VERSION PLATFORM EXCLUDE_NEWER
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fingerprint(python_version: str, platform: str, exclude_newer: str) -> str:
    """The sha256 of the lock inputs, stable across formatting-only edits of pyproject."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requirements": {
            p.name: p.read_text() for p in sorted((ROOT / "docker/requirements").glob("*.in"))
        },
        "settings": [python_version, platform, exclude_newer],
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python docker/lock_inputs.py PYTHON_VERSION PLATFORM EXCLUDE_NEWER")
    print(fingerprint(*sys.argv[1:]))
