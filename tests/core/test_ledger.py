"""The ledger: reserve on the whole chain or nowhere, settle, release, charge."""

from __future__ import annotations

import random
import threading

import pytest

from remit import Budget
from remit.core.ledger import Account, Ledger, Usage
from remit.errors import BudgetExceeded


def held(acc: Account) -> Usage:
    r = acc.reserved
    return Usage(int(r[0]), int(r[1]), int(r[2]), float(r[3]))


def chain(ledger: Ledger, *budgets: Budget) -> list[Account]:
    """root, child, grandchild ... with the given budgets."""
    accounts: list[Account] = []
    for i, b in enumerate(budgets):
        accounts.append(ledger.open(f"a{i}", b, accounts[-1] if accounts else None))
    return accounts


def test_reserve_holds_on_the_task_and_every_ancestor() -> None:
    ledger = Ledger()
    root, mid, leaf = chain(ledger, Budget(calls=10, cost_usd=1.0), Budget(), Budget(calls=5))
    ledger.reserve(leaf, Usage(calls=2, cost_usd=0.25))
    for acc in (root, mid, leaf):
        assert held(acc) == Usage(calls=2, cost_usd=0.25)
        assert acc.spent.is_zero()
    assert root.remaining("calls") == 8
    assert leaf.remaining("calls") == 3
    assert mid.remaining("calls") is None  # unlimited on its own


def test_a_refusal_holds_nothing_anywhere() -> None:
    ledger = Ledger()
    root, mid, leaf = chain(
        ledger, Budget(cost_usd=1.0), Budget(calls=100), Budget(calls=100, cost_usd=1.0)
    )
    ledger.reserve(leaf, Usage(calls=1, cost_usd=0.9))
    before = [held(a) for a in (root, mid, leaf)]
    # calls fit everywhere, cost overshoots only at the root: all or nothing
    with pytest.raises(BudgetExceeded):
        ledger.reserve(leaf, Usage(calls=1, cost_usd=0.2))
    assert [held(a) for a in (root, mid, leaf)] == before
    # and a refusal at the leaf itself holds nothing on the ancestors either
    with pytest.raises(BudgetExceeded):
        ledger.reserve(leaf, Usage(calls=200))
    assert [held(a) for a in (root, mid, leaf)] == before


def test_settle_replaces_the_reservation_with_the_actual_use() -> None:
    ledger = Ledger()
    root, leaf = chain(ledger, Budget(calls=10, output_tokens=1000), Budget())
    r = ledger.reserve(leaf, Usage(calls=1, output_tokens=512))
    ledger.settle(r, Usage(calls=1, output_tokens=40))
    for acc in (root, leaf):
        assert held(acc).is_zero()
        assert acc.spent == Usage(calls=1, output_tokens=40)
    assert root.remaining("output_tokens") == 960


def test_settle_charges_actual_use_above_the_reservation() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=10))
    r = ledger.reserve(root, Usage(calls=1))
    ledger.settle(r, Usage(calls=3))  # the money is spent either way
    assert root.spent.calls == 3
    assert held(root).is_zero()


def test_release_gives_everything_back() -> None:
    ledger = Ledger()
    root, leaf = chain(ledger, Budget(calls=1), Budget())
    r = ledger.reserve(leaf, Usage(calls=1))
    with pytest.raises(BudgetExceeded):
        ledger.reserve(leaf, Usage(calls=1))
    ledger.release(r)
    assert held(root).is_zero() and root.spent.is_zero()
    ledger.reserve(leaf, Usage(calls=1))  # fits again


def test_a_reservation_finishes_once() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=5))
    r = ledger.reserve(root, Usage(calls=2))
    ledger.settle(r, Usage(calls=2))
    ledger.settle(r, Usage(calls=2))
    ledger.release(r)
    assert root.spent.calls == 2
    assert held(root).is_zero()


@pytest.mark.parametrize(
    ("parent_calls", "child_calls", "admitted", "refused_by"),
    [
        (2, 5, 2, "root"),  # the parent is tighter: a child cannot borrow beyond it
        (10, 3, 3, "child"),  # the child is tighter
        (4, 4, 4, "child"),  # equal: the first account checked on the chain names it
    ],
)
def test_the_tighter_of_child_and_parent_limit_wins(
    parent_calls: int, child_calls: int, admitted: int, refused_by: str
) -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=parent_calls))
    child = ledger.open("child", Budget(calls=child_calls), parent=root)
    for _ in range(admitted):
        ledger.settle(ledger.reserve(child, Usage(calls=1)), Usage(calls=1))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(child, Usage(calls=1))
    assert info.value.account == refused_by
    assert root.spent.calls == child.spent.calls == admitted


def test_siblings_share_the_parent_limit() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=3))
    kids = [ledger.open(f"k{i}", Budget(calls=3), parent=root) for i in range(3)]
    ledger.reserve(kids[0], Usage(calls=2))
    ledger.reserve(kids[1], Usage(calls=1))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(kids[2], Usage(calls=1))
    assert info.value.account == "root"


def test_error_names_dimension_and_account_and_amounts() -> None:
    ledger = Ledger()
    root = ledger.open("t.0.abc", Budget(cost_usd=0.5))
    leaf = ledger.open("t.0.abc/1.def", Budget(), parent=root)
    ledger.settle(ledger.reserve(leaf, Usage(cost_usd=0.2)), Usage(cost_usd=0.2))
    ledger.reserve(leaf, Usage(cost_usd=0.1))
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(leaf, Usage(calls=1, cost_usd=0.25))
    e = info.value
    assert (e.dimension, e.account, e.code) == ("cost_usd", "t.0.abc", "BUDGET")
    assert "budget.cost_usd of t.0.abc" in e.message
    assert "needs 0.25" in e.message and "0.5" in e.message
    assert e.to_dict()["code"] == "BUDGET"


def test_unlimited_dimensions_never_refuse() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=1))
    ledger.reserve(root, Usage(input_tokens=10**9, output_tokens=10**9, cost_usd=1e9))


def test_a_zero_reservation_fits_an_exhausted_budget() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=0))
    ledger.reserve(root, Usage())
    with pytest.raises(BudgetExceeded):
        ledger.reserve(root, Usage(calls=1))


def test_float_costs_sum_exactly_to_the_limit() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(cost_usd=0.3))
    for _ in range(3):  # 0.1 + 0.1 + 0.1 > 0.3 in floats; the ledger allows for that
        ledger.settle(ledger.reserve(root, Usage(cost_usd=0.1)), Usage(cost_usd=0.1))
    with pytest.raises(BudgetExceeded):
        ledger.reserve(root, Usage(cost_usd=0.01))


def test_charge_books_replayed_spend_on_the_whole_chain() -> None:
    ledger = Ledger()
    root, mid, leaf = chain(ledger, Budget(calls=10), Budget(), Budget())
    ledger.charge(leaf, Usage(calls=4, input_tokens=7, cost_usd=0.5))
    for acc in (root, mid, leaf):
        assert acc.spent == Usage(calls=4, input_tokens=7, cost_usd=0.5)
        assert held(acc).is_zero()
    assert root.remaining("calls") == 6
    # what was charged counts against later reservations
    ledger.reserve(leaf, Usage(calls=6))
    with pytest.raises(BudgetExceeded):
        ledger.reserve(leaf, Usage(calls=1))


def test_charge_of_nothing_changes_nothing() -> None:
    ledger = Ledger()
    root = ledger.open("root", Budget(calls=1))
    ledger.charge(root, Usage())
    assert root.spent.is_zero()


def test_usage_round_trips_through_its_dict() -> None:
    u = Usage(calls=2, input_tokens=3, output_tokens=0, cost_usd=0.5)
    assert u.to_dict() == {"calls": 2, "input_tokens": 3, "cost_usd": 0.5}
    assert Usage.from_dict(u.to_dict()) == u
    assert Usage.from_dict(None) == Usage() == Usage.from_dict({})
    assert u + u == Usage(4, 6, 0, 1.0)


def test_many_threads_reserving_against_one_root_never_overshoot() -> None:
    ledger = Ledger()
    limit_calls, limit_cost = 3000, 150.0
    root = ledger.open("root", Budget(calls=limit_calls, cost_usd=limit_cost))
    mids = [ledger.open(f"m{i}", Budget(calls=900), parent=root) for i in range(4)]
    leaves = [ledger.open(f"l{i}", Budget(), parent=mids[i % 4]) for i in range(16)]
    admitted = [0] * 16
    refused = [0] * 16
    peak = [0.0]
    start = threading.Barrier(16)

    def work(i: int) -> None:
        rng = random.Random(i)
        start.wait()
        for _ in range(600):
            cost = rng.choice((0.0, 0.05, 0.1))
            try:
                r = ledger.reserve(leaves[i], Usage(calls=1, cost_usd=cost))
            except BudgetExceeded:
                refused[i] += 1
                continue
            committed = root.spent_vec[0] + root.reserved[0]
            peak[0] = max(peak[0], committed)
            if rng.random() < 0.2:
                ledger.release(r)
            else:
                admitted[i] += 1
                ledger.settle(r, Usage(calls=1, cost_usd=cost / 2))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(refused) > 0, "the test must push past the limit"
    assert peak[0] <= limit_calls
    assert root.spent.calls == sum(admitted) <= limit_calls
    assert root.spent.cost_usd <= limit_cost + 1e-9
    # nothing is left held (costs are floats: sums of 0.05 keep a residue of ~1e-16)
    assert held(root).calls == 0 and held(root).cost_usd == pytest.approx(0.0, abs=1e-9)
    for m in mids:
        assert m.spent.calls <= 900
        assert held(m).calls == 0 and held(m).cost_usd == pytest.approx(0.0, abs=1e-9)
    assert sum(m.spent.calls for m in mids) == root.spent.calls
