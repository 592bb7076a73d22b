"""``python -m migrator lint``: catch unsafe migrations before they reach production.

Two passes over each file, both reported in one list sorted by file and line:

- squawk (PyPI ``squawk-cli``), the reference PostgreSQL migration linter, with the
  project's config ``migrations/squawk.toml`` (rules that conflict with this design are
  excluded there, each with its reason);
- the project's own rules below, run on the SQL text with comments and string literals
  blanked out, one statement at a time.

Each file is also classified ``online`` (the running release keeps serving while it runs)
or ``offline``, with the line and reason of each statement that makes it offline; see
``classify``. ``lint_results`` gives both per file, for the text and the JSON output.

Each finding reads ``file:line: rule-id: message — safe alternative: ...``; squawk's rule ids
are prefixed ``squawk/``. A lint that could not run (squawk missing or failing) is a
failure, never a pass.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from migrator.exitcodes import ExitCode
from migrator.files import FILENAME, Migration
from migrator.lockrules import BY_NAME, LockRule, action_rule, split_top_level, statement_rule
from migrator.session import timeout_setting
from migrator.sql import blank, bodies, statement_spans
from migrator.volatility import declared_volatility, expression_volatility

CONFIG = Path(__file__).resolve().parent.parent / "squawk.toml"
SQUAWK_TIMEOUT = 120
BACKFILL = "move data changes to a batched backfill job (migrations/backfills/)"


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str
    alternative: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.rule}: {self.message}"
            f" — safe alternative: {self.alternative}"
        )


# --- SQL text -----------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    line: int  # 1-based line of the statement's first character in the file
    text: str  # lower-cased, whitespace collapsed, comments and literals blanked
    start: int  # offsets of the statement in the file's SQL
    end: int


def statements(sql: str) -> Iterator[Statement]:
    text = blank(sql)
    for start, end in statement_spans(sql):
        chunk = text[start:end]
        stripped = chunk.lstrip()
        offset = start + len(chunk) - len(stripped)
        yield Statement(
            line=text.count("\n", 0, offset) + 1,
            text=" ".join(stripped.lower().split()),
            start=start,
            end=end,
        )


NAME = r'(?:"[^"]+"|[a-z_][a-z0-9_$]*)'
QUALIFIED = rf"{NAME}(?:\s*\.\s*{NAME})?"
ALTER_TABLE = re.compile(
    rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?P<table>{QUALIFIED})\s*\*?\s+(?P<rest>.*)$"
)
CREATE_TABLE = re.compile(
    r"^create\s+(?:(?:global|local)\s+)?(?:(?:temp|temporary|unlogged)\s+)?table\s+"
    rf"(?:if\s+not\s+exists\s+)?(?P<table>{QUALIFIED})"
)
CREATE_INDEX = re.compile(
    r"^create\s+(?:unique\s+)?index\s+(?P<concurrently>concurrently\s+)?"
    rf"(?:(?:if\s+not\s+exists\s+)?{NAME}\s+)?on\s+(?:only\s+)?(?P<table>{QUALIFIED})"
)
CONCURRENTLY = re.compile(
    r"^(?:create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently"
    r"|reindex\b.*\bconcurrently\b|alter\s+table\b.*\bdetach\s+partition\b.*\bconcurrently\b)"
)
ADD_COLUMN = re.compile(
    r"^add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?"
    rf"(?!(?:constraint|primary|unique|check|foreign|exclude)\b)(?P<column>{NAME})\s+(?P<rest>.*)$"
)
ADD_CONSTRAINT = re.compile(
    rf"^add\s+(?:constraint\s+(?P<name>{NAME})\s+)?"
    r"(?P<kind>check|foreign\s+key|unique|primary\s+key|exclude)\b(?P<rest>.*)$"
)
NOT_NULL_CHECK = re.compile(rf"^\s*\(\s*\(?\s*(?P<column>{NAME})\s+is\s+not\s+null\s*\)?\s*\)")
ALTER_COLUMN = re.compile(rf"^alter\s+(?:column\s+)?(?P<column>{NAME})\s+(?P<rest>.*)$")
DROP_COLUMN = re.compile(
    rf"^drop\s+(?:column\s+)?(?:if\s+exists\s+)?(?!constraint\b)(?P<column>{NAME})"
)
RENAME = re.compile(
    rf"^rename\s+(?:(?P<to>to)\s+(?P<new>{NAME})|(?:column\s+)?(?!constraint\b)(?P<column>{NAME})\s+to\b)"
)
# Where a column's DEFAULT expression ends: the next clause of the column definition.
DEFAULT_END = re.compile(
    r"\b(?:not\s+null|null|check|references|unique|primary\s+key|generated|constraint"
    r"|collate)\b"
)
REWRITING_COLUMN = re.compile(
    r"\b(?:primary\s+key|unique|(?:small|big)?serial[248]?|generated\s+.*\bstored|"
    r"generated\s+(?:always|by\s+default)\s+as\s+identity)\b"
)


ROUTINE = re.compile(r"^create\s+(?:or\s+replace\s+)?(?:function|procedure)\b")
# What a DO block or routine body may not run unseen: writes, DDL, dynamic SQL, calls.
HIDDEN_CHANGE = re.compile(
    r"\b(?:insert\s+into|update\s+\S+\s+set|delete\s+from|merge\s+into|truncate|copy"
    r"|alter|drop|create|grant|revoke|comment\s+on|reindex|cluster|vacuum|lock\s+table"
    r"|execute|call|perform)\b"
)
# A migration's top-level SELECT of a function is there for what the function does.
SELECT_CALL = re.compile(rf"^select\s+(?:(?:all|distinct)\s+)?({QUALIFIED})\s*\(")
TYPE_CHANGE = re.compile(r"^(?:set\s+data\s+)?type\s+(?P<type>.*)$")


def volatile_default(rest: str, schema: Schema) -> str:
    """The function that makes the DEFAULT of the column definition REST volatile, by the
    catalog's volatility (and the functions earlier statements created); "" when there is
    no default or it is not volatile."""
    default = re.search(r"\bdefault\b(?P<expr>.*)", rest)
    if not default:
        return ""
    expression = DEFAULT_END.split(default["expr"], maxsplit=1)[0]
    volatility, function = expression_volatility(expression, schema.functions)
    return (function or "an unknown function") if volatility == "volatile" else ""


def table_name(raw: str) -> str:
    """``public."Call_Log"`` and ``call_log`` name the same table for the lint."""
    return raw.replace('"', "").replace(" ", "").split(".")[-1]


STRING_TYPE = re.compile(
    r"^(?:text|(?:character\s+varying|varchar)(?:\s*\(\s*(?P<length>\d+)\s*\))?)(?![\w\[(])"
)


def string_width(sql_type: str) -> float | None:
    """The longest value a text/varchar type holds (inf: no limit); None for other types."""
    match = STRING_TYPE.match(sql_type.strip())
    if not match:
        return None
    return float(match["length"]) if match["length"] else float("inf")


@dataclass
class Schema:
    """What earlier statements (of earlier files, and of this file before the statement)
    established: the widths of text/varchar columns, the NOT NULL checks added and those
    validated, and the volatility of the functions they created."""

    widths: dict[tuple[str, str], float] = field(default_factory=dict)
    checks: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, name) -> col
    validated: set[tuple[str, str]] = field(default_factory=set)
    functions: dict[str, str] = field(default_factory=dict)  # name -> volatility
    checks_added: set[tuple[str, str]] = field(default_factory=set)  # every CHECK, by name
    # constraints added NOT VALID in the transaction now open
    not_valid_here: set[tuple[str, str]] = field(default_factory=set)

    def record(self, table: str, column: str, definition: str) -> None:
        key = (table, column.replace('"', ""))
        width = string_width(definition)
        if width is None:
            self.widths.pop(key, None)
        else:
            self.widths[key] = width

    def record_columns(self, table: str, columns: str) -> None:
        """The columns of a CREATE TABLE's column list COLUMNS."""
        for part in split_top_level(columns):
            if column := TABLE_COLUMN.match(part):
                self.record(table, column["column"], column["rest"])

    def record_constraint(self, table: str, name: str, rest: str) -> None:
        """An added CHECK constraint NAME (REST: what follows CHECK) that proves a column
        NOT NULL, validated unless NOT VALID."""
        proof = NOT_NULL_CHECK.match(rest)
        if proof and name:
            self.checks[(table, name)] = proof["column"].replace('"', "")
            if not re.search(r"\bnot\s+valid\b", rest):
                self.validated.add((table, name))

    def proves_not_null(self, table: str, column: str) -> bool:
        return any(
            key in self.validated
            for key, checked in self.checks.items()
            if key[0] == table and checked == column
        )


# --- project rules ------------------------------------------------------------------


@dataclass
class Context:
    """What the project rules know from earlier statements (``schema``, recorded statement
    by statement as the rules read them) and the constraints added NOT VALID in the
    transaction now open: this file's, when wrapped."""

    schema: Schema = field(default_factory=Schema)
    not_valid_here: set[tuple[str, str]] = field(default_factory=set)


Hit = tuple[str, str, str]  # rule, message, alternative


def check_data_change(text: str) -> Iterator[Hit]:
    first = text.split(" ", 1)[0]
    changes = first in ("update", "delete", "truncate", "copy", "merge")
    changes |= first == "insert" and re.search(r"\bselect\b", text) is not None
    changes |= first == "with" and re.search(r"\b(?:update|delete|insert)\b", text) is not None
    if changes:
        yield (
            "data-change",
            f"{first.upper()} changes data inside the migration (row locks and one long"
            " transaction on a live table)",
            f"{BACKFILL}; or, if this file must change data, declare"
            " `-- allow: data-change because ...`",
        )


def check_alter_table(text: str, created: set[str], context: Context) -> Iterator[Hit]:
    match = ALTER_TABLE.match(text)
    if not match:
        return
    table = table_name(match["table"])
    new_table = table in created
    for action in split_top_level(match["rest"]):
        if column := DROP_COLUMN.match(action):
            yield (
                "drop-column",
                f"drops column {column['column']} of {table}; running code still reads it",
                "expand/contract: deploy code that no longer uses the column first, then"
                " drop it in a later migration with `-- allow: drop-column because ...`",
            )
            continue
        if rename := RENAME.match(action):
            what = f"table {table}" if rename["to"] else f"column {rename['column']}"
            rule = "rename-table" if rename["to"] else "rename-column"
            yield (
                rule,
                f"renames {what}; running code still uses the old name",
                "expand/contract: add the new one, write to both and backfill, move the"
                f" readers, then drop the old one later (`-- allow: {rule} because ...` only"
                " once no code uses the old name)",
            )
            continue
        if column := ADD_COLUMN.match(action):
            context.schema.record(table, column["column"], column["rest"])
        if new_table:
            continue  # a table created in this file is empty and unused: locks are free
        if column := ADD_COLUMN.match(action):
            yield from check_add_column(column["column"], column["rest"], table, context)
        elif constraint := ADD_CONSTRAINT.match(action):
            yield from check_add_constraint(constraint, table, context)
        elif validate := re.match(rf"^validate\s+constraint\s+(?P<name>{NAME})", action):
            yield from check_validate(table, validate["name"].replace('"', ""), context)
        elif re.match(r"^set\s+(?:tablespace|logged|unlogged)\b", action):
            yield (
                "table-rewrite",
                f"{action.split(' (')[0].upper()} rewrites {table} under ACCESS EXCLUSIVE",
                "leave it out of the migration; if it is really needed, plan a maintenance"
                " window or pg_repack",
            )
        elif altered := ALTER_COLUMN.match(action):
            yield from check_alter_column(altered["column"], altered["rest"], table, context)


def check_add_column(column: str, rest: str, table: str, context: Context) -> Iterator[Hit]:
    function = volatile_default(rest, context.schema)
    if not function and re.search(r"\bdefault\b", rest):
        yield ("volatile-default", "", "")  # stored once in the catalog: cleared
    if function:
        yield (
            "volatile-default",
            f"adds {table}.{column} with a volatile default ({function}): every existing row"
            " gets its own computed value, a table rewrite under ACCESS EXCLUSIVE",
            "add the column without a default (or with a constant or a stable expression such"
            " as now()), backfill, then set the default",
        )
    if found := REWRITING_COLUMN.search(rest):
        what = found[0].upper()
        if what.startswith("GENERATED"):
            what = "GENERATED ... STORED" if what.endswith("STORED") else "GENERATED ... IDENTITY"
        yield (
            "add-column-rewrite",
            f"adds {table}.{column} with {what}: fills every row or builds an index"
            " while holding ACCESS EXCLUSIVE",
            "add a plain nullable column, backfill it in batches, CREATE UNIQUE INDEX"
            " CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX (or set the default to a"
            " sequence afterwards)",
        )


def check_add_constraint(constraint: re.Match[str], table: str, context: Context) -> Iterator[Hit]:
    kind = " ".join(constraint["kind"].split())
    rest = constraint["rest"]
    not_valid = re.search(r"\bnot\s+valid\b", rest) is not None
    name = (constraint["name"] or "").replace('"', "")
    if not_valid and name:
        context.not_valid_here.add((table, name))
    if kind == "check":
        context.schema.record_constraint(table, name, rest)
    if kind in ("check", "foreign key") and not not_valid:
        yield (
            "constraint-not-valid",
            f"adds a {kind.upper()} constraint on {table} without NOT VALID: scans the whole"
            " table while blocking writes",
            "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a"
            " later migration (in its own transaction it does not block writes)",
        )
    elif kind in ("unique", "primary key") and not re.search(r"\busing\s+index\b", rest):
        yield (
            "constraint-builds-index",
            f"adds a {kind.upper()} constraint on {table}: builds its index under ACCESS EXCLUSIVE",
            "CREATE UNIQUE INDEX CONCURRENTLY (own migration, `-- transaction: false`), then"
            f" ADD CONSTRAINT ... {kind.upper()} USING INDEX",
        )


def check_validate(table: str, name: str, context: Context) -> Iterator[Hit]:
    context.schema.validated.add((table, name))
    if (table, name) in context.not_valid_here:
        yield (
            "constraint-not-valid",
            f"validates {name} in the transaction that added it NOT VALID: the ADD's lock,"
            f" which blocks writes to {table}, is held while VALIDATE scans the table",
            "move ALTER TABLE ... VALIDATE CONSTRAINT to a later migration (in its own"
            " transaction it does not block writes)",
        )


def check_alter_column(column: str, rest: str, table: str, context: Context) -> Iterator[Hit]:
    column = column.replace('"', "")
    if typed := TYPE_CHANGE.match(rest):
        widened = widens(context.schema, table, column, typed["type"])
        context.schema.record(table, column, typed["type"])
        if widened:
            yield ("column-type-change", "", "")  # no rewrite: cleared
            return
        yield (
            "column-type-change",
            f"changes the type of {table}.{column}: rewrites the table (and its indexes)"
            " under ACCESS EXCLUSIVE",
            "expand/contract: add a new column of the new type, backfill it in batches,"
            " switch the code, then drop the old column",
        )
    elif re.match(r"^set\s+not\s+null\b", rest):
        if context.schema.proves_not_null(table, column):
            yield ("set-not-null", "", "")  # PostgreSQL skips the scan: cleared
            return
        yield (
            "set-not-null",
            f"SET NOT NULL on {table}.{column} scans the whole table under ACCESS EXCLUSIVE",
            f"add CHECK ({column} IS NOT NULL) NOT VALID; in a later migration VALIDATE"
            " CONSTRAINT, then SET NOT NULL (PostgreSQL then skips the scan)",
        )


def check_opaque_code(statement: Statement, sql: str) -> Iterator[Hit]:
    """DO blocks, CALL, a SELECT of a function, and function bodies: code the lint cannot
    follow statement by statement."""
    text = statement.text
    called = SELECT_CALL.match(text)
    if called or re.match(r"^call\b", text):
        what = f"SELECT runs {called[1]}()" if called else "CALL runs a procedure"
        yield (
            "do-block",
            f"{what} whose statements the lint cannot see",
            "write the routine's statements into the migration, or declare"
            " `-- allow: do-block because ...`",
        )
        return
    is_do = re.match(r"^do\b", text) is not None
    if not (is_do or ROUTINE.match(text)):
        return
    hidden = [
        found[0]
        for body in bodies(sql, statement.start, statement.end)
        if (found := HIDDEN_CHANGE.search(" ".join(blank(body).lower().split())))
    ]
    if not hidden:
        return
    what = "a DO block" if is_do else "a function or procedure body"
    yield (
        "do-block" if is_do else "function-body",
        f"{what} runs {hidden[0].split()[0].upper()}, which changes data or schema out of the"
        " lint's sight (it cannot check locks, rewrites or row counts inside it)",
        "write the statements out in the migration (data changes in a backfill job), or"
        f" declare `-- allow: {'do-block' if is_do else 'function-body'} because ...`",
    )


def check_session_timeout(sql: str, text: str) -> Iterator[Hit]:
    """A file that switches the lock bound off expects an unbounded lock wait, the very
    wait that queues live traffic behind a migration; the runner will not give it."""
    try:
        setting = timeout_setting(sql)
    except ValueError:
        return  # PostgreSQL refuses the value itself
    if setting is not None and setting.name == "lock_timeout" and setting.ms == 0:
        yield (
            "lock-timeout-off",
            f"{shown(text)} switches the lock bound off: the file expects to wait for its"
            " locks for as long as it takes, behind live traffic, and the runner keeps its"
            " own lock_timeout anyway",
            "remove the SET: the runner bounds every lock wait and retries; a file may set"
            " a tighter lock_timeout, never a looser one",
        )


def check_statement(  # noqa: PLR0911 - one return per statement kind
    statement: Statement, migration: Migration, created: set[str], context: Context
) -> Iterator[Hit]:
    text = statement.text
    yield from check_data_change(text)
    yield from check_opaque_code(statement, migration.sql)
    if CONCURRENTLY.match(text) and migration.transactional:
        yield (
            "concurrently-in-transaction",
            "CONCURRENTLY cannot run inside a transaction, and the runner wraps this file in one",
            "set `-- transaction: false` in the header and keep the statement in its own migration",
        )
    if created_table := CREATE_TABLE.match(text):
        table = table_name(created_table["table"])
        created.add(table)
        context.schema.record_columns(table, column_list(text, created_table.end()))
        return
    if declared := declared_volatility(text):
        context.schema.functions[declared[0]] = declared[1]
    yield from check_session_timeout(migration.sql[statement.start : statement.end], text)
    if re.match(r"^drop\s+table\b", text):
        yield (
            "drop-table",
            "drops a table; running code may still use it and the data is gone",
            "expand/contract: deploy code that no longer uses the table first, then drop"
            " it in a later migration with `-- allow: drop-table because ...`",
        )
        return
    if text.startswith("alter table"):
        yield from check_alter_table(text, created, context)
        return
    if index := CREATE_INDEX.match(text):
        if not index["concurrently"] and table_name(index["table"]) not in created:
            yield (
                "index-not-concurrent",
                f"CREATE INDEX on {table_name(index['table'])} blocks writes while it builds",
                "CREATE INDEX CONCURRENTLY in its own migration with `-- transaction: false`",
            )
        return
    if re.match(r"^reindex\b", text) and not re.search(r"\bconcurrently\b", text):
        yield (
            "reindex-not-concurrent",
            "REINDEX blocks writes (and reads using the index) while it rebuilds",
            "REINDEX ... CONCURRENTLY in its own migration with `-- transaction: false`",
        )
        return
    if re.match(r"^cluster\b", text):
        yield (
            "cluster",
            "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
            "leave the physical order alone, or run pg_repack outside the migration",
        )
        return
    if re.match(r"^vacuum\b", text) and re.search(r"\bfull\b", text):
        yield (
            "vacuum-full",
            "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
            "rely on (auto)vacuum, or run pg_repack outside the migration",
        )
        return
    if re.match(r"^lock\b", text):
        yield (
            "lock-table",
            "LOCK TABLE holds an explicit lock until the migration's transaction ends",
            "drop the LOCK: the runner takes each lock with a short lock_timeout and retries",
        )


@dataclass(frozen=True)
class Verdict:
    """A project rule's word on one statement: a finding, or ``cleared`` (judged safe)."""

    statement: Statement
    rule: str
    message: str
    alternative: str

    @property
    def cleared(self) -> bool:
        return not self.message


def project_verdicts(migration: Migration, context: Context) -> list[Verdict]:
    created: set[str] = set()
    verdicts = []
    context.not_valid_here.clear()
    for statement in statements(migration.sql):
        if not migration.transactional:
            context.not_valid_here.clear()  # each statement commits on its own
        verdicts += [
            Verdict(statement, *hit)
            for hit in check_statement(statement, migration, created, context)
        ]
    return verdicts


def earlier_files(migrations: Iterable[Migration]) -> list[Migration]:
    """Version files next to the linted ones that come before them and are not linted.

    They can already have added and validated a NOT NULL check that a linted SET NOT NULL
    relies on.
    """
    linted = {m.path.resolve() for m in migrations}
    newest = max((m.version for m in migrations), default=0)
    found = {}
    for directory in {m.path.resolve().parent for m in migrations}:
        for path in sorted(directory.glob("*.sql")):
            match = FILENAME.match(path.name)
            if not match or path in linted or int(match["version"]) >= newest:
                continue
            try:
                sql = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            version = int(match["version"])
            found[path] = Migration(version, match["slug"], path, sql, "")
    return list(found.values())


# --- online / offline ---------------------------------------------------------------
#
# A migration is online when the release still running can keep serving while it runs. Each
# statement's class comes from its row of the lock table (migrator/lockrules.py), refined
# by what earlier statements established (a default's volatility, a varchar's width, a
# validated NOT NULL check); a statement no row knows is offline. Anything done to a table
# created earlier in the same file is online: nothing uses that table yet.

ONLINE, OFFLINE = "online", "offline"
TABLE_COLUMN = re.compile(
    r"^(?!(?:constraint|primary|unique|check|foreign|exclude|like)\b)"
    rf"(?P<column>{NAME})\s+(?P<rest>.*)$"
)
DATA_CHANGE = re.compile(
    rf"^(?:insert\s+into|update(?:\s+only)?|delete\s+from(?:\s+only)?)\s+(?P<table>{QUALIFIED})"
)


def widens(schema: Schema, table: str, column: str, new_type: str) -> bool:
    """True when the new type only widens a known text/varchar column (no rewrite)."""
    old = schema.widths.get((table, column.replace('"', "")))
    if old is None or re.search(r"\b(?:using|collate)\b", new_type):
        return False
    return (string_width(new_type) or 0) >= old


@dataclass(frozen=True)
class Reason:
    line: int
    why: str


@dataclass(frozen=True)
class Classification:
    kind: str  # ONLINE or OFFLINE
    reasons: tuple[Reason, ...] = ()  # why it is offline; empty when online
    notes: tuple[Reason, ...] = ()  # what an online file should know (the runner's bounds)


def column_list(text: str, start: int) -> str:
    """The text inside the parentheses that open after ``start`` (a CREATE TABLE's columns)."""
    opening = text.find("(", start)
    depth = 0
    for i in range(max(opening, 0), len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if opening != -1 and depth == 0:
            return text[opening + 1 : i]
    return ""


def refined_action(rule: LockRule, action: str, table: str, schema: Schema) -> LockRule:
    """RULE, or the row that refines it by what SCHEMA knows; records what ACTION
    establishes for the statements after it."""
    if column := ADD_COLUMN.match(action):
        schema.record(table, column["column"], column["rest"])
        if rule.name == "add-column" and volatile_default(column["rest"], schema):
            return BY_NAME["add-column-volatile-default"]
    elif altered := ALTER_COLUMN.match(action):
        return refined_column_change(rule, altered["column"], altered["rest"], table, schema)
    else:
        return refined_constraint_change(rule, action, table, schema)
    return rule


def refined_column_change(
    rule: LockRule, column: str, rest: str, table: str, schema: Schema
) -> LockRule:
    if rule.name == "alter-column-type":
        typed = TYPE_CHANGE.match(rest)
        new_type = typed["type"] if typed else ""
        widened = widens(schema, table, column, new_type)
        schema.record(table, column, new_type)
        if widened:
            return BY_NAME["alter-column-type-widen"]
    elif rule.name == "set-not-null" and schema.proves_not_null(table, column.replace('"', "")):
        return BY_NAME["set-not-null-proven"]
    return rule


CONSTRAINT_NAMED = re.compile(
    rf"^(?:validate|drop)\s+constraint\s+(?:if\s+exists\s+)?(?P<name>{NAME})"
)


def refined_constraint_change(rule: LockRule, action: str, table: str, schema: Schema) -> LockRule:
    if constraint := ADD_CONSTRAINT.match(action):
        name = (constraint["name"] or "").replace('"', "")
        if re.search(r"\bnot\s+valid\b", constraint["rest"]):
            schema.not_valid_here.add((table, name))
        if " ".join(constraint["kind"].split()) == "check":
            schema.checks_added.add((table, name))
            schema.record_constraint(table, name, constraint["rest"])
    elif named := CONSTRAINT_NAMED.match(action):
        key = (table, named["name"].replace('"', ""))
        if rule.name == "validate-constraint":
            schema.validated.add(key)
            if key in schema.not_valid_here:
                return BY_NAME["validate-in-adding-transaction"]
        elif rule.name == "drop-constraint" and key in schema.checks_added:
            return BY_NAME["drop-check"]
    return rule


def shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def offline_reason(rule: LockRule | None, what: str) -> str | None:
    """Why WHAT (a statement or an ALTER TABLE action) is offline by its row RULE; None
    when it is online."""
    if rule is None:
        return f"{shown(what)}: not in the lock table, so it counts as offline"
    if rule.kind == ONLINE:
        return None
    lock = f"{rule.lock}, " if rule.lock else ""
    return f"{shown(what)}: {rule.why} ({lock}{rule.name})"


def alter_table_reasons(table: str, rest: str, created: set[str], schema: Schema) -> Iterator[str]:
    for action in split_top_level(rest):
        found = action_rule(action)
        rule = found and refined_action(found, action, table, schema)
        if table in created:
            continue  # a table made in this file is not in use yet
        if why := offline_reason(rule, f"ALTER TABLE {table} {action}"):
            yield why


def statement_reasons(text: str, created: set[str], schema: Schema) -> Iterator[str]:
    """Why one statement other than ALTER TABLE would make its migration offline."""
    if created_table := CREATE_TABLE.match(text):
        table = table_name(created_table["table"])
        created.add(table)
        schema.record_columns(table, column_list(text, created_table.end()))
        return
    if declared := declared_volatility(text):
        schema.functions[declared[0]] = declared[1]
    index = CREATE_INDEX.match(text)
    target = index or DATA_CHANGE.match(text)
    if target and table_name(target["table"]) in created:
        return
    if why := offline_reason(statement_rule(text), text):
        yield why


def session_note(sql: str) -> str | None:
    """What a file's SET of a timeout (SQL: the statement as written) is worth: the
    runner's bounds apply whatever it sets, so it can only tighten them."""
    try:
        setting = timeout_setting(sql)
    except ValueError:
        return None
    if setting is None:
        return None
    return (
        f"{setting.name} {setting.raw} is held to the runner's bound (a file can only tighten it)"
    )


def classify(migration: Migration, schema: Schema | None = None) -> Classification:
    """Online or offline, with the line and reason of each statement that makes it offline.

    ``schema`` carries what the earlier files established (pass the same one through the
    files in version order): a varchar widened here is known to need no rewrite, a NOT NULL
    check validated earlier lets SET NOT NULL through, a function created earlier has the
    volatility it declared.
    """
    schema = Schema() if schema is None else schema
    created: set[str] = set()
    reasons, notes = [], []
    if migration.offline_line:
        reasons.append(Reason(migration.offline_line, "the header declares `-- class: offline`"))
    schema.not_valid_here.clear()
    for statement in statements(migration.sql):
        if not migration.transactional:
            schema.not_valid_here.clear()  # each statement commits on its own
        if altered := ALTER_TABLE.match(statement.text):
            found = alter_table_reasons(
                table_name(altered["table"]), altered["rest"], created, schema
            )
        else:
            found = statement_reasons(statement.text, created, schema)
        reasons += [Reason(statement.line, why) for why in found]
        if note := session_note(migration.sql[statement.start : statement.end]):
            notes.append(Reason(statement.line, note))
    return Classification(OFFLINE if reasons else ONLINE, tuple(reasons), tuple(notes))


# --- squawk -------------------------------------------------------------------------


class SquawkUnavailable(RuntimeError):
    """Squawk is missing or failed; the message says what to do."""


def find_squawk() -> str | None:
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return str(beside)
    return shutil.which("squawk")


# The project rules that cover the same concern as a squawk rule. The project rule decides:
# it knows the earlier files, the header's opt-ins and the changes PostgreSQL makes without
# a rewrite, so squawk's finding is dropped on a statement one of them judged.
SQUAWK_SAME_AS: dict[str, tuple[str, ...]] = {
    "ban-drop-column": ("drop-column",),
    "ban-drop-table": ("drop-table",),
    "renaming-column": ("rename-column",),
    "renaming-table": ("rename-table",),
    "changing-column-type": ("column-type-change",),
    "adding-not-nullable-field": ("set-not-null",),
    "setting-not-nullable-field": ("set-not-null",),
    "adding-foreign-key-constraint": ("constraint-not-valid",),
    "constraint-missing-not-valid": ("constraint-not-valid", "constraint-builds-index"),
    "adding-serial-primary-key-field": ("constraint-builds-index", "add-column-rewrite"),
    "disallowed-unique-constraint": ("constraint-builds-index", "add-column-rewrite"),
    "require-concurrent-index-creation": ("index-not-concurrent",),
    "require-concurrent-reindex": ("reindex-not-concurrent",),
    "ban-concurrent-index-creation-in-transaction": ("concurrently-in-transaction",),
    "adding-field-with-default": ("volatile-default", "add-column-rewrite"),
}


@dataclass(frozen=True)
class SquawkHit:
    path: str
    line: int  # 1-based
    rule: str
    message: str
    help: str


def run_squawk(squawk: str, migrations: list[Migration]) -> list[SquawkHit]:
    if not CONFIG.is_file():
        raise SquawkUnavailable(f"lint: squawk config {CONFIG} is missing")
    found = []
    for in_transaction in (True, False):
        group = [m for m in migrations if m.transactional == in_transaction]
        if not group:
            continue
        mode = "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"
        command = [squawk, "--config", str(CONFIG), "--reporter", "json", mode]
        try:
            result = subprocess.run(
                [*command, *(str(m.path) for m in group)],
                capture_output=True,
                text=True,
                timeout=SQUAWK_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SquawkUnavailable(f"lint: squawk could not run: {error}") from error
        try:
            reported = json.loads(result.stdout)
        except json.JSONDecodeError:
            reported = None
        if result.returncode not in (0, 1) or not isinstance(reported, list):
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise SquawkUnavailable(
                f"lint: squawk failed (exit {result.returncode})"
                + (f": {detail[0]}" if detail else "")
            )
        for item in reported:
            rule = item.get("rule_name") or "unknown"
            found.append(
                SquawkHit(
                    item["file"],
                    int(item.get("line") or 0) + 1,  # squawk's JSON lines count from 0
                    rule,
                    " ".join(str(item.get("message", "")).split()),
                    " ".join((item.get("help") or f"see https://squawkhq.com/docs/{rule}").split()),
                )
            )
    return found


def statement_at(sql: str, parsed: list[Statement], line: int) -> Statement | None:
    """The statement of PARSED (the statements of SQL) that spans ``line``."""
    for statement in parsed:
        last = sql.count("\n", 0, statement.end) + 1
        if statement.line <= line <= last:
            return statement
    return None


def squawk_findings(
    migration: Migration, hits: list[SquawkHit], verdicts: list[Verdict], label: str
) -> list[Finding]:
    """Squawk's findings on one file less the opted-out ones and those a project rule judged."""
    judged = {(verdict.statement.start, verdict.rule) for verdict in verdicts}
    parsed = list(statements(migration.sql)) if hits else []  # once per file, not per hit
    found = []
    for hit in hits:
        same_as = SQUAWK_SAME_AS.get(hit.rule, ())
        if {f"squawk/{hit.rule}", *same_as} & migration.allow:
            continue
        statement = statement_at(migration.sql, parsed, hit.line)
        if statement and any((statement.start, rule) in judged for rule in same_as):
            continue
        found.append(Finding(label, hit.line, f"squawk/{hit.rule}", hit.message, hit.help))
    return found


# --- entry point --------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """One linted file: its class, its findings and the rules it opts out of."""

    file: str
    migration: Migration
    classification: Classification
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> str:
        return "refused" if self.findings else "accepted"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "version": self.migration.version,
            "checksum": self.migration.checksum,
            "verdict": self.verdict,
            "class": self.classification.kind,
            "class_reasons": [
                {"line": reason.line, "reason": reason.why}
                for reason in self.classification.reasons
            ],
            "class_notes": [
                {"line": note.line, "note": note.why} for note in self.classification.notes
            ],
            "findings": [
                {
                    "line": finding.line,
                    "rule": finding.rule,
                    "message": finding.message,
                    "alternative": finding.alternative,
                }
                for finding in self.findings
            ],
            "allows": [
                {"line": allow.line, "rule": allow.rule, "reason": allow.reason}
                for allow in self.migration.allows
            ],
        }


def project_findings(migration: Migration, verdicts: list[Verdict], label: str) -> list[Finding]:
    return [
        Finding(label, verdict.statement.line, verdict.rule, verdict.message, verdict.alternative)
        for verdict in verdicts
        if not verdict.cleared and verdict.rule not in migration.allow
    ]


def lint_results(migrations: list[Migration]) -> list[FileResult]:
    """Class, sorted findings and opt-ins of each given migration, in version order.

    Raises SquawkUnavailable when squawk is missing or fails: the lint did not run.
    """
    squawk = find_squawk()
    if squawk is None:
        raise SquawkUnavailable(
            "lint: squawk not found; install it with `pip install squawk-cli`"
            " (see requirements.txt): a lint that cannot run does not pass"
        )
    hits = run_squawk(squawk, migrations)
    linted = {str(m.path) for m in migrations}
    context, schema = Context(), Schema()
    results = []
    for migration in sorted([*earlier_files(migrations), *migrations], key=lambda m: m.version):
        verdicts = project_verdicts(migration, context)
        classification = classify(migration, schema)
        label = str(migration.path)
        if label not in linted:
            continue
        own = [hit for hit in hits if hit.path == label]
        findings = [
            *project_findings(migration, verdicts, label),
            *squawk_findings(migration, own, verdicts, label),
        ]
        results.append(FileResult(label, migration, classification, tuple(sorted(findings))))
    return results


def run_lint(migrations: list[Migration], out: TextIO) -> int:
    """Lint the given migrations; print findings and a summary; LINT_FINDINGS on any."""
    try:
        results = lint_results(migrations)
    except SquawkUnavailable as error:
        print(error, file=out)
        return ExitCode.LINT_FINDINGS
    findings = sorted(finding for result in results for finding in result.findings)
    for finding in findings:
        print(finding, file=out)
    files = sum(1 for result in results if result.findings)
    print(
        f"lint: {len(findings)} finding(s) in {files} of {len(migrations)} file(s) checked",
        file=out,
    )
    return ExitCode.LINT_FINDINGS if findings else ExitCode.OK
