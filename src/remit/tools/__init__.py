"""Tools: typed functions the Gate calls on an agent's behalf."""

from ._tool import Tool, ToolRegistry, tool
from .builtin import calculator, files

__all__ = ["Tool", "ToolRegistry", "calculator", "files", "tool"]
