"""An effect that is safe to run twice: it dedups by the idempotency key remit gives it.

A crash can land after a tool changed the world and before its result reached the
journal; a resume then makes the same call again, with the same ``idempotency_key``
(derived from the run and the step, never random). A tool that remembers the keys it
has served, in the same transaction as its effect, turns that second call into a
lookup. Run it:  python examples/idempotent_effect.py
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from remit import Agent, Budget, Plan, Remit, Runtime, Subtask, tool

BANK = Path("bank.db")


def _bank() -> sqlite3.Connection:
    conn = sqlite3.connect(BANK, isolation_level=None)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS payments (idempotency_key TEXT PRIMARY KEY,"
        " recipient TEXT NOT NULL, cents INTEGER NOT NULL)"
    )
    return conn


@tool(effect=True)  # effectful and idempotent (the default): remit passes the key
def pay(recipient: str, cents: int, idempotency_key: str) -> dict[str, object]:
    """Pay once per key: a second call with the same key returns the first payment."""
    conn = _bank()
    try:
        conn.execute("BEGIN IMMEDIATE")  # the check and the effect in one transaction
        row = conn.execute(
            "SELECT rowid, recipient, cents FROM payments WHERE idempotency_key = ?",
            (idempotency_key,),
        ).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?)", (idempotency_key, recipient, cents)
            )
            row = (cur.lastrowid, recipient, cents)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"payment": row[0], "recipient": row[1], "cents": row[2]}


class Payroll(Agent):
    tools = (pay,)

    def atomize(self, ctx):  # type: ignore[no-untyped-def]
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx):  # type: ignore[no-untyped-def]
        staff = ctx.inputs["staff"]
        return Plan([Subtask(name, f"pay {name}", inputs={"name": name}) for name in staff])

    async def execute(self, ctx):  # type: ignore[no-untyped-def]
        return await ctx.call("pay", recipient=ctx.inputs["name"], cents=100_00)


if __name__ == "__main__":
    rt = Runtime(journal="payroll.db", agent=Payroll())
    remit = Remit(tools={"pay": {}}, budget=Budget(calls=10), depth=1)
    run = rt.run("pay the staff", remit=remit, inputs={"staff": ["ana", "bo"]})
    first = run.result[0]
    # what a resume does after a crash mid-call: the same call, the same key
    again = pay.fn(recipient="ana", cents=100_00, idempotency_key=_bank().execute(
        "SELECT idempotency_key FROM payments WHERE rowid = ?", (first["payment"],)
    ).fetchone()[0])  # fmt: skip
    (payments,) = _bank().execute("SELECT count(*) FROM payments").fetchone()
    print(f"{run.status}: {payments} payments; the repeated call returned payment "
          f"{again['payment']}, the same as the first ({first['payment']})")  # fmt: skip
