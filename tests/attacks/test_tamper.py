"""The journal-tampering suite: hundreds of generated tamperings with sealed journals,
each of which ``remit verify`` must detect, and legitimate journals, each of which must
verify.

The cases come from :mod:`.tamper` for a fixed seed over base journals made once per
session by real runs (see its docstring for the bases, the categories and what is left
out by design). A tampering the verifier misses fails here, with the list per category;
so does one it "detects" only by crashing. Known verifier gaps (``KNOWN_GAPS``) are not
excused: they fail too, named as known, until the verifier is fixed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from .tamper import (
    CATEGORIES,
    KNOWN_GAPS,
    KNOWN_LEGIT_GAPS,
    RUNS,
    Bases,
    Case,
    Outcome,
    build_bases,
    fingerprint,
    generate,
    legit_cases,
    report_lines,
    run_case,
    run_legit,
    summarize,
)

SEED = 20_260_509
MIN_PER_CATEGORY = 60
MIN_TOTAL = 500

Results = tuple[list[Case], list[Outcome], list[Outcome]]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Bases:
    return build_bases(tmp_path_factory.mktemp("tamper"))


@pytest.fixture(scope="module")
def results(bases: Bases) -> Results:
    cases = generate(SEED, bases, min_per_category=MIN_PER_CATEGORY)
    outcomes = [run_case(c, bases) for c in cases]
    legit = [o for case in legit_cases() for o in run_legit(case, bases)]
    return cases, outcomes, legit


def _table(outcomes: list[Outcome]) -> str:
    rows = summarize(outcomes)
    lines = [f"{'category':<20}{'attempts':>9}{'detected':>10}{'other':>7}{'missed':>8}"]
    for category, r in rows.items():
        lines.append(f"{category:<20}{r['attempts']:>9}{r['detected']:>10}"
                     f"{r['detected_other']:>7}{r['missed']:>8}")  # fmt: skip
    return "\n".join(lines)


def _gaps(bad: list[Outcome], known: dict[str, str]) -> str:
    keys = sorted({o.known_gap for o in bad if o.known_gap})
    return "\n".join(f"known gap {k}: {known[k]}" for k in keys)


def test_enough_cases_in_every_category(results: Results) -> None:
    cases, outcomes, _ = results
    assert len(cases) >= MIN_TOTAL
    per_category = Counter(c.category for c in cases)
    assert set(per_category) == set(CATEGORIES)
    thin = {c: n for c, n in per_category.items() if n < 40}
    assert not thin, thin
    assert len(outcomes) == len(cases)  # every case ran, and each changed its file


def test_every_tampering_is_detected(results: Results) -> None:
    _, outcomes, _ = results
    missed = [o for o in outcomes if o.verdict == "missed"]
    unknown = [o for o in missed if o.known_gap is None]
    assert not missed, (
        f"{len(missed)} of {len(outcomes)} tamperings verified ok"
        f" ({len(unknown)} not known gaps):\n{_table(outcomes)}\n"
        f"{_gaps(missed, KNOWN_GAPS)}\n{report_lines(missed, 60)}"
    )


def test_verify_never_crashes_on_a_tampered_journal(results: Results) -> None:
    """Detected by a traceback is not detected well: ``remit verify`` should name it."""
    _, outcomes, _ = results
    crashed = [o for o in outcomes if any(s.startswith("CRASH:") for s in o.seen)]
    assert not crashed, (
        f"{len(crashed)} tamperings made verify crash:\n{_gaps(crashed, KNOWN_GAPS)}\n"
        f"{report_lines(crashed, 20)}"
    )


def test_the_failures_name_what_was_tampered_with(results: Results) -> None:
    """Most detections carry a code the case expected; the rest are few, and listed."""
    _, outcomes, _ = results
    other = [o for o in outcomes if o.verdict == "detected_other" and o.known_gap is None]
    assert len(other) <= len(outcomes) // 50, report_lines(other, 40)


def test_every_legitimate_journal_verifies(results: Results) -> None:
    _, _, legit = results
    assert len(legit) >= 8 * len(RUNS)
    refused = [o for o in legit if o.verdict != "ok"]
    assert not refused, (
        f"{len(refused)} of {len(legit)} legitimate journals did not verify:\n"
        f"{_gaps(refused, KNOWN_LEGIT_GAPS)}\n{report_lines(refused, 20)}"
    )


def test_known_gaps_are_named_and_explained(results: Results) -> None:
    cases, _, legit = results
    assert {c.known_gap for c in cases if c.known_gap} <= set(KNOWN_GAPS)
    assert {o.known_gap for o in legit if o.known_gap} <= set(KNOWN_LEGIT_GAPS)


# --- the generator and its bases -----------------------------------------------------------


def test_generator_is_deterministic(bases: Bases) -> None:
    a, b = generate(11, bases, min_per_category=5), generate(11, bases, min_per_category=5)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(generate(12, bases, min_per_category=5)) != fingerprint(a)


def test_the_bases_hold_what_the_cases_attack(bases: Bases) -> None:
    main = {rid: bases.run("main", rid) for rid in RUNS}
    assert {r.record["status"] for r in main.values()} == {"done", "failed"}
    assert main["failed"].record["status"] == "failed"
    plan = main["fan"].rows[main["fan"].of_kind("plan")[0]]
    assert '"within": "a.txt/"' in plan["output"]  # children narrowed by an argument
    assert main["model"].of_kind("model") and not main["model"].of_kind("tool")
    assert main["resumed"].superseded  # the row in flight at the stop, written again
    (answer,) = main["approved"].of_kind("approval")
    assert json.loads(main["approved"].rows[answer]["output"])["approved"] is True
    assert all(len(r.checkpoints) >= 2 for r in main.values())
    assert bases.run("crashed", "resumed").record["status"] == "running"
    with contextlib.closing(sqlite3.connect(bases.files["pending"])) as conn:
        # a row another process wrote, that the owner has not chained yet
        assert conn.execute("SELECT COUNT(*) FROM steps WHERE n = -1").fetchone() == (1,)
    assert bases.build_s < 10


def test_a_vacuous_mutation_is_refused(bases: Bases) -> None:
    nothing = Case("edit", "nothing", "main", "fan", frozenset({"ROW_ALTERED"}), lambda _: None)
    with pytest.raises(AssertionError, match="unchanged"):
        run_case(nothing, bases)
    assert Path(bases.files["main"]).exists()
