"""Migration files: discovery, naming rules and the header each file declares.

A file is ``versions/NNNN_slug.sql``. Its leading ``-- key: value`` comment lines are its
header, the one source of truth for what it guarantees::

    -- description: Add call timing columns to call_log
    -- adds-column: call_log.started_at timestamp
    -- adds-column: call_log.ended_at timestamp
    -- adds-column: call_log.duration_sec integer
    -- touches: call_log
    -- transaction: false
    -- allow: drop-column because no release reads call_log.duration since 0104
    -- class: offline

- ``adds-column`` (repeatable): ``table.column type``; verification checks each one.
- ``touches``: tables whose locks matter; the tables of ``adds-column`` are always included.
- ``transaction: false``: run outside a transaction (``CREATE INDEX CONCURRENTLY``).
- ``allow`` (repeatable): ``RULE because REASON``: a lint rule this file opts out of, and
  why; the reason is shown in the plan and the deploy report.
- ``class: offline``: classify the file offline whatever its statements (a file can never
  be forced online).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9][a-z0-9_]*)\.sql$")
HEADER_LINE = re.compile(r"^--\s*(?P<key>[a-z][a-z-]*)\s*:\s*(?P<value>.*?)\s*$")
IDENTIFIER = r"[a-z_][a-z0-9_]*"
COLUMN = re.compile(rf"^(?P<table>{IDENTIFIER})\.(?P<column>{IDENTIFIER})\s+(?P<type>\S.*)$")
KNOWN_KEYS = {"description", "adds-column", "touches", "transaction", "allow", "class"}
# The lint's own rules (docs/lint-rules.md); squawk's are named ``squawk/RULE``.
LINT_RULES = frozenset(
    {
        "add-column-rewrite",
        "cluster",
        "column-type-change",
        "concurrently-in-transaction",
        "constraint-builds-index",
        "constraint-not-valid",
        "data-change",
        "do-block",
        "drop-column",
        "drop-table",
        "function-body",
        "index-not-concurrent",
        "lock-table",
        "lock-timeout-off",
        "reindex-not-concurrent",
        "rename-column",
        "rename-table",
        "set-not-null",
        "table-rewrite",
        "vacuum-full",
        "volatile-default",
    }
)
ALLOW = re.compile(r"^(?P<rule>(?:squawk/)?[a-z][a-z-]*)\s+because\s+(?P<reason>\S.*)$")


class MigrationFileError(ValueError):
    """A migration file that cannot be used as it is; the message names the file."""


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    type: str


@dataclass(frozen=True)
class Allow:
    """A lint rule one file opts out of, with the reason its author gave."""

    rule: str
    reason: str
    line: int


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    checksum: str
    description: str = ""
    columns: tuple[Column, ...] = ()
    touches: tuple[str, ...] = ()
    transactional: bool = True
    allows: tuple[Allow, ...] = ()
    offline_line: int = 0  # line of a `-- class: offline` header, 0 when there is none

    @property
    def allow(self) -> frozenset[str]:
        """The rules this file opts out of."""
        return frozenset(allow.rule for allow in self.allows)

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def checksum_of(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def header_lines(sql: str) -> list[tuple[int, str, str]]:
    """(line number, key, value) of the leading ``-- key: value`` comments."""
    found = []
    for number, line in enumerate(sql.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = HEADER_LINE.match(stripped)
        if match:
            found.append((number, match["key"], match["value"]))
    return found


def parse_bool(path: Path, number: int, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise MigrationFileError(f"{path.name}:{number}: transaction must be true or false")
    return lowered == "true"


def parse_column(path: Path, number: int, value: str) -> Column:
    match = COLUMN.match(value.lower())
    if not match:
        raise MigrationFileError(f"{path.name}:{number}: adds-column wants 'table.column type'")
    return Column(match["table"], match["column"], " ".join(match["type"].split()))


def parse_list(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def parse_allow(path: Path, number: int, value: str) -> Allow:
    match = ALLOW.match(value.strip())
    if not match:
        raise MigrationFileError(
            f"{path.name}:{number}: allow wants 'RULE because REASON'"
            f" (e.g. `-- allow: drop-column because no release reads it since 0104`)"
        )
    rule = match["rule"].lower()
    if rule not in LINT_RULES and not rule.startswith("squawk/"):
        raise MigrationFileError(
            f"{path.name}:{number}: unknown lint rule {rule!r} in allow"
            f" (known: {', '.join(sorted(LINT_RULES))}, or squawk/RULE)"
        )
    return Allow(rule, " ".join(match["reason"].split()), number)


def load_migration(path: Path) -> Migration:
    """Read and check one file: name, non-empty body, well-formed header."""
    match = FILENAME.match(path.name)
    if not match:
        raise MigrationFileError(
            f"{path.name}: migration files are named NNNN_slug.sql (e.g. 0109_call_log_timing.sql)"
        )
    sql = path.read_text(encoding="utf-8")
    body = [line for line in sql.splitlines() if line.strip() and not line.strip().startswith("--")]
    if not body:
        raise MigrationFileError(f"{path.name}: the file has no SQL statement")
    description, columns, touches, transactional, allows = "", [], [], True, []
    offline_line = 0
    for number, key, value in header_lines(sql):
        if key not in KNOWN_KEYS:
            raise MigrationFileError(
                f"{path.name}:{number}: unknown header key {key!r} "
                f"(known: {', '.join(sorted(KNOWN_KEYS))})"
            )
        if key == "description":
            description = value
        elif key == "adds-column":
            columns.append(parse_column(path, number, value))
        elif key == "touches":
            touches.extend(parse_list(value))
        elif key == "transaction":
            transactional = parse_bool(path, number, value)
        elif key == "class":
            if value.lower() != "offline":
                raise MigrationFileError(
                    f"{path.name}:{number}: class can only be forced to offline"
                    " (online is what the statements earn)"
                )
            offline_line = number
        else:
            allows.append(parse_allow(path, number, value))
    tables = dict.fromkeys([*touches, *(column.table for column in columns)])
    return Migration(
        version=int(match["version"]),
        name=match["slug"],
        path=path,
        sql=sql,
        checksum=checksum_of(sql),
        description=description,
        columns=tuple(columns),
        touches=tuple(tables),
        transactional=transactional,
        allows=tuple(allows),
        offline_line=offline_line,
    )


def load_migrations(directory: Path) -> list[Migration]:
    """Every version file in numeric order; any bad file or duplicate version is an error."""
    if not directory.is_dir():
        raise MigrationFileError(f"{directory}: no such migrations directory")
    migrations = [load_migration(path) for path in sorted(directory.iterdir()) if path.is_file()]
    seen: dict[int, str] = {}
    for migration in migrations:
        if migration.version in seen:
            raise MigrationFileError(
                f"{migration.path.name}: version {migration.version:04d} is also used by "
                f"{seen[migration.version]}"
            )
        seen[migration.version] = migration.path.name
    return sorted(migrations, key=lambda m: m.version)
