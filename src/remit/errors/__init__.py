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


# --- authority -------------------------------------------------------------------


class AuthorityError(RemitError):
    """Something would exceed the authority a task was granted."""

    code = "AUTHORITY"


class WideningError(AuthorityError):
    """A child remit would be wider than its parent in some dimension."""

    code = "REMIT_WIDENING"

    def __init__(self, dimension: str, detail: str) -> None:
        super().__init__(f"narrowing would widen {dimension}: {detail}")
        self.dimension = dimension


class DeniedError(AuthorityError):
    """A call outside the task's remit (tool not granted, argument outside limits)."""

    code = "DENIED"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


class DelegationError(AuthorityError):
    """No delegation depth left, or a delegation the remit does not allow."""

    code = "DELEGATION_DENIED"


class DeadlineExceeded(AuthorityError):
    """The task's deadline (or wall-time budget) has passed."""

    code = "DEADLINE"


class BudgetExceeded(AuthorityError):
    """A reservation would overshoot the budget of the task or an ancestor."""

    code = "BUDGET"

    def __init__(self, message: str, *, dimension: str, account: str) -> None:
        super().__init__(message)
        self.dimension = dimension
        self.account = account


# --- input -----------------------------------------------------------------------


class InvalidInput(RemitError):
    """Malformed input: a remit file, a plan, tool arguments, model output."""

    code = "INVALID_INPUT"


class RemitFormatError(InvalidInput):
    """A remit (dict, JSON or TOML) that does not parse or validate."""

    code = "REMIT_FORMAT"


class PlanError(InvalidInput):
    """A plan that is not a DAG, or names unknown or duplicate subtasks."""

    code = "PLAN_INVALID"


class SchemaError(InvalidInput):
    """A value (model output, child result) that violates its JSON schema."""

    code = "SCHEMA_VIOLATION"


class ToolArgumentError(InvalidInput):
    """Tool arguments that fail the tool's own type validation."""

    code = "TOOL_ARGUMENTS"


class UnknownToolError(InvalidInput):
    """A call to a tool no registry knows."""

    code = "UNKNOWN_TOOL"


class OutputTooLarge(InvalidInput):
    """A step produced more output than the runtime accepts."""

    code = "OUTPUT_TOO_LARGE"


class TransitionError(RemitError):
    """A task status change the transition table does not allow (a bug, not bad input)."""

    code = "BAD_TRANSITION"


# --- execution -------------------------------------------------------------------


class StepFailed(RemitError):
    """A step's function raised; the original error is recorded and chained."""

    code = "STEP_FAILED"

    def __init__(self, message: str, *, cause_type: str = "Exception") -> None:
        super().__init__(message)
        self.cause_type = cause_type


class StepTimeout(RemitError):
    """A step ran past its timeout or its task's deadline."""

    code = "STEP_TIMEOUT"
    retryable = True


class RetryableToolError(RemitError):
    """Raise from a tool to say: this may succeed if tried again."""

    code = "TOOL_TRANSIENT"
    retryable = True


class ModelError(RemitError):
    """A model endpoint refused the request for good (bad request, auth, unknown model).

    ``status`` is the HTTP status when there was one.
    """

    code = "MODEL_FAILED"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelTransientError(ModelError):
    """A model call that may succeed if tried again (429, 5xx, timeout, dropped link)."""

    code = "MODEL_TRANSIENT"
    retryable = True


class EffectUncertain(RemitError):
    """An effect's intent was recorded but not its result, and the tool is not idempotent.

    Running it again could do it twice, so remit halts the run (it does not fail it) and
    asks a person: ``remit resolve RUN_ID STEP --happened RESULT | --did-not-happen``,
    then ``remit resume RUN_ID``. ``steps`` names every such step of the run.
    """

    code = "EFFECT_UNCERTAIN"

    def __init__(self, message: str, steps: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.steps = steps


class NoRouteLeft(RemitError):
    """Every alternative of a capability failed or is out (its circuit open): the task
    escalates, first to its parent's planner, then to a person.

    ``capability`` is what was called; ``cause`` the code of the last alternative's error.
    """

    code = "NO_ROUTE"

    def __init__(self, message: str, *, capability: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.capability = capability
        self.cause = cause


class ChildFailed(RemitError):
    """A subtask failed and the plan's policy is to fail the parent."""

    code = "CHILD_FAILED"


class Cancelled(RemitError):
    """The task was cancelled because an ancestor failed or timed out."""

    code = "CANCELLED"


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal (SIGINT, SIGTERM) or a cancellation, not on its own.

    Like ``KeyboardInterrupt`` (which it is), ``except Exception`` does not catch it.
    Finished steps are on disk, the steps that were in flight are marked interrupted,
    and ``resume`` carries the run on.
    """

    code = "INTERRUPTED"

    def __init__(self, message: str, *, run_id: str = "", signal_name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.run_id = run_id
        #: "SIGINT", "SIGTERM", or "" for a cancellation
        self.signal_name = signal_name


# --- journal ---------------------------------------------------------------------


class JournalError(RemitError):
    """The journal cannot be used."""

    code = "JOURNAL"


class JournalCorrupt(JournalError):
    """The journal file is truncated, not a journal, or holds an unreadable row."""

    code = "JOURNAL_CORRUPT"


class JournalVersionError(JournalError):
    """The journal was written by a newer remit than this one."""

    code = "JOURNAL_VERSION"


class DeterminismError(JournalError):
    """Replay met a different step at a recorded position: the code or plan changed."""

    code = "NON_DETERMINISTIC"


class RunNotFound(JournalError):
    """No run with that id in the journal."""

    code = "RUN_NOT_FOUND"


class RunLeased(JournalError):
    """Another live process holds the run: two owners would do its effects twice."""

    code = "RUN_LEASED"


class LeaseLost(JournalError):
    """This process no longer holds the run (its lease expired and was taken over)."""

    code = "LEASE_LOST"


class AgentNotFound(RemitError):
    """The agent a run names cannot be imported."""

    code = "AGENT_NOT_FOUND"


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


# --- warrants --------------------------------------------------------------------
# Errors of remit.trust.warrant (signed delegation chains and call proofs). Each names the
# hop (index 0 = the root grant, and its id) where verification failed.


class WarrantError(AuthorityError):
    """A warrant or call proof that must not be trusted; ``hop_index``/``hop_id`` say where."""

    code = "WARRANT"

    def __init__(
        self, message: str, *, hop_index: int | None = None, hop_id: str | None = None
    ) -> None:
        # RemitError.__init__ directly: WarrantWidening's MRO puts WideningError next,
        # whose __init__ takes (dimension, detail).
        RemitError.__init__(self, message)
        self.hop_index = hop_index
        self.hop_id = hop_id


class WarrantMalformed(WarrantError):
    """An empty, truncated or garbled token, or a value that cannot go into one."""

    code = "WARRANT_MALFORMED"


class WarrantForged(WarrantError):
    """A signature that does not verify under the key that should have made it."""

    code = "WARRANT_FORGED"


class WarrantBrokenChain(WarrantError):
    """A hop whose previous-hop hash does not match the hop before it (spliced chain)."""

    code = "WARRANT_BROKEN_CHAIN"


class WarrantWidening(WarrantError, WideningError):
    """A hop wider than its parent (remit dimension or expiry); also a WideningError."""

    code = "WARRANT_WIDENING"

    def __init__(
        self,
        message: str,
        *,
        dimension: str,
        hop_index: int | None = None,
        hop_id: str | None = None,
    ) -> None:
        WarrantError.__init__(self, message, hop_index=hop_index, hop_id=hop_id)
        self.dimension = dimension


class WarrantRootMismatch(WarrantError):
    """The run's recorded authority is not what its principal granted (the journal was
    altered): a resume refuses to act under it."""

    code = "WARRANT_ROOT_MISMATCH"


class WarrantExpired(WarrantError):
    """A hop of the chain has expired."""

    code = "WARRANT_EXPIRED"


class WarrantDepthExceeded(WarrantError):
    """A delegation below a remit with no depth left, or a chain longer than allowed."""

    code = "WARRANT_DEPTH"


class WarrantReplay(WarrantError):
    """A call proof whose nonce was already used."""

    code = "WARRANT_REPLAY"


class WarrantWrongRun(WarrantError):
    """A warrant issued for another run."""

    code = "WARRANT_WRONG_RUN"


class WarrantRevoked(WarrantError):
    """A chain containing a revoked hop (revoking a hop revokes its whole subtree)."""

    code = "WARRANT_REVOKED"


class WarrantNotHolder(WarrantError):
    """A key or call proof that is not the holder of the warrant's last hop."""

    code = "WARRANT_NOT_HOLDER"


class WarrantDigestMismatch(WarrantError):
    """A call proof signed for another tool call than the one presented."""

    code = "WARRANT_DIGEST"


_index(WarrantError)
