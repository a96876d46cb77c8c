"""Tools: typed functions the Gate calls on an agent's behalf."""

from remit.tools._tool import Tool, ToolRegistry, tool
from remit.tools.builtin import calculator, files

__all__ = ["Tool", "ToolRegistry", "calculator", "files", "tool"]
