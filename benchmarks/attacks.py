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

    python benchmarks/attacks.py [--seed N] [--min-per-category 60] [--json]

With ``--json`` the last line is a JSON object with ``attacks_total``,
``attacks_rejected`` (refused with the right code), ``legit_total``,
``legit_accepted``, ``by_category`` and ``legit_by_category`` (per category:
``attempts``, ``rejected``, ``wrong_detail``, ``wrong_code``, ``accepted``, ``known``),
and the seed, number of scenarios, a fingerprint of the generated cases and timings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

_GENERATOR = Path(__file__).resolve().parents[1] / "tests" / "attacks" / "generator.py"


def _load_generator() -> ModuleType:
    # By path: ``tests`` is not a package, and this script's own name is ``attacks``.
    spec = importlib.util.spec_from_file_location("remit_attack_generator", _GENERATOR)
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

    if args.json:
        result = {
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


if __name__ == "__main__":
    sys.exit(main())
