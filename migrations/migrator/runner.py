"""``up``: apply pending migrations one by one, without ever queueing behind an old lock.

Order of a run: validate every file (before connecting), connect, take the runner lock
(session-level advisory lock, polled on its own autocommit connection that never holds a
transaction, so ``CREATE INDEX CONCURRENTLY`` never waits for it), create the history table
if missing, re-read the history, refuse changed applied files, then apply each pending
migration under the lock retry schedule of :mod:`migrator.retry`.

Every file runs statement by statement (as :func:`migrator.sql.split_statements` cuts it;
a transactional file in one transaction), and before each statement the runner sets its
own ``lock_timeout`` (the attempt's), ``statement_timeout`` (none, or the online bound) and
``idle_in_transaction_session_timeout`` (its session's). A file's SET or RESET of one of
those (:mod:`migrator.session`) can only tighten it: a statement runs under the tighter of
the runner's value and the file's latest, and a file's 0, DEFAULT or RESET is the
runner's. After each file the runner's own session values are back.

Online runs (the previous release keeps serving) bound each statement that blocks the
app's queries on a table (:mod:`migrator.locks`) with ``statement_timeout``; in a
transaction the bound then covers every later statement too, since the lock is held until
the commit. A statement cancelled at the bound fails the migration: it is not retried.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import errors

from . import db, locks, session
from .exitcodes import ExitCode
from .files import Migration
from .output import Output
from .redact import error_text
from .retry import Budget, jitter_s, lock_timeout_ms
from .sql import created_index_names

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
    # online runs: statement_timeout of each statement that blocks a table; None: no bound
    exclusive_statement_timeout_ms: int | None = None


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


class Cancelled(Exception):
    """A statement was cancelled at the online bound (psycopg's QueryCanceled, translated)."""

    def __init__(self, step: locks.Step, holder: locks.Step) -> None:
        super().__init__(step.sql)
        self.step = step  # the statement cancelled
        self.holder = holder  # the statement that took the blocking lock (may be ``step``)


@dataclass(frozen=True)
class Statement:
    """One statement of a file and the timeouts the file has set before it."""

    step: locks.Step
    file: dict[str, session.FileTimeout]


def statements_of(migration: Migration) -> list[Statement]:
    """The file's statements; a timeout it sets to a value that is not one is a bad file."""
    steps = locks.steps(migration.sql)
    try:
        effects = session.in_effect([(s.sql, s.line) for s in steps], migration.transactional)
    except ValueError as exc:
        raise db.MigratorError(
            ExitCode.BAD_MIGRATION_FILE,
            f"{migration.path.name}: {exc}: write a number of milliseconds or a quoted value "
            "with a unit ('250ms', '5s', '1min'); nothing applied",
        ) from None
    return [Statement(step, file) for step, file in zip(steps, effects, strict=True)]


def elapsed_ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


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
        self.noted: set[tuple[int, str]] = set()  # (line, timeout) of a looser SET, logged
        self.idle_ms = 0  # the work session's own idle_in_transaction_session_timeout
        self.lock_ms_used = 0  # lock_timeout of the attempt's latest statement
        self.bound_ms = settings.exclusive_statement_timeout_ms
        self.first_lock_ms = settings.lock_timeout_ms
        self.max_lock_ms = settings.max_lock_timeout_ms
        if self.bound_ms is not None:
            # A lock wait must end as a lock timeout (retried), never at the bound: an
            # attempt's lock_timeout stays at or below half the bound, leaving the other
            # half for the statement to run.
            largest = max(self.first_lock_ms, self.max_lock_ms)  # as retry.lock_timeout_ms
            self.max_lock_ms = min(largest, max(1, self.bound_ms // 2))
            self.first_lock_ms = min(self.first_lock_ms, self.max_lock_ms)

    # --- connections -----------------------------------------------------------------

    def open(self) -> None:
        self.control = db.connect(self.settings.dsn, self.settings.connect_timeout_s, "control")
        self.work = db.connect(self.settings.dsn, self.settings.connect_timeout_s, "work")
        self.work.execute("SET statement_timeout = 0")
        row = self.work.execute(
            "SELECT setting::int FROM pg_settings"
            " WHERE name = 'idle_in_transaction_session_timeout'"
        ).fetchone()
        self.idle_ms = row[0] if row else 0

    def set_timeouts(self, lock_ms: int, statement_ms: int, idle_ms: int, local: bool) -> None:
        """The work session's three timeouts (0: none), for its transaction when LOCAL."""
        assert self.work is not None
        self.work.execute(
            "SELECT set_config('lock_timeout', %s, %s), set_config('statement_timeout', %s, %s),"
            " set_config('idle_in_transaction_session_timeout', %s, %s)",
            (f"{lock_ms}ms", local, f"{statement_ms}ms", local, f"{idle_ms}ms", local),
        )

    def restore_session(self) -> None:
        """The runner's own session values again, whatever the last file SET."""
        work = self.work
        if work is None or work.closed or getattr(work, "broken", False):
            return
        with contextlib.suppress(psycopg.Error):
            work.execute("RESET lock_timeout")
            work.execute("RESET idle_in_transaction_session_timeout")
            work.execute("SET statement_timeout = 0")

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
        applied = db.read_history(self.control)
        for migration in migrations:  # a bad SET is refused before anything is created
            if migration.version not in applied:
                statements_of(migration)
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
        if self.bound_ms is not None:
            self.out.log(
                f"online: a statement that blocks a table runs under statement_timeout "
                f"{self.bound_ms} ms; lock_timeout at most {self.max_lock_ms} ms per attempt"
            )
        statements = {m.version: statements_of(m) for m in pending}
        for migration in pending:
            self.apply(migration, statements[migration.version], outcome)

    def apply(self, migration: Migration, statements: list[Statement], outcome: Outcome) -> None:
        assert self.work is not None
        self.out.log(f"{migration.label}: applying ({migration.description or 'no description'})")
        for line in db.describe_columns(self.work, migration.columns):
            self.out.log(f"{migration.label}: before: {line}")
        for step in (s.step for s in statements if self.bound_ms is not None):
            if step.lock:
                self.out.log(
                    f"{migration.label}: line {step.line} takes {step.lock.mode} on "
                    f"{step.lock.target}: online bound {self.bound_ms} ms"
                )
        self.noted.clear()
        started = time.monotonic()
        budget = Budget(self.settings.lock_budget_s)
        try:
            if migration.transactional:
                attempts = self.apply_transactional(migration, budget, started, statements)
            else:
                attempts = self.apply_autocommit(migration, budget, started, statements)
        finally:
            self.restore_session()
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
            timeout = lock_timeout_ms(number, self.first_lock_ms, self.max_lock_ms)
            holders = self.wait_for_clear_way(migration, budget, timeout)
            clipped = budget.clip(timeout)
            if clipped < 1:
                self.exhausted(migration, budget, number, holders)
            sample = BlockerSample(self.control, self.work.info.backend_pid, clipped / 2000)
            self.lock_ms_used = clipped
            try:
                attempt(clipped)
            except errors.LockNotAvailable as exc:
                found = sample.stop() or self.holders(migration)
                holders = found
                who = "; ".join(h.describe() for h in found) or "no blocker seen"
                self.out.log(
                    f"{migration.label}: attempt {number + 1} (lock_timeout "
                    f"{self.lock_ms_used} ms) gave up: {error_text(exc, self.settings.dsn)}; "
                    f"blocked by: {who}"
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

    def apply_transactional(
        self, migration: Migration, budget: Budget, started: float, statements: list[Statement]
    ) -> int:
        """Run the file in one transaction, statement by statement."""
        assert self.work is not None
        work = self.work

        def attempt(timeout_ms: int) -> None:
            with work.transaction():
                self.set_timeouts(timeout_ms, 0, self.idle_ms, local=True)
                self.run_in_transaction(migration, statements, timeout_ms)
                duration = int((time.monotonic() - started) * 1000)
                db.insert_history(work, migration, duration, self.settings.applied_by)

        try:
            return self.with_lock_retries(migration, budget, attempt)
        except Cancelled as cancel:
            raise self.bound_error(
                migration, cancel, "rolled back, schema and history unchanged"
            ) from None
        except psycopg.Error as exc:
            raise self.sql_error(
                migration, exc, "rolled back; schema and history unchanged"
            ) from None

    def run_in_transaction(
        self, migration: Migration, statements: list[Statement], lock_ms: int
    ) -> None:
        """Online, a blocking lock is held until the commit, so from the statement that takes
        the first one on, every statement runs under what is left of the bound. The runner's
        own timeouts are back for the history row."""
        holder: locks.Step | None = None
        since = 0.0
        for statement in statements:
            step = statement.step
            if self.bound_ms is not None and holder is None and step.lock:
                holder, since = step, time.monotonic()
            bound = 0
            if self.bound_ms is not None and holder is not None:
                bound = max(1, self.bound_ms - elapsed_ms(since))
            self.run_step(
                migration, statement, lock_ms=lock_ms, bound_ms=bound, holder=holder, local=True
            )
        self.set_timeouts(lock_ms, 0, self.idle_ms, local=True)

    def run_step(
        self,
        migration: Migration,
        statement: Statement,
        *,
        lock_ms: int,
        bound_ms: int,
        holder: locks.Step | None,
        local: bool,
    ) -> None:
        """Run one statement under the runner's ``lock_timeout`` = ``lock_ms`` and
        ``statement_timeout`` = ``bound_ms`` (0: none), or the file's, where tighter."""
        assert self.work is not None
        step, file = statement.step, statement.file
        lock = self.limit(migration, file, "lock_timeout", lock_ms, f"{lock_ms} ms")
        shown = f"online bound of {self.bound_ms} ms"
        timeout = self.limit(migration, file, "statement_timeout", bound_ms, shown)
        idle_name, idle_shown = "idle_in_transaction_session_timeout", f"{self.idle_ms} ms"
        idle = self.limit(migration, file, idle_name, self.idle_ms, idle_shown)
        self.set_timeouts(lock, timeout, idle, local)
        self.lock_ms_used = lock
        began = time.monotonic()
        try:
            self.work.execute(step.sql)
        except errors.QueryCanceled:
            # the file's own tighter statement_timeout, or a cancel from elsewhere
            # (pg_cancel_backend) before the bound, is an SQL error
            if holder is None or timeout < bound_ms or elapsed_ms(began) < timeout:
                raise
            raise Cancelled(step, holder) from None

    def limit(
        self,
        migration: Migration,
        file: dict[str, session.FileTimeout],
        name: str,
        runner_ms: int,
        shown: str,
    ) -> int:
        """The timeout NAME a statement runs under: the runner's unless the file's is
        tighter. A looser one the file sets is logged, once per file and line."""
        setting = file.get(name)
        if setting is None:
            return runner_ms
        if session.looser(runner_ms, setting.ms) and (setting.line, name) not in self.noted:
            self.noted.add((setting.line, name))
            self.out.log(
                f"{migration.label}: line {setting.line} sets {name} {setting.shown}; the "
                f"runner's {shown} applies (a file can only tighten it)"
            )
        return session.tighter(runner_ms, setting.ms)

    # --- outside a transaction -------------------------------------------------------

    def apply_autocommit(
        self, migration: Migration, budget: Budget, started: float, statements: list[Statement]
    ) -> int:
        assert self.work is not None
        work = self.work
        names = set(created_index_names(migration.sql))
        progress = {"next": 0}
        leftovers: set[tuple[str, str]] = set()

        def attempt(timeout_ms: int) -> None:
            self.set_timeouts(timeout_ms, 0, self.idle_ms, local=False)
            self.drop_invalid(migration, lambda index: index[1] in names or index in leftovers)
            leftovers.clear()
            before = set(db.invalid_indexes(work, migration.touches))
            for index in range(progress["next"], len(statements)):
                # each statement commits: a lock it takes lasts only while it runs
                statement = statements[index]
                bounded = self.bound_ms is not None and statement.step.lock is not None
                bound, holder = (self.bound_ms or 0, statement.step) if bounded else (0, None)
                try:
                    self.run_step(
                        migration,
                        statement,
                        lock_ms=timeout_ms,
                        bound_ms=bound,
                        holder=holder,
                        local=False,
                    )
                except psycopg.Error:
                    if not work.closed:
                        leftovers.update(set(db.invalid_indexes(work, migration.touches)) - before)
                    raise
                progress["next"] = index + 1

        def outcome(cleaned: str) -> str:
            return (
                f"it runs outside a transaction: {progress['next']} of {len(statements)} "
                f"statement(s) had completed{cleaned}; history unchanged"
            )

        try:
            attempts = self.with_lock_retries(migration, budget, attempt)
            self.restore_session()
            duration = int((time.monotonic() - started) * 1000)
            db.insert_history(work, migration, duration, self.settings.applied_by)
        except Cancelled as cancel:
            cleaned = self.cleanup_after_failure(migration, names, leftovers)
            raise self.bound_error(migration, cancel, outcome(cleaned)) from None
        except psycopg.Error as exc:
            cleaned = self.cleanup_after_failure(migration, names, leftovers)
            raise self.sql_error(migration, exc, outcome(cleaned)) from None
        except db.MigratorError:
            self.cleanup_after_failure(migration, names, leftovers)
            raise
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
        self.restore_session()  # not under a timeout the file set
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

    def bound_error(self, migration: Migration, cancel: Cancelled, what: str) -> db.MigratorError:
        """One line: which statement, which lock on what, the bound, the outcome, what to do."""
        step, holder = cancel.step, cancel.holder
        assert holder.lock is not None
        lock = f"{holder.lock.mode} on {holder.lock.target}"
        if step is holder:
            happened = f"line {step.line} held {lock} past the online bound"
            why = holder.lock.why
        else:
            happened = (
                f"line {step.line} ran while the transaction held {lock} (taken at line "
                f"{holder.line}) past the online bound"
            )
            why = f"that lock lasts until the commit, over every statement after line {holder.line}"
        return db.MigratorError(
            ExitCode.ONLINE_BOUND_EXCEEDED,
            f"{migration.path.name}: {happened} of {self.bound_ms} ms and was cancelled; "
            f"{what}: {why}, so run it with the stop strategy or make it an online change",
            failed=migration.version,
            cancelled_line=step.line,
        )

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
