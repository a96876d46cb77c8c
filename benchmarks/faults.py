"""Fault tolerance: every scenario of ``tests/faults``, routed and against a baseline.

Each scenario (a pipeline, a DAG or a fan-out under injected faults, see
``tests/faults/scenarios.py``) runs twice on the same seed:

- **routed** (remit's default once routes are given): transient failures are retried,
  a failing alternative is routed around, a planner is asked again only when no route
  is left;
- **baseline** (retry, then re-plan): the same retries, then the failed task is
  re-planned by a model call that picks another tool.

Per mode: scenarios whose outcome is right (the oracle's result, or the explicit
failure the scenario calls for), silent failures (a run that says done with a wrong
result), and control-plane calls (model calls made to re-plan).

``--json`` prints, as its last line, one JSON object with ``fault_types``,
``scenarios``, ``scenarios_correct``, ``silent_failures``, ``control_plane_calls``,
``baseline_control_plane_calls`` (and the baseline's correct and silent counts).

    python benchmarks/faults.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scenarios live with the tests

from tests.faults.scenarios import FAULT_TYPES_USED, SCENARIOS, run_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    totals = {
        m: {"correct": 0, "silent": 0, "control": 0, "seconds": 0.0} for m in ("routed", "baseline")
    }
    print(f"{'scenario':36} {'routed':>24} {'baseline':>24}")
    with tempfile.TemporaryDirectory(prefix="remit-faults-") as tmp:
        for s in SCENARIOS:
            cells: list[str] = []
            for mode in ("routed", "baseline"):
                started = time.perf_counter()
                out = run_scenario(s, mode, Path(tmp))
                t = totals[mode]
                t["seconds"] += time.perf_counter() - started
                t["correct"] += out.correct
                t["silent"] += out.silent
                t["control"] += out.control_plane_calls
                mark = "ok" if out.correct else "WRONG"
                cells.append(f"{out.status:6} {mark:5} replans {out.control_plane_calls:2}")
            print(f"{s.name:36} {cells[0]:>24} {cells[1]:>24}")
    routed, base = totals["routed"], totals["baseline"]
    reduction = 100.0 * (1 - routed["control"] / base["control"]) if base["control"] else 0.0
    print(
        f"\n{len(SCENARIOS)} scenarios, {len(FAULT_TYPES_USED)} fault types. "
        f"routed: {routed['correct']:.0f} right, {routed['silent']:.0f} silent, "
        f"{routed['control']:.0f} control-plane calls ({routed['seconds']:.1f} s); "
        f"baseline: {base['correct']:.0f} right, {base['silent']:.0f} silent, "
        f"{base['control']:.0f} control-plane calls ({base['seconds']:.1f} s); "
        f"{reduction:.0f} % fewer control-plane calls"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "fault_types": len(FAULT_TYPES_USED),
                    "scenarios": len(SCENARIOS),
                    "scenarios_correct": int(routed["correct"]),
                    "silent_failures": int(routed["silent"]),
                    "control_plane_calls": int(routed["control"]),
                    "baseline_control_plane_calls": int(base["control"]),
                    "baseline_scenarios_correct": int(base["correct"]),
                    "baseline_silent_failures": int(base["silent"]),
                    "control_plane_reduction_pct": round(reduction, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
