"""The root of the hierarchy: a stable code, whether a retry may help, and the form
the journal stores."""

from __future__ import annotations

from typing import Any, ClassVar


class RemitError(Exception):
    """Base class of every error remit raises."""

    code: ClassVar[str] = "REMIT_ERROR"
    #: whether retrying the same step may succeed (timeouts, transient tool errors)
    retryable: ClassVar[bool] = False
    #: what the failed step spent anyway (a model that answered off-schema), if known
    spent: Any = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as stored in the journal (details such as ``dimension`` too)."""
        data: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "type": type(self).__name__,
        }
        for key, value in vars(self).items():
            if (
                key not in ("message", "spent")
                and not key.startswith("_")
                and isinstance(value, str | int | float | bool | None)
            ):
                data[key] = value
        return data
