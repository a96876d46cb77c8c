"""The scheduler: a ready queue that carries a task tree from its goal to one answer."""

from remit.engine._engine import Engine, Observer

__all__ = ["Engine", "Observer"]
