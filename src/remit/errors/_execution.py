"""Errors of execution: a step or a model call that failed, timed out, or left an effect
uncertain, and a run that stopped on a signal."""

from __future__ import annotations

from remit.errors._base import RemitError


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


class ToolServerError(RemitError):
    """A tool server (an MCP server) could not be started or reached."""

    code = "TOOL_SERVER"


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


class VoteUndecided(RemitError):
    """A voted step drew its most samples and no answer led every other by ``k``
    (``samples`` drawn, ``flagged`` of them red-flagged, ``lead`` the best margin)."""

    code = "VOTE_UNDECIDED"

    def __init__(self, message: str, *, samples: int = 0, flagged: int = 0, lead: int = 0) -> None:
        super().__init__(message)
        self.samples = samples
        self.flagged = flagged
        self.lead = lead


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
