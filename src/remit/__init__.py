"""remit: recursive multi-agent work under narrowing, verifiable authority.

>>> from remit import Agent, Budget, Remit, Runtime, within
>>> root = Remit(tools={"read_file": {}, "write_file": {"path": within("out/")}},
...              budget=Budget(calls=200), deadline="15m", depth=3)
>>> child = root.narrow(tools={"read_file": {}})   # never wider than its parent

Everything a user needs is importable from here; other modules are internals.
"""

from .agent import Agent, Context
from .errors import RemitError
from .ledger import Usage
from .models import Completion, Model, ScriptedModel
from .policy import between, equals, glob, matches, max_len, one_of, within
from .remit import Budget, Remit
from .runtime import Run, Runtime
from .tasks import ChildResult, Plan, Subtask
from .tools import Tool, tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Budget",
    "ChildResult",
    "Completion",
    "Context",
    "Model",
    "Plan",
    "Remit",
    "RemitError",
    "Run",
    "Runtime",
    "ScriptedModel",
    "Subtask",
    "Tool",
    "Usage",
    "__version__",
    "between",
    "equals",
    "glob",
    "matches",
    "max_len",
    "one_of",
    "tool",
    "within",
]
