"""Models: the protocol and the adapters."""

from ._base import Completion, Message, Model
from .scripted import ScriptedModel

__all__ = ["Completion", "Message", "Model", "ScriptedModel"]
