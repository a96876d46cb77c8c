"""Model figures: the embedded model per role call, and the HTTP adapter's overhead.

- **embedded**: every role of :data:`remit.agents.prompts.ROLES` is called with its example
  fields on :class:`remit.models.LocalModel` (SmolLM2-135M, one thread), round robin so
  that consecutive calls differ (as in a run: llama.cpp reuses only the prompt prefix the
  previous call left in its context). Per role: median latency of ``--repeat`` calls, the
  prompt and answer sizes, and generation speed: answer tokens over the time after the
  prompt was read (llama.cpp's own prompt-eval timer), grammar sampling included.
- **adapter**: ``python -m llama_cpp.server`` serving the same GGUF on 127.0.0.1 (started
  here, one thread); the same request body, ``max_tokens=1`` to keep the server's share
  small and stable, sent alternately by ``OpenAICompatModel.complete`` and by a raw
  ``httpx.AsyncClient.post`` + ``.json()`` on one event loop, in alternating order. The
  overhead is the difference of the medians (``adapter_overhead_ms``); the median of
  the per-round differences is ``adapter_overhead_paired_ms``.

Benchmarks print figures; nothing here asserts a timing. ``--json`` prints one JSON
object as the last line (``embedded_model``, ``tokens_per_s``, ``adapter_overhead_ms``,
and per-role details).

    python benchmarks/models.py [--repeat 5] [--adapter-calls 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import httpx

from remit.agents.prompts import ROLES
from remit.models import LocalModel
from remit.models.llama_server import llama_server
from remit.models.local import default_model_path


# the server is started through this, so that it loads its model the way LocalModel does
# (plain CPU buffers: AMX-advertising virtual machines crash otherwise)
def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --- the embedded model ------------------------------------------------------------------


def _prompt_ms(model: LocalModel) -> float:
    """llama.cpp's prompt-eval time of the last call, in ms (0 if unavailable)."""
    import llama_cpp

    ctx = model._llama._ctx.ctx  # pyright: ignore[reportPrivateUsage]
    return float(llama_cpp.llama_perf_context(ctx).t_p_eval_ms)


def _reset_perf(model: LocalModel) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(model._llama._ctx.ctx)  # pyright: ignore[reportPrivateUsage]


def embedded(repeat: int) -> dict[str, Any]:
    model = LocalModel()
    t0 = time.perf_counter()
    model._load()  # pyright: ignore[reportPrivateUsage]
    load_s = time.perf_counter() - t0
    calls = {name: spec.call(**spec.example) for name, spec in ROLES.items()}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
    # one warm-up round: the first call pays for page faults and thread start-up
    for call in calls.values():
        asyncio.run(model.complete(call.messages, schema=call.schema, max_tokens=call.max_tokens))
    for _ in range(repeat):
        for name, call in calls.items():
            _reset_perf(model)
            t = time.perf_counter()
            c = asyncio.run(
                model.complete(call.messages, schema=call.schema, max_tokens=call.max_tokens)
            )
            ms = (time.perf_counter() - t) * 1000
            prompt_ms = _prompt_ms(model)
            gen_ms = max(ms - prompt_ms, 1e-3)
            rows[name].append(
                {
                    "ms": ms,
                    "prompt_ms": prompt_ms,
                    "in": c.input_tokens,
                    "out": c.output_tokens,
                    "tps": c.output_tokens / gen_ms * 1000,
                }
            )
    roles: dict[str, Any] = {}
    for name, rs in rows.items():
        roles[name] = {
            "latency_ms": round(_median([r["ms"] for r in rs]), 1),
            "prompt_ms": round(_median([r["prompt_ms"] for r in rs]), 1),
            "input_tokens": int(_median([r["in"] for r in rs])),
            "output_tokens": int(_median([r["out"] for r in rs])),
            "tokens_per_s": round(_median([r["tps"] for r in rs]), 1),
            "max_tokens": calls[name].max_tokens,
        }
    every = [r for rs in rows.values() for r in rs]
    return {
        "embedded_model": model.name,
        "weights": str(default_model_path()),
        "n_threads": model.n_threads,
        "load_s": round(load_s, 3),
        "runs_per_role": repeat,
        # generation over all role calls: answer tokens over generation time, pooled
        "tokens_per_s": round(
            sum(r["out"] for r in every)
            / sum(max(r["ms"] - r["prompt_ms"], 1e-3) for r in every)
            * 1000,
            1,
        ),
        "prompt_tokens_per_s": round(
            sum(r["in"] for r in every if r["prompt_ms"] > 0)
            / max(sum(r["prompt_ms"] for r in every), 1e-3)
            * 1000,
            1,
        ),
        "roles": roles,
    }


# --- the HTTP adapter ----------------------------------------------------------------------


async def _adapter_vs_raw(base: str, alias: str, n: int) -> dict[str, Any]:
    from remit.models.openai_compat import OpenAICompatModel

    messages = [{"role": "user", "content": "Say yes."}]
    model = OpenAICompatModel(base, alias, api_key_env=None, retries=0)
    # the adapter's body, spelled out: model, messages, max_tokens, temperature 0
    body = {"model": alias, "messages": messages, "max_tokens": 1, "temperature": 0.0}
    adapter_ms: list[float] = []
    raw_ms: list[float] = []
    async with httpx.AsyncClient(timeout=60.0) as raw:
        for i in range(n + 3):
            order = ("adapter", "raw") if i % 2 == 0 else ("raw", "adapter")
            for who in order:
                t = time.perf_counter()
                if who == "adapter":
                    c = await model.complete(messages, max_tokens=1)
                    assert c.output_tokens >= 0
                else:
                    resp = await raw.post(f"{base}/chat/completions", json=body)
                    resp.raise_for_status()
                    resp.json()
                ms = (time.perf_counter() - t) * 1000
                if i >= 3:  # the first rounds warm connections and the server's cache
                    (adapter_ms if who == "adapter" else raw_ms).append(ms)
    await model.aclose()
    a, r = _median(adapter_ms), _median(raw_ms)
    # each round sent both, back to back: the median of the per-round differences is the
    # figure least moved by the machine's load drifting during the run
    paired = _median([x - y for x, y in zip(adapter_ms, raw_ms, strict=True)])
    return {
        "adapter_ms_median": round(a, 3),
        "raw_httpx_ms_median": round(r, 3),
        "adapter_overhead_ms": round(a - r, 3),
        "adapter_overhead_paired_ms": round(paired, 3),
        "adapter_calls": n,
        "adapter_ms_p90": round(statistics.quantiles(adapter_ms, n=10)[-1], 3),
        "raw_httpx_ms_p90": round(statistics.quantiles(raw_ms, n=10)[-1], 3),
    }


def adapter(n: int) -> dict[str, Any]:
    alias = "smollm2"
    with llama_server(alias=alias) as base:
        return asyncio.run(_adapter_vs_raw(base, alias, n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="calls per role (median of them)")
    ap.add_argument("--adapter-calls", type=int, default=100, help="calls per side")
    ap.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ap.add_argument("--skip-adapter", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    out.update(embedded(args.repeat))
    print(
        f"embedded {out['embedded_model']} ({out['n_threads']} thread, load "
        f"{out['load_s'] * 1000:.0f} ms): generation {out['tokens_per_s']} tokens/s, prompt "
        f"{out['prompt_tokens_per_s']} tokens/s"
    )
    print(f"{'role':<11} {'latency':>9} {'prompt':>8} {'in':>5} {'out':>5} {'tok/s':>7}")
    for name, r in out["roles"].items():
        print(
            f"{name:<11} {r['latency_ms']:>7.0f}ms {r['prompt_ms']:>6.0f}ms "
            f"{r['input_tokens']:>5} {r['output_tokens']:>5} {r['tokens_per_s']:>7.1f}"
        )
    if not args.skip_adapter:
        out.update(adapter(args.adapter_calls))
        print(
            f"adapter: {out['adapter_ms_median']:.2f} ms vs raw httpx "
            f"{out['raw_httpx_ms_median']:.2f} ms (medians of {args.adapter_calls}): "
            f"overhead {out['adapter_overhead_ms']:+.2f} ms per call (paired: "
            f"{out['adapter_overhead_paired_ms']:+.2f} ms)"
        )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
