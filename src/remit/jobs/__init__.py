"""Built-in jobs: complete agents with their remits, runnable with ``remit run --job NAME``.

A job names its agent as ``module:attr`` (so a resume imports it again), the inputs it
works on by default, the goal for given inputs, and the remit it asks for by default.

>>> JOBS["audit"].goal(JOBS["audit"].inputs)
'Audit src/ and write out/audit.md'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remit.core.remit import Remit
from remit.jobs.audit import DEFAULT_INPUTS, audit_check, audit_goal, audit_remit
from remit.jobs.digest import DEFAULT_INPUTS as DIGEST_INPUTS
from remit.jobs.digest import digest_check, digest_goal, digest_remit

__all__ = ["JOBS", "Job"]


@dataclass(frozen=True, slots=True)
class Job:
    """A built-in job: which agent, which goal and inputs, which remit by default."""

    name: str
    agent: str
    description: str
    #: the inputs used when the user passes none (the user's are merged over them)
    inputs: Mapping[str, Any]
    #: the goal for the given (merged) inputs
    goal: Callable[[Mapping[str, Any]], str]
    #: the default remit for the given (merged) inputs
    remit: Callable[[Mapping[str, Any]], Remit]
    #: why the job cannot start on these inputs in this workspace (None: it can)
    check: Callable[[Mapping[str, Any], str | os.PathLike[str]], str | None]


#: the main job (`make run`) first
JOBS: dict[str, Job] = {
    "digest": Job(
        name="digest",
        agent="remit:ModelAgent",
        description="model-driven: read the top-level documents, write out/digest.md "
        "(embedded model unless --model)",
        inputs=DIGEST_INPUTS,
        goal=digest_goal,
        remit=digest_remit,
        check=digest_check,
    ),
    "audit": Job(
        name="audit",
        agent="remit.jobs.audit:AuditAgent",
        description="audit a directory tree (default src/) and write out/audit.md",
        inputs=DEFAULT_INPUTS,
        goal=audit_goal,
        remit=audit_remit,
        check=audit_check,
    ),
}
