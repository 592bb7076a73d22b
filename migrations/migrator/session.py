"""A migration's own session settings: the timeouts a file sets with ``SET``.

The runner bounds every statement with its own ``lock_timeout`` (and, in online runs, its
statement bound); a file may only tighten those. ``timeout_setting`` reads one statement's
SQL as the file has it (its literals matter: ``'5s'``) and says which timeout it sets, and
to what; ``tighter`` is what a statement then runs under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIMEOUTS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
SET_TIMEOUT = re.compile(
    r"^\s*set\s+(?:(?P<scope>session|local)\s+)?(?P<name>" + "|".join(TIMEOUTS) + r")"
    r"\s*(?:=|\bto\b)\s*(?P<value>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
RESET_TIMEOUT = re.compile(
    r"^\s*reset\s+(?P<name>" + "|".join(TIMEOUTS) + r")\s*;?\s*$", re.IGNORECASE
)
VALUE = re.compile(r"^'?\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?\s*'?$")


@dataclass(frozen=True)
class TimeoutSetting:
    """A file's SET (or RESET) of one timeout: ``ms`` is None for DEFAULT/RESET (the
    runner's own value) and 0 for "no limit", as PostgreSQL reads 0."""

    name: str
    ms: int | None
    local: bool
    raw: str


def milliseconds(value: str) -> int | None:
    """PostgreSQL's reading of a timeout VALUE in ms (a bare number is ms); None for
    DEFAULT; ValueError when it is not a timeout PostgreSQL would take."""
    text = value.strip().lower()
    if text == "default":
        return None
    match = VALUE.match(text)
    if not match:
        raise ValueError(f"not a timeout: {value}")
    return round(float(match["number"]) * UNITS_MS[match["unit"] or "ms"])


def timeout_setting(sql: str) -> TimeoutSetting | None:
    """The timeout SQL (one statement) sets or resets; None when it sets none of them.
    ValueError when it sets one to a value that is not a timeout."""
    if reset := RESET_TIMEOUT.match(sql):
        return TimeoutSetting(reset["name"].lower(), None, False, "reset")
    match = SET_TIMEOUT.match(sql)
    if not match:
        return None
    raw = match["value"].strip()
    return TimeoutSetting(
        match["name"].lower(), milliseconds(raw), (match["scope"] or "").lower() == "local", raw
    )


def tighter(runner_ms: int, file_ms: int | None) -> int:
    """The timeout a statement runs under: the runner's RUNNER_MS (0: none) unless the
    file's FILE_MS is tighter; a file's 0 (no limit) or DEFAULT never loosens it."""
    if not file_ms:
        return runner_ms
    if not runner_ms:
        return file_ms
    return min(runner_ms, file_ms)
