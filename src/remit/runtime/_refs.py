"""Agent references: how a journal names the agent of a run (``module:name``), so a
resume in another process can build the same agent again."""

from __future__ import annotations

import importlib
from typing import Any

from remit.agents._agent import Agent
from remit.errors import AgentNotFound

__all__ = ["MOVED_MODULES", "agent_ref", "load_agent"]


def agent_ref(agent: Agent) -> str:
    """``module:name`` that imports ``agent`` again, or ``""`` if there is none."""
    cls = type(agent)
    module = importlib.import_module(cls.__module__)
    for name, value in vars(module).items():
        if value is agent:
            return f"{cls.__module__}:{name}"
    if cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__:
        return f"{cls.__module__}:{cls.__qualname__}"
    return ""


#: modules that moved when the package was regrouped into layers: journals written
#: before keep their agent references, and a resume must still find the agent
MOVED_MODULES = {"remit.model_agent": "remit"}


def load_agent(ref: str) -> Agent:
    """Import ``module:name``; a class or zero-argument factory is called."""
    module_name, _, attr = ref.partition(":")
    module_name = MOVED_MODULES.get(module_name, module_name)
    if not module_name or not attr:
        raise AgentNotFound(f"agent reference {ref!r} must look like 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise AgentNotFound(f"cannot import agent {ref!r}: {e}") from None
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Agent)):
        obj = obj()
    if not isinstance(obj, Agent):
        raise AgentNotFound(f"{ref!r} is {type(obj).__name__}, not a remit Agent")
    return obj
