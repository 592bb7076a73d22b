"""Backfill jobs: fill columns of existing rows on a live system, in short keyset batches.

A job is defined by a TOML file in migrations/backfills/ (see call_log_timing.toml): the
table, its integer key, the predicate of the rows that still need the job and the SET
clause. Each batch is its own transaction with a short ``lock_timeout`` (retried), covering
the next ``size`` keys after the last one done; the batch size follows a target batch time,
so no row stays locked much longer than that. Progress is written in the same transaction
as the batch, so a job that is killed resumes where it stopped and never does a batch twice.
"""

from __future__ import annotations

import math
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors, sql

from . import db
from .exitcodes import ExitCode
from .output import Output

PROGRESS_TABLE = "prosaas_backfill_progress"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
REQUIRED_KEYS = {"description": str, "table": str, "key": str, "pending": str, "set": str}
OPTIONAL_KEYS = {"requires_migration": int}
KIND_NAMES = {str: "a string", int: "an integer"}
# Advisory lock class of backfills (the migrator's runner lock uses its own key).
ADVISORY_CLASS = 0x70726F73


def key_floor(after: int | None) -> int:
    """The key the next batch starts after: AFTER, or below every bigint when nothing is done."""
    return after if after is not None else -(2**63)


class BackfillError(db.MigratorError):
    """A backfill definition or run that cannot go on."""


def progress_query(template: str) -> sql.Composed:
    """TEMPLATE with {t} standing for the progress table."""
    return sql.SQL(template).format(t=sql.Identifier(PROGRESS_TABLE))


@dataclass(frozen=True)
class Definition:
    name: str
    description: str
    table: str
    key: str
    pending: str
    set: str
    requires_migration: int | None = None


def load_definition(directory: Path, name: str) -> Definition:
    """The job NAME from DIRECTORY/NAME.toml, validated; a one-line error otherwise."""
    if not NAME.match(name):
        raise BackfillError(ExitCode.USAGE, f"backfill name {name!r}: use a-z, 0-9, _ and -")
    path = directory / f"{name}.toml"
    known = sorted(p.stem for p in directory.glob("*.toml")) if directory.is_dir() else []
    if not path.is_file():
        raise BackfillError(
            ExitCode.USAGE,
            f"no backfill {name!r} in {directory} (known: {', '.join(known) or 'none'})",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BackfillError(ExitCode.BAD_MIGRATION_FILE, f"{path.name}: {exc}") from None
    return Definition(name=name, **checked_fields(path.name, data))


def checked_fields(filename: str, data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        known = ", ".join(sorted({*REQUIRED_KEYS, *OPTIONAL_KEYS}))
        raise BackfillError(
            ExitCode.BAD_MIGRATION_FILE,
            f"{filename}: unknown key(s) {', '.join(unknown)} (known: {known})",
        )
    for key, kind in {**REQUIRED_KEYS, **OPTIONAL_KEYS}.items():
        if key not in data:
            if key in REQUIRED_KEYS:
                raise BackfillError(ExitCode.BAD_MIGRATION_FILE, f"{filename}: {key} is missing")
            continue
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise BackfillError(
                ExitCode.BAD_MIGRATION_FILE, f"{filename}: {key} must be {KIND_NAMES[kind]}"
            )
    for key in ("table", "key"):
        if not IDENTIFIER.match(data[key]):
            raise BackfillError(
                ExitCode.BAD_MIGRATION_FILE,
                f"{filename}: {key} {data[key]!r} is not a plain lower-case identifier",
            )
    return {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}


# --- batch size ----------------------------------------------------------------------


@dataclass
class BatchSizer:
    """Adapts the batch size so that one batch takes about ``target_ms``.

    The next size is scaled by target / measured time, but never more than doubled or
    halved at once, so one slow batch (a checkpoint, a lock wait) does not swing it.
    ``target_ms`` 0 keeps the size fixed.
    """

    size: int
    target_ms: float
    smallest: int = 10
    largest: int = 100_000

    def next_size(self, elapsed_ms: float, rows: int) -> int:
        if self.target_ms <= 0 or rows < self.size:
            return self.size
        factor = self.target_ms / max(elapsed_ms, 1.0)
        factor = min(2.0, max(0.5, factor))
        self.size = min(self.largest, max(self.smallest, int(self.size * factor)))
        return self.size


# --- progress ------------------------------------------------------------------------


@dataclass
class Progress:
    """Rows done of the total, the rate since start, and the time left at that rate."""

    total: int
    done: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    longest_batch_ms: float = 0.0
    retries: int = 0

    def add(self, rows: int, elapsed_ms: float) -> None:
        self.done += rows
        self.batches += 1
        self.longest_batch_ms = max(self.longest_batch_ms, elapsed_ms)

    def rate(self, now: float) -> float:
        seconds = now - self.started
        return self.done / seconds if seconds > 0 else 0.0

    def eta_s(self, now: float) -> float | None:
        rate = self.rate(now)
        if rate <= 0:
            return None
        return max(self.total - self.done, 0) / rate

    def line(self, now: float) -> str:
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.done:,}/{self.total:,} rows ({percent:.1f}%), "
            f"{self.rate(now):,.0f} rows/s, ETA {format_seconds(self.eta_s(now))}"
        )

    def bar(self, now: float, width: int = 30) -> str:
        filled = width if not self.total else min(width, width * self.done // self.total)
        return f"[{'#' * filled}{'.' * (width - filled)}] {self.line(now)}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isinf(seconds):
        return "unknown"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Reporter:
    """Shows progress: a bar redrawn in place on a TTY, plain lines every few seconds otherwise."""

    def __init__(
        self,
        out: Output,
        every_s: float,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.every_s = every_s
        self.tty = tty
        self.clock = clock
        self.printed_at: float | None = None

    def update(self, progress: Progress, force: bool = False) -> None:
        now = self.clock()
        if self.tty:
            end = "\n" if force else ""
            print(f"\r{progress.bar(now)}", end=end, file=self.out.stderr, flush=True)
        elif force or self.printed_at is None or now - self.printed_at >= self.every_s:
            self.out.log(f"progress: {progress.line(now)}")
            self.printed_at = now


# --- the job -------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    batch_size: int = 1000
    target_batch_ms: float = 50.0
    sleep_ms: float = 0.0
    max_rows: int | None = None
    lock_timeout_ms: int = 100
    max_retries: int = 50


@dataclass(frozen=True)
class Batch:
    """One committed batch: the last key it covered (None: no key left), keys seen, rows filled."""

    last_key: int | None
    scanned: int
    filled: int


@dataclass
class State:
    """The job's row in the progress table."""

    last_key: int | None
    rows_done: int
    finished: bool


class Job:
    """One run of a backfill on one database: resume, batch, record, finish."""

    def __init__(
        self,
        definition: Definition,
        conn: psycopg.Connection,
        *,
        out: Output,
        options: Options,
        reporter: Reporter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.d = definition
        self.conn = conn
        self.out = out
        self.options = options
        self.reporter = reporter
        self.sleep = sleep
        self.table = sql.Identifier(definition.table)
        self.key = sql.Identifier(definition.key)
        self.pending = sql.SQL(definition.pending)  # trusted: a file of the repository

    # --- checks and bookkeeping ----------------------------------------------------

    def check_migration(self) -> None:
        needed = self.d.requires_migration
        if needed is not None and needed not in db.read_history(self.conn):
            raise BackfillError(
                ExitCode.USAGE,
                f"backfill {self.d.name} needs migration {needed:04d} applied first: "
                "run `python -m migrator up`",
            )

    def take_lock(self) -> None:
        row = self.conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
            (ADVISORY_CLASS, self.d.name),
        ).fetchone()
        if not row or not row[0]:
            raise BackfillError(
                ExitCode.RUNNER_LOCK_TIMEOUT, f"another run of backfill {self.d.name} is going on"
            )

    def ensure_progress_table(self) -> None:
        self.conn.execute(
            progress_query(
                "CREATE TABLE IF NOT EXISTS {t} (name text PRIMARY KEY, last_key bigint,"
                " rows_done bigint NOT NULL DEFAULT 0, total_rows bigint, batches bigint NOT NULL"
                " DEFAULT 0, started_at timestamptz NOT NULL DEFAULT now(),"
                " updated_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)"
            )
        )

    def read_state(self) -> State | None:
        if not self.progress_table_exists():
            return None
        row = self.conn.execute(
            progress_query("SELECT last_key, rows_done, finished_at FROM {t} WHERE name = %s"),
            (self.d.name,),
        ).fetchone()
        return None if row is None else State(row[0], int(row[1]), row[2] is not None)

    def progress_table_exists(self) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone()
        return bool(row and row[0])

    def count_pending(self, after: int | None) -> int:
        query = sql.SQL("SELECT count(*) FROM {t} WHERE ({p}) AND {k} > %s").format(
            t=self.table, p=self.pending, k=self.key
        )
        row = self.conn.execute(query, (key_floor(after),)).fetchone()
        return int(row[0]) if row else 0

    # --- one batch -----------------------------------------------------------------

    def batch(self, after: int | None, size: int) -> Batch:
        """Fill the pending rows among the next SIZE keys after AFTER."""
        floor = key_floor(after)
        with self.conn.transaction():
            # Not waiting for the WAL flush keeps row locks as short as the work itself; a
            # crash can lose only the newest batches together with their progress, which
            # the next run then does again.
            self.conn.execute(
                sql.SQL("SET LOCAL lock_timeout = {}; SET LOCAL synchronous_commit = off").format(
                    sql.Literal(f"{self.options.lock_timeout_ms}ms")
                )
            )
            last, scanned = self.conn.execute(
                sql.SQL(
                    "SELECT max({k}), count(*) FROM (SELECT {k} FROM {t} WHERE {k} > %s"
                    " ORDER BY {k} LIMIT %s) AS keys"
                ).format(k=self.key, t=self.table),
                (floor, size),
            ).fetchone() or (None, 0)
            if last is None:
                return Batch(None, 0, 0)
            updated = self.conn.execute(
                sql.SQL("UPDATE {t} SET {s} WHERE {k} > %s AND {k} <= %s AND ({p})").format(
                    t=self.table, s=sql.SQL(self.d.set), k=self.key, p=self.pending
                ),
                (floor, last),
            ).rowcount
            self.record(last, updated)
        return Batch(int(last), int(scanned), max(updated, 0))

    def record(self, last_key: int, rows: int) -> None:
        self.conn.execute(
            progress_query(
                "UPDATE {t} SET last_key = %s, rows_done = rows_done + %s, batches = batches + 1,"
                " updated_at = now() WHERE name = %s"
            ),
            (last_key, rows, self.d.name),
        )

    def batch_with_retries(self, after: int | None, size: int, progress: Progress) -> Batch:
        for attempt in range(1, self.options.max_retries + 1):
            try:
                return self.batch(after, size)
            except errors.LockNotAvailable:
                progress.retries += 1
                pause = min(0.05 * 2**attempt, 2.0)
                self.out.log(
                    f"batch after key {after}: a row lock was not free within "
                    f"{self.options.lock_timeout_ms} ms (attempt {attempt}); retrying in "
                    f"{pause:.2f} s"
                )
                self.sleep(pause)
        raise BackfillError(
            ExitCode.LOCK_BUDGET_EXHAUSTED,
            f"backfill {self.d.name}: batch after key {after} could not get its row locks in "
            f"{self.options.max_retries} attempts; run it again to resume",
        )

    # --- the run -------------------------------------------------------------------

    def start_or_resume(self) -> tuple[State, int]:
        """Create or read the job's progress row: (state, total rows still pending)."""
        self.ensure_progress_table()
        state = self.read_state()
        if state is None:
            total = self.count_pending(None)
            self.conn.execute(
                progress_query("INSERT INTO {t} (name, total_rows) VALUES (%s, %s)"),
                (self.d.name, total),
            )
            return State(None, 0, False), total
        return state, self.count_pending(state.last_key)

    def run(self, summary: dict) -> None:
        self.check_migration()
        self.take_lock()
        state, pending = self.start_or_resume()
        summary.update(name=self.d.name, resumed_from_key=state.last_key)
        if state.finished:
            self.out.say(f"backfill {self.d.name}: already finished, nothing to do")
            summary.update(rows=0, already_finished=True)
            return
        if state.last_key is not None:
            self.out.log(
                f"resuming backfill {self.d.name} after key {state.last_key} "
                f"({state.rows_done:,} rows done before)"
            )
        progress = Progress(total=pending)
        sizer = BatchSizer(self.options.batch_size, self.options.target_batch_ms)
        after = state.last_key
        self.reporter.update(progress, force=True)
        finished = False
        while True:
            size = sizer.size
            if self.options.max_rows is not None:
                size = min(size, self.options.max_rows - progress.done)
                if size <= 0:
                    break
            started = time.monotonic()
            done = self.batch_with_retries(after, size, progress)
            elapsed_ms = (time.monotonic() - started) * 1000
            if done.last_key is None:
                self.finish()
                finished = True
                break
            progress.add(done.filled, elapsed_ms)
            sizer.next_size(elapsed_ms, done.scanned)
            after = done.last_key
            self.reporter.update(progress)
            if self.options.sleep_ms > 0:
                self.sleep(self.options.sleep_ms / 1000)
        self.reporter.update(progress, force=True)
        elapsed = time.monotonic() - progress.started
        summary.update(
            rows=progress.done,
            batches=progress.batches,
            seconds=round(elapsed, 2),
            rows_per_s=round(progress.rate(time.monotonic())),
            longest_batch_ms=round(progress.longest_batch_ms, 1),
            lock_retries=progress.retries,
            last_key=after,
            finished=finished,
            batch_size_end=sizer.size,
        )
        if finished:
            self.out.say(f"✅ backfill {self.d.name} complete: {progress.done:,} rows filled")
        else:
            self.out.say(
                f"backfill {self.d.name} stopped after --max-rows at key {after}; "
                "run it again to go on"
            )

    def finish(self) -> None:
        self.conn.execute(
            progress_query(
                "UPDATE {t} SET finished_at = now(), updated_at = now() WHERE name = %s"
            ),
            (self.d.name,),
        )

    def dry_run(self, summary: dict) -> None:
        """Count what the job would fill; changes nothing."""
        self.check_migration()
        state = self.read_state()
        if state is not None and state.finished:
            pending, note = 0, "already finished"
        else:
            after = state.last_key if state else None
            pending = self.count_pending(after)
            note = f"resumes after key {after}" if after is not None else "not started"
        self.out.say(f"backfill {self.d.name}: {pending:,} rows to fill ({note}); dry run")
        summary.update(name=self.d.name, pending=pending, state=note, dry_run=True)
