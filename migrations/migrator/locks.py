"""Which statements of a migration block the app's queries on a table: the online bound.

In an online run (``up --online``) the previous release keeps serving while migrations
run. A statement holding ACCESS EXCLUSIVE on a table stalls every query on that table for
as long as it runs, and a plain ``CREATE INDEX`` (SHARE) stalls every write; such a
statement runs under ``statement_timeout`` = the bound, every other one under none.

The classifier reads only the head of a statement (keywords, the object's name) with
regular expressions over the text :func:`migrator.sql.split_statements` gives; comments
between the keywords are allowed. An ``ALTER TABLE`` takes the strongest lock the lock
table (:mod:`migrator.lockrules`) gives its actions, and is bounded when that lock blocks
the app's writes (an action the table does not know counts as ACCESS EXCLUSIVE): only
actions under SHARE UPDATE EXCLUSIVE (``VALIDATE CONSTRAINT``, ``SET STATISTICS``,
storage parameters, ...) run unbounded. A statement inside a ``DO`` block or a function is
not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lockrules import BLOCKING, alter_table_mode
from .sql import split_statements

# The default bound. Catalog-only changes (ADD COLUMN without a volatile default, SET
# DEFAULT, ADD CONSTRAINT ... NOT VALID, renames) hold their lock for milliseconds even on
# a busy server, so 2 s leaves them wide headroom; a statement that rewrites or scans the
# table runs far longer on any table that matters and is cancelled. The queries queued
# behind the lock then wait at most about 2 s (statement_timeout counts the statement's
# lock wait too, and a failed attempt's wait is one lock_timeout, at most half the bound),
# under the 5 s and longer timeouts common in HTTP clients and connection pools.
DEFAULT_BOUND_MS = 2000

ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
# LOCK TABLE modes that block neither reads nor writes of the app (INSERT/UPDATE/DELETE).
HARMLESS_MODES = {"ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"}

GAP = r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)"  # whitespace or a comment between two words
IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
NAME = rf"{IDENT}(?:\s*\.\s*{IDENT})?"
NAMES = rf"(?:only\s+)?{NAME}(?:\s*\*)?(?:\s*,\s*(?:only\s+)?{NAME}(?:\s*\*)?)*"


def _pattern(text: str) -> re.Pattern[str]:
    r"""Compile ``text`` with ``\s+`` / ``\s*`` read as "gap": spaces or comments."""
    gaps = re.sub(r"\\s([+*])", lambda m: GAP + m.group(1), text)
    return re.compile(rf"{GAP}*{gaps}", re.IGNORECASE | re.DOTALL)


LEADING_GAP = re.compile(rf"{GAP}*", re.DOTALL)
NAME_RE = _pattern(NAME)
ALTER_TABLE = _pattern(
    rf"alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?P<name>{NAME})(?:\s*\*)?(?P<actions>.*)$"
)
DROP_TABLE = _pattern(rf"drop\s+table\s+(?:if\s+exists\s+)?(?P<name>{NAMES})")
TRUNCATE = _pattern(rf"truncate\s+(?:table\s+)?(?P<name>{NAMES})")
LOCK_TABLE = _pattern(
    rf"lock\s+(?:table\s+)?(?P<name>{NAMES})"
    r"(?:\s+in\s+(?P<mode>[a-z\s]+?)\s+mode)?\s*(?:nowait\s*)?$"
)
CLUSTER = _pattern(rf"cluster\b(?:\s*\([^)]*\))?(?:\s+verbose\b)?(?:\s+(?P<name>{NAME}))?")
VACUUM_OPTIONS = _pattern(rf"vacuum\s*\((?P<options>[^)]*)\)\s*(?P<name>{NAMES})?")
VACUUM_FULL = _pattern(
    r"vacuum\s+full\b(?:\s+(?:freeze|verbose|analyze)\b)*"
    rf"\s*(?P<name>{NAMES})?"
)
REINDEX = _pattern(
    r"reindex(?:\s*\((?P<options>[^)]*)\))?\s+(?P<kind>index|table|schema|database|system)\b"
    rf"(?P<concurrently>\s+concurrently\b)?\s*(?P<name>{NAME})?"
)
ALTER_INDEX = _pattern(rf"alter\s+index\s+(?:if\s+exists\s+)?(?P<name>{NAME})")
ALTER_VIEW = _pattern(rf"alter\s+(?:materialized\s+)?view\s+(?:if\s+exists\s+)?(?P<name>{NAME})")
DROP_INDEX = _pattern(
    rf"drop\s+index\s+(?P<concurrently>concurrently\s+)?(?:if\s+exists\s+)?(?P<name>{NAMES})"
)
CREATE_INDEX = _pattern(
    r"create\s+(?:unique\s+)?index\s+(?P<concurrently>concurrently\s+)?"
    rf"(?:(?:if\s+not\s+exists\s+)?(?!on\b){IDENT}\s+)?on\s+(?:only\s+)?(?P<name>{NAME})"
)
REFRESH = _pattern(
    rf"refresh\s+materialized\s+view\s+(?P<concurrently>concurrently\s+)?(?P<name>{NAME})"
)
ENABLED_OPTION = r"\b{}\b(?!\s*(?:false|off|0)\b)"  # VACUUM (FULL), REINDEX (CONCURRENTLY)


@dataclass(frozen=True)
class Lock:
    """The lock a statement takes that blocks the app's queries, and why it may last."""

    mode: str  # "ACCESS EXCLUSIVE", or "SHARE" for a plain CREATE INDEX
    target: str  # what the app cannot use meanwhile: "call_log", "index call_log_idx"
    why: str  # what makes it long: "it rewrites or scans the table"


@dataclass(frozen=True)
class Step:
    """One statement of a file, the line its code starts on, and its blocking lock."""

    sql: str
    line: int
    lock: Lock | None


def _names(text: str) -> str:
    """``call_log, "Odd"`` for the table list ``ONLY call_log *, "Odd"``."""
    found = [m.group().strip() for m in NAME_RE.finditer(text)]
    names = [" ".join(name.split()) for name in found if name.lower() != "only"]
    return ", ".join(name if '"' in name else name.lower() for name in names)


def _enabled(option: str, options: str | None) -> bool:
    return bool(options) and re.search(ENABLED_OPTION.format(option), options, re.I) is not None


def _alter_table(statement: str) -> Lock | None:
    """The lock the lock table (lockrules.py) gives the statement's actions, when it blocks
    the app's writes."""
    match = ALTER_TABLE.match(statement)
    mode = alter_table_mode(statement) if match else ""
    if mode not in BLOCKING:
        return None
    return Lock(mode, _names(match["name"]), "it rewrites or scans the table")


def _drop_table(statement: str) -> Lock | None:
    match = DROP_TABLE.match(statement)
    return Lock(ACCESS_EXCLUSIVE, _names(match["name"]), "it drops the table") if match else None


def _truncate(statement: str) -> Lock | None:
    match = TRUNCATE.match(statement)
    return Lock(ACCESS_EXCLUSIVE, _names(match["name"]), "it empties the table") if match else None


def _lock_table(statement: str) -> Lock | None:
    match = LOCK_TABLE.match(statement)
    if not match:
        return None
    mode = " ".join((match["mode"] or ACCESS_EXCLUSIVE).upper().split())
    if mode in HARMLESS_MODES:
        return None
    return Lock(mode, _names(match["name"]), "it locks the table explicitly")


def _cluster(statement: str) -> Lock | None:
    match = CLUSTER.match(statement)
    if not match:
        return None
    target = _names(match["name"]) if match["name"] else "every clustered table"
    return Lock(ACCESS_EXCLUSIVE, target, "it rewrites the table")


def _vacuum_full(statement: str) -> Lock | None:
    match = VACUUM_OPTIONS.match(statement)
    if not (match and _enabled("full", match["options"])):
        match = VACUUM_FULL.match(statement)
    if not match:
        return None
    target = _names(match["name"]) if match["name"] else "every table"
    return Lock(ACCESS_EXCLUSIVE, target, "it rewrites the table (VACUUM FULL)")


def _refresh(statement: str) -> Lock | None:
    match = REFRESH.match(statement)
    if not match or match["concurrently"]:
        return None
    why = "it recomputes the materialized view without CONCURRENTLY"
    return Lock(ACCESS_EXCLUSIVE, _names(match["name"]), why)


def _create_index(statement: str) -> Lock | None:
    match = CREATE_INDEX.match(statement)
    if not match or match["concurrently"]:
        return None
    why = "it builds an index without CONCURRENTLY, and no row can be written meanwhile"
    return Lock("SHARE", _names(match["name"]), why)


def _drop_index(statement: str) -> Lock | None:
    match = DROP_INDEX.match(statement)
    if not match or match["concurrently"]:
        return None
    target = f"the table of index {_names(match['name'])}"
    return Lock(ACCESS_EXCLUSIVE, target, "it drops the index without CONCURRENTLY")


def _alter_index(statement: str) -> Lock | None:
    match = ALTER_INDEX.match(statement)
    if not match:
        return None
    return Lock(ACCESS_EXCLUSIVE, f"index {_names(match['name'])}", "it alters the index")


def _alter_view(statement: str) -> Lock | None:
    match = ALTER_VIEW.match(statement)
    if not match:
        return None
    return Lock(ACCESS_EXCLUSIVE, f"view {_names(match['name'])}", "it alters the view")


def _reindex(statement: str) -> Lock | None:
    match = REINDEX.match(statement)
    if not match or match["concurrently"] or _enabled("concurrently", match["options"]):
        return None
    kind, name = match["kind"].lower(), _names(match["name"] or "")
    targets = {
        "index": f"index {name}",
        "table": f"the indexes of {name}",
        "schema": f"the tables of schema {name}",
    }
    target = targets.get(kind, "the tables of the database")
    return Lock(ACCESS_EXCLUSIVE, target, "it rebuilds indexes without CONCURRENTLY")


# One rule per command; the commands' leading keywords differ, so at most one rule matches.
RULES = (
    _alter_table,
    _drop_table,
    _truncate,
    _lock_table,
    _cluster,
    _vacuum_full,
    _refresh,
    _create_index,
    _drop_index,
    _alter_index,
    _alter_view,
    _reindex,
)


def blocking_lock(statement: str) -> Lock | None:
    """The lock ``statement`` takes that blocks the app's queries; None when it takes none."""
    return next((lock for rule in RULES if (lock := rule(statement))), None)


def steps(sql: str) -> list[Step]:
    """The statements of a file (as ``split_statements`` cuts them), each with its line."""
    found: list[Step] = []
    cursor = 0
    for statement in split_statements(sql):
        start = sql.find(statement, cursor)  # a stripped slice of sql, at or after cursor
        cursor = start + len(statement)
        code = start + LEADING_GAP.match(statement).end()
        found.append(Step(statement, sql.count("\n", 0, code) + 1, blocking_lock(statement)))
    return found
