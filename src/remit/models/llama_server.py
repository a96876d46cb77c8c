"""llama-cpp-python's OpenAI-compatible server on this machine, as a child process.

For tests and benchmarks that need a real endpoint, and for anyone who wants the
embedded model behind HTTP (``--model http://127.0.0.1:PORT/v1#smollm2``):

>>> with llama_server(alias="smollm2") as url:                     # doctest: +SKIP
...     model = OpenAICompatModel(url, "smollm2")

The server loads weights in plain CPU buffers (see :func:`~remit.models.local.
plain_cpu_buffers`), listens on 127.0.0.1 only, and is ready (it has answered one
generation) when the context is entered; it is stopped when it exits.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import httpx

from remit.errors import ModelError
from remit.models.local import default_model_path

__all__ = ["free_port", "llama_server", "missing_server_packages"]

# `python -m llama_cpp.server`, with weights in plain buffers: a build for a CPU that
# advertises AMX (which some VMs forbid) would otherwise die of SIGILL on its first batch
_SERVER = (
    "import runpy, sys\n"
    "from remit.models.local import plain_cpu_buffers\n"
    "plain_cpu_buffers().__enter__()\n"
    "sys.argv = ['llama_cpp.server', *sys.argv[1:]]\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__')\n"
)
_SERVER_PACKAGES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_server_packages() -> list[str]:
    """The modules llama-cpp-python's server needs that are not installed."""
    import importlib.util

    return [m for m in _SERVER_PACKAGES if importlib.util.find_spec(m) is None]


def _tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@contextlib.contextmanager
def llama_server(
    model_path: str | os.PathLike[str] | None = None,
    *,
    alias: str = "smollm2",
    n_threads: int = 1,
    n_ctx: int = 2048,
    log: str | os.PathLike[str] | None = None,
    timeout_s: float = 120.0,
) -> Generator[str]:
    """Run the server on a free port; yields its base URL (``http://127.0.0.1:N/v1``).

    Raises :class:`~remit.errors.ModelError` naming what is missing, or with the end of
    the server's log if it exits, is not ready within ``timeout_s``, or cannot generate.
    """
    missing = missing_server_packages()
    if missing:
        raise ModelError(
            f"llama-cpp-python's server is not installed (missing {', '.join(missing)}): "
            "pip install 'llama-cpp-python[server]' (or `make`)"
        )
    path = Path(model_path) if model_path is not None else default_model_path()
    log_path = Path(log) if log is not None else Path(tempfile.mkdtemp()) / "llama_server.log"
    port = free_port()
    cmd = [sys.executable, "-c", _SERVER, "--model", str(path), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(n_threads),
           "--n_ctx", str(n_ctx), "--verbose", "False"]  # fmt: skip
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise ModelError(
                    f"llama_cpp.server exited with {proc.returncode} while starting:\n"
                    f"{_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ModelError(
                    f"llama_cpp.server not ready after {timeout_s:g}s:\n{_tail(log_path)}"
                )
            time.sleep(0.2)
        # the first generation pays for warm-up, and proves the build runs on this CPU
        try:
            httpx.post(
                f"{base}/chat/completions",
                timeout=60.0,
                json={"model": alias, "max_tokens": 2,
                      "messages": [{"role": "user", "content": "Hi"}]},
            ).raise_for_status()  # fmt: skip
        except httpx.HTTPError as e:
            raise ModelError(
                f"llama_cpp.server cannot generate ({e!r}; exit code {proc.poll()}):\n"
                f"{_tail(log_path)}"
            ) from None
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
