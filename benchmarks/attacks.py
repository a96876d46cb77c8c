"""Attack suite figures: generated attacks on warrants, and legitimate calls, per category.

Runs the seeded generator of ``tests/attacks/generator.py`` (random scenarios: a
principal, a run, a root remit over several tools with argument constraints and
allow/forbid rules, chains of 1 to 5 hops narrowing it, keys per hop) and every case it
produces through the public API. An attack counts as *rejected* when it is refused with
the error code it must get (``WARRANT_FORGED``, ``WARRANT_WIDENING``, ``DENIED``...);
refused with another code, or crashing, is *wrong code*; *wrong detail* is the right code
naming another hop index, hop id or widened dimension than expected; *accepted* means the
attack succeeded. *Known* marks cases of an issue the library is known to get wrong
(``KNOWN_ISSUES`` in the generator); they are still counted as what they are.

Then the journal-tampering suite of ``tests/attacks/tamper.py``: base journals made by
real sealed runs (a fan-out with narrowed children, a model-only run, a failed run, a
run stopped and resumed, a run a person approved from another process), and generated
tamperings with copies of them through raw SQLite (rows edited, deleted, reordered,
truncated, spliced from another run; checkpoints forged; nonces replayed; run records
and delegations widened), each verified with ``remit verify``'s ``verify_run``. A
tampering is *detected* when verify fails with a code the case expects, *detected
other* when it fails otherwise (or the journal cannot be read, or verify crashes), and
*missed* when the journal verifies; *known* marks misses and crashes of a verifier gap
named in ``KNOWN_GAPS``. Legitimate journals (as made, copied, VACUUMed, read by
``remit show`` meanwhile...) must verify.

    python benchmarks/attacks.py [--seed N] [--min-per-category 60] [--tamper-seed N]
                                 [--tamper-per-category 60] [--json]

With ``--json`` the last line is a JSON object with ``attacks_total``,
``attacks_rejected`` (refused with the right code), ``legit_total``,
``legit_accepted``, ``by_category`` and ``legit_by_category`` (per category:
``attempts``, ``rejected``, ``wrong_detail``, ``wrong_code``, ``accepted``, ``known``),
and the seed, number of scenarios, a fingerprint of the generated cases and timings;
and for the tamper suite ``tamper_total``, ``tamper_detected`` (by an expected code or
another), ``tamper_detected_other``, ``tamper_missed``, ``tamper_crashed``,
``tamper_by_category`` (per category: ``attempts``, ``detected``, ``detected_other``,
``missed``), ``tamper_missed_cases``, ``tamper_known_gaps``, ``tamper_legit_total``,
``tamper_legit_ok``, ``tamper_seed``, ``tamper_fingerprint`` and its timings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

_GENERATOR = Path(__file__).resolve().parents[1] / "tests" / "attacks" / "generator.py"
_TAMPER = _GENERATOR.with_name("tamper.py")


def _load_generator(path: Path = _GENERATOR, name: str = "remit_attack_generator") -> ModuleType:
    # By path: ``tests`` is not a package, and this script's own name is ``attacks``.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _rows(outcomes: list[Any], order: tuple[str, ...]) -> dict[str, dict[str, int]]:
    rows = {
        c: {"attempts": 0, "rejected": 0, "wrong_detail": 0, "wrong_code": 0, "accepted": 0}
        for c in order
    }
    for o in outcomes:
        row = rows.setdefault(
            o.category,
            {"attempts": 0, "rejected": 0, "wrong_detail": 0, "wrong_code": 0, "accepted": 0},
        )
        row["attempts"] += 1
        if o.verdict == "right":
            row["rejected"] += 1
        elif o.verdict == "wrong_detail":
            row["rejected"] += 1  # the right code: counted as rejected, detail shown apart
            row["wrong_detail"] += 1
        elif o.verdict == "wrong_code":
            row["wrong_code"] += 1
        elif o.verdict == "accepted":
            row["accepted"] += 1
        if getattr(o, "known_issue", None):
            row["known"] = row.get("known", 0) + 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20_260_509)
    parser.add_argument("--min-per-category", type=int, default=60)
    parser.add_argument("--min-attacks", type=int, default=1000)
    parser.add_argument("--min-legit", type=int, default=1000)
    parser.add_argument("--tamper-seed", type=int, default=20_260_509)
    parser.add_argument("--tamper-per-category", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="end with a JSON line")
    args = parser.parse_args(argv)

    gen = _load_generator()
    t0 = time.perf_counter()
    suite = gen.generate(
        args.seed,
        min_per_category=args.min_per_category,
        min_attacks=args.min_attacks,
        min_legit=args.min_legit,
    )
    t1 = time.perf_counter()
    attacks = [gen.run_attack(a) for a in suite.attacks]
    t2 = time.perf_counter()
    legit = [gen.run_legit(c) for c in suite.legit]
    t3 = time.perf_counter()

    by_category = _rows(attacks, gen.CATEGORIES)
    legit_rows: dict[str, dict[str, int]] = {
        c: {"attempts": 0, "accepted": 0} for c in gen.LEGIT_CATEGORIES
    }
    for o in legit:
        row = legit_rows.setdefault(o.category, {"attempts": 0, "accepted": 0})
        row["attempts"] += 1
        row["accepted"] += o.verdict == "accepted"

    head = f"{'category':<26}{'attempts':>9}{'rejected':>10}{'wrong detail':>14}"
    head += f"{'wrong code':>12}{'accepted':>10}{'known':>7}"
    print(f"remit attack suite: seed {args.seed}, {suite.scenarios} scenarios")
    print(head)
    print("-" * len(head))
    for category, row in by_category.items():
        print(
            f"{category:<26}{row['attempts']:>9}{row['rejected']:>10}{row['wrong_detail']:>14}"
            f"{row['wrong_code']:>12}{row['accepted']:>10}{row.get('known', 0):>7}"
        )
    keys = ("rejected", "wrong_detail", "wrong_code", "accepted", "known")
    total = {k: sum(r.get(k, 0) for r in by_category.values()) for k in keys}
    print("-" * len(head))
    print(
        f"{'all attacks':<26}{len(attacks):>9}{total['rejected']:>10}{total['wrong_detail']:>14}"
        f"{total['wrong_code']:>12}{total['accepted']:>10}{total['known']:>7}"
    )
    print()
    print(f"{'legitimate calls':<26}{'attempts':>9}{'accepted':>10}{'refused':>14}")
    for category, row in legit_rows.items():
        refused = row["attempts"] - row["accepted"]
        print(f"{category:<26}{row['attempts']:>9}{row['accepted']:>10}{refused:>14}")
    legit_accepted = sum(r["accepted"] for r in legit_rows.values())
    legit_refused = len(legit) - legit_accepted
    print(f"{'all legitimate calls':<26}{len(legit):>9}{legit_accepted:>10}{legit_refused:>14}")

    failures = [o for o in attacks if o.verdict != "right"]
    failures += [o for o in legit if o.verdict != "accepted"]
    if failures:
        print()
        print("cases that went wrong (first 20):")
        for o in failures[:20]:
            known = f" [known issue: {o.known_issue}]" if getattr(o, "known_issue", None) else ""
            print(f"  {o.category} {o.variant}: expected {o.expected}, {o.verdict} {o.seen}{known}")
            if o.detail:
                print(f"      {o.detail[:200]}")
    print()
    print(
        f"generate {t1 - t0:.2f}s, attacks {t2 - t1:.2f}s "
        f"({(t2 - t1) / max(1, len(attacks)) * 1e6:.0f} us each), legitimate calls "
        f"{t3 - t2:.2f}s ({(t3 - t2) / max(1, len(legit)) * 1e6:.0f} us each)"
    )

    tamper = _tamper(args.tamper_seed, args.tamper_per_category)

    if args.json:
        result = {
            **tamper,
            "attacks_total": len(attacks),
            "attacks_rejected": total["rejected"],
            "attacks_wrong_detail": total["wrong_detail"],
            "attacks_wrong_code": total["wrong_code"],
            "attacks_accepted": total["accepted"],
            "attacks_known_issues": total["known"],
            "legit_total": len(legit),
            "legit_accepted": legit_accepted,
            "by_category": by_category,
            "legit_by_category": legit_rows,
            "known_issues": gen.KNOWN_ISSUES,
            "seed": args.seed,
            "scenarios": suite.scenarios,
            "fingerprint": gen.fingerprint(suite),
            "generate_s": round(t1 - t0, 3),
            "attacks_s": round(t2 - t1, 3),
            "legit_s": round(t3 - t2, 3),
            "python": platform.python_version(),
        }
        print(json.dumps(result, sort_keys=True))
    return 0


def _tamper(seed: int, per_category: int) -> dict[str, Any]:
    """Run the journal-tampering suite, print its table, return its JSON keys."""
    tm = _load_generator(_TAMPER, "remit_tamper_generator")
    with tempfile.TemporaryDirectory(prefix="remit-tamper-") as tmp:
        t0 = time.perf_counter()
        bases = tm.build_bases(Path(tmp))
        t1 = time.perf_counter()
        cases = tm.generate(seed, bases, min_per_category=per_category)
        outcomes = [tm.run_case(c, bases) for c in cases]
        t2 = time.perf_counter()
        legit = [o for case in tm.legit_cases() for o in tm.run_legit(case, bases)]
        t3 = time.perf_counter()
    rows = tm.summarize(outcomes)
    for category in rows:
        rows[category]["known"] = sum(
            1 for o in outcomes if o.category == category and o.known_gap
            and (o.verdict == "missed" or any(s.startswith("CRASH:") for s in o.seen))
        )  # fmt: skip
    head = f"{'tampering':<26}{'attempts':>9}{'detected':>10}{'other':>8}{'missed':>8}{'known':>7}"
    print()
    print(f"journal tampering: seed {seed}, {len(cases)} cases on {len(bases.files)} base journals")
    print(head)
    print("-" * len(head))
    for category, r in rows.items():
        print(
            f"{category:<26}{r['attempts']:>9}{r['detected']:>10}{r['detected_other']:>8}"
            f"{r['missed']:>8}{r['known']:>7}"
        )
    total = {k: sum(r[k] for r in rows.values()) for k in ("detected", "detected_other", "missed")}
    print("-" * len(head))
    print(
        f"{'all tamperings':<26}{len(outcomes):>9}{total['detected']:>10}"
        f"{total['detected_other']:>8}{total['missed']:>8}"
    )
    legit_ok = sum(o.verdict == "ok" for o in legit)
    print(f"{'legitimate journals':<26}{len(legit):>9}{'verified':>10} {legit_ok}")
    missed = [o for o in outcomes if o.verdict == "missed"]
    crashed = [o for o in outcomes if any(s.startswith("CRASH:") for s in o.seen)]
    refused = [o for o in legit if o.verdict != "ok"]
    other = [o for o in outcomes if o.verdict == "detected_other" and o not in crashed]
    for title, group in (("missed (verified ok)", missed), ("verify crashed", crashed),
                         ("detected by other codes", other),
                         ("legitimate journals refused", refused)):  # fmt: skip
        if group:
            print()
            print(f"{title}: {len(group)}")
            print(tm.report_lines(group, 25))
    gaps = {o.known_gap for o in [*missed, *crashed, *refused] if o.known_gap}
    if gaps:
        print()
        for key in sorted(gaps):
            print(f"known gap {key}: {tm.KNOWN_GAPS.get(key) or tm.KNOWN_LEGIT_GAPS[key]}")
    print()
    print(
        f"tamper: bases {t1 - t0:.2f}s, {len(cases)} cases {t2 - t1:.2f}s "
        f"({(t2 - t1) / max(1, len(cases)) * 1e3:.1f} ms each), legitimate {t3 - t2:.2f}s"
    )
    return {
        "tamper_total": len(outcomes),
        "tamper_detected": total["detected"] + total["detected_other"],
        "tamper_detected_expected": total["detected"],
        "tamper_detected_other": total["detected_other"],
        "tamper_missed": total["missed"],
        "tamper_crashed": len(crashed),
        "tamper_by_category": rows,
        "tamper_missed_cases": [f"{o.category}: {o.variant}" for o in missed],
        "tamper_known_gaps": {**tm.KNOWN_GAPS, **tm.KNOWN_LEGIT_GAPS},
        "tamper_legit_total": len(legit),
        "tamper_legit_ok": legit_ok,
        "tamper_legit_refused": [o.variant for o in refused],
        "tamper_seed": seed,
        "tamper_fingerprint": tm.fingerprint(cases),
        "tamper_bases_s": round(t1 - t0, 3),
        "tamper_s": round(t2 - t1, 3),
    }


if __name__ == "__main__":
    sys.exit(main())
