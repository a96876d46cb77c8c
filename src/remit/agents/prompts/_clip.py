"""Text cut to its room: :func:`clip` for what a role is shown of a file, :func:`tidy`
for a model's answer that ran into its schema's ``maxLength``.

Separate from the roles because both are plain text handling: the executor's and
verifier's prompts clip the file, the agent tidies the summaries and overview it reports.
"""

from __future__ import annotations

#: how much of a file the executor and verifier see (a 135M model reads ~80 tokens/s)
MAX_TEXT_CHARS = 700


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """The start of ``text``, at most ``limit`` characters, cut at a line end if one is near.

    >>> clip("one\\ntwo\\nthree", 9)
    'one\\ntwo\\n…'
    """
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rfind("\n")
    return (head[: cut + 1] if cut > limit // 2 else head) + "…"


def tidy(text: str, limit: int) -> str:
    """A model's answer as a reader should see it: stripped, and, if the answer ran into
    its schema's ``maxLength`` (the decoder stops there, often inside a word), cut back
    to its first line or its last whole word and marked as cut.

    >>> tidy("It lets you manage tasks with an authority that can only be *narr", 64)
    'It lets you manage tasks with an authority that can only be…'
    >>> tidy("  A whole sentence.  ", 64)
    'A whole sentence.'
    """
    text = text.strip()
    if len(text) < limit:
        return text
    head = text[:limit]
    # one paragraph was asked for: the lines after the first of an answer that ran
    # out of room are the model wandering off
    line = head.find("\n")
    if line >= limit // 4:
        head = head[:line]
    else:
        word = head.rfind(" ")
        if word > limit // 2:
            head = head[:word]
    # markup or punctuation left dangling by the cut ("*narr" leaves "*", "a, b" ",")
    return head.rstrip(" *_`([{,;:-…") + "…"
