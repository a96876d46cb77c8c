"""The health of each alternative a route may take, with its circuit breaker.

Per alternative (a tool or a model): calls, failures, an exponentially weighted error
rate and latency, and a breaker:

- **closed**: calls go through; ``threshold`` failures in a row open it;
- **open**: the alternative is skipped for ``cooldown_s`` seconds;
- **half-open**: after the cool-down one trial call goes through: success closes the
  breaker, failure opens it again.

Every change of a breaker's state is journaled (``health:<alternative>.<n>``) and a
resume starts from the last recorded state, so it routes exactly as the interrupted
run would have.

>>> h = Health("fetch_api", threshold=2, cooldown_s=10)
>>> h.record(False, 0.1, now=0), h.record(False, 0.1, now=1), h.state
(False, True, 'open')
>>> h.allows(now=5), h.allows(now=12), h.state
(False, True, 'half-open')
>>> h.record(True, 0.1, now=12), h.state
(True, 'closed')
"""

from __future__ import annotations

from typing import Any, Final, Literal

__all__ = ["DEFAULT_COOLDOWN_S", "DEFAULT_THRESHOLD", "BreakerState", "Health"]

BreakerState = Literal["closed", "open", "half-open"]

#: failures in a row that open a breaker
DEFAULT_THRESHOLD: Final = 3
#: seconds an open breaker keeps its alternative out before one trial call
DEFAULT_COOLDOWN_S: Final = 30.0
# weight of the newest observation in the moving error rate and latency
_ALPHA: Final = 0.2


class Health:
    """What the Gate knows of one alternative (see the module docstring)."""

    __slots__ = (
        "calls",
        "consecutive",
        "cooldown_s",
        "error_rate",
        "failures",
        "latency_s",
        "name",
        "opened_at",
        "state",
        "threshold",
    )

    def __init__(
        self,
        name: str,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.calls = 0
        self.failures = 0
        self.consecutive = 0
        self.error_rate = 0.0
        self.latency_s = 0.0
        self.state: BreakerState = "closed"
        self.opened_at = 0.0

    def allows(self, now: float) -> bool:
        """Whether a call may go to this alternative now (an open breaker whose cool-down
        has passed lets one trial call through, as half-open)."""
        if self.state == "open":
            if now - self.opened_at < self.cooldown_s:
                return False
            self.state = "half-open"
        return True

    def record(self, ok: bool, latency_s: float, now: float) -> bool:
        """Count one call's outcome; True if the breaker changed state."""
        before = self.state
        self.calls += 1
        self.latency_s += _ALPHA * (latency_s - self.latency_s)
        self.error_rate += _ALPHA * ((0.0 if ok else 1.0) - self.error_rate)
        if ok:
            self.consecutive = 0
            self.state = "closed"
        else:
            self.failures += 1
            self.consecutive += 1
            if self.state == "half-open" or self.consecutive >= self.threshold:
                self.state = "open"
                self.opened_at = now
        return self.state != before

    def to_dict(self) -> dict[str, Any]:
        """The journaled form (``health`` rows)."""
        return {
            "state": self.state,
            "calls": self.calls,
            "failures": self.failures,
            "consecutive": self.consecutive,
            "error_rate": round(self.error_rate, 4),
            "latency_s": round(self.latency_s, 6),
            "opened_at": self.opened_at,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take up a journaled state (on resume)."""
        state = data.get("state")
        if state in ("closed", "open", "half-open"):
            self.state = state
        self.calls = int(data.get("calls", 0))
        self.failures = int(data.get("failures", 0))
        self.consecutive = int(data.get("consecutive", 0))
        self.error_rate = float(data.get("error_rate", 0.0))
        self.latency_s = float(data.get("latency_s", 0.0))
        self.opened_at = float(data.get("opened_at", 0.0))
