"""remit: recursive multi-agent work under narrowing, verifiable authority.

>>> from remit import Agent, Budget, Remit, Runtime, within
>>> root = Remit(tools={"read_file": {}, "write_file": {"path": within("out/")}},
...              budget=Budget(calls=200), deadline="15m", depth=3)
>>> child = root.narrow(tools={"read_file": {}})   # never wider than its parent

Everything a user needs is importable from here; other modules are internals.
"""

from typing import TYPE_CHECKING, Any

from remit.agents._agent import Agent, Context
from remit.agents._model import ModelAgent
from remit.core.ledger import Usage
from remit.core.quotes import QuoteCheck, check_quotes
from remit.core.receipts import Receipt
from remit.core.remit import Budget, Remit
from remit.core.tasks import ChildResult, Plan, Subtask
from remit.core.voting import Vote, Voted
from remit.errors import RemitError
from remit.models import Completion, LocalModel, Model, ScriptedModel, load_model
from remit.policy import between, equals, glob, matches, max_len, one_of, within
from remit.runtime._runtime import Run, Runtime
from remit.tools import Tool, tool

if TYPE_CHECKING:
    from remit.models.openai_compat import OpenAICompatModel

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the HTTP adapter (and httpx) load on first use: `import remit` stays quick
    if name == "OpenAICompatModel":
        from remit.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Agent",
    "Budget",
    "ChildResult",
    "Completion",
    "Context",
    "LocalModel",
    "Model",
    "ModelAgent",
    "OpenAICompatModel",
    "Plan",
    "QuoteCheck",
    "Receipt",
    "Remit",
    "RemitError",
    "Run",
    "Runtime",
    "ScriptedModel",
    "Subtask",
    "Tool",
    "Usage",
    "Vote",
    "Voted",
    "__version__",
    "between",
    "check_quotes",
    "equals",
    "glob",
    "load_model",
    "matches",
    "max_len",
    "one_of",
    "tool",
    "within",
]
