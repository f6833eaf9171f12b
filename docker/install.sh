#!/usr/bin/env bash
# Install algoperf into a virtual environment from a committed hashed lock: the one install
# path of the Docker image, the Apptainer image and tests/unit/test_docker_install.py.
#
# Usage: docker/install.sh --framework jax|pytorch|both --accelerator cpu|cuda|cuda12 --venv DIR
#                          [--source DIR] [--git-sha SHA] [--python PYTHON]
#
# Steps: create the venv (if absent); install every wheel of docker/locks/<fw>-<acc>.txt with
# --require-hashes --no-deps --only-binary (nothing unpinned or unhashed, nothing built but the
# few packages published only as pure-Python source, built with the locked setuptools); install
# the project from --source (the build context; never cloned) without dependencies or build
# isolation; `pip check`; write <venv>/algoperf-provenance.json (lock file, its sha256, git sha),
# which `algoperf run` copies into every run record; import-check the framework.
set -euo pipefail
framework="" accelerator="" venv="" git_sha="${GIT_SHA:-}" python="${PYTHON:-python3}"
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --framework) framework="$2"; shift 2 ;;
    --accelerator) accelerator="$2"; shift 2 ;;
    --venv) venv="$2"; shift 2 ;;
    --source) source_dir="$2"; shift 2 ;;
    --git-sha) git_sha="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    *) echo "install.sh: unknown argument $1 (see the usage at the top of docker/install.sh)" >&2; exit 2 ;;
  esac
done
case "$framework" in jax | pytorch | both) ;; *)
  echo "install.sh: --framework must be jax, pytorch or both, got '$framework'" >&2; exit 2 ;;
esac
case "$accelerator" in cpu | cuda | cuda12) ;; *)
  echo "install.sh: --accelerator must be cpu, cuda or cuda12, got '$accelerator'" >&2; exit 2 ;;
esac
[[ -n "$venv" ]] || { echo "install.sh: --venv DIR is required" >&2; exit 2; }
lock="$source_dir/docker/locks/$framework-$accelerator.txt"
if [[ ! -f "$lock" && "$accelerator" == cuda12 && "$framework" != jax ]]; then
  echo "install.sh: $lock is missing: torch's CUDA 12 build is not on PyPI; run 'make lock' where download.pytorch.org answers (TORCH_CUDA12_INDEX)" >&2
  exit 2
fi
[[ -f "$lock" ]] || { echo "install.sh: $lock is missing; run 'make lock'" >&2; exit 2; }
if [[ -z "$git_sha" ]]; then
  git_sha="$(git -C "$source_dir" rev-parse HEAD 2>/dev/null || echo unknown)"
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
export PIP_NO_CACHE_DIR="${PIP_NO_CACHE_DIR:-1}"
# Packages published as source only (pure Python) are built, after every wheel is in, with the
# locked setuptools and no build isolation (so no unpinned build dependency is fetched).
sdist_only="pysword"
parts="$(mktemp -d)"
"$venv/bin/python" - "$lock" "$parts" $sdist_only <<'PY'
import re, sys
from pathlib import Path
lock, out, names = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3:])
wheels, sdists = [], []
for entry in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
    name = entry.split("==", 1)[0].strip().lower()
    (sdists if name in names else wheels).append(entry.rstrip("\n") + "\n")
(out / "wheels.txt").write_text("".join(wheels))
(out / "sdists.txt").write_text("".join(e for e in sdists if not e.startswith("#")))
PY
"${pip[@]}" install --quiet --require-hashes --no-deps --only-binary=:all: -r "$parts/wheels.txt"
if [[ -s "$parts/sdists.txt" ]]; then
  "${pip[@]}" install --quiet --require-hashes --no-deps --no-binary=:all: --no-build-isolation \
    -r "$parts/sdists.txt"
fi
rm -rf "$parts"
"${pip[@]}" install --quiet --no-deps --no-build-isolation "$source_dir"
"${pip[@]}" check

lock_sha256="$(sha256sum "$lock" | cut -d' ' -f1)"
"$venv/bin/python" - "$venv" "$framework" "$accelerator" "$lock" "$lock_sha256" "$git_sha" <<'PY'
import datetime, json, sys
from pathlib import Path
venv, framework, accelerator, lock, lock_sha256, git_sha = sys.argv[1:]
record = {
    "framework": framework,
    "accelerator": accelerator,
    "lock_file": Path(lock).name,
    "lock_sha256": lock_sha256,
    "git_sha": git_sha,
    "installed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
(Path(venv) / "algoperf-provenance.json").write_text(json.dumps(record, indent=1) + "\n")
PY

case "$framework" in
  jax) modules="jax,flax,optax" ;;
  pytorch) modules="torch" ;;
  both) modules="jax,flax,optax,torch" ;;
esac
"$venv/bin/python" -c "import algoperf.cli, scoring, submitit, $modules"
"$venv/bin/algoperf" workloads >/dev/null
echo "install.sh: algoperf ($framework, $accelerator) installed in $venv from $(basename "$lock") sha256 $lock_sha256"
