"""Models: the protocol and the adapters, and :func:`load_model` to pick one by name.

>>> load_model(None).name
'local:SmolLM2-135M-Instruct.Q4_1'
>>> load_model("http://127.0.0.1:8080/v1#qwen2.5-0.5b").name  # doctest: +SKIP
'qwen2.5-0.5b'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urlsplit

from remit.errors import InvalidInput
from remit.models._base import Completion, Message, Model
from remit.models.local import LocalModel, default_model_path

if TYPE_CHECKING:
    from remit.models.openai_compat import OpenAICompatModel
from remit.models.scripted import ScriptedModel

__all__ = [
    "Completion",
    "LocalModel",
    "Message",
    "Model",
    "OpenAICompatModel",
    "ScriptedModel",
    "default_model_path",
    "load_model",
]


def __getattr__(name: str) -> Any:
    # the HTTP adapter (and httpx) load on first use: `import remit` stays quick
    if name == "OpenAICompatModel":
        from remit.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the model name sent to an endpoint whose URL names none (local servers serve one
#: model and ignore the name)
DEFAULT_ENDPOINT_MODEL = "default"


def load_model(spec: str | None) -> Model:
    """The model a spec names (what ``remit run --model SPEC`` takes).

    - ``None`` or ``"local"``: the embedded model, :class:`LocalModel` (default weights);
    - a path to a ``.gguf`` file: :class:`LocalModel` on that file;
    - an ``http(s)://`` URL: an OpenAI-compatible endpoint, the model named after ``#``:
      ``http://127.0.0.1:8080/v1#qwen2.5-0.5b``, ``https://api.openai.com/v1#gpt-4o-mini``
      (the key comes from ``OPENAI_API_KEY`` for ``api.openai.com``, from
      ``REMIT_API_KEY`` for any other remote server, and none is sent to a server on
      this machine: ``localhost``, ``127.*``, ``::1``). Without ``#name`` the name is
      ``"default"``.

    The model remembers its spec (``model.spec``), so a run can record it and a resume
    can build the same model again. Nothing is loaded or connected here: the embedded
    model loads on its first call. Bad specs raise :class:`~remit.errors.InvalidInput`.
    """
    if spec is None or spec.strip() in ("", "local"):
        return LocalModel()
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        url, name = urldefrag(spec)
        host = urlsplit(url).hostname or ""
        # a key goes only where it belongs: OpenAI's to OpenAI, REMIT_API_KEY to any
        # other remote endpoint, none to a server on this machine
        local = host == "localhost" or host == "::1" or host.startswith("127.")
        key_env = (
            None if local else "OPENAI_API_KEY" if host == "api.openai.com" else "REMIT_API_KEY"
        )
        from remit.models.openai_compat import OpenAICompatModel

        model: Any = OpenAICompatModel(url, name or DEFAULT_ENDPOINT_MODEL, api_key_env=key_env)
        model.spec = spec
        return model
    if spec.endswith(".gguf"):
        if not os.path.isfile(spec):
            raise InvalidInput(f"--model {spec!r}: no such .gguf file")
        return LocalModel(spec)
    raise InvalidInput(
        f"--model {spec!r}: expected 'local', a path to a .gguf file, or an "
        "http(s)://host:port/v1#model-name URL"
    )
