"""Warrant costs: mint, delegate, cold verification of 1-, 3- and 5-hop chains, the
cached per-call check, the holder's call proof, and one raw Ed25519 verify side by side.

**Hops.** The root grant counts as hop 1: an n-hop chain is the root grant plus n - 1
delegations, and verifying it costs n Ed25519 signature checks (so a 5-hop chain should
cost about 5 raw verifies; ``verify_5hop_raw_ratio`` shows how close it is).

Figures, in microseconds, are medians of ``--samples`` samples each (default 2,000),
taken with the garbage collector off and interleaved in rounds, so that load from other
processes on the machine falls on every figure alike. Fast operations are timed in
batches of ``--batch`` calls per sample (timer overhead would dominate one call).

- ``mint_us``: :func:`issue` (one signature).
- ``delegate_us``: :meth:`Warrant.delegate` adding one hop (one signature, one is_within).
- ``verify_{1,3,5}hop_us``: :func:`verify` of a token string, no chain cache: decode,
  every signature, hashes, expiries, widening checks. Parsed remits and parent/child
  comparisons are memoized by their signed bytes (the steady state of a run, where a
  child's chain repeats its parent's hops).
- ``verify_{1,3,5}hop_fresh_us``: the same with those memos cleared before every call:
  every remit parsed from JSON and compared anew (a chain of never-seen remits).
- ``verify_5hop_extend_us``: a :class:`Verifier` meeting a 5-hop chain for the first time
  after it verified the 4-hop parent chain: decode, one signature (the new hop), and
  every hop's revocation, expiry and widening checks (the common case in a run, where a
  child's chain extends its parent's).
- ``check_cached_us``: :meth:`Verifier.check_cached` on a cached 5-hop chain for a call
  with two constrained arguments (cache lookup + revocation + expiry + the remit's own
  check); ``check_cached_plain_us`` for a tool without argument constraints;
  ``remit_check_us``: ``Remit.check`` alone on the first call (the part that is the
  remit's, not the warrant's).
- ``call_verify_us``: verifying the holder's call proof (call digest + one Ed25519
  verify); ``check_call_us``: the whole :meth:`Verifier.check` with a fresh proof
  (cached chain, proof, nonce consumed, remit check).
- ``raw_ed25519_verify_us``: one pynacl ``VerifyKey.verify`` of a hop-sized message.
- ``sigs_5hop_us``: the five hop signature checks of a 5-hop chain alone, as verification
  makes them (libsodium called directly): the floor of ``verify_5hop_us`` on one core.
  ``verify_5hop_raw_ratio`` is ``verify_5hop_us / raw_ed25519_verify_us`` (5 would mean
  no overhead at all around the signatures); ``verify_5hop_overhead_us`` is
  ``verify_5hop_us - sigs_5hop_us``.

    python benchmarks/warrant.py [--samples 2000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import nacl
import nacl.signing

from remit.core.remit import Budget, Remit
from remit.policy import max_len, within
from remit.trust import _calls, _format, _keys
from remit.trust import warrant as wmod
from remit.trust.warrant import (
    AgentKey,
    Verifier,
    Warrant,
    call_digest,
    issue,
    sign_call,
    verify,
)

RUN = "run-bench"
NOW = 1_800_000_000.0
EXP = NOW + 3600


def build() -> dict[str, Any]:
    """A principal, five agents, and chains of 1..5 hops over a realistic remit."""
    principal = AgentKey.from_seed(b"p" * 32)
    agents = [AgentKey.from_seed(bytes([i]) * 32) for i in range(1, 7)]
    root = Remit(
        tools={
            "read_file": {"path": within("src/")},
            "write_file": {"path": within("out/"), "text": max_len(100_000)},
            "search": {"query": max_len(500)},
            "calc": {},
        },
        budget=Budget(calls=500, cost_usd=2.0, input_tokens=400_000),
        deadline=EXP,
        depth=6,
        principal="alice",
    )
    chains = [
        issue(
            principal,
            run_id=RUN,
            remit=root,
            purpose="audit src/ and write out/report.md",
            expires=EXP,
            holder_public=agents[0].public,
        )
    ]
    for i in range(4):
        parent = chains[-1].remit
        assert parent.budget.calls is not None
        child = parent.narrow(
            tools={
                "read_file": {},
                "write_file": {"path": within("out/" + "d/" * (i + 1))},
                "calc": {},
            },
            budget=Budget(calls=parent.budget.calls // 2),
        )
        chains.append(
            chains[-1].delegate(agents[i], child, agents[i + 1].public, hop_id=f"t.0/{i}")
        )
    return {"principal": principal, "agents": agents, "chains": chains}


def measure(samples: int, batch: int, rounds: int) -> dict[str, Any]:
    env = build()
    principal: AgentKey = env["principal"]
    agents: list[AgentKey] = env["agents"]
    chains: list[Warrant] = env["chains"]
    tokens = {n: chains[n - 1].encode() for n in (1, 3, 5)}
    w1, w5 = chains[0], chains[4]
    t5 = tokens[5]
    holder5 = agents[4]
    child_remit = w1.remit.narrow(tools={"read_file": {}, "calc": {}})
    call_args = {"path": "out/d/d/d/d/report.md", "text": "# Report\n"}
    plain_args: dict[str, object] = {"expression": "1+1"}

    verifier = Verifier(principal.public, RUN)
    verifier.verify(t5, now=NOW)  # cached from here on
    entry = verifier._cache[t5]  # pyright: ignore[reportPrivateUsage]
    remit5 = w5.remit

    # Proofs for the full check need fresh nonces: sign them ahead, outside the timing.
    proofs = iter(
        [
            sign_call(holder5, w5, "write_file", call_args, i.to_bytes(8, "big"))
            for i in range(samples + rounds)
        ]
    )
    a_proof = sign_call(holder5, w5, "write_file", call_args, b"probe")

    raw_key = nacl.signing.VerifyKey(agents[1].public)
    raw_msg = _format.HOP_DOMAIN + w5.hops[2].body  # pyright: ignore[reportPrivateUsage]
    raw_sig = agents[1].sign(raw_msg)
    signers = [principal.public, *(agent.public for agent in agents[:4])]
    signed5 = [
        (key, hop.signature + _format.HOP_DOMAIN + hop.body)  # pyright: ignore[reportPrivateUsage]
        for key, hop in zip(signers, w5.hops, strict=True)
    ]
    signed_ok = _keys.signed_ok  # pyright: ignore[reportPrivateUsage]
    assert all(signed_ok(key, signed) for key, signed in signed5)

    def sigs5() -> object:
        return all([signed_ok(key, signed) for key, signed in signed5])

    def vfy(token: str) -> Callable[[], object]:
        return lambda: verify(token, principal_public=principal.public, run_id=RUN, now=NOW)

    def fresh(token: str) -> Callable[[], object]:
        def run() -> object:
            wmod.clear_memos()
            return verify(token, principal_public=principal.public, run_id=RUN, now=NOW)

        return run

    extender = Verifier(principal.public, RUN)
    extender.verify(chains[3].encode(), now=NOW)
    last_link = w5.hops[-1].link_hash

    def extend() -> object:
        extender._cache.pop(t5, None)  # pyright: ignore[reportPrivateUsage]
        extender._links.pop(last_link, None)  # pyright: ignore[reportPrivateUsage]
        return extender.verify(t5, now=NOW)

    def call_verify() -> object:
        digest = call_digest("write_file", call_args)
        message = _calls.call_message(  # pyright: ignore[reportPrivateUsage]
            RUN, entry.link_hash, entry.hop_id, digest, a_proof.nonce
        )
        return _keys.sig_ok(entry.holder, message, a_proof.signature)  # pyright: ignore[reportPrivateUsage]

    def check_call() -> object:
        return verifier.check(t5, next(proofs), "write_file", call_args, now=NOW)

    # name -> (function, calls per sample)
    figures: dict[str, tuple[Callable[[], object], int]] = {
        "raw_ed25519_verify_us": (lambda: raw_key.verify(raw_msg, raw_sig), 1),
        "sigs_5hop_us": (sigs5, 1),
        "mint_us": (
            lambda: issue(
                principal,
                run_id=RUN,
                remit=w1.remit,
                purpose="p",
                expires=EXP,
                holder_public=agents[0].public,
            ),
            1,
        ),
        "delegate_us": (
            lambda: w1.delegate(agents[0], child_remit, agents[1].public, hop_id="x"),
            1,
        ),
        "decode_5hop_us": (lambda: Warrant.decode(t5), 1),
        "verify_1hop_us": (vfy(tokens[1]), 1),
        "verify_3hop_us": (vfy(tokens[3]), 1),
        "verify_5hop_us": (vfy(tokens[5]), 1),
        "verify_1hop_fresh_us": (fresh(tokens[1]), 1),
        "verify_3hop_fresh_us": (fresh(tokens[3]), 1),
        "verify_5hop_fresh_us": (fresh(tokens[5]), 1),
        "verify_5hop_extend_us": (extend, 1),
        "check_cached_us": (
            lambda: verifier.check_cached(t5, "write_file", call_args, now=NOW),
            batch,
        ),
        "check_cached_plain_us": (
            lambda: verifier.check_cached(t5, "calc", plain_args, now=NOW),
            batch,
        ),
        "remit_check_us": (lambda: remit5.check("write_file", call_args, now=NOW), batch),
        "call_verify_us": (call_verify, 1),
        "check_call_us": (check_call, 1),
    }
    for fn, _ in figures.values():  # warm up every path (and the remit memos)
        fn()

    results: dict[str, list[float]] = {name: [] for name in figures}
    per_round = max(1, samples // rounds)
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, (fn, n) in figures.items():
                out = results[name]
                for _ in range(per_round):
                    if n == 1:
                        t0 = clock()
                        fn()
                        out.append((clock() - t0) / 1000)
                    else:
                        t0 = clock()
                        for _ in range(n):
                            fn()
                        out.append((clock() - t0) / 1000 / n)
    finally:
        gc.enable()

    med = {name: round(statistics.median(v), 2) for name, v in results.items()}
    low = {name: round(min(v), 2) for name, v in results.items()}
    report: dict[str, Any] = dict(med)
    report["verify_5hop_raw_ratio"] = round(med["verify_5hop_us"] / med["raw_ed25519_verify_us"], 2)
    report["verify_5hop_fresh_raw_ratio"] = round(
        med["verify_5hop_fresh_us"] / med["raw_ed25519_verify_us"], 2
    )
    report["verify_5hop_overhead_us"] = round(med["verify_5hop_us"] - med["sigs_5hop_us"], 2)
    report["token_chars"] = {f"{n}hop": len(t) for n, t in tokens.items()}
    report["hops"] = "an n-hop chain is the root grant + n-1 delegations (n signatures)"
    report["samples_per_figure"] = per_round * rounds
    report["batch"] = batch
    report["min_of_samples"] = low
    report["loadavg_1m"] = round(os.getloadavg()[0], 2)
    report["cpus"] = os.cpu_count()
    report["python"] = platform.python_version()
    report["pynacl"] = nacl.__version__
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=2000, help="samples per figure")
    ap.add_argument("--batch", type=int, default=100, help="calls per sample for fast checks")
    ap.add_argument("--rounds", type=int, default=20, help="interleaving rounds")
    ap.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = ap.parse_args()
    report = measure(args.samples, args.batch, args.rounds)
    print(
        f"warrant benchmark: median of {report['samples_per_figure']} samples per figure "
        f"(min in brackets); load {report['loadavg_1m']} on {report['cpus']} CPUs; "
        f"python {report['python']}, pynacl {report['pynacl']}"
    )
    print("n-hop chain = root grant + n-1 delegations = n signature checks")
    for name, value in report.items():
        if name.endswith("_us") and name in report["min_of_samples"]:
            print(f"  {name:28} {value:10.2f} us   [{report['min_of_samples'][name]:.2f}]")
    print(
        f"  5-hop cold verify = {report['verify_5hop_raw_ratio']} raw verifies "
        f"({report['verify_5hop_fresh_raw_ratio']} with every remit parsed afresh); "
        f"{report['verify_5hop_overhead_us']} us around its 5 signature checks"
    )
    print(f"  token length (chars): {report['token_chars']}")
    sys.stdout.flush()
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
