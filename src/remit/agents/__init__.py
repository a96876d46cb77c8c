"""Agents: the roles the engine asks for (atomize, plan, execute, aggregate) and ModelAgent."""

from remit.agents._agent import Agent, Context
from remit.agents._model import ModelAgent

__all__ = ["Agent", "Context", "ModelAgent"]
