"""The lock retry schedule and the budget it runs under (pure logic, no database).

Attempt ``n`` (0-based) waits at most ``first_ms * 2**n`` for its lock, capped at
``max_ms``: with the defaults 100, 200, 400, 800, 1000, 1000, ... ms. Between two attempts
the runner sleeps 50-150 ms (uniform jitter, so two retrying clients do not fall into step).
Waiting for a blocker to go away (the runner does not queue behind an old transaction)
counts against the same budget. No attempt is ever made without a ``lock_timeout``: an
attempt that would start with less than 1 ms left of the budget is not made at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_FIRST_MS = 100
DEFAULT_MAX_MS = 1000
DEFAULT_BUDGET_S = 120.0
JITTER_MS = (50, 150)


def lock_timeout_ms(
    attempt: int, first_ms: int = DEFAULT_FIRST_MS, max_ms: int = DEFAULT_MAX_MS
) -> int:
    """The ``lock_timeout`` of attempt number ``attempt`` (0-based)."""
    if attempt < 0:
        raise ValueError("attempt numbers start at 0")
    return min(first_ms * 2 ** min(attempt, 32), max(max_ms, first_ms))


def schedule(
    count: int, first_ms: int = DEFAULT_FIRST_MS, max_ms: int = DEFAULT_MAX_MS
) -> list[int]:
    return [lock_timeout_ms(n, first_ms, max_ms) for n in range(count)]


def jitter_s(rng: random.Random | None = None) -> float:
    """Seconds to sleep between two attempts."""
    low, high = JITTER_MS
    return (rng or random).uniform(low, high) / 1000


@dataclass
class Budget:
    """Wall-clock budget for getting one migration's locks."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def remaining_ms(self) -> int:
        return max(0, round((self.seconds - self.elapsed_s()) * 1000))

    def exhausted(self) -> bool:
        return self.remaining_ms() < 1

    def clip(self, timeout_ms: int) -> int:
        """The attempt's ``lock_timeout``, never beyond what is left (0: do not attempt)."""
        return min(timeout_ms, self.remaining_ms())
