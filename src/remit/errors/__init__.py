"""Every error remit raises, with a stable code.

One small hierarchy: catch :class:`RemitError` for anything remit raises, or a
subclass for one family. Every error carries a ``code`` that never changes between
releases (journals and audits store it) and a message that says what was wrong,
where, and what to do about it.

>>> from remit.errors import WideningError
>>> try:
...     raise WideningError("budget.calls", "child asks for 10, parent has 5")
... except RemitError as e:
...     e.code
'REMIT_WIDENING'
"""

from __future__ import annotations

from typing import Any

from remit.errors._authority import (
    AuthorityError,
    BudgetExceeded,
    DeadlineExceeded,
    DelegationError,
    DeniedError,
    WideningError,
)
from remit.errors._base import RemitError
from remit.errors._execution import (
    Cancelled,
    ChildFailed,
    EffectUncertain,
    ModelError,
    ModelTransientError,
    NoRouteLeft,
    RetryableToolError,
    RunInterrupted,
    StepFailed,
    StepTimeout,
    ToolServerError,
    VoteUndecided,
)
from remit.errors._input import (
    AlreadyAnswered,
    InvalidInput,
    MissingExtra,
    NoApproval,
    OutputTooLarge,
    PlanError,
    RemitFormatError,
    SchemaError,
    ToolArgumentError,
    TransitionError,
    UnknownToolError,
)
from remit.errors._journal import (
    AgentNotFound,
    DeterminismError,
    JournalCorrupt,
    JournalError,
    JournalVersionError,
    LeaseLost,
    RunLeased,
    RunNotFound,
)
from remit.errors._warrants import (
    WarrantBrokenChain,
    WarrantDepthExceeded,
    WarrantDigestMismatch,
    WarrantError,
    WarrantExpired,
    WarrantForged,
    WarrantMalformed,
    WarrantNotHolder,
    WarrantReplay,
    WarrantRevoked,
    WarrantRootMismatch,
    WarrantWidening,
    WarrantWrongRun,
)

__all__ = [
    "AgentNotFound",
    "AlreadyAnswered",
    "AuthorityError",
    "BudgetExceeded",
    "Cancelled",
    "ChildFailed",
    "DeadlineExceeded",
    "DelegationError",
    "DeniedError",
    "DeterminismError",
    "EffectUncertain",
    "InvalidInput",
    "JournalCorrupt",
    "JournalError",
    "JournalVersionError",
    "LeaseLost",
    "MissingExtra",
    "ModelError",
    "ModelTransientError",
    "NoApproval",
    "NoRouteLeft",
    "OutputTooLarge",
    "PlanError",
    "RemitError",
    "RemitFormatError",
    "RetryableToolError",
    "RunInterrupted",
    "RunLeased",
    "RunNotFound",
    "SchemaError",
    "StepFailed",
    "StepTimeout",
    "ToolArgumentError",
    "ToolServerError",
    "TransitionError",
    "UnknownToolError",
    "VoteUndecided",
    "WarrantBrokenChain",
    "WarrantDepthExceeded",
    "WarrantDigestMismatch",
    "WarrantError",
    "WarrantExpired",
    "WarrantForged",
    "WarrantMalformed",
    "WarrantNotHolder",
    "WarrantReplay",
    "WarrantRevoked",
    "WarrantRootMismatch",
    "WarrantWidening",
    "WarrantWrongRun",
    "WideningError",
    "error_class",
    "from_dict",
]

_BY_CODE: dict[str, type[RemitError]] = {}


def _index(cls: type[RemitError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _index(sub)


_index(RemitError)


def error_class(code: str) -> type[RemitError]:
    """The error class for a stored code (``RemitError`` if unknown).

    Applications define their own subclasses after this module is imported, so an
    unknown code re-reads the hierarchy before giving up.
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        _index(RemitError)
        cls = _BY_CODE.get(code, RemitError)
    return cls


def from_dict(data: dict[str, Any]) -> RemitError:
    """Rebuild an error from its journaled form, keeping code and message."""
    code = str(data.get("code", ""))
    cls = error_class(code)
    err = RemitError.__new__(cls)
    RemitError.__init__(err, str(data.get("message", "")))
    if code and code != cls.code:
        err.code = code  # type: ignore[misc]  # keep what was recorded, even if unknown here
    for key, value in data.items():
        if (
            key not in ("code", "message", "type")
            and key.isidentifier()
            and not key.startswith("_")
        ):
            setattr(err, key, value)
    return err


_index(WarrantError)


def _name_here() -> None:
    """The classes are defined in private modules, a family each, but are remit.errors':
    tracebacks, doctests and pickles name them ``remit.errors.<Name>``, as before."""
    for name in __all__:
        value = globals()[name]
        if isinstance(value, type):
            value.__module__ = __name__


_name_here()
