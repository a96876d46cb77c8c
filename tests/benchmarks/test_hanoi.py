"""Towers of Hanoi through the full Gate (``benchmarks/hanoi.py``): a voted micro-agent
per move against a simulated noisy solver; voting and red flags alone keep the result
right, and a run killed with SIGKILL part-way resumes without drawing a sample twice."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "hanoi.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hanoi_bench", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["hanoi_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


hanoi = _module()


def run(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, str(BENCH), *args, "--json"], capture_output=True,
                         text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ten_disks_with_errors_voted_away() -> None:
    # 5% of samples wrong, 0.5% malformed: far more than enough to break an unvoted run
    figures = run("--disks", "10", "--p-error", "0.05")
    assert figures["steps"] == 1023 and figures["errors"] == 0
    k = hanoi.k_for(1023, 0.05, 0.005, 59)
    assert figures["k"] == k == 3  # the margin the error rate and the run's length call for
    assert figures["flagged"] > 0 and k < float(figures["samples_per_step"]) < k + 1  # type: ignore[arg-type]
    assert {"steps_per_s", "journal_bytes"} <= figures.keys()


def test_the_margin_grows_with_the_error_rate_and_the_length_of_the_task() -> None:
    at = [hanoi.k_for(2**d - 1, 0.01, 0.001, 6 * d - 1) for d in (4, 10, 16, 20)]
    assert at == sorted(at) and at[0] < at[-1]
    assert hanoi.k_for(1023, 0.05, 0.005, 59) > hanoi.k_for(1023, 0.001, 0.0001, 59)
    assert hanoi.k_for(1023, 0.0, 0.0, 59) == 1


def test_a_run_killed_part_way_resumes_and_draws_no_sample_twice() -> None:
    figures = run("--disks", "8", "--p-error", "0.05", "--kill-at", "0.4")
    assert 0 < int(figures["killed_after"]) < 255  # type: ignore[arg-type]
    assert figures["redrawn"] == 0 and figures["errors"] == 0 and figures["steps"] == 255


def test_without_a_vote_the_same_solver_gets_moves_wrong() -> None:
    # the control: one sample per move (k=1) lets the solver's errors through; an
    # illegal move is refused by the tool, so the run fails or scores errors
    with pytest.raises(subprocess.CalledProcessError):
        run("--disks", "10", "--p-error", "0.05", "--k", "1")


def test_the_strategy_the_solver_follows_is_the_optimal_solution() -> None:
    pegs, moves = hanoi.start(6), []
    for step in range(1, 64):
        disk, src, dst = hanoi.next_move(pegs, step, 6)
        pegs = hanoi.move.fn(pegs=pegs, disk=disk, src=src, dst=dst)
        moves.append((disk, src, dst))
    assert moves == hanoi.optimal(6) and pegs == [[], [], [6, 5, 4, 3, 2, 1]]


def test_the_move_tool_refuses_an_illegal_move() -> None:
    with pytest.raises(Exception, match="not on top"):
        hanoi.move.fn(pegs=[[2, 1], [], []], disk=2, src=0, dst=1)
    with pytest.raises(Exception, match="cannot go onto"):
        hanoi.move.fn(pegs=[[1], [2], []], disk=2, src=1, dst=0)
