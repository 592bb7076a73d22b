"""A migration's own session settings: the timeouts a file sets with ``SET``.

The runner bounds every statement with its own ``lock_timeout`` (and, in online runs, its
statement bound); a file may only tighten those. ``timeout_setting`` reads one statement's
SQL as the file has it (its literals matter: ``'5s'``; comments do not) and says which
timeout it sets, and to what; ``in_effect`` follows a file's SETs and RESETs statement by
statement; ``tighter`` is what a statement then runs under, and ``looser`` says when the
file asked for more than the runner gives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .sql import COMMENT, regions

TIMEOUTS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
MAX_MS = 2_147_483_647  # PostgreSQL's largest value of these timeouts (INT_MAX)
UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
SET_TIMEOUT = re.compile(
    r"^\s*set\s+(?:(?P<scope>session|local)\s+)?(?P<name>" + "|".join(TIMEOUTS) + r")"
    r"\s*(?:=|\bto\b)\s*(?P<value>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
RESET_TIMEOUT = re.compile(
    r"^\s*reset\s+(?P<name>" + "|".join(TIMEOUTS) + r")\s*;?\s*$", re.IGNORECASE
)
VALUE = re.compile(
    r"""^(?P<quote>['"]?)\s*\+?(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)"""
    r"\s*(?P<unit>us|ms|s|min|h|d)?\s*(?P=quote)$"
)


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
    ms = float(match["number"]) * UNITS_MS[match["unit"] or "ms"]
    if ms > MAX_MS:
        raise ValueError(f"not a timeout: {value} (at most {MAX_MS} ms)")
    return round(ms)


def without_comments(sql: str) -> str:
    """SQL with each comment replaced by one space (literals kept as they are)."""
    kept, cursor = [], 0
    for region in regions(sql):
        if region.kind == COMMENT:
            kept.append(sql[cursor : region.start] + " ")
            cursor = region.end
    return "".join(kept) + sql[cursor:]


def timeout_setting(sql: str) -> TimeoutSetting | None:
    """The timeout SQL (one statement) sets or resets; None when it sets none of them.
    ValueError, naming the timeout and the value, when the value is not a timeout."""
    code = without_comments(sql)
    if reset := RESET_TIMEOUT.match(code):
        return TimeoutSetting(reset["name"].lower(), None, False, "reset")
    match = SET_TIMEOUT.match(code)
    if not match:
        return None
    name, raw = match["name"].lower(), match["value"].strip()
    try:
        ms = milliseconds(raw)
    except ValueError:
        raise ValueError(f"sets {name} to {raw}, which is not a timeout") from None
    return TimeoutSetting(name, ms, (match["scope"] or "").lower() == "local", raw)


@dataclass(frozen=True)
class FileTimeout:
    """A timeout a file has set and that still holds: ``ms`` (0: no limit), as the file
    wrote it, and the line of the SET."""

    name: str
    ms: int
    raw: str
    line: int

    @property
    def shown(self) -> str:
        """The value as the file wrote it, without its quotes: ``5s``, ``0``."""
        return self.raw.strip("'")


def in_effect(
    statements: Sequence[tuple[str, int]], transactional: bool
) -> list[dict[str, FileTimeout]]:
    """For each ``(sql, line)`` of a file, the timeouts its earlier statements have set.

    As PostgreSQL reads them: a SET holds for the rest of the file; so does a SET LOCAL in
    a transactional file (one transaction), while outside a transaction it changes
    nothing; RESET or DEFAULT gives the runner's value back. ValueError naming the line
    when a file sets a timeout to a value that is not one.
    """
    current: dict[str, FileTimeout] = {}
    found = []
    for sql, line in statements:
        found.append(dict(current))
        try:
            setting = timeout_setting(sql)
        except ValueError as exc:
            raise ValueError(f"line {line} {exc}") from None
        if setting is None or (setting.local and not transactional):
            continue
        if setting.ms is None:
            current.pop(setting.name, None)
        else:
            current[setting.name] = FileTimeout(setting.name, setting.ms, setting.raw, line)
    return found


def tighter(runner_ms: int, file_ms: int | None) -> int:
    """The timeout a statement runs under: the runner's RUNNER_MS (0: none) unless the
    file's FILE_MS is tighter; a file's 0 (no limit) or DEFAULT never loosens it."""
    if not file_ms:
        return runner_ms
    if not runner_ms:
        return file_ms
    return min(runner_ms, file_ms)


def looser(runner_ms: int, file_ms: int) -> bool:
    """True when a file's FILE_MS (0: none) would loosen the runner's RUNNER_MS (0: none)."""
    return bool(runner_ms) and (file_ms == 0 or file_ms > runner_ms)
