"""The scenario suite: every fault type, in pipelines, DAGs and fan-outs, routed and not.

Each scenario asserts its outcome, not only that nothing crashed: the run's result is
what the oracle computes from the graph (or the run failed with an explicit error where
the scenario says it must), no run reports success with a wrong result, the injected
faults are journaled as such, and the outcome rows (retries, reroutes, breaker changes)
are there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from remit.core.faults import FAULT_TYPES
from tests.faults.scenarios import (
    FAULT_TYPES_USED,
    SCENARIOS,
    Scenario,
    run_scenario,
)


def test_every_fault_type_is_in_a_scenario() -> None:
    assert set(FAULT_TYPES) <= FAULT_TYPES_USED
    assert len(SCENARIOS) >= 19
    assert {s.shape for s in SCENARIOS} == {"pipeline", "dag", "fanout"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_routed_run_ends_right_and_says_what_happened(scenario: Scenario, tmp_path: Path) -> None:
    out = run_scenario(scenario, "routed", tmp_path)
    assert not out.silent, f"reported done with a wrong result: {out.result}"
    if scenario.expect == "correct":
        assert out.status == "done", out.error
    else:
        assert out.status == "failed" and out.error and out.error["code"], out
    assert out.correct
    # the faults struck are in the journal, as faults
    assert out.kinds.get("fault", 0) >= 1, out.kinds
    for kind, at_least in scenario.rows.items():
        assert out.kinds.get(kind, 0) >= at_least, (kind, out.kinds)


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if s.rows.get("reroute")],
    ids=[s.name for s in SCENARIOS if s.rows.get("reroute")],
)
def test_routing_needs_fewer_replans_than_the_baseline(scenario: Scenario, tmp_path: Path) -> None:
    routed = run_scenario(scenario, "routed", tmp_path)
    baseline = run_scenario(scenario, "baseline", tmp_path)
    assert not baseline.silent
    assert routed.control_plane_calls < baseline.control_plane_calls, (routed, baseline)
