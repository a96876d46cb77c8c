# ruff: noqa: E501
"""Policies as ordered allow/forbid rules: evaluation order, default deny, in_inputs,
explanations, fallbacks, intersection with the parent's policy, is_within, and the
TOML/JSON forms with location-naming errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remit.core.remit import Decision, Remit
from remit.errors import DeniedError, RemitFormatError, WideningError
from remit.policy import (
    Constraint,
    Rule,
    ToolGrant,
    Verdict,
    absent,
    absent_or,
    allow,
    between,
    constraint_from_dict,
    each,
    equals,
    forbid,
    glob,
    in_inputs,
    matches,
    max_len,
    one_of,
    within,
)
from remit.trust.warrant import AgentKey, issue

NOW = 1_800_000_000.0
PROMPT = "Pay bob@example.com 50 dollars for lunch (invoice 1234)."

# the issue's example, verbatim (its lines are longer than 100)
SPEC_TOML = """
[tools.send_money]
fallback = "ask"
rules = [
  { forbid = { amount = { between = { min = 1000 } } }, reason = "large transfers need a person" },
  { allow = { recipient = { in_inputs = true }, amount = { between = [0, 999] } } },
]
[tools.read_file]
path = { within = "docs/" }       # the simple shape still works
"""
# the same with a reason on the allow rule, written as an array of tables
BANKING_TOML = """
depth = 2
[tools.read_file]
path = { within = "docs/" }
[tools.send_money]
fallback = "ask"
[[tools.send_money.rules]]
forbid = { amount = { between = { min = 1000 } } }
reason = "large transfers need a person"
[[tools.send_money.rules]]
allow = { recipient = { in_inputs = true }, amount = { between = [0, 999] } }
reason = "recipient not in prompt"
"""


def banking() -> Remit:
    return Remit.from_toml(BANKING_TOML)


def send(remit: Remit, recipient: object, amount: object, text: str | None = PROMPT) -> Decision:
    return remit.check(
        "send_money", {"recipient": recipient, "amount": amount}, now=NOW, inputs_text=text
    )


# --- ordered evaluation -------------------------------------------------------------


def test_forbid_before_allow_wins() -> None:
    g = ToolGrant("t", rules=[forbid({"n": between(5, None)}), allow({"n": between(0, 10)})])
    assert g.evaluate({"n": 7}).rule == "t#1" and g.check({"n": 7}) is not None
    assert g.evaluate({"n": 3}) == Verdict(None, "t#2")


def test_allow_before_forbid_wins() -> None:
    g = ToolGrant("t", rules=[allow({"n": between(0, 10)}), forbid({"n": between(5, None)})])
    assert g.evaluate({"n": 7}) == Verdict(None, "t#1")
    assert g.evaluate({"n": 12}).rule == "t#2"
    assert g.evaluate({"n": 12}).reason == (
        "t: forbidden by rule t#2: argument 'n'=12 matches between(5, None)"
    )


def test_the_first_matching_rule_decides_and_later_rules_are_not_consulted() -> None:
    g = ToolGrant(
        "t",
        rules=[
            allow({"mode": equals("r")}),
            forbid({"mode": one_of("r", "w")}),
            allow(),
        ],
    )
    assert g.evaluate({"mode": "r"}).rule == "t#1"
    assert g.evaluate({"mode": "w"}).rule == "t#2"
    assert g.evaluate({"mode": "x"}).rule == "t#3"


def test_every_constraint_of_a_rule_must_hold_for_it_to_match() -> None:
    g = ToolGrant("t", rules=[forbid({"a": equals(1), "b": equals(2)}), allow()])
    assert g.check({"a": 1, "b": 2}) is not None
    assert g.check({"a": 1, "b": 3}) is None
    assert g.check({"a": 1}) is None  # a missing argument: the forbid rule does not match


def test_no_matching_rule_denies_and_names_the_first_allow_rule_that_failed() -> None:
    g = ToolGrant(
        "t",
        rules=[
            forbid({"n": equals(0)}),
            allow({"n": between(1, 5)}, reason="small n only"),
            allow({"n": equals(99)}),
        ],
    )
    v = g.evaluate({"n": 50})
    assert v.rule == "t#2" and v.note == "small n only"
    assert v.reason == (
        "t: no rule allows this call; rule t#2 (small n only) fails: "
        "argument 'n'=50 violates between(1, 5): 50 is above the maximum 5"
    )
    assert g.evaluate({}).reason == (
        "t: no rule allows this call; rule t#2 (small n only) fails: "
        "argument 'n' is missing but constrained by between(1, 5)"
    )


def test_a_policy_of_only_forbid_rules_denies_everything_else() -> None:
    g = ToolGrant("t", rules=[forbid({"n": equals(0)})])
    assert g.evaluate({"n": 1}) == Verdict("t: no rule allows this call (its rules only forbid)")
    assert g.evaluate({"n": 0}).rule == "t#1"


def test_a_rule_without_constraints_matches_every_call() -> None:
    assert ToolGrant("t", rules=[allow()]).check({"anything": object()}) is None
    assert ToolGrant("t", rules=[forbid(reason="never"), allow()]).check({}) is not None


# --- in_inputs ----------------------------------------------------------------------


def test_in_inputs_accepts_values_appearing_literally_in_the_inputs() -> None:
    c = in_inputs()
    assert c.check_in("bob@example.com", PROMPT) is None
    assert c.check_in(1234, PROMPT) is None  # numbers compare as their text
    assert c.check_in(50, PROMPT) is None
    assert c.check_in("eve@example.com", PROMPT) == (
        "'eve@example.com' does not appear in the task's inputs"
    )
    assert c.check_in("Bob@example.com", PROMPT) is not None  # case-sensitive


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "an empty value is never taken from the task's inputs"),
        (True, "expected a string or number, got bool"),
        (None, "expected a string or number, got NoneType"),
        (["bob@example.com"], "expected a string or number, got list"),
        (float("nan"), "nan is never taken from the task's inputs"),
    ],
)
def test_in_inputs_refuses_empty_and_non_scalar_values(value: object, reason: str) -> None:
    assert in_inputs().check_in(value, PROMPT + " True None nan") == reason


def test_in_inputs_without_context_denies() -> None:
    assert in_inputs().check("bob@example.com") == "no task inputs to compare against"
    assert in_inputs().check_in("bob", None) == "no task inputs to compare against"
    assert not send(banking(), "bob@example.com", 50, text=None)
    assert send(banking(), "bob@example.com", 50)


def test_in_inputs_works_in_simple_grants_too() -> None:
    r = Remit(tools={"email": {"to": in_inputs()}})
    assert r.allows("email", {"to": "bob@example.com"}, inputs_text=PROMPT)
    d = r.check("email", {"to": "eve@example.com"}, inputs_text=PROMPT)
    assert d.reason == (
        "email: argument 'to'='eve@example.com' violates in_inputs(): "
        "'eve@example.com' does not appear in the task's inputs"
    )
    assert not r.allows("email", {"to": "bob@example.com"})


def test_in_inputs_in_a_forbid_rule_fails_closed_without_context() -> None:
    g = ToolGrant("t", rules=[forbid({"x": in_inputs()}), allow()])
    assert g.check({"x": "secret"}, "nothing here") is None
    assert g.check({"x": "secret"}, "the secret") is not None
    assert g.check({"x": "secret"}) is not None  # unknown: the forbid applies


def test_in_inputs_implies_only_itself() -> None:
    assert in_inputs().implies(in_inputs())
    assert not equals("bob").implies(in_inputs())
    assert not one_of("a", "b").implies(in_inputs())
    assert not in_inputs().implies(max_len(100))


def test_in_inputs_file_form() -> None:
    assert in_inputs().to_spec() == {"in_inputs": True}
    assert constraint_from_dict({"in_inputs": True}) == in_inputs()
    with pytest.raises(RemitFormatError, match=r"^x: in_inputs: expected true, got False"):
        constraint_from_dict({"in_inputs": False}, "x")


# --- lists and optional arguments ---------------------------------------------------------

EMAIL_TOML = """
depth = 1
[tools.send_email]
recipients = { each = { one_of = ["a@x.io", "b@x.io", "c@x.io"] } }
cc = { absent_or = { each = [{ in_inputs = true }, { max_len = 40 }] } }
bcc = { absent = true }
"""


def mail(remit: Remit, text: str | None = "copy d@x.io", **args: object) -> Decision:
    return remit.check("send_email", args, now=NOW, inputs_text=text)


def test_each_absent_and_absent_or_read_from_a_file_decide_and_round_trip(
    tmp_path: Path,
) -> None:
    (tmp_path / "mail.toml").write_text(EMAIL_TOML)
    r = Remit.load(tmp_path / "mail.toml")
    assert r.tools["send_email"] == ToolGrant(
        "send_email",
        {
            "recipients": each(one_of("a@x.io", "b@x.io", "c@x.io")),
            "cc": absent_or(each(in_inputs(), max_len(40))),
            "bcc": absent(),
        },
    )
    assert r.to_dict()["tools"]["send_email"] == {
        "bcc": {"absent": True},
        "cc": {"absent_or": {"each": [{"in_inputs": True}, {"max_len": 40}]}},
        "recipients": {"each": {"one_of": ["a@x.io", "b@x.io", "c@x.io"]}},
    }
    round_trips(r)
    (tmp_path / "again.toml").write_text(r.to_toml())
    assert Remit.load(tmp_path / "again.toml") == r
    assert mail(r, recipients=["a@x.io", "c@x.io"])
    assert mail(r, recipients=["a@x.io"], cc=["d@x.io"], bcc=None)
    assert not mail(r, recipients=["a@x.io"], cc=["e@x.io"])
    assert not mail(r, recipients=["a@x.io"], bcc=["a@x.io"])
    d = mail(r, recipients=["a@x.io", "eve@evil.io"])
    assert d.reason == (
        "send_email: argument 'recipients[1]'='eve@evil.io' violates "
        "one_of('a@x.io', 'b@x.io', 'c@x.io'): 'eve@evil.io' is not one of "
        "'a@x.io', 'b@x.io', 'c@x.io'"
    )


def test_each_works_in_allow_and_forbid_rules() -> None:
    g = ToolGrant(
        "send_email",
        rules=[
            forbid({"recipients": each(one_of("ceo@x.io"))}, reason="not only the ceo"),
            allow({"recipients": [each(matches(r"[a-z]+@x\.io")), max_len(3)]}, reason="ours"),
        ],
    )
    assert g.evaluate({"recipients": ["a@x.io", "ceo@x.io"]}) == Verdict(None, "send_email#2")
    assert g.quick({"recipients": ["a@x.io", "ceo@x.io"]}) == Verdict(None, "send_email#2")
    v = g.evaluate({"recipients": ["ceo@x.io"]})
    assert v.rule == "send_email#1" and v.note == "not only the ceo"
    assert g.quick({"recipients": ["ceo@x.io"]}) is None
    v = g.evaluate({"recipients": ["a@x.io", "eve@evil.io"]})
    assert v.reason == (
        "send_email: no rule allows this call; rule send_email#2 (ours) fails: argument "
        "'recipients[1]'='eve@evil.io' violates matches('[a-z]+@x\\\\.io'): 'eve@evil.io' "
        "does not match '[a-z]+@x\\\\.io'"
    )
    # an empty list holds for every each: the forbid matches it too
    assert g.evaluate({"recipients": []}).rule == "send_email#1"
    spec = g.spec()
    assert spec["rules"][0] == {
        "forbid": {"recipients": {"each": {"one_of": ["ceo@x.io"]}}},
        "reason": "not only the ceo",
    }
    assert ToolGrant.from_spec("send_email", spec) == g


def test_absent_and_absent_or_in_rules_match_calls_that_leave_the_argument_out() -> None:
    g = ToolGrant(
        "send_email",
        rules=[
            allow({"cc": absent()}, reason="no copies"),
            allow({"cc": absent_or(each(in_inputs()))}),
        ],
    )
    assert g.evaluate({}) == Verdict(None, "send_email#1")
    assert g.quick({"cc": None}) == Verdict(None, "send_email#1")
    assert g.quick({"cc": ["d@x.io"]}, "copy d@x.io") == Verdict(None, "send_email#2")
    assert g.quick({"cc": ["e@x.io"]}, "copy d@x.io") is None
    # without the task's inputs, in_inputs inside each fails closed in a forbid rule too
    h = ToolGrant("send_email", rules=[forbid({"cc": each(in_inputs())}), allow()])
    assert h.check({"cc": ["d@x.io"]}) is not None and h.quick({"cc": ["d@x.io"]}) is None
    assert h.check({"cc": ["d@x.io"]}, "nothing") is None
    assert h.check({"cc": ["d@x.io"]}, "copy d@x.io") is not None


def test_a_child_may_narrow_each_but_a_wider_each_never_widens_the_parent() -> None:
    parent = Remit.from_toml(EMAIL_TOML)
    narrower = {"recipients": each(one_of("a@x.io", "b@x.io"))}
    child = parent.narrow(tools={"send_email": narrower})
    assert child.is_within(parent) is None
    assert mail(child, recipients=["b@x.io"]) and not mail(child, recipients=["c@x.io"])
    # a child asking for more keeps the parent's constraint (the intersection) ...
    wider = {"recipients": each(one_of("a@x.io", "b@x.io", "c@x.io", "eve@evil.io"))}
    merged = parent.narrow(tools={"send_email": wider})
    assert merged.tools["send_email"] == parent.tools["send_email"]
    assert not mail(merged, recipients=["eve@evil.io"])
    # ... and a remit built wider is refused wherever it is checked against the parent
    built = Remit(tools={"send_email": {**parent.tools["send_email"].args, **wider}})
    assert built.is_within(parent) == "tools.send_email.recipients"
    assert (
        parent.tools["send_email"]
        .narrowed(ToolGrant("send_email", wider))
        .is_within(parent.tools["send_email"])
    )
    p, a, b = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    w = issue(p, run_id="r", remit=parent, purpose="", expires=2e9, holder_public=a.public)
    w.delegate(a, child, b.public, hop_id="ok")
    with pytest.raises(WideningError) as e:
        w.delegate(a, built, b.public, hop_id="wide")
    assert e.value.dimension == "tools.send_email.recipients"
    # dropping each for a plain constraint, or the optional cc's absent_or, widens too
    plain = {**parent.tools["send_email"].args, "recipients": max_len(3)}
    assert Remit(tools={"send_email": plain}).is_within(parent) == "tools.send_email.recipients"
    no_cc = {k: v for k, v in parent.tools["send_email"].args.items() if k != "cc"}
    assert Remit(tools={"send_email": no_cc}).is_within(parent) == "tools.send_email.cc"
    required_cc = {**parent.tools["send_email"].args, "cc": each(in_inputs(), max_len(9))}
    assert Remit(tools={"send_email": required_cc}).is_within(parent) is None


# --- argument paths -----------------------------------------------------------------------

PATHS_TOML = """
[tools.send_email]
rules = [
  { forbid = { "options.mode" = { equals = "send" } }, reason = "drafts only" },
  { allow = { "attachments[].file_id" = { one_of = ["f1", "f2"] }, "options.mode" = { equals = "draft" } } },
]
[tools.upload]
"files[].path" = { within = "out/" }
"files[].tags" = { absent_or = { each = { one_of = ["public"] } } }
"""


def test_paths_in_rules_read_from_a_file_decide_and_round_trip(tmp_path: Path) -> None:
    (tmp_path / "paths.toml").write_text(PATHS_TOML)
    r = Remit.load(tmp_path / "paths.toml")
    round_trips(r)
    assert r.to_dict()["tools"]["upload"] == {
        "files[].path": {"within": "out/"},
        "files[].tags": {"absent_or": {"each": {"one_of": ["public"]}}},
    }
    draft = {"attachments": [{"file_id": "f1"}], "options": {"mode": "draft"}}
    assert r.check("send_email", draft).rule == "send_email#2"
    sent = {**draft, "options": {"mode": "send"}}
    d = r.check("send_email", sent)
    assert (
        not d
        and d.rule == "send_email#1"
        and d.reason
        == (
            "send_email: forbidden by rule send_email#1 (drafts only): argument 'options.mode' "
            "matches equals('send')"
        )
    )
    d = r.check("send_email", {**draft, "attachments": [{"file_id": "f1"}, {"id": "f2"}]})
    assert not d and "argument 'attachments[1].file_id' is missing but constrained" in d.reason
    assert r.allows("upload", {"files": [{"path": "out/a"}, {"path": "out/b", "tags": []}]})
    assert not r.allows("upload", {"files": [{"path": "out/a", "tags": ["secret"]}]})
    assert not r.allows("upload", {"files": [{"path": "/etc/passwd"}]})


def test_an_unquoted_dotted_key_is_refused_with_a_hint() -> None:
    with pytest.raises(RemitFormatError) as e:
        Remit.from_toml('[tools.t]\noptions.mode = { equals = "draft" }')
    assert e.value.message.endswith(
        """to constrain the field 'mode' of an argument, quote the path: "options.mode" = {...}"""
    )
    with pytest.raises(
        RemitFormatError, match=r"^remit\.tools\.t\.rules\[0\]\.allow\.a\[1\]: malformed"
    ):
        Remit.from_toml('[tools.t]\nrules = [{ allow = { "a[1]" = { equals = 1 } } }]')


def test_the_readmes_send_email_policy_reads_and_decides_as_it_says() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (block,) = [
        b.split("```")[0] for b in readme.split("```toml\n")[1:] if "[tools.send_email]" in b
    ]
    r = Remit.from_toml(block)
    round_trips(r)
    ok = {"recipients": ["ANA@x.io", "bo@x.io"], "attachments": [{"file_id": "f1"}]}
    assert mail(r, **ok) and mail(r, **ok, cc=["d@x.io"], bcc=None)
    d = mail(r, **{**ok, "recipients": ["ana@x.io", "eve@evil.io"]})
    assert d.reason.startswith(
        "send_email: argument 'recipients[1]'='eve@evil.io' violates one_of("
    )
    assert not mail(r, **{**ok, "attachments": [{"file_id": "f1"}, {"name": "x.pdf"}]})
    assert not mail(r, **ok, cc=["e@x.io"]) and not mail(r, **ok, bcc=["ana@x.io"])


# --- ignoring case ------------------------------------------------------------------------

CASE_TOML = """
depth = 1
[tools.email]
to = { in_inputs = true, case = "insensitive" }
name = { one_of = ["Alice", "Bob"], case = "insensitive" }
"""


def test_in_inputs_ignoring_case_accepts_a_value_written_otherwise_in_the_inputs() -> None:
    c = in_inputs(case="insensitive")
    assert c.check_in("BOB@Example.COM", PROMPT) is None
    assert c.check_in("PAY", PROMPT) is None
    assert c.check_in("eve@example.com", PROMPT) == (
        "'eve@example.com' does not appear in the task's inputs (ignoring case)"
    )
    assert c.check_in("\u212ate", "kate") is not None  # the Kelvin sign is not a k
    assert c.check("bob") == "no task inputs to compare against"
    assert in_inputs().check_in("BOB@example.com", PROMPT) is not None  # the default


def test_case_options_read_from_a_file_decide_round_trip_and_narrow_one_way() -> None:
    r = Remit.from_toml(CASE_TOML)
    assert r.to_dict()["tools"]["email"] == {
        "name": {"one_of": ["Alice", "Bob"], "case": "insensitive"},
        "to": {"in_inputs": True, "case": "insensitive"},
    }
    round_trips(r)
    ok = {"to": "Bob@EXAMPLE.com", "name": "alice"}
    assert r.allows("email", ok, inputs_text=PROMPT)
    assert not r.allows("email", {**ok, "to": "eve@example.com"}, inputs_text=PROMPT)
    assert not r.allows("email", {**ok, "name": "Eve"}, inputs_text=PROMPT)
    strict = {"to": in_inputs(), "name": one_of("Alice")}
    assert Remit(tools={"email": strict}).is_within(r) is None
    lax = Remit(tools={"email": {"to": in_inputs(case="insensitive"), "name": one_of("Alice")}})
    assert lax.is_within(Remit(tools={"email": strict}, depth=1)) == "tools.email.to"
    child = r.narrow(tools={"email": strict})
    assert child.allows("email", {"to": "bob@example.com", "name": "Alice"}, inputs_text=PROMPT)
    assert not child.allows("email", {"to": "BOB@example.com", "name": "Alice"}, inputs_text=PROMPT)


# --- regular expressions that run out of time ----------------------------------------------

EVIL = r"(a|aa)+$"  # exponential backtracking, even in the regex module
EVIL_VALUE = "a" * 40 + "b"


def test_a_match_that_times_out_denies_the_call_whatever_the_rules_say() -> None:
    # a forbid rule that cannot be decided does not let the call fall through to allow
    g = ToolGrant("search", rules=[forbid({"query": matches(EVIL)}), allow()])
    assert g.quick({"query": EVIL_VALUE}) is None
    v = g.evaluate({"query": EVIL_VALUE})
    assert v.rule == "search#1" and v.reason is not None
    assert v.reason.startswith("search: rule search#1 could not be decided in time: argument")
    # nor does an allow rule that cannot be decided fall through to a later one
    h = ToolGrant("search", rules=[allow({"query": matches(EVIL)}), allow()])
    assert h.quick({"query": EVIL_VALUE}) is None and h.check({"query": EVIL_VALUE}) is not None
    assert h.quick({"query": "aa"}) == Verdict(None, "search#1")
    d = Remit(tools={"search": g}).check("search", {"query": EVIL_VALUE}, now=NOW)
    assert not d.allowed and d.code == "ARGUMENT" and d.rule == "search#1"


# --- decisions and explanations -----------------------------------------------------------


def test_explanations_name_the_rule_and_its_reason() -> None:
    r = banking()
    d = send(r, "eve@example.com", 50)
    assert d.explain() == "denied: recipient not in prompt; rule send_money#2"
    assert d.reason == (
        "send_money: no rule allows this call; rule send_money#2 (recipient not in prompt) "
        "fails: argument 'recipient'='eve@example.com' violates in_inputs(): "
        "'eve@example.com' does not appear in the task's inputs"
    )
    d = send(r, "bob@example.com", 5000)
    assert d.explain() == "denied: large transfers need a person; rule send_money#1"
    assert d.reason == (
        "send_money: forbidden by rule send_money#1 (large transfers need a person): "
        "argument 'amount'=5000 matches between(1000, None)"
    )
    d = send(r, "bob@example.com", 50)
    assert d == Decision(allowed=True, reason="allowed", code="ALLOW", rule="send_money#2")
    assert d.explain() == "allowed: rule send_money#2"


def test_explanations_without_a_rule_reason_use_the_full_reason() -> None:
    r = Remit(tools={"t": ToolGrant("t", rules=[forbid({"n": equals(1)}), allow()])})
    d = r.check("t", {"n": 1})
    assert d.explain() == (
        "denied: t: forbidden by rule t#1: argument 'n'=1 matches equals(1); rule t#1"
    )


def test_simple_grants_keep_their_decisions_without_rule_ids() -> None:
    r = banking()
    assert r.check("read_file", {"path": "docs/a"}) == Decision(
        allowed=True, reason="allowed", code="ALLOW"
    )
    d = r.check("read_file", {"path": "src/a"})
    assert d.rule is None and d.fallback == "tell" and d.code == "ARGUMENT"
    assert d.explain() == (
        "denied: read_file: argument 'path'='src/a' violates within('docs/'): "
        "'src/a' is not within 'docs/'"
    )
    assert r.check("shell", {}).explain() == (
        "denied: shell: tool not granted (granted: read_file, send_money)"
    )


def test_fallbacks_are_carried_into_decisions() -> None:
    r = Remit(
        tools={
            "a": ToolGrant("a", rules=[allow({"n": equals(1)})], fallback="ask"),
            "s": {"n": equals(1), "fallback": "stop"},
            "t": {"n": equals(1)},
        },
        deadline=NOW + 10,
    )
    assert r.check("a", {"n": 2}, now=NOW).fallback == "ask"
    assert r.check("s", {"n": 2}, now=NOW).fallback == "stop"
    assert r.check("t", {"n": 2}, now=NOW).fallback == "tell"
    assert r.check("nope", {}, now=NOW).fallback == "tell"
    assert r.check("t", {"n": 1}, now=NOW + 11).fallback == "stop"  # past the deadline
    assert r.tools["s"].fallback == "stop" and r.tools["t"].fallback is None
    assert r.tools["t"].effective_fallback == "tell"


def test_denied_errors_carry_the_rule() -> None:
    with pytest.raises(DeniedError) as e:
        send(banking(), "bob@example.com", 5000).raise_if_denied()
    assert e.value.rule == "send_money#1"
    assert e.value.to_dict()["rule"] == "send_money#1"


# --- intersection (narrowing) ------------------------------------------------------------


def test_a_parent_forbid_still_applies_to_the_child_and_is_named() -> None:
    parent = banking()
    child = parent.narrow(tools={"send_money": {"rules": [{"allow": {"amount": max_len(0)}}]}})
    # the child's own rule would not even match numbers; the parent's forbid is first
    d = send(child, "bob@example.com", 5000)
    assert d.rule == "send_money#1"
    assert d.explain() == "denied: large transfers need a person; rule send_money#1"
    child = parent.narrow(tools={"send_money": ToolGrant("send_money", rules=[allow()])})
    assert not send(child, "bob@example.com", 5000)
    assert send(child, "bob@example.com", 50)


def test_child_rules_narrow_further_and_number_after_the_parents() -> None:
    parent = banking()
    child = parent.narrow(
        tools={
            "send_money": {
                "rules": [
                    {"forbid": {"recipient": {"matches": ".*@example\\.com"}}, "reason": "no"},
                    {"allow": {"amount": {"between": [0, 100]}}, "reason": "small only"},
                ]
            }
        }
    )
    grant = child.tools["send_money"]
    assert [rid for rid, _ in grant.rules] == [f"send_money#{i}" for i in (1, 2, 3, 4)]
    assert grant.layers[0] == parent.tools["send_money"].layers[0]
    d = send(child, "bob@example.com", 50)
    assert d.explain() == "denied: no; rule send_money#3"
    child2 = parent.narrow(tools={"send_money": {"rules": [{"allow": {"amount": max_len(3)}}]}})
    assert not send(child2, "bob@example.com", 50)  # the child's rule denies numbers


def test_an_allowed_call_names_the_innermost_rule() -> None:
    parent = banking()
    child = parent.narrow(tools={"send_money": {"rules": [{"allow": {"amount": between(0, 500)}}]}})
    assert send(child, "bob@example.com", 50).rule == "send_money#3"
    # a layer that allows everything adds nothing and is not kept
    same = parent.narrow(tools={"send_money": {"rules": [{"allow": {}}]}})
    assert same.tools["send_money"] is parent.tools["send_money"]


def test_simple_and_rule_grants_intersect_both_ways() -> None:
    simple = Remit(tools={"w": {"path": within("out/")}}, depth=2)
    ruled = simple.narrow(
        tools={"w": {"rules": [{"forbid": {"path": glob("*.exe")}}, {"allow": {}}]}}
    )
    g = ruled.tools["w"]
    assert len(g.layers) == 2 and g.layers[0] == (allow({"path": within("out/")}),)
    assert ruled.allows("w", {"path": "out/a.md"})
    assert ruled.check("w", {"path": "out/a.exe"}).rule == "w#2"
    d = ruled.check("w", {"path": "src/a.md"})
    assert d.rule == "w#1" and "violates within('out/')" in d.reason
    assert ruled.is_within(simple) is None
    # a simple child of a rules grant becomes one more layer
    narrower = ruled.narrow(tools={"w": {"path": within("out/sub")}})
    assert len(narrower.tools["w"].layers) == 3
    assert not narrower.allows("w", {"path": "out/a.md"})
    assert narrower.allows("w", {"path": "out/sub/a.md"})
    assert narrower.is_within(ruled) is None


def test_narrowing_with_nothing_new_keeps_the_parents_grant() -> None:
    parent = banking()
    grant = parent.tools["send_money"]
    assert parent.narrow(tools={"send_money": {}}).tools["send_money"] is grant
    assert grant.narrowed(grant) is grant  # the same rules again add no layer
    spec = grant.spec()
    assert parent.narrow(tools={"send_money": spec}).tools["send_money"] is grant


def test_fallback_is_inherited_unless_named_and_may_not_get_laxer() -> None:
    parent = banking()  # send_money: ask
    child = parent.narrow(tools={"send_money": {"rules": [{"allow": {}}]}})
    assert child.tools["send_money"].fallback == "ask"
    for stricter in ("tell", "stop"):
        c = parent.narrow(tools={"send_money": {"fallback": stricter, "rules": [{"allow": {}}]}})
        assert send(c, "bob@example.com", 5000).fallback == stricter
    tell = Remit(tools={"t": {"n": equals(1)}}, depth=1)
    assert tell.narrow(tools={"t": {"fallback": "stop"}}).tools["t"].fallback == "stop"
    with pytest.raises(WideningError) as e:
        tell.narrow(tools={"t": {"fallback": "ask"}})
    assert e.value.dimension == "tools.t.fallback"
    assert "laxer than the parent's 'tell'" in e.value.message
    stop = Remit(tools={"t": {"fallback": "stop"}}, depth=1)
    with pytest.raises(WideningError):
        stop.narrow(tools={"t": {"fallback": "tell"}})


# --- is_within ------------------------------------------------------------------------------


def sibling(parent: Remit, tools: dict[str, Any]) -> Remit:
    return Remit(tools=tools, depth=parent.depth - 1, principal=parent.principal)


def test_dropping_a_parent_forbid_is_widening_and_adding_one_is_fine() -> None:
    parent = banking()
    allow_rule = BANKING["send_money"]["rules"][1]
    dropped = sibling(
        parent,
        {"send_money": {"fallback": "ask", "rules": [allow_rule]}},
    )
    assert dropped.is_within(parent) == "tools.send_money.rules"
    added = sibling(
        parent,
        {
            "send_money": {
                "fallback": "ask",
                "layers": [
                    BANKING["send_money"]["rules"],
                    [{"forbid": {"recipient": {"matches": ".*evil.*"}}}, {"allow": {}}],
                ],
            },
            "read_file": {"path": within("docs/a")},
        },
    )
    assert added.is_within(parent) is None
    reordered = sibling(
        parent,
        {
            "send_money": {
                "fallback": "ask",
                "rules": list(reversed(BANKING["send_money"]["rules"])),
            }
        },
    )
    assert reordered.is_within(parent) == "tools.send_money.rules"


def test_is_within_checks_the_fallback_and_simple_against_rules() -> None:
    parent = banking()
    lax = sibling(parent, {"read_file": {"path": within("docs/"), "fallback": "stop"}})
    assert lax.is_within(parent) is None  # stricter fallback is fine
    rules = ToolGrant("read_file", {"path": within("docs/")})
    assert ToolGrant("read_file", rules=[allow({"path": within("docs/x")})]).is_within(rules)
    assert not ToolGrant("read_file", rules=[allow({"path": within(".")})]).is_within(rules)
    strict = Remit(tools={"t": {"fallback": "stop"}}, depth=1)
    assert sibling(strict, {"t": {}}).is_within(strict) == "tools.t.fallback"
    # a simple grant is never within a rules grant that has a forbid rule
    assert sibling(parent, {"send_money": {"amount": between(0, 5)}}).is_within(parent) == (
        "tools.send_money.rules"
    )
    assert not ToolGrant("send_money", {"amount": between(0, 5)}, fallback="ask").is_within(
        parent.tools["send_money"]
    )


# --- data forms -------------------------------------------------------------------------------

BANKING: dict[str, Any] = {
    "send_money": {
        "fallback": "ask",
        "rules": [
            {
                "forbid": {"amount": {"between": {"min": 1000}}},
                "reason": "large transfers need a person",
            },
            {
                "allow": {"amount": {"between": [0, 999]}, "recipient": {"in_inputs": True}},
                "reason": "recipient not in prompt",
            },
        ],
    },
    "read_file": {"path": {"within": "docs/"}},
}


def test_reads_the_documented_shape_and_emits_it_back() -> None:
    r = banking()
    assert r.to_dict()["tools"] == {"read_file": BANKING["read_file"], **BANKING}
    assert r.tools["send_money"] == ToolGrant(
        "send_money",
        rules=[
            forbid({"amount": between(1000, None)}, reason="large transfers need a person"),
            allow(
                {"recipient": in_inputs(), "amount": between(0, 999)},
                reason="recipient not in prompt",
            ),
        ],
        fallback="ask",
    )


def test_reads_the_issue_example_verbatim() -> None:
    r = Remit.from_toml(SPEC_TOML)
    no_reason = {**BANKING["send_money"]["rules"][1]}
    del no_reason["reason"]
    assert r.to_dict()["tools"]["send_money"] == {
        "fallback": "ask",
        "rules": [BANKING["send_money"]["rules"][0], no_reason],
    }
    d = r.check("send_money", {"recipient": "eve", "amount": 5}, inputs_text=PROMPT)
    assert d.fallback == "ask" and d.rule == "send_money#2" and d.note is None
    assert d.explain().startswith("denied: send_money: no rule allows this call; rule send_money#2")
    round_trips(r)


def round_trips(r: Remit) -> None:
    assert Remit.from_json(r.to_json()) == r
    assert Remit.from_toml(r.to_toml()) == r
    assert Remit.from_json(r.to_json()).to_json() == r.to_json()
    assert Remit.from_toml(r.to_toml()).to_toml() == r.to_toml()
    assert Remit.from_dict(json.loads(r.to_json())) == r


def test_rules_simple_fallbacks_and_layers_round_trip_exactly() -> None:
    parent = banking()
    round_trips(parent)
    child = parent.narrow(
        tools={
            "send_money": {"fallback": "stop", "rules": [{"allow": {"amount": [max_len(3)]}}]},
            "read_file": {"rules": [{"forbid": {"path": {"glob": "*.key"}}}, {"allow": {}}]},
        }
    )
    assert "layers" in child.to_dict()["tools"]["send_money"]
    round_trips(child)
    round_trips(Remit(tools={"t": {"n": equals(1), "fallback": "stop"}, "u": {"fallback": "ask"}}))


def test_backwards_compatible_argument_names() -> None:
    r = Remit.from_toml(
        '[tools.t]\nrules = [{ max_len = 3 }]\nfallback = { equals = "x" }\nlayers = { max_len = 2 }'
    )
    g = r.tools["t"]
    assert not g.layers and g.fallback is None
    assert dict(g.args) == {
        "fallback": (equals("x"),),
        "layers": (max_len(2),),
        "rules": (max_len(3),),
    }
    round_trips(r)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[tools.t]\nrules = [{ allow = {}, reson = "x" }]',
            "remit.tools.t.rules[0].reson: unknown key in a rule (expected allow or forbid",
        ),
        (
            "[tools.t]\nrules = [{ allow = {}, forbid = {} }]",
            "remit.tools.t.rules[0]: a rule has exactly one of allow, forbid (got allow and forbid)",
        ),
        (
            '[tools.t]\nrules = [{ allow = {} }, { reason = "x" }]',
            "remit.tools.t.rules[1]: a rule has exactly one of allow, forbid (got neither)",
        ),
        (
            '[tools.t]\nfallback = "never"\nrules = [{ allow = {} }]',
            "remit.tools.t.fallback: expected one of 'ask', 'tell', 'stop', got 'never'",
        ),
        ('[tools.t]\nfallback = "maybe"', "remit.tools.t.fallback: expected one of"),
        (
            "[tools.t]\nfallback = 3\nrules = [{ allow = {} }]",
            "remit.tools.t.fallback: expected one of",
        ),
        (
            '[tools.t]\npath = { within = "a" }\nrules = [{ allow = {} }]',
            "remit.tools.t.path: unknown key in a tool with rules",
        ),
        ("[tools.t]\nrules = []", "remit.tools.t.rules: needs at least one rule"),
        ("[tools.t]\nlayers = []", "remit.tools.t.layers: expected a non-empty list"),
        (
            "[tools.t]\nrules = [{ allow = {} }]\nlayers = [[{ allow = {} }]]",
            "remit.tools.t: give either rules or layers, not both",
        ),
        (
            "[tools.t]\nlayers = [[{ allow = {} }], [{ allow = { n = 3 } }]]",
            "remit.tools.t.layers[1][0].allow.n: expected a constraint or a list",
        ),
        (
            "[tools.t]\nrules = [{ forbid = { n = { between = [3, 1] } } }]",
            "remit.tools.t.rules[0].forbid.n: between: lo 3 is above hi 1",
        ),
        (
            '[tools.t]\nrules = [{ allow = { n = { inside = "x" } } }]',
            "remit.tools.t.rules[0].allow.n: unknown constraint op 'inside'",
        ),
        (
            '[tools.t]\nrules = [{ allow = {}, reason = "" }]',
            "remit.tools.t.rules[0].reason: must be a non-empty string",
        ),
        (
            '[tools.t]\nrules = [{ allow = "all" }]',
            "remit.tools.t.rules[0].allow: expected a table of argument constraints",
        ),
        (
            "[tools.t]\nrules = [{ allow = {} }, 3]",
            "remit.tools.t.rules[1]: expected a rule table",
        ),
        (
            '[tools.t]\nfallback = "stop"\nfallbacks = { in_inputs = false }',
            "remit.tools.t.fallbacks: in_inputs: expected true",
        ),
    ],
)
def test_malformed_policies_name_the_location(toml: str, message: str) -> None:
    with pytest.raises(RemitFormatError) as e:
        Remit.from_toml(toml)
    assert e.value.message.startswith(message), e.value.message


def test_python_api_errors() -> None:
    with pytest.raises(RemitFormatError, match=r"^tools\.t: give either argument constraints"):
        ToolGrant("t", {"n": equals(1)}, rules=[allow()])
    with pytest.raises(RemitFormatError, match=r"^tools\.t\.rules: needs at least one rule"):
        ToolGrant("t", rules=[])
    with pytest.raises(RemitFormatError, match=r"^rule: effect must be"):
        Rule("permit", {})  # type: ignore[arg-type]
    with pytest.raises(RemitFormatError, match=r"^tools\.t\.fallback: expected one of"):
        ToolGrant("t", fallback="never")  # type: ignore[arg-type]
    with pytest.raises(RemitFormatError, match="cannot be combined with a fallback"):
        ToolGrant("t", {"fallback": equals(1)}, fallback="stop")


def test_rule_and_grant_reprs_and_multi_layer_construction() -> None:
    g = ToolGrant("t", layers=[[allow({"n": equals(1)})], [{"forbid": {}, "reason": "x"}]])
    assert [rid for rid, _ in g.rules] == ["t#1", "t#2"]
    assert repr(g.layers[1][0]) == "forbid({}, reason='x')"
    assert repr(ToolGrant("t", {"n": equals(1)}, fallback="stop")) == (
        "ToolGrant(name='t', args={'n': (equals(1),)}, fallback='stop')"
    )
    assert "ToolGrant(name='send_money', layers=" in repr(banking())


# --- properties -------------------------------------------------------------------------------

ARGS = ["path", "n"]
TEXTS = [None, "", "out/a.md and 3 and r", "etc 7 w", "OUT/A.MD and W"]
values = st.one_of(
    st.sampled_from(["out/a.md", "out/sub/x", "etc/x", "r", "w", "", "a.md", "/out", "R", "W"]),
    st.integers(-2, 12),
    st.sampled_from([True, None, 0.5]),
    st.lists(st.sampled_from(["r", "w", "out/a.md", 3]), max_size=3),
)


@st.composite
def ranges(draw: st.DrawFn) -> Constraint:
    lo, hi = sorted((draw(st.integers(-2, 12)), draw(st.integers(-2, 12))))
    return between(draw(st.sampled_from([lo, None])), draw(st.sampled_from([hi, None])))


constraints: st.SearchStrategy[Constraint] = st.one_of(
    values.filter(lambda v: v is not None and not isinstance(v, list)).map(equals),
    st.lists(st.sampled_from(["r", "w", 3, 7, "out/a.md"]), min_size=1, max_size=3).map(
        lambda vs: one_of(*vs)
    ),
    st.lists(st.sampled_from(["R", "w", 3, "out/A.md"]), min_size=1, max_size=3).map(
        lambda vs: one_of(*vs, case="insensitive")
    ),
    st.just(in_inputs(case="insensitive")),
    st.sampled_from(["out", "out/sub", ".", "etc"]).map(within),
    st.sampled_from(["*.md", "out/*"]).map(glob),
    ranges(),
    st.integers(0, 6).map(max_len),
    st.just(in_inputs()),
)
leaf_constraints = constraints
constraints = st.one_of(
    leaf_constraints,
    leaf_constraints.map(each),
    st.just(absent()),
    leaf_constraints.map(absent_or),
    leaf_constraints.map(lambda c: absent_or(each(c))),
)
arg_specs = st.dictionaries(st.sampled_from(ARGS), st.lists(constraints, max_size=2), max_size=2)
rules = st.builds(
    Rule,
    st.sampled_from(["allow", "forbid"]),
    arg_specs,
    reason=st.sampled_from([None, "because"]),
)
fallbacks = st.sampled_from([None, "tell", "stop", "ask"])


@st.composite
def grants(draw: st.DrawFn) -> ToolGrant:
    fallback = draw(fallbacks)
    if draw(st.booleans()):
        return ToolGrant("t", draw(arg_specs), fallback=fallback)
    return ToolGrant("t", rules=draw(st.lists(rules, min_size=1, max_size=4)), fallback=fallback)


calls = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from([*ARGS, "z"]), values, max_size=3), st.sampled_from(TEXTS)
    ),
    max_size=10,
)


@settings(max_examples=250, deadline=None)
@given(grants(), grants(), calls)
def test_narrowing_with_random_rules_never_widens(
    parent: ToolGrant, child: ToolGrant, calls: list[tuple[dict[str, object], str | None]]
) -> None:
    try:
        merged = parent.narrowed(child)
    except WideningError as e:
        assert e.dimension == "tools.t.fallback"
        return
    assert merged.is_within(parent)
    assert ToolGrant.from_spec("t", merged.spec()) == merged
    for args, text in calls:
        if merged.check(args, text) is None:
            assert parent.check(args, text) is None, (args, text)
            assert child.check(args, text) is None, (args, text)
        elif parent.check(args, text) is not None:
            # the parent's layer is evaluated first, so a parent rule names the denial
            p, m = parent.evaluate(args, inputs_text=text), merged.evaluate(args, inputs_text=text)
            if parent.layers:
                assert m == p, (args, text)


@settings(max_examples=250, deadline=None)
@given(grants(), grants(), calls)
def test_is_within_is_sound_for_independently_built_rule_grants(
    parent: ToolGrant, child: ToolGrant, calls: list[tuple[dict[str, object], str | None]]
) -> None:
    if not child.is_within(parent):
        return
    for args, text in calls:
        if child.check(args, text) is None:
            assert parent.check(args, text) is None, (args, text)


@settings(max_examples=150, deadline=None)
@given(grants(), grants(), grants())
def test_rule_grants_round_trip_through_files(a: ToolGrant, b: ToolGrant, c: ToolGrant) -> None:
    try:
        g = a.narrowed(b).narrowed(c)
    except WideningError:
        g = a
    r = Remit(tools={"t": g})
    round_trips(r)
    assert r.tools["t"] == g


def _reference_decision(grant: ToolGrant, args: dict[str, object], text: str | None) -> Decision:
    """Remit.check's answer for a granted tool, from the reference checks alone."""
    if not grant.layers:
        reason = grant.check(args, text)
        if reason is None:
            return Decision(allowed=True, reason="allowed", code="ALLOW")
        return Decision(
            allowed=False, reason=reason, code="ARGUMENT", fallback=grant.effective_fallback
        )
    verdict = grant.evaluate(args, inputs_text=text)
    if verdict.reason is None:
        return Decision(allowed=True, reason="allowed", code="ALLOW", rule=verdict.rule)
    return Decision(
        allowed=False,
        reason=verdict.reason,
        code="ARGUMENT",
        rule=verdict.rule,
        fallback=grant.effective_fallback,
        note=verdict.note,
    )


@settings(max_examples=300, deadline=None)
@given(grants(), grants(), grants(), calls)
def test_compiled_rules_decide_and_name_rules_like_evaluate(
    a: ToolGrant, b: ToolGrant, c: ToolGrant, calls: list[tuple[dict[str, object], str | None]]
) -> None:
    # single grants and grants narrowed into up to three layers
    try:
        layered = a.narrowed(b).narrowed(c)
    except WideningError:
        layered = a
    for grant in (a, b, layered):
        remit = Remit(tools={"t": grant})
        for args, text in calls:
            verdict = grant.evaluate(args, inputs_text=text)
            quick = grant.quick(args, text)
            assert quick == (verdict if verdict.reason is None else None), (args, text)
            decision = remit.check("t", args, now=NOW, inputs_text=text)
            assert decision == _reference_decision(grant, args, text), (args, text)


def test_compiled_rules_in_inputs_fail_closed_both_ways() -> None:
    g = ToolGrant(
        "pay",
        rules=[forbid({"to": in_inputs()}, reason="named in the task"), allow({"to": in_inputs()})],
    )
    # without inputs the forbid rule holds (fails closed) and denies
    assert g.quick({"to": "bob"}) is None
    assert g.evaluate({"to": "bob"}).rule == "pay#1"
    h = ToolGrant("pay", rules=[allow({"to": in_inputs()})])
    assert h.quick({"to": "bob"}) is None
    assert h.quick({"to": "bob"}, "pay bob") == Verdict(None, "pay#1")
    assert h.quick({"to": "eve"}, "pay bob") is None
