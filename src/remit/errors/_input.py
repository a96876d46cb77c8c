"""Errors of input: a remit file, a plan, tool arguments or model output that is
malformed (and a task status change the transition table refuses)."""

from __future__ import annotations

from remit.errors._base import RemitError


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


class MissingExtra(InvalidInput):
    """An optional feature whose extra is not installed (``pip install 'remit[otel]'``)."""

    code = "MISSING_EXTRA"


class NoApproval(InvalidInput):
    """An answer to an approval request a run does not have (``remit approve|deny``)."""

    code = "NO_APPROVAL"


class AlreadyAnswered(InvalidInput):
    """An answer to an approval request that already has one, or that expired."""

    code = "ALREADY_ANSWERED"


class TransitionError(RemitError):
    """A task status change the transition table does not allow (a bug, not bad input)."""

    code = "BAD_TRANSITION"
