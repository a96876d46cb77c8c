"""Agent references: a run records ``module:name`` and a resume imports the agent again."""

from __future__ import annotations

import pytest

from remit import ModelAgent
from remit.errors import AgentNotFound
from remit.jobs.audit import AuditAgent
from remit.runtime._runtime import agent_ref, load_agent


def test_a_reference_round_trips() -> None:
    ref = agent_ref(AuditAgent())
    assert ref == "remit.jobs.audit:AuditAgent"
    assert isinstance(load_agent(ref), AuditAgent)


def test_references_written_before_the_layout_still_load() -> None:
    # journals from before the regroup name the model agent by its old module
    assert isinstance(load_agent("remit.model_agent:ModelAgent"), ModelAgent)
    assert isinstance(load_agent("remit:ModelAgent"), ModelAgent)


def test_a_reference_that_does_not_import_says_so() -> None:
    with pytest.raises(AgentNotFound, match=r"cannot import agent 'remit\.nowhere:X'"):
        load_agent("remit.nowhere:X")
    with pytest.raises(AgentNotFound, match="must look like"):
        load_agent("no-colon")
