"""The lock retry schedule and its budget."""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator.retry import Budget, jitter_s, lock_timeout_ms, schedule


def test_default_schedule_starts_at_100_ms_and_caps_at_one_second() -> None:
    assert schedule(7) == [100, 200, 400, 800, 1000, 1000, 1000]
    assert lock_timeout_ms(0) <= 100


def test_schedule_with_other_bounds() -> None:
    assert schedule(4, first_ms=50, max_ms=300) == [50, 100, 200, 300]
    assert schedule(2, first_ms=500, max_ms=100) == [500, 500]  # the cap never undercuts
    assert lock_timeout_ms(10_000) == 1000  # no overflow for long runs
    with pytest.raises(ValueError, match="start at 0"):
        lock_timeout_ms(-1)


def test_jitter_stays_between_50_and_150_ms() -> None:
    rng = random.Random(7)  # noqa: S311 - jitter, not cryptography
    samples = [jitter_s(rng) for _ in range(1000)]
    assert min(samples) >= 0.05 and max(samples) <= 0.15
    assert max(samples) - min(samples) > 0.05


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_clips_attempts_and_runs_out() -> None:
    clock = FakeClock()
    budget = Budget(2.0, clock=clock)
    assert budget.remaining_ms() == 2000 and not budget.exhausted()
    assert budget.clip(800) == 800
    clock.now += 1.7
    assert budget.clip(800) == 300  # never waits past the budget
    clock.now += 0.3
    assert budget.clip(800) == 0
    assert budget.exhausted()
    clock.now += 5
    assert budget.remaining_ms() == 0
