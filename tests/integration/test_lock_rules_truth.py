"""Ground truth for the lock table (migrations/migrator/lockrules.py) on PostgreSQL 15.

Every row with an example runs it on a throwaway PostgreSQL 15 cluster, against a fixture
schema rebuilt for the row, and checks the two claims PostgreSQL can show:

- lock: the strongest table lock mode the statement's backend takes on the row's target is
  the row's ``lock`` ("" = none on it);
- rewrite: ``pg_relation_filenode(target)`` changes exactly when the row's effect is
  ``REWRITE``. A relation without storage (a view, a partitioned table) has no filenode
  before or after, and a dropped one has none after: neither is a rewrite.

How the lock is observed:

- A transactional example runs in a transaction; after it, the backend's own rows of
  ``pg_locks`` on the target's oid (read before the statement: a dropped target has no
  pg_class row left in the transaction) give every mode it took there, because PostgreSQL
  keeps table locks to the end of the transaction; the strongest of them is the answer.
- A non-transactional example (CONCURRENTLY, VACUUM FULL) cannot be held open, and the first
  lock it asks for is not always its strongest (VACUUM FULL first takes a passing ACCESS
  SHARE to look the table up, then ACCESS EXCLUSIVE). So it runs, on its own session, while
  another session holds a lock on the target in an open transaction, down a ladder of
  holders (``LADDER``): a holder of ACCESS SHARE blocks exactly the requests of ACCESS
  EXCLUSIVE, one of ROW SHARE those of EXCLUSIVE and up, ..., one of ACCESS EXCLUSIVE every
  request. The test waits until the holder blocks the example (``pg_blocking_pids``, a wait
  for a point, never a sleep) or the example has finished, reads the example's locks on the
  target, and lets the holder go. The first rung, from the top, at which the example waits
  on the target gives its strongest mode: every stronger one would have waited on a rung
  above. The example is never without a holder: when it waits for the holder's
  transaction itself (DROP INDEX and REINDEX CONCURRENTLY wait out every session with a
  lock on the table), a new holder takes the lock before the old one goes, so a request of
  a blocked mode made after that wait still waits. No mode blocks SHARE ROW EXCLUSIVE and
  up but not SHARE, so a SHARE seen on the SHARE rung could hide a later SHARE ROW
  EXCLUSIVE: the test fails as undecided then (no non-transactional row takes either).
  On PostgreSQL 15, VACUUM FULL waits on the top rung (ACCESS EXCLUSIVE). CREATE INDEX,
  DROP INDEX and REINDEX ... CONCURRENTLY pass the three rungs above SHARE UPDATE EXCLUSIVE
  (waiting out holders' transactions on some of them, through hand-overs) and wait on its
  rung: for them the first lock they ask for is also their strongest, which the bottom rung
  (a holder of ACCESS EXCLUSIVE: every first request waits) would show on its own; for
  VACUUM FULL the bottom rung shows only the passing ACCESS SHARE.

A last test checks that every row with a lock has an example, or is on the commented list
of rows no example can show by itself.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.pg_cluster import postgres15

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import lockrules  # noqa: E402
from migrator.lockrules import LockRule  # noqa: E402

SCHEMA = "lock_truth"
WAIT_S = 30.0  # the bound of every wait for a point; reaching it fails the test
POLL_S = 0.005

# What every example names, in a schema rebuilt for each row. Autovacuum is off on the
# tables with rows so that no worker's lock gets in the way of the holders.
FIXTURE = """
CREATE TABLE call_log (
    id bigserial PRIMARY KEY, caller text, duration integer, agent varchar(32), note text,
    agent_id bigint
) WITH (autovacuum_enabled = false);
INSERT INTO call_log (caller, duration, agent, note)
    SELECT '+1555' || g, g, 'agent' || g % 7, 'note ' || g FROM generate_series(1, 100) AS g;
CREATE INDEX call_log_caller_idx ON call_log (caller);
CREATE UNIQUE INDEX call_log_caller_key ON call_log (caller);
ALTER TABLE call_log ADD CONSTRAINT call_log_duration_check CHECK (duration >= 0) NOT VALID;
CREATE TABLE agent (id bigint PRIMARY KEY);
CREATE TABLE call_log_archive (id bigint);
CREATE VIEW call_log_view AS SELECT id FROM call_log;
CREATE MATERIALIZED VIEW call_log_mv WITH (autovacuum_enabled = false)
    AS SELECT id FROM call_log;
CREATE UNIQUE INDEX call_log_mv_id_key ON call_log_mv (id);
CREATE TABLE call_log_part (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE call_log_2026 PARTITION OF call_log_part
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE call_log_2027 (id bigint, at date);
"""
READER_ROLE = """
DO $$ BEGIN
    CREATE ROLE prosaas_reader;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$
"""
TARGET_LOCKS = (
    "SELECT mode FROM pg_locks WHERE pid = %s AND locktype = 'relation'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND relation = %s"
)
BLOCKED_BY = "SELECT %s = ANY (pg_blocking_pids(%s))"
# The rungs of the ladder, from the top: the mode a holder takes, and the weakest mode it
# blocks (it blocks that one and every stronger one, in lockrules.MODES' order, and no other).
LADDER = (
    ("ACCESS SHARE", "ACCESS EXCLUSIVE"),
    ("ROW SHARE", "EXCLUSIVE"),
    ("ROW EXCLUSIVE", "SHARE"),
    ("SHARE UPDATE EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"),
    ("SHARE ROW EXCLUSIVE", "ROW EXCLUSIVE"),
    ("EXCLUSIVE", "ROW SHARE"),
    ("ACCESS EXCLUSIVE", "ACCESS SHARE"),
)

# Rows with a lock that no example can show by itself, and why. A row here has no example:
# once it gets one, it leaves this list.
CANNOT_RUN_ALONE: dict[str, str] = {
    "set-not-null-proven": "its precondition, a validated CHECK (column IS NOT NULL), takes"
    " an earlier statement whose ACCESS EXCLUSIVE hides SET NOT NULL's own, and the scan it"
    " skips shows neither in pg_locks nor in the filenode",
    "validate-in-adding-transaction": "it is VALIDATE in the transaction that ran the ADD"
    " ... NOT VALID, and the lock it claims is that ADD's ACCESS EXCLUSIVE",
}

ROWS = (*lockrules.ACTIONS, *lockrules.STATEMENTS)
EXAMPLED = [rule for rule in ROWS if rule.example]


@dataclass(frozen=True)
class Observed:
    """What a statement did to its target: the strongest lock mode and whether it rewrote."""

    lock: str
    rewritten: bool

    def describe(self, target: str) -> str:
        rewrite = "rewrote it" if self.rewritten else "did not rewrite it"
        return f"{self.lock or 'no lock'} on {target}, {rewrite}"


@dataclass(frozen=True)
class TargetState:
    oid: int
    filenode: int | None


@pytest.fixture(scope="module")
def truth_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster for the module; its DSN puts the fixture schema
    first on the search path."""
    with postgres15() as server:
        dsn = psycopg.conninfo.make_conninfo(server, options=f"-c search_path={SCHEMA}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.info.server_version // 10000 == 15
            conn.execute(READER_ROLE)
        yield dsn


def rebuild_fixture(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}").format(
                sql.Identifier(SCHEMA)
            )
        )
        conn.execute(FIXTURE)


def mode_name(pg_mode: str) -> str:
    """PostgreSQL's pg_locks name as lockrules spells it: ShareRowExclusiveLock -> SHARE ROW
    EXCLUSIVE."""
    name = " ".join(re.findall(r"[A-Z][a-z]*", pg_mode.removesuffix("Lock"))).upper()
    assert name in lockrules.MODES, f"unknown lock mode {pg_mode}"
    return name


def filenode(conn: psycopg.Connection, oid: int) -> int | None:
    return conn.execute("SELECT pg_relation_filenode(%s)", (oid,)).fetchone()[0]


def target_state(conn: psycopg.Connection, target: str) -> TargetState:
    oid = conn.execute("SELECT %s::regclass::oid", (target,)).fetchone()[0]
    return TargetState(oid, filenode(conn, oid))


def rewritten(before: TargetState, after: int | None) -> bool:
    return after is not None and after != before.filenode


def observe_in_transaction(dsn: str, rule: LockRule) -> Observed:
    """BEGIN, the example, the backend's own locks on the target and its filenode, ROLLBACK."""
    rebuild_fixture(dsn)
    with psycopg.connect(dsn, autocommit=True) as watch:
        before = target_state(watch, rule.target)
    with psycopg.connect(dsn) as conn:
        conn.execute(rule.example)
        modes = modes_on(conn, conn.info.backend_pid, before.oid)
        after = filenode(conn, before.oid)
        conn.rollback()
    return Observed(lockrules.strongest(modes), rewritten(before, after))


class Statement(threading.Thread):
    """The example on its own autocommit session, in a thread: it may block on the holder."""

    def __init__(self, dsn: str, text: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.text = text
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.conn.execute(self.text)
        except psycopg.Error as exc:
            self.error = exc
        finally:
            self.conn.close()


def hold(dsn: str, target: str, mode: str) -> psycopg.Connection:
    """A session in an open transaction that holds MODE on TARGET."""
    conn = psycopg.connect(dsn)
    try:
        conn.execute(f"SET lock_timeout = '{WAIT_S:.0f}s'")
        conn.execute(
            sql.SQL("LOCK TABLE {} IN {} MODE").format(sql.Identifier(target), sql.SQL(mode))
        )
    except psycopg.Error:
        conn.close()
        raise
    return conn


def blocked_by(watch: psycopg.Connection, holder_pid: int, statement: Statement) -> bool:
    """Wait until the statement has finished (False) or the holder blocks it (True)."""
    deadline = time.monotonic() + WAIT_S
    while statement.is_alive():
        if watch.execute(BLOCKED_BY, (holder_pid, statement.pid)).fetchone()[0]:
            return True
        if time.monotonic() > deadline:
            pytest.fail(f"{statement.text!r} neither finished nor waited within {WAIT_S:.0f} s")
        time.sleep(POLL_S)
    return False


def modes_on(watch: psycopg.Connection, pid: int, oid: int) -> list[str]:
    """The modes the session holds or waits for on the relation."""
    return [mode_name(row[0]) for row in watch.execute(TARGET_LOCKS, (pid, oid))]


def at_least(mode: str, weakest: str) -> bool:
    return bool(mode) and lockrules.MODES.index(mode) >= lockrules.MODES.index(weakest)


def run_on_rung(dsn: str, rule: LockRule, holder_mode: str, weakest: str) -> Observed:
    """The example while a session holds HOLDER_MODE on the target from before it starts
    until it ends or waits on the target (handed over when it waits for the holder's
    transaction instead): the strongest mode it held or waited for there whenever a holder
    blocked it ("" when none ever did), and whether it rewrote the target."""
    rebuild_fixture(dsn)
    with psycopg.connect(dsn, autocommit=True) as watch:
        before = target_state(watch, rule.target)
        holders = [hold(dsn, rule.target, holder_mode)]
        seen: list[str] = []
        try:
            statement = Statement(dsn, rule.example)
            statement.start()
            while blocked_by(watch, holders[-1].info.backend_pid, statement):
                seen += modes_on(watch, statement.pid, before.oid)
                if at_least(lockrules.strongest(seen), weakest):
                    break
                # It waits for the holder's transaction, not for the table: hand over.
                holders.append(hold(dsn, rule.target, holder_mode))
                holders.pop(-2).close()
        finally:
            for holder in holders:
                holder.close()  # rolls back: the statement goes on
        statement.join(WAIT_S)
        assert not statement.is_alive(), f"{rule.example!r} still runs after {WAIT_S:.0f} s"
        assert statement.error is None, f"{rule.name}: the example failed: {statement.error}"
        return Observed(lockrules.strongest(seen), rewritten(before, filenode(watch, before.oid)))


def observe_outside_transaction(dsn: str, rule: LockRule) -> Observed:
    """Down the ladder, each rung on a fresh fixture: the first at which the example waits
    on the target gives its strongest mode; it takes none if even ACCESS EXCLUSIVE lets it
    through."""
    for holder_mode, weakest in LADDER:
        run = run_on_rung(dsn, rule, holder_mode, weakest)
        if at_least(run.lock, weakest):
            undecided = weakest == "SHARE" and run.lock == "SHARE"
            assert not undecided, f"{rule.name}: SHARE, and maybe SHARE ROW EXCLUSIVE after it"
            return run
    return Observed("", run.rewritten)


@pytest.mark.parametrize("rule", EXAMPLED, ids=[rule.name for rule in EXAMPLED])
def test_the_example_takes_the_rows_lock_and_rewrites_as_it_claims(
    truth_dsn: str, rule: LockRule
) -> None:
    observe = observe_in_transaction if rule.transactional else observe_outside_transaction
    observed = observe(truth_dsn, rule)
    claimed = Observed(rule.lock, rule.effect == lockrules.REWRITE)
    assert observed == claimed, (
        f"{rule.name}: PostgreSQL 15 took {observed.describe(rule.target)}; the row claims"
        f" {claimed.describe(rule.target)} ({rule.effect})"
    )


def test_every_row_with_a_lock_has_an_example_or_cannot_run_alone() -> None:
    names = {rule.name for rule in ROWS}
    unknown = sorted(set(CANNOT_RUN_ALONE) - names)
    assert not unknown, f"CANNOT_RUN_ALONE names no row of the table: {unknown}"
    listed_with_example = sorted(rule.name for rule in EXAMPLED if rule.name in CANNOT_RUN_ALONE)
    assert not listed_with_example, f"these have an example now: unlist {listed_with_example}"
    missing = [
        rule.name
        for rule in ROWS
        if rule.lock and not rule.example and rule.name not in CANNOT_RUN_ALONE
    ]
    assert not missing, f"rows with a lock but no example for the ground truth: {missing}"
