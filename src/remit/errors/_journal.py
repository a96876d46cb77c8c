"""Errors of the journal and of a run's ownership, and an agent a run names that cannot
be imported."""

from __future__ import annotations

from remit.errors._base import RemitError


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
