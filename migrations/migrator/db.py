"""Connections, the history table and the catalog queries the runner needs."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from .exitcodes import ExitCode
from .files import Column, Migration
from .redact import error_text, redact_dsn

HISTORY_TABLE = "prosaas_schema_history"
APPLICATION_NAME = "prosaas-migrator"
# Session-level advisory lock that serialises runners: the ASCII of "PROSAAS" as a bigint.
RUNNER_LOCK_KEY = 0x50524F53414153
QUERY_CHARS = 120  # queries are shown truncated to this many characters (in the SQL below)


class MigratorError(Exception):
    """Ends the run: ``code`` is the exit code, ``message`` one printable (safe) line."""

    def __init__(self, code: ExitCode, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def connect(dsn: str, timeout_s: float, purpose: str) -> psycopg.Connection:
    """An autocommit connection; any failure becomes a one-line CANNOT_CONNECT error."""
    try:
        return psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(timeout_s)),
            application_name=f"{APPLICATION_NAME}:{purpose}",
        )
    except psycopg.ProgrammingError as exc:
        raise MigratorError(
            ExitCode.USAGE, f"DATABASE_URL is not a valid connection string: {error_text(exc, dsn)}"
        ) from None
    except psycopg.Error as exc:
        raise MigratorError(
            ExitCode.CANNOT_CONNECT, f"cannot connect to {redact_dsn(dsn)}: {error_text(exc, dsn)}"
        ) from None


# --- history -----------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: int
    applied_by: str


CREATE_HISTORY = sql.SQL(
    """CREATE TABLE IF NOT EXISTS {table} (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    applied_by text NOT NULL
)"""
).format(table=sql.Identifier(HISTORY_TABLE))


def history_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,)).fetchone()
    return bool(row and row[0])


def ensure_history(conn: psycopg.Connection) -> None:
    if not history_exists(conn):
        conn.execute(CREATE_HISTORY)


def read_history(conn: psycopg.Connection) -> dict[int, Applied]:
    """Applied versions; empty when the table does not exist (nothing is created here)."""
    if not history_exists(conn):
        return {}
    query = sql.SQL(
        "SELECT version, name, checksum, applied_at, duration_ms, applied_by FROM {table}"
        " ORDER BY version"
    ).format(table=sql.Identifier(HISTORY_TABLE))
    return {row[0]: Applied(*row) for row in conn.execute(query).fetchall()}


def insert_history(
    conn: psycopg.Connection, migration: Migration, duration_ms: int, applied_by: str
) -> None:
    query = sql.SQL(
        "INSERT INTO {table} (version, name, checksum, applied_at, duration_ms, applied_by)"
        " VALUES (%s, %s, %s, now(), %s, %s)"
    ).format(table=sql.Identifier(HISTORY_TABLE))
    conn.execute(
        query, (migration.version, migration.name, migration.checksum, duration_ms, applied_by)
    )


def default_applied_by(env: dict[str, str]) -> str:
    return env.get("MIGRATOR_APPLIED_BY") or f"migrator@{socket.gethostname()}"


# --- columns -----------------------------------------------------------------------

COLUMN_TYPE = """
SELECT format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped
"""


def column_type(conn: psycopg.Connection, column: Column) -> tuple[str, str] | None:
    """(base type, full type with modifiers) of a column, None when it does not exist."""
    row = conn.execute(COLUMN_TYPE, (column.table, column.name)).fetchone()
    return (row[0], row[1]) if row else None


def describe_columns(conn: psycopg.Connection, columns: tuple[Column, ...]) -> list[str]:
    lines = []
    for column in columns:
        found = column_type(conn, column)
        state = f"exists, {found[1]}" if found else "absent"
        lines.append(f"{column.table}.{column.name}: {state}")
    return lines


MODIFIERS = re.compile(r"\(([^)]*)\)")


def type_problem(conn: psycopg.Connection, column: Column) -> str | None:
    """Why ``column`` does not match its declaration, or None when it does.

    Types are compared through the catalog, so ``timestamp`` equals
    ``timestamp without time zone`` and ``int`` equals ``integer``.
    """
    row = conn.execute("SELECT format_type(to_regtype(%s), NULL)", (column.type,)).fetchone()
    declared = row[0] if row else None
    if declared is None:
        return f"declared type {column.type!r} is not a type PostgreSQL knows"
    found = column_type(conn, column)
    where = f"{column.table}.{column.name}"
    if found is None:
        return f"{where} is missing (declared {declared})"
    if found[0] != declared:
        return f"{where} is {found[1]}, declared {declared}"
    wanted = MODIFIERS.search(column.type)
    if wanted:
        modifier = "(" + "".join(wanted.group(1).split()) + ")"
        if modifier not in "".join(found[1].split()):
            return f"{where} is {found[1]}, declared {column.type}"
    return None


# --- locks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A session that holds (or blocks) a lock the migration needs."""

    pid: int
    state: str
    age_ms: int | None
    modes: str
    query: str

    def describe(self) -> str:
        age = "?" if self.age_ms is None else f"{self.age_ms} ms"
        holds = f", holds {self.modes}" if self.modes else ""
        return f"pid {self.pid} ({self.state}, transaction age {age}{holds}): {self.query}"


HOLDERS = r"""
SELECT a.pid, coalesce(a.state, 'unknown'),
       (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint,
       string_agg(DISTINCT l.mode, ',' ORDER BY l.mode),
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 120)
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation IN (SELECT to_regclass(t)::oid FROM unnest(%s::text[]) AS t)
  AND l.pid <> ALL(%s::int[])
  AND NOT (a.backend_type = 'autovacuum worker' AND a.query NOT LIKE '%%wraparound%%')
GROUP BY a.pid, a.state, a.xact_start, a.query
ORDER BY 3 DESC NULLS LAST
"""

BLOCKING = r"""
SELECT a.pid, coalesce(a.state, 'unknown'),
       (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint,
       coalesce((SELECT string_agg(DISTINCT l.mode, ',' ORDER BY l.mode) FROM pg_locks l
                 WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'), ''),
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 120)
FROM pg_stat_activity a
WHERE a.pid = ANY(pg_blocking_pids(%s))
ORDER BY 3 DESC NULLS LAST
"""


def lock_holders(
    conn: psycopg.Connection, tables: tuple[str, ...], own_pids: list[int]
) -> list[Holder]:
    """Other sessions holding a granted lock on any of ``tables`` (oldest first)."""
    if not tables:
        return []
    rows = conn.execute(HOLDERS, (list(tables), own_pids)).fetchall()
    return [Holder(*row) for row in rows]


def blocking(conn: psycopg.Connection, pid: int) -> list[Holder]:
    """The sessions ``pid`` is waiting for right now."""
    return [Holder(*row) for row in conn.execute(BLOCKING, (pid,)).fetchall()]


def runner_lock_holder(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = %s AND objid = %s AND objsubid = 1",
        (RUNNER_LOCK_KEY >> 32, RUNNER_LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    return row[0] if row else None


def try_runner_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNNER_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def release_runner_lock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (RUNNER_LOCK_KEY,))


# --- indexes -------------------------------------------------------------------------

INVALID_INDEXES = """
SELECT n.nspname, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND i.indrelid IN (SELECT to_regclass(t)::oid FROM unnest(%s::text[]) AS t)
ORDER BY 1, 2
"""


def invalid_indexes(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(schema, name) of the INVALID indexes on ``tables``."""
    if not tables:
        return []
    return [(row[0], row[1]) for row in conn.execute(INVALID_INDEXES, (list(tables),)).fetchall()]


def drop_index_concurrently(conn: psycopg.Connection, schema: str, name: str) -> None:
    conn.execute(
        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name))
    )
