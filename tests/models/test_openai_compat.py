"""OpenAICompatModel against real servers.

Tests marked ``model`` talk to llama-cpp-python's server running SmolLM2-135M (see
conftest.py); the others use a scripted HTTP server on 127.0.0.1 to produce 429s, 500s,
timeouts and broken bodies on demand. No HTTP client is mocked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import jsonschema
import pytest

from remit import Agent, Budget, Remit
from remit.core.ledger import Usage
from remit.errors import BudgetExceeded, ModelError, ModelTransientError
from remit.models import Completion, Model
from remit.models.openai_compat import OpenAICompatModel, price_per_token, schema_to_gbnf

from .conftest import FakeServer, LlamaServer, RecordingProxy, Reply, chat_completion

T = TypeVar("T")

# bounded everywhere: a 135M model loops on unbounded strings and arrays
PICK = {
    "type": "object",
    "properties": {
        "color": {"type": "string", "enum": ["red", "green", "blue"]},
        "word": {"type": "string", "maxLength": 10},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 2},
    },
    "required": ["color", "word", "tags"],
}
PICK_MSG = [{"role": "user", "content": "Pick a color, a short word and some tags, as JSON."}]
PICK_MAX_TOKENS = 80  # covers the longest output the schema allows, with its whitespace
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
            "required": ["city"],
        },
    },
}


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def local(base_url: str, **kw: Any) -> OpenAICompatModel:
    kw.setdefault("api_key_env", None)  # never send a developer's real key to a test server
    return OpenAICompatModel(base_url, "smollm2", **kw)


async def complete_and_close(model: OpenAICompatModel, *args: Any, **kw: Any) -> Completion:
    async with model:
        return await model.complete(*args, **kw)


class CallsModel(Agent):
    """Makes ``n`` model calls from ``execute``; stops cleanly when the budget says no."""

    def __init__(self, prompts: Sequence[str], max_tokens: int = 16) -> None:
        self.prompts = prompts
        self.max_tokens = max_tokens

    async def execute(self, ctx: Any) -> Any:
        answers: list[str] = []
        for p in self.prompts:
            try:
                c = await ctx.complete([{"role": "user", "content": p}], max_tokens=self.max_tokens)
            except BudgetExceeded as e:
                return {"answers": answers, "stopped": e.code}
            answers.append(c.content)
        return {"answers": answers}


def step_error(step: Any) -> dict[str, Any]:
    return json.loads(step.error) if step.error else {}


def model_steps(steps: Sequence[Any]) -> list[Any]:
    return [s for s in steps if s.kind == "model"]


# --- the real model ---------------------------------------------------------------------


@pytest.mark.model
def test_a_plain_completion_returns_text_and_the_usage_the_server_reported(
    recording_proxy: RecordingProxy,
) -> None:
    model = local(recording_proxy.base_url)
    assert isinstance(model, Model)
    c = arun(complete_and_close(model, [{"role": "user", "content": "Say hello."}], max_tokens=12))
    [ex] = recording_proxy.chats()
    assert ex.status == 200
    assert ex.request["max_tokens"] == 12 and ex.request["temperature"] == 0.0
    assert "response_format" not in ex.request and "grammar" not in ex.request
    assert c.content == ex.response["choices"][0]["message"]["content"] and c.content.strip()
    assert (c.input_tokens, c.output_tokens) == (
        ex.response["usage"]["prompt_tokens"],
        ex.response["usage"]["completion_tokens"],
    )
    assert 0 < c.output_tokens <= 12
    assert c.cost_usd == 0.0 and c.tool_calls == ()  # a local model costs nothing


@pytest.mark.model
@pytest.mark.parametrize("mode", ["json_object", "grammar"])
def test_structured_output_is_valid_against_the_schema(
    llama_server: LlamaServer, mode: str
) -> None:
    model = local(llama_server.base_url, schema_mode=mode)
    c = arun(complete_and_close(model, PICK_MSG, schema=PICK, max_tokens=PICK_MAX_TOKENS))
    value = json.loads(c.content)
    jsonschema.validate(value, PICK)
    assert c.output_tokens < PICK_MAX_TOKENS  # it finished, not cut off


@pytest.mark.model
def test_this_server_refuses_json_schema_and_explicit_mode_does_not_hide_it(
    recording_proxy: RecordingProxy,
) -> None:
    model = local(recording_proxy.base_url, schema_mode="json_schema")
    with pytest.raises(ModelError) as info:
        arun(complete_and_close(model, PICK_MSG, schema=PICK, max_tokens=PICK_MAX_TOKENS))
    err = info.value
    # llama-cpp-python answers a 500 to a validation error: a refusal, not worth retrying
    assert type(err) is ModelError and not err.retryable
    assert err.status == 500 and "response_format" in err.message
    assert f"{recording_proxy.base_url}/chat/completions" in err.message
    [ex] = recording_proxy.chats()  # no fallback in an explicit mode
    assert ex.request["response_format"]["type"] == "json_schema"


@pytest.mark.model
def test_auto_mode_recognizes_llama_cpp_python_and_asks_in_a_form_it_accepts(
    recording_proxy: RecordingProxy,
) -> None:
    model = local(recording_proxy.base_url)
    assert model.effective_schema_mode is None
    c = arun(complete_and_close(model, PICK_MSG, schema=PICK, max_tokens=PICK_MAX_TOKENS))
    jsonschema.validate(json.loads(c.content), PICK)
    assert model.server_kind == "llama-cpp-python"
    assert model.effective_schema_mode == "json_object"
    assert [(e.method, e.path) for e in recording_proxy.exchanges] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ]
    assert recording_proxy.chats()[0].request["response_format"] == {
        "type": "json_object",
        "schema": PICK,
    }


@pytest.mark.model
def test_auto_mode_falls_back_once_when_the_real_server_refuses_json_schema(
    recording_proxy: RecordingProxy,
) -> None:
    # hide what the server is, so auto starts with json_schema and meets the refusal
    recording_proxy.models_override = {
        "object": "list",
        "data": [{"id": "smollm2", "object": "model", "owned_by": "somebody"}],
    }
    model = local(recording_proxy.base_url)

    async def twice() -> list[Completion]:
        async with model:
            return [
                await model.complete(PICK_MSG, schema=PICK, max_tokens=PICK_MAX_TOKENS)
                for _ in range(2)
            ]

    for c in arun(twice()):
        jsonschema.validate(json.loads(c.content), PICK)
    sent = [(e.request["response_format"]["type"], e.status) for e in recording_proxy.chats()]
    assert sent == [("json_schema", 500), ("json_object", 200), ("json_object", 200)]
    assert model.server_kind == "somebody" and model.effective_schema_mode == "json_object"


@pytest.mark.model
def test_tool_calls_come_back_in_the_completion(llama_server: LlamaServer) -> None:
    # llama-cpp-python only calls a tool it is told to; tool_choice forces it
    model = local(
        llama_server.base_url, tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )
    c = arun(
        complete_and_close(
            model,
            [{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            max_tokens=40,
        )
    )
    [call] = c.tool_calls
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"] in ("Paris", "Rome")
    assert c.output_tokens > 0


@pytest.mark.model
def test_the_ledger_charges_exactly_what_the_server_reported(
    recording_proxy: RecordingProxy, make_runtime: Any, read_steps: Any
) -> None:
    model = local(recording_proxy.base_url, usd_per_input_token=1e-6, usd_per_output_token=3e-6)
    rt = make_runtime(agent=CallsModel(["Say hello.", "Name a fruit."]), model=model)
    run = rt.run("two calls", remit=Remit(budget=Budget(calls=5, cost_usd=1.0)))
    assert run.ok, run.error
    reported = [e.response["usage"] for e in recording_proxy.chats()]
    assert len(reported) == 2 and all(e.status == 200 for e in recording_proxy.chats())
    tin = sum(u["prompt_tokens"] for u in reported)
    tout = sum(u["completion_tokens"] for u in reported)
    assert run.spent.calls == 2
    assert (run.spent.input_tokens, run.spent.output_tokens) == (tin, tout)
    assert run.spent.cost_usd == pytest.approx(tin * 1e-6 + tout * 3e-6)
    steps = model_steps(read_steps(run.id))
    assert [s.status for s in steps] == ["ok", "ok"]
    for step, u in zip(steps, reported, strict=True):
        spent = Usage.from_dict(json.loads(step.spent))
        assert (spent.input_tokens, spent.output_tokens) == (
            u["prompt_tokens"],
            u["completion_tokens"],
        )


@pytest.mark.model
def test_a_budget_exhausted_mid_run_is_a_journaled_denial(
    recording_proxy: RecordingProxy, make_runtime: Any, read_steps: Any
) -> None:
    model = local(recording_proxy.base_url)
    prompts = ["Say hi.", "Say yes.", "Say no.", "Say ok."]
    rt = make_runtime(agent=CallsModel(prompts, max_tokens=4), model=model)
    run = rt.run("four calls", remit=Remit(budget=Budget(calls=2)))
    assert run.ok, run.error
    assert len(run.result["answers"]) == 2 and run.result["stopped"] == "BUDGET"
    assert run.spent.calls == 2 and len(recording_proxy.chats()) == 2  # never reached the server
    steps = model_steps(read_steps(run.id))
    assert [s.status for s in steps] == ["ok", "ok", "denied"]
    err = step_error(steps[2])
    assert err["code"] == "BUDGET" and err["dimension"] == "calls"


# --- classification and retries (a scripted server) -------------------------------------


def test_429_then_500_then_success_retries_and_charges_every_attempt(
    fake_server: FakeServer, make_runtime: Any, read_steps: Any
) -> None:
    fake_server.script = [
        Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"}),
        Reply(500, {"error": {"message": "upstream hiccup"}}),
        Reply(body=chat_completion("done", prompt_tokens=11, completion_tokens=2)),
    ]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None, retries=3)
    rt = make_runtime(agent=CallsModel(["go"]), model=model)
    run = rt.run("retry", remit=Remit(budget=Budget(calls=10)))
    assert run.ok, run.error
    assert run.result == {"answers": ["done"]}
    assert len(fake_server.chat_bodies()) == 3
    # every attempt was a call; only the one that answered reported tokens
    assert run.spent == Usage(calls=3, input_tokens=11, output_tokens=2)
    [step] = model_steps(read_steps(run.id))
    assert step.status == "ok" and Usage.from_dict(json.loads(step.spent)) == run.spent


def test_retries_stop_at_the_models_retry_count(
    fake_server: FakeServer, make_runtime: Any, read_steps: Any
) -> None:
    fake_server.script = lambda body: Reply(503, "Service Unavailable")
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None, retries=2)
    rt = make_runtime(agent=CallsModel(["go"]), model=model)
    run = rt.run("down", remit=Remit(budget=Budget(calls=10)))
    assert not run.ok and len(fake_server.chat_bodies()) == 3 and run.spent.calls == 3
    [step] = model_steps(read_steps(run.id))
    err = step_error(step)
    assert step.status == "error" and err["code"] == "MODEL_TRANSIENT" and err["status"] == 503
    assert "HTTP 503: Service Unavailable" in err["message"]


def test_a_400_is_fatal_and_not_retried(
    fake_server: FakeServer, make_runtime: Any, read_steps: Any
) -> None:
    fake_server.script = lambda body: Reply(
        400,
        {"error": {"message": "max_tokens is too large: 99999", "type": "invalid_request_error"}},
    )
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None, retries=3)
    rt = make_runtime(agent=CallsModel(["go"]), model=model)
    run = rt.run("bad", remit=Remit(budget=Budget(calls=10)))
    assert not run.ok
    assert len(fake_server.chat_bodies()) == 1 and run.spent.calls == 1
    [step] = model_steps(read_steps(run.id))
    err = step_error(step)
    assert err["code"] == "MODEL_FAILED" and err["status"] == 400
    assert err["message"] == (
        f"model 'fake' at {fake_server.base_url}/chat/completions: "
        "HTTP 400: max_tokens is too large: 99999"
    )


def test_retry_after_is_reported_in_the_transient_error(fake_server: FakeServer) -> None:
    fake_server.script = [Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    with pytest.raises(ModelTransientError) as info:
        arun(complete_and_close(model, [{"role": "user", "content": "x"}]))
    assert info.value.retryable and info.value.status == 429
    assert "HTTP 429: slow down (server asks to retry after 7s)" in info.value.message
    assert info.value.to_dict()["retry_after_s"] == 7.0


def test_a_timeout_is_transient(fake_server: FakeServer) -> None:
    fake_server.script = [Reply(delay_s=2.0)]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None, timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(ModelTransientError) as info:
        arun(complete_and_close(model, [{"role": "user", "content": "x"}]))
    assert time.monotonic() - t0 < 1.5
    assert "no answer within 0.3s" in info.value.message and info.value.status is None


def test_a_refused_connection_is_transient() -> None:
    from .conftest import _free_port  # pyright: ignore[reportPrivateUsage]

    model = OpenAICompatModel(f"http://127.0.0.1:{_free_port()}/v1", "m", api_key_env=None)
    with pytest.raises(ModelTransientError, match="connection failed"):
        arun(complete_and_close(model, [{"role": "user", "content": "x"}]))


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("<html>bad gateway page</html>", "not JSON"),
        ({"choices": []}, "not a chat completion"),
        ({"choices": [{"message": {"content": 42}}]}, "not a chat completion"),
    ],
)
def test_a_malformed_body_is_a_fatal_error(fake_server: FakeServer, body: Any, why: str) -> None:
    fake_server.script = [Reply(200, body)]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    with pytest.raises(ModelError, match=why) as info:
        arun(complete_and_close(model, [{"role": "user", "content": "x"}]))
    assert type(info.value) is ModelError and info.value.status == 200


def test_a_response_without_usage_is_an_error_that_charges_the_worst_case(
    fake_server: FakeServer,
) -> None:
    no_usage = chat_completion("hi")
    del no_usage["usage"]
    fake_server.script = [Reply(body=no_usage), Reply(body=no_usage)]
    msgs = [{"role": "user", "content": "0123456789"}]
    strict = OpenAICompatModel(
        fake_server.base_url,
        "fake",
        api_key_env=None,
        usd_per_input_token=0.01,
        usd_per_output_token=0.1,
    )
    with pytest.raises(ModelError, match="no token usage") as info:
        arun(complete_and_close(strict, msgs, max_tokens=20))
    assert info.value.spent == Usage(1, 18, 20, 18 * 0.01 + 20 * 0.1)
    lenient = OpenAICompatModel(
        fake_server.base_url, "fake", api_key_env=None, missing_usage="worst_case"
    )
    c = arun(complete_and_close(lenient, msgs, max_tokens=20))
    assert (c.content, c.input_tokens, c.output_tokens) == ("hi", 18, 20)


# --- schema modes (a scripted server) -----------------------------------------------------

LLAMACPP_REFUSAL = Reply(
    500,
    {
        "error": {
            "code": 500,
            "type": "server_error",
            "message": 'response_format type must be one of "text" or "json_object", '
            "but got: json_schema",
        }
    },
)


def _llama_cpp_like(body: Any) -> Reply:
    """Old llama.cpp server: refuses json_schema with a 500, takes json_object + schema."""
    fmt = (body.get("response_format") or {}).get("type")
    return LLAMACPP_REFUSAL if fmt == "json_schema" else Reply(body=chat_completion('{"a": 1}'))


def test_auto_falls_back_from_a_schema_format_500_once_and_remembers(
    fake_server: FakeServer,
) -> None:
    fake_server.script = _llama_cpp_like
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None, retries=3)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}

    async def calls() -> list[Completion]:
        async with model:
            return [
                await model.complete([{"role": "user", "content": "x"}], schema=schema)
                for _ in range(3)
            ]

    assert [c.content for c in arun(calls())] == ['{"a": 1}'] * 3
    formats = [b["response_format"]["type"] for b in fake_server.chat_bodies()]
    assert formats == ["json_schema", "json_object", "json_object", "json_object"]
    assert fake_server.chat_bodies()[1]["response_format"]["schema"] == schema
    assert model.effective_schema_mode == "json_object" and model.server_kind == "fake-lab"


def test_a_format_refusal_is_fatal_in_an_explicit_mode(fake_server: FakeServer) -> None:
    fake_server.script = _llama_cpp_like
    model = OpenAICompatModel(
        fake_server.base_url, "fake", api_key_env=None, schema_mode="json_schema"
    )
    with pytest.raises(ModelError, match="must be one of") as info:
        arun(complete_and_close(model, [{"role": "user", "content": "x"}], schema={}))
    assert not info.value.retryable and len(fake_server.chat_bodies()) == 1


def test_a_plain_500_is_not_taken_for_a_format_refusal(fake_server: FakeServer) -> None:
    fake_server.script = [Reply(500, {"error": {"message": "CUDA out of memory"}})]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    with pytest.raises(ModelTransientError, match="out of memory"):
        arun(complete_and_close(model, [{"role": "user", "content": "x"}], schema={}))
    assert len(fake_server.chat_bodies()) == 1
    assert model.effective_schema_mode == "json_schema"  # nothing learned from a crash


def test_a_failed_fallback_raises_both_messages_and_remembers_nothing(
    fake_server: FakeServer,
) -> None:
    refusal_2 = Reply(400, {"error": {"message": "response_format json_object unsupported"}})
    fake_server.script = [LLAMACPP_REFUSAL, refusal_2]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    with pytest.raises(ModelError) as info:
        arun(complete_and_close(model, [{"role": "user", "content": "x"}], schema={}))
    msg = info.value.message
    assert "but got: json_schema" in msg and "json_object unsupported" in msg
    assert "set schema_mode=" in msg and info.value.status == 400
    assert model.effective_schema_mode == "json_schema"


@pytest.mark.parametrize(
    ("models", "props", "kind", "first_format"),
    [
        ({"data": [{"id": "m", "owned_by": "llamacpp"}]}, None, "llamacpp", "json_object"),
        ({"data": [{"id": "m", "owned_by": "me"}]}, None, "llama-cpp-python", "json_object"),
        ({"data": []}, {"default_generation_settings": {}}, "llamacpp", "json_object"),
        ({"data": [{"id": "m", "owned_by": "vllm"}]}, None, "vllm", "json_schema"),
        ("not json at all", None, "unknown", "json_schema"),
    ],
)
def test_auto_mode_reads_what_the_server_says_about_itself(
    fake_server: FakeServer, models: Any, props: Any, kind: str, first_format: str
) -> None:
    fake_server.models, fake_server.props = models, props
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    arun(complete_and_close(model, [{"role": "user", "content": "x"}], schema={"type": "object"}))
    assert model.server_kind == kind
    [body] = fake_server.chat_bodies()
    assert body["response_format"]["type"] == first_format


def test_each_mode_sends_the_schema_its_own_way(fake_server: FakeServer) -> None:
    strict = {
        "type": "object",
        "title": "My Answer",
        "additionalProperties": False,
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }
    loose = {"type": "object", "properties": {"a": {"type": "integer"}}}

    async def send(mode: str, schema: Mapping[str, Any]) -> None:
        async with OpenAICompatModel(
            fake_server.base_url, "fake", api_key_env=None, schema_mode=mode
        ) as m:  # type: ignore[arg-type]
            await m.complete([{"role": "user", "content": "x"}], schema=schema)

    for mode, schema in [
        ("json_schema", strict),
        ("json_schema", loose),
        ("json_object", loose),
        ("grammar", loose),
        ("none", loose),
    ]:
        arun(send(mode, schema))
    b = fake_server.chat_bodies()
    assert b[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "My_Answer", "schema": strict, "strict": True},
    }
    assert b[1]["response_format"]["json_schema"]["strict"] is False  # OpenAI would refuse it
    assert b[2]["response_format"] == {"type": "json_object", "schema": loose}
    assert "response_format" not in b[3] and b[3]["grammar"].startswith("root ::= ")
    assert "response_format" not in b[4] and "grammar" not in b[4]
    assert not [p for p, _, _ in fake_server.requests if p.endswith("/models")]  # no probing


# --- keys, costs, clients ------------------------------------------------------------------


def test_the_api_key_is_read_at_call_time_and_never_shown(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-0123456789abcdef"
    fake_server.script = [
        Reply(),
        Reply(401, {"error": {"message": f"Incorrect API key provided: {key}"}}),
        Reply(),
    ]
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env="REMIT_TEST_KEY")
    msgs = [{"role": "user", "content": "x"}]
    monkeypatch.delenv("REMIT_TEST_KEY", raising=False)
    arun(complete_and_close(model, msgs))
    monkeypatch.setenv("REMIT_TEST_KEY", key)
    with pytest.raises(ModelError) as info:
        arun(complete_and_close(model, msgs))
    assert info.value.status == 401 and not info.value.retryable
    assert key not in info.value.message and "Incorrect API key provided: ***" in info.value.message
    assert key not in repr(model) and key not in json.dumps(info.value.to_dict())
    explicit = OpenAICompatModel(
        fake_server.base_url, "fake", api_key="sk-other", headers={"X-Team": "qa"}
    )
    arun(complete_and_close(explicit, msgs))
    auth = [
        {k.lower(): v for k, v in h.items()}.get("authorization")
        for p, _, h in fake_server.requests
        if p.endswith("/chat/completions")
    ]
    assert auth == [None, f"Bearer {key}", "Bearer sk-other"]
    assert fake_server.requests[-1][2].get("X-Team") == "qa"


def test_hosted_models_are_priced_from_the_table_and_overridable(fake_server: FakeServer) -> None:
    fake_server.script = [Reply(body=chat_completion(prompt_tokens=1000, completion_tokens=500))]
    model = OpenAICompatModel(fake_server.base_url, "gpt-4o-mini-2024-07-18", api_key_env=None)
    assert (model.usd_per_input_token, model.usd_per_output_token) == price_per_token("gpt-4o-mini")
    c = arun(complete_and_close(model, [{"role": "user", "content": "x"}]))
    assert c.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert (
        OpenAICompatModel(
            fake_server.base_url, "gpt-4o", usd_per_output_token=1.0, api_key_env=None
        ).usd_per_output_token
        == 1.0
    )
    assert price_per_token("gpt-4o-audio-preview") is None  # no loose prefix matches
    assert OpenAICompatModel("http://h:1", "llama3").usd_per_input_token == 0.0


def test_one_model_serves_many_calls_and_loops(fake_server: FakeServer) -> None:
    model = OpenAICompatModel(fake_server.base_url, "fake", api_key_env=None)
    msgs = [{"role": "user", "content": "x"}]

    async def many() -> list[Completion]:
        return list(await asyncio.gather(*(model.complete(msgs) for _ in range(20))))

    assert len(arun(many())) == 20
    # Runtime.run starts a new event loop per run: the model must survive that
    assert arun(complete_and_close(model, msgs)).content == "ok"
    assert len(fake_server.chat_bodies()) == 21


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="schema_mode"):
        OpenAICompatModel("http://h/v1", "m", schema_mode="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base_url"):
        OpenAICompatModel("localhost:8080", "m")
    assert OpenAICompatModel("http://h:8080", "m").base_url == "http://h:8080/v1"
    assert OpenAICompatModel("http://h:8080/v1/", "m").base_url == "http://h:8080/v1"


def test_the_grammar_covers_the_schema_subset_and_refuses_the_rest() -> None:
    g = schema_to_gbnf(PICK)
    assert g.splitlines()[0].startswith('root ::= "{" ws "\\"color\\"" ws ":" ws r')
    assert "char{0,10}" in g and '( ws "," ws r' in g and "{0,1}" in g  # maxItems 2
    defs = {
        "$defs": {"N": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/N"}]}},
        "$ref": "#/$defs/N",
    }
    assert "d-n ::= " in schema_to_gbnf(defs)  # recursion terminates
    with pytest.raises(ModelError, match="patternProperties"):
        schema_to_gbnf({"type": "object", "patternProperties": {"^a": {}}})
    with pytest.raises(ModelError, match="local"):
        schema_to_gbnf({"$ref": "https://example.com/s.json"})


def test_raw_control_characters_in_structured_output_are_escaped(fake_server: FakeServer) -> None:
    raw = '{"w": "two\nlines"}'  # a raw newline inside a string: not strict JSON
    fake_server.script = [Reply(body=chat_completion(raw)), Reply(body=chat_completion(raw))]
    model = OpenAICompatModel(
        fake_server.base_url, "fake", api_key_env=None, schema_mode="json_object"
    )

    async def both() -> tuple[Completion, Completion]:
        async with model:
            msgs = [{"role": "user", "content": "x"}]
            return await model.complete(msgs, schema={"type": "object"}), await model.complete(msgs)

    structured, plain = arun(both())
    assert json.loads(structured.content) == {"w": "two\nlines"}
    assert plain.content == raw  # text answers are the model's own words
