"""Does voting help a real small model? The embedded model, one checkable step, 60 items.

The step: say whether a short review is positive or negative, as JSON of a fixed
schema (the embedded model decodes under its grammar). Each item is a task of a run
through the full Gate; its agent votes the step (:class:`remit.Vote`: first-to-ahead-by-
``--k``, at most ``--max-samples`` samples, drawn at the model's sampling temperature
with a seed per sample). Figures, against the labels:

- ``single_accuracy``: the vote's first sample alone (one sample, drawn the same way);
- ``voted_accuracy``: the vote's winner (an undecided vote counts as wrong);
- ``greedy_accuracy``: one greedy (temperature 0) answer, for reference;
- ``samples_per_step``: samples the votes drew, per item; ``items``; ``seconds``.

About two minutes on 2 cores (the model answers one call at a time).

    python benchmarks/voting.py [--items 60] [--k 2] [--max-samples 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from remit import Agent, LocalModel, Plan, Remit, Runtime, Subtask, Vote

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["sentiment"],
}

# (review, label): plain ones, and some a small model finds hard (irony, a turn at the
# end, praise of one thing and blame of the whole)
REVIEWS: list[tuple[str, str]] = [
    ("I loved this film, the acting was wonderful.", "positive"),
    ("Terrible food and rude staff, never again.", "negative"),
    ("The book was boring and far too long.", "negative"),
    ("What a fantastic concert, I had a great time!", "positive"),
    ("The phone broke after two days. Awful.", "negative"),
    ("Delightful hotel, friendly people, great breakfast.", "positive"),
    ("I want my money back, this is junk.", "negative"),
    ("Best purchase I made all year.", "positive"),
    ("Oh great, another update that deletes my files.", "negative"),
    ("The screen is gorgeous, but the battery dies by noon and support never answers.",
     "negative"),
    ("I expected to hate it, and instead I watched it three times.", "positive"),
    ("Not bad at all, actually one of the better ones.", "positive"),
    ("Nice packaging. Shame the product inside does not work.", "negative"),
    ("It does exactly what it says, quietly and well.", "positive"),
    ("Five stars for the delivery, zero for the shoes: they fell apart.", "negative"),
    ("Could not put it down until the last page.", "positive"),
    ("The waiter was lovely; the food was cold, bland and overpriced.", "negative"),
    ("Cheap, sturdy and it just works.", "positive"),
    ("I have never been so bored in a cinema.", "negative"),
    ("Brilliant, if you enjoy waiting two hours for a table.", "negative"),
    ("A warm, funny, generous film.", "positive"),
    ("The instructions were wrong and half the screws were missing.", "negative"),
    ("My kids asked to go back the very next day.", "positive"),
    ("Everything about this laptop feels premium.", "positive"),
    ("Loud, slow and it smells of burnt plastic.", "negative"),
    ("I was sceptical, but this blender is worth every penny.", "positive"),
    ("Sure, it looks nice, until you try to use it.", "negative"),
    ("The course taught me more in a week than school did in a year.", "positive"),
    ("Would not recommend to my worst enemy.", "negative"),
    ("Surprisingly good for the price.", "positive"),
    ("The app crashes every time I open it.", "negative"),
    ("Our guide was knowledgeable, patient and funny.", "positive"),
    ("Came with a scratch and the seller refused a refund.", "negative"),
    ("Comfortable from the first day, no blisters at all.", "positive"),
    ("The plot makes no sense and the ending is worse.", "negative"),
    ("A little pricey, but the quality is obvious and it will last years.", "positive"),
    ("Thanks for nothing: the package never arrived.", "negative"),
    ("Crisp sound, deep bass, great battery.", "positive"),
    ("I fell asleep twice during the first act.", "negative"),
    ("Fresh ingredients and the friendliest staff in town.", "positive"),
    ("Lovely idea, poorly executed, and I regret buying it.", "negative"),
    ("Setup took two minutes and it has not missed a beat since.", "positive"),
    ("The room was dirty and the air conditioning was broken.", "negative"),
    ("I keep recommending it to everyone I know.", "positive"),
    ("It worked once. Then never again.", "negative"),
    ("Honest, fast and reliable service.", "positive"),
    ("The sequel ruins everything the first film did well.", "negative"),
    ("Beautifully written and deeply moving.", "positive"),
    ("Customer service hung up on me twice.", "negative"),
    ("Not perfect, but I am very happy with it.", "positive"),
    ("Way too salty, and we waited an hour.", "negative"),
    ("A joy to cook with: heats evenly and cleans easily.", "positive"),
    ("What a waste of an afternoon.", "negative"),
    ("Exceeded every expectation I had.", "positive"),
    ("The colours faded after one wash.", "negative"),
    ("Quiet, efficient and good-looking.", "positive"),
    ("I would give zero stars if I could.", "negative"),
    ("The staff went out of their way to help us.", "positive"),
    ("Flimsy, overpriced and ugly.", "negative"),
    ("My new favourite coffee shop.", "positive"),
]  # fmt: skip


def ask(review: str) -> list[dict[str, str]]:
    return [{"role": "user",
             "content": f"Is this review positive or negative?\nReview: {review}\n"
                        "Answer in JSON."}]  # fmt: skip


class Reviews(Agent):
    """Root: a task per review; a task: a greedy answer, then the vote."""

    def __init__(self, items: int, vote: Vote) -> None:
        self.items, self.vote = items, vote

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan([Subtask(f"r{i}", f"review {i}", inputs={"review": review, "label": label})
                     for i, (review, label) in enumerate(REVIEWS[: self.items])])  # fmt: skip

    async def execute(self, ctx: Any) -> Any:
        messages = ask(ctx.inputs["review"])
        greedy = await ctx.complete(messages, schema=SCHEMA, max_tokens=16)
        label = json.dumps(ctx.inputs["label"])
        try:
            voted = await ctx.vote(messages, self.vote, max_tokens=16)
        except Exception as e:  # an undecided vote is a wrong answer, and says so
            return {"label": label, "greedy": _sentiment(greedy.content), "single": None,
                    "voted": None, "samples": getattr(e, "samples", 0), "why": str(e)}  # fmt: skip
        winner = json.dumps(voted.value["sentiment"])
        return {"label": label, "greedy": _sentiment(greedy.content), "single": voted.forms[0],
                "voted": winner, "samples": voted.samples}  # fmt: skip

    def aggregate(self, ctx: Any, results: list[Any]) -> Any:
        return [r.value for r in results]


def _sentiment(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text)["sentiment"])
    except (ValueError, KeyError, TypeError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=len(REVIEWS))
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--max-samples", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.items <= len(REVIEWS):
        raise SystemExit(f"--items must be between 1 and {len(REVIEWS)}")
    vote = Vote(k=args.k, max_samples=args.max_samples, schema=SCHEMA, parallel=1,
                canonical=lambda v: v["sentiment"])  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        rt = Runtime(journal=Path(d) / "voting.db", agent=Reviews(args.items, vote),
                     model=LocalModel())  # fmt: skip
        t = time.perf_counter()
        run = rt.run("classify reviews", remit=Remit(tools={}, depth=1))
        seconds = time.perf_counter() - t
        rt.close()
    if not run.ok:
        raise SystemExit(f"voting run failed: {run.error}")
    rows: list[dict[str, Any]] = run.result
    n = len(rows)
    out = {
        "items": n,
        "single_accuracy": round(sum(r["single"] == r["label"] for r in rows) / n, 4),
        "voted_accuracy": round(sum(r["voted"] == r["label"] for r in rows) / n, 4),
        "greedy_accuracy": round(sum(r["greedy"] == r["label"] for r in rows) / n, 4),
        "samples_per_step": round(sum(r["samples"] for r in rows) / n, 3),
        "undecided": sum(r["voted"] is None for r in rows),
        "k": args.k,
        "max_samples": args.max_samples,
        "seconds": round(seconds, 1),
    }
    for key, value in out.items():
        print(f"  {key:18s} {value}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
