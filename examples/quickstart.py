"""Quickstart: a recursive agent under a remit, journaled and resumable.

    python examples/quickstart.py        # writes quickstart.db in the current directory

The README's Python example is this file's code; tests/test_examples.py runs both.
"""

from remit import Agent, Budget, Plan, Remit, Runtime, Subtask, max_len, tool


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


class WordCounter(Agent):
    """Counts the words of some texts: one subtask per text, then a sum."""

    tools = [word_count]  # registering a tool grants nothing: the remit does

    def atomize(self, ctx):
        return "plan" if len(ctx.inputs["texts"]) > 1 else "execute"

    def plan(self, ctx):
        subtasks = [
            Subtask(f"text{i}", f"count the words of text {i}", inputs={"texts": [text]},
                    output_schema={"type": "integer"},
                    remit={"budget": {"calls": 1}})  # each child: one call, at most
            for i, text in enumerate(ctx.inputs["texts"])
        ]  # fmt: skip
        return Plan(subtasks, on_failure="aggregate")  # a failed child is reported

    async def execute(self, ctx):
        return await ctx.call("word_count", text=ctx.inputs["texts"][0])

    def aggregate(self, ctx, results):
        return {
            "words": sum(r.value for r in results if r.ok),
            "failed": {r.key: f"{r.code}: {r.error}" for r in results if not r.ok},
        }


remit = Remit(
    tools={"word_count": {"text": max_len(40)}},  # texts longer than 40 chars: denied
    budget=Budget(calls=10),
    deadline="1m",
    depth=1,
)
texts = ["the quick brown fox", "jumps over the lazy dog",
         "and this one is longer than the forty characters the remit allows"]  # fmt: skip

with Runtime(journal="quickstart.db", agent=WordCounter()) as rt:
    run = rt.run("count the words", remit=remit, inputs={"texts": texts})
    print(run.status, run.result, f"calls spent: {run.spent.calls}/10")
    again = rt.resume(run.id)  # a finished run: nothing is done again
    assert again.result == run.result
    print(f"inspect it:  remit show {run.id} --journal quickstart.db")
