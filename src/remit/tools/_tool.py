"""Typed tools: ``@tool`` turns a Python function into something the Gate can call.

>>> @tool
... def add(a: int, b: int) -> int:
...     '''Add two integers.'''
...     return a + b
>>> add.name, add.effect
('add', False)
>>> add.validate({"a": "2", "b": 3})
{'a': 2, 'b': 3}

Effectful tools get an idempotency key derived from their journal position; a tool
that accepts an ``idempotency_key`` parameter receives it:

>>> @tool(effect=True)
... def send(to: str, text: str, idempotency_key: str) -> str: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

import pydantic

from remit.core.ledger import Usage
from remit.errors import ToolArgumentError, UnknownToolError

_KEY_PARAM = "idempotency_key"


class Tool:
    """A validated, typed callable with the facts the Gate needs about it.

    ``effect``: it changes the world (journaled write-ahead, gets an idempotency key).
    ``idempotent``: for an effect, whether repeating it with the same key is safe; an
    effect that is not idempotent and whose result was never recorded is escalated on
    resume instead of being run again. ``thread``: run a blocking function in a worker
    thread so timeouts and cancellation can act. ``cost_usd``: worst-case price of a
    call, reserved on the ledger.
    """

    __slots__ = (
        "_adapter",
        "cost_usd",
        "description",
        "effect",
        "fn",
        "idempotent",
        "inline",
        "is_async",
        "name",
        "retries",
        "takes_key",
        "thread",
        "timeout",
        "worst",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        effect: bool = False,
        idempotent: bool = True,
        thread: bool = False,
        timeout: float | None = None,
        retries: int = 2,
        cost_usd: float = 0.0,
        description: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.effect = effect
        self.idempotent = idempotent
        self.thread = thread
        self.timeout = timeout
        self.retries = retries
        self.cost_usd = cost_usd
        self.description = description or inspect.getdoc(fn) or ""
        self.is_async = inspect.iscoroutinefunction(fn)
        #: what the Gate reserves for one call
        self.worst = Usage(calls=1, cost_usd=cost_usd)
        #: a plain, pure, untimed function: the Gate runs it inline, without a task switch
        self.inline = not (self.is_async or thread or effect) and timeout is None
        sig = inspect.signature(fn)
        self.takes_key = _KEY_PARAM in sig.parameters
        fields: list[tuple[str, Any, Any]] = []
        for pname, param in sig.parameters.items():
            if pname == _KEY_PARAM:
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"tool {self.name}: *args/**kwargs are not allowed in tools")
            annotation = Any if param.annotation is param.empty else param.annotation
            default = ... if param.default is param.empty else param.default
            fields.append((pname, annotation, default))
        self._adapter: type[pydantic.BaseModel] = _arguments_model(
            fn.__module__, self.name, tuple(fields)
        )

    @property
    def arg_names(self) -> frozenset[str]:
        """The arguments a caller passes (the idempotency key the Gate adds is not one)."""
        return frozenset(self._adapter.model_fields)

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce and check arguments; ``ToolArgumentError`` names each bad one."""
        try:
            parsed = self._adapter.model_validate(args)
        except pydantic.ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in e.errors()
            )
            raise ToolArgumentError(f"tool {self.name}: invalid arguments: {problems}") from None
        # the model has exactly the function's parameters as fields, nothing else
        return dict(parsed.__dict__)

    def schema(self) -> dict[str, Any]:
        """An OpenAI-style function description, for models that call tools."""
        params = self._adapter.model_json_schema()
        params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # direct calls bypass the Gate on purpose: handy in unit tests of the tool itself
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        kind = "effect" if self.effect else "pure"
        return f"<Tool {self.name} ({kind})>"


#: argument models by (module, tool name, parameters): a tool built again with the same
#: signature (the built-in file tools, made per run for each workspace) reuses its model
_MODELS: dict[tuple[str, str, tuple[tuple[str, Any, Any], ...]], type[pydantic.BaseModel]] = {}


def _arguments_model(
    module: str, name: str, fields: tuple[tuple[str, Any, Any], ...]
) -> type[pydantic.BaseModel]:
    key = (module, name, fields)
    try:
        model = _MODELS.get(key)
    except TypeError:  # an unhashable default or annotation: build it every time
        key, model = None, None
    if model is None:
        model = pydantic.create_model(  # pyright: ignore[reportCallIssue]
            f"{name}_args",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **{f: (annotation, default) for f, annotation, default in fields},  # pyright: ignore[reportArgumentType]
        )
        if key is not None and len(_MODELS) < 1024:
            _MODELS[key] = model
    return model


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    effect: bool = False,
    idempotent: bool = True,
    thread: bool = False,
    timeout: float | None = None,
    retries: int = 2,
    cost_usd: float = 0.0,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    effect: bool = False,
    idempotent: bool = True,
    thread: bool = False,
    timeout: float | None = None,
    retries: int = 2,
    cost_usd: float = 0.0,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a typed function a remit tool (see :class:`Tool` for the options)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(
            f,
            name=name,
            effect=effect,
            idempotent=idempotent,
            thread=thread,
            timeout=timeout,
            retries=retries,
            cost_usd=cost_usd,
        )

    return wrap(fn) if fn is not None else wrap


class ToolRegistry:
    """The tools a runtime knows, by name. Knowing a tool grants nothing: remits do."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if not isinstance(t, Tool):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"{t!r} is not a Tool; decorate the function with @tool")
        if t.name in self._tools and self._tools[t.name] is not t:
            raise ValueError(f"two different tools are named {t.name!r}")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise UnknownToolError(f"unknown tool {name!r} (known tools: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)
