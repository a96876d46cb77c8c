"""What hosted models cost per token: a price list kept apart from the adapter so it
can be read and edited on its own."""

from __future__ import annotations

import re

#: USD per 1M (input, output) tokens of a few hosted models, from the providers' public
#: price lists (mid 2025). Prices change: pass ``usd_per_input_token`` /
#: ``usd_per_output_token`` to override, or edit this dict. A model not listed here
#: (every local model) costs 0 unless told otherwise; token budgets still apply to it.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

# "gpt-4o-2024-08-06" is priced as "gpt-4o"; nothing looser than a dated snapshot
# suffix is matched, because a prefix match could price "gpt-4o-audio" as "gpt-4o"
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_per_token(model: str) -> tuple[float, float] | None:
    """USD per (input, output) token of a listed hosted model, or ``None`` if unlisted.

    >>> price_per_token("gpt-4o-mini-2024-07-18")
    (1.5e-07, 6e-07)
    >>> price_per_token("smollm2") is None
    True
    """
    per_million = PRICES_PER_MILLION.get(model) or PRICES_PER_MILLION.get(_DATED.sub("", model))
    if per_million is None:
        return None
    return per_million[0] / 1e6, per_million[1] / 1e6
