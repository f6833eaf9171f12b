"""Shared pytest configuration."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
FIXTURES_DIR = SHARED_DIR / "fixtures"

# Keep JAX on the CPU and quiet in tests; several host devices only where a test asks for them.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One intra-op thread per test process: the suite runs two processes on two cores, and PyTorch with
# two threads each on busy cores is 6-10x slower for these small tensors.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Real data from Debian packages, fetched unpacked by scripts/debian_testdata.sh (CI runs it):
# used where the variables are unset and the package was not installed system-wide.
_DEBIAN = REPO_ROOT / ".cache" / "debian" / "usr" / "share"
for _var, _path, _system in (
    ("ALGOPERF_LIBRIVOX_TESTDATA", "pocketsphinx/test/data/librivox", "/usr/share/pocketsphinx"),
    ("ALGOPERF_SWORD_DIR", "sword", "/usr/share/sword/mods.d"),
):
    if not os.environ.get(_var) and not Path(_system).exists() and (_DEBIAN / _path).is_dir():
        os.environ[_var] = str(_DEBIAN / _path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests on machines without a CUDA device."""
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with full-size, learnable synthetic MNIST and Fashion-MNIST IDX files."""
    from workloads.mnist.testing import write_fixture

    root = tmp_path_factory.mktemp("data")
    for dataset in ("mnist", "fashion_mnist"):
        write_fixture(root, dataset, full_size=True)
    return root


@pytest.fixture
def serve_directory():
    """``serve_directory(path) -> base URL``: a quiet HTTP server on 127.0.0.1 for `path`'s files
    (Range requests not honoured: a resumed download restarts), stopped after the test."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    servers = []

    def serve(path: Path) -> str:
        handler = functools.partial(Quiet, directory=str(path))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _python_on_host_devices(
    code: str, *args: object, devices: int = 2, timeout: float = 600
) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def python_on_host_devices() -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``python -c code *args`` from the repository root in a process of its own with
    `devices` JAX host (CPU) devices (XLA fixes the count when JAX starts, hence a process)."""
    return _python_on_host_devices


@pytest.fixture
def one_torch_thread():
    """One PyTorch intra-op thread for the test (the suite runs one test process per core)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
