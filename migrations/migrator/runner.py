"""``up``: apply pending migrations one by one, without ever queueing behind an old lock.

Order of a run: validate every file (before connecting), connect, take the runner lock
(session-level advisory lock, polled on its own autocommit connection that never holds a
transaction, so ``CREATE INDEX CONCURRENTLY`` never waits for it), create the history table
if missing, re-read the history, refuse changed applied files, then apply each pending
migration under the lock retry schedule of :mod:`migrator.retry`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import errors

from . import db
from .exitcodes import ExitCode
from .files import Migration
from .output import Output
from .redact import error_text
from .retry import Budget, jitter_s, lock_timeout_ms
from .sql import created_index_names, split_statements

BLOCKER_POLL_S = 0.05
BLOCKER_LOG_EVERY_S = 1.0
RUNNER_LOCK_POLL_S = 0.1
RUNNER_LOCK_LOG_EVERY_S = 5.0


@dataclass
class Settings:
    dsn: str
    lock_timeout_ms: int = 100
    max_lock_timeout_ms: int = 1000
    lock_budget_s: float = 120.0
    runner_lock_wait_s: float = 600.0
    connect_timeout_s: float = 10.0
    applied_by: str = "migrator"


@dataclass
class Outcome:
    applied: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)


def checksum_problems(migrations: list[Migration], history: dict[int, db.Applied]) -> list[str]:
    problems = []
    for migration in migrations:
        applied = history.get(migration.version)
        if applied and applied.checksum != migration.checksum:
            problems.append(
                f"{migration.path.name} changed after it was applied: history checksum "
                f"{applied.checksum}, file checksum {migration.checksum} "
                "(never edit an applied migration; add a new version)"
            )
    return problems


def pending_of(
    migrations: list[Migration], history: dict[int, db.Applied], to: int | None = None
) -> list[Migration]:
    return [m for m in migrations if m.version not in history and (to is None or m.version <= to)]


class BlockerSample:
    """Who blocks the attempt, sampled from another connection halfway through its wait."""

    def __init__(self, observer: psycopg.Connection, pid: int, delay_s: float) -> None:
        self.observer = observer
        self.pid = pid
        self.found: list[db.Holder] = []
        self.timer = threading.Timer(delay_s, self._sample)
        self.timer.daemon = True
        self.timer.start()

    def _sample(self) -> None:
        try:
            self.found = db.blocking(self.observer, self.pid)
        except psycopg.Error:
            self.found = []

    def stop(self) -> list[db.Holder]:
        self.timer.cancel()
        self.timer.join(timeout=1.0)
        return self.found


class Runner:
    def __init__(self, settings: Settings, out: Output) -> None:
        self.settings = settings
        self.out = out
        self.control: psycopg.Connection | None = None  # runner lock + observer, no transaction
        self.work: psycopg.Connection | None = None  # runs the migrations
        self.locked = False

    # --- connections -----------------------------------------------------------------

    def open(self) -> None:
        self.control = db.connect(self.settings.dsn, self.settings.connect_timeout_s, "control")
        self.work = db.connect(self.settings.dsn, self.settings.connect_timeout_s, "work")
        self.work.execute("SET statement_timeout = 0")

    def close(self) -> None:
        for conn in (self.work, self.control):
            if conn is not None and not conn.closed:
                try:
                    if conn is self.control and self.locked:
                        db.release_runner_lock(conn)
                    conn.close()
                except psycopg.Error:
                    pass
        self.locked = False

    def own_pids(self) -> list[int]:
        return [c.info.backend_pid for c in (self.control, self.work) if c is not None]

    # --- runner lock -----------------------------------------------------------------

    def take_runner_lock(self) -> None:
        assert self.control is not None
        deadline = time.monotonic() + self.settings.runner_lock_wait_s
        last_log = 0.0
        while not db.try_runner_lock(self.control):
            now = time.monotonic()
            if now >= deadline:
                holder = db.runner_lock_holder(self.control)
                raise db.MigratorError(
                    ExitCode.RUNNER_LOCK_TIMEOUT,
                    f"another runner (pid {holder}) held the runner lock for more than "
                    f"{self.settings.runner_lock_wait_s:g} s; nothing applied",
                )
            if now - last_log >= RUNNER_LOCK_LOG_EVERY_S:
                holder = db.runner_lock_holder(self.control)
                self.out.log(f"waiting for another runner (pid {holder}) to finish")
                last_log = now
            time.sleep(RUNNER_LOCK_POLL_S)
        self.locked = True
        self.out.log("runner lock taken")

    # --- up --------------------------------------------------------------------------

    def up(self, migrations: list[Migration], to: int | None, outcome: Outcome) -> None:
        assert self.control is not None
        self.take_runner_lock()
        db.ensure_history(self.control)
        history = db.read_history(self.control)  # re-read under the lock
        problems = checksum_problems(migrations, history)
        if problems:
            raise db.MigratorError(
                ExitCode.CHECKSUM_MISMATCH, "; ".join(problems) + "; nothing applied"
            )
        known = {m.version for m in migrations}
        for version in sorted(set(history) - known):
            self.out.log(f"warning: version {version} is in the history but has no file")
        outcome.skipped[:] = sorted(v for v in history if v in known)
        pending = pending_of(migrations, history, to)
        if not pending:
            self.out.log("nothing to do: every migration is applied")
            return
        self.out.log("pending: " + ", ".join(m.label for m in pending))
        for migration in pending:
            self.apply(migration, outcome)

    def apply(self, migration: Migration, outcome: Outcome) -> None:
        assert self.work is not None
        self.out.log(f"{migration.label}: applying ({migration.description or 'no description'})")
        for line in db.describe_columns(self.work, migration.columns):
            self.out.log(f"{migration.label}: before: {line}")
        started = time.monotonic()
        budget = Budget(self.settings.lock_budget_s)
        if migration.transactional:
            attempts = self.apply_transactional(migration, budget, started)
        else:
            attempts = self.apply_autocommit(migration, budget, started)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        for line in db.describe_columns(self.work, migration.columns):
            self.out.log(f"{migration.label}: after: {line}")
        self.out.log(f"{migration.label}: applied in {elapsed_ms} ms, {attempts} attempt(s)")
        outcome.applied.append(migration.version)
        outcome.attempts[migration.version] = attempts
        self.out.say(f"✅ Migration {migration.version} complete")

    # --- the retry loop ----------------------------------------------------------------

    def with_lock_retries(
        self, migration: Migration, budget: Budget, attempt: Callable[[int], None]
    ) -> int:
        """Run ``attempt(lock_timeout_ms)`` until it gets its locks; returns attempts made."""
        assert self.control is not None and self.work is not None
        number = 0
        holders: list[db.Holder] = []
        while True:
            timeout = lock_timeout_ms(
                number, self.settings.lock_timeout_ms, self.settings.max_lock_timeout_ms
            )
            holders = self.wait_for_clear_way(migration, budget, timeout)
            clipped = budget.clip(timeout)
            if clipped < 1:
                self.exhausted(migration, budget, number, holders)
            sample = BlockerSample(self.control, self.work.info.backend_pid, clipped / 2000)
            try:
                attempt(clipped)
            except errors.LockNotAvailable as exc:
                found = sample.stop() or self.holders(migration)
                holders = found
                who = "; ".join(h.describe() for h in found) or "no blocker seen"
                self.out.log(
                    f"{migration.label}: attempt {number + 1} (lock_timeout {clipped} ms) gave "
                    f"up: {error_text(exc, self.settings.dsn)}; blocked by: {who}"
                )
            else:
                sample.stop()
                return number + 1
            number += 1
            time.sleep(min(jitter_s(), budget.remaining_ms() / 1000))

    def holders(self, migration: Migration) -> list[db.Holder]:
        assert self.control is not None
        return db.lock_holders(self.control, migration.touches, self.own_pids())

    def wait_for_clear_way(
        self, migration: Migration, budget: Budget, timeout_ms: int
    ) -> list[db.Holder]:
        """Do not queue behind a transaction older than the attempt's lock_timeout."""
        last_log = 0.0
        while True:
            in_way = [
                h for h in self.holders(migration) if h.age_ms is not None and h.age_ms > timeout_ms
            ]
            if not in_way:
                return []
            if budget.exhausted():
                self.exhausted(migration, budget, None, in_way)
            now = time.monotonic()
            if now - last_log >= BLOCKER_LOG_EVERY_S:
                who = "; ".join(h.describe() for h in in_way)
                self.out.log(
                    f"{migration.label}: not queueing behind a transaction older than "
                    f"{timeout_ms} ms; waiting ({budget.remaining_ms() / 1000:.1f} s of budget "
                    f"left): {who}"
                )
                last_log = now
            time.sleep(BLOCKER_POLL_S)

    def exhausted(
        self, migration: Migration, budget: Budget, attempts: int | None, holders: list[db.Holder]
    ) -> None:
        who = "; ".join(h.describe() for h in holders) or "nobody at the last look"
        made = "" if attempts is None else f" after {attempts} attempt(s)"
        raise db.MigratorError(
            ExitCode.LOCK_BUDGET_EXHAUSTED,
            f"{migration.path.name}: lock budget of {budget.seconds:g} s exhausted{made}; "
            f"{migration.label} not applied; in the way: {who}",
            failed=migration.version,
        )

    # --- transactional ---------------------------------------------------------------

    def apply_transactional(self, migration: Migration, budget: Budget, started: float) -> int:
        assert self.work is not None
        work = self.work

        def attempt(timeout_ms: int) -> None:
            with work.transaction():
                work.execute(
                    "SELECT set_config('statement_timeout', '0', true),"
                    " set_config('lock_timeout', %s, true)",
                    (f"{timeout_ms}ms",),
                )
                work.execute(migration.sql)
                duration = int((time.monotonic() - started) * 1000)
                db.insert_history(work, migration, duration, self.settings.applied_by)

        try:
            return self.with_lock_retries(migration, budget, attempt)
        except psycopg.Error as exc:
            raise self.sql_error(
                migration, exc, "rolled back; schema and history unchanged"
            ) from None

    # --- outside a transaction -------------------------------------------------------

    def apply_autocommit(self, migration: Migration, budget: Budget, started: float) -> int:
        assert self.work is not None
        work = self.work
        statements = split_statements(migration.sql)
        names = set(created_index_names(migration.sql))
        progress = {"next": 0}
        leftovers: set[tuple[str, str]] = set()

        def attempt(timeout_ms: int) -> None:
            work.execute(
                "SELECT set_config('statement_timeout', '0', false),"
                " set_config('lock_timeout', %s, false)",
                (f"{timeout_ms}ms",),
            )
            self.drop_invalid(migration, lambda index: index[1] in names or index in leftovers)
            leftovers.clear()
            before = set(db.invalid_indexes(work, migration.touches))
            for index in range(progress["next"], len(statements)):
                try:
                    work.execute(statements[index])
                except psycopg.Error:
                    if not work.closed:
                        leftovers.update(set(db.invalid_indexes(work, migration.touches)) - before)
                    raise
                progress["next"] = index + 1

        try:
            attempts = self.with_lock_retries(migration, budget, attempt)
            duration = int((time.monotonic() - started) * 1000)
            db.insert_history(work, migration, duration, self.settings.applied_by)
        except psycopg.Error as exc:
            cleaned = self.cleanup_after_failure(migration, names, leftovers)
            done = progress["next"]
            raise self.sql_error(
                migration,
                exc,
                f"it runs outside a transaction: {done} of {len(statements)} statement(s) "
                f"had completed{cleaned}; history unchanged",
            ) from None
        except db.MigratorError:
            self.cleanup_after_failure(migration, names, leftovers)
            raise
        finally:
            if not work.closed:
                with contextlib.suppress(psycopg.Error):
                    work.execute("RESET lock_timeout")
        return attempts

    def drop_invalid(
        self, migration: Migration, wanted: Callable[[tuple[str, str]], bool]
    ) -> list[str]:
        """Drop the INVALID indexes on the touched tables that ``wanted`` selects."""
        assert self.work is not None
        dropped = []
        for index in db.invalid_indexes(self.work, migration.touches):
            if wanted(index):
                self.out.log(
                    f"{migration.label}: dropping INVALID index {index[0]}.{index[1]} "
                    "left by a failed CREATE INDEX CONCURRENTLY"
                )
                db.drop_index_concurrently(self.work, *index)
                dropped.append(f"{index[0]}.{index[1]}")
        return dropped

    def cleanup_after_failure(
        self, migration: Migration, names: set[str], leftovers: set[tuple[str, str]]
    ) -> str:
        work = self.work
        if work is None or work.closed:
            return ""
        try:
            work.execute("SET lock_timeout = '5s'")
            dropped = self.drop_invalid(
                migration, lambda index: index[1] in names or index in leftovers
            )
        except psycopg.Error as exc:
            self.out.log(
                f"{migration.label}: could not drop the INVALID index left behind: "
                f"{error_text(exc, self.settings.dsn)}"
            )
            return "; an INVALID index may remain"
        return f"; dropped INVALID index {', '.join(dropped)}" if dropped else ""

    def sql_error(self, migration: Migration, exc: psycopg.Error, what: str) -> db.MigratorError:
        if self.work is None or self.work.closed or getattr(self.work, "broken", False):
            return db.MigratorError(
                ExitCode.CANNOT_CONNECT,
                f"{migration.path.name}: lost the database connection: "
                f"{error_text(exc, self.settings.dsn)}",
                failed=migration.version,
            )
        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        return db.MigratorError(
            ExitCode.SQL_ERROR,
            f"{migration.path.name} failed: {error_text(exc, self.settings.dsn)}{state}; {what}",
            failed=migration.version,
        )
