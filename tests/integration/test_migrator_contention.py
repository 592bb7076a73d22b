"""The migrator under lock contention: it never queues behind an old lock holder.

Figures of the key test are printed (``pytest -s``) and written to
``tests/.artifacts/contention.json``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.integration.migrator_support import (
    ROOT,
    applied_versions,
    assert_no_secret,
    call_log_columns,
    call_log_fingerprint,
    copy_versions,
    insert_calls,
    run_migrator,
    start_migrator,
)

LOCK_BUDGET_EXHAUSTED = 7
SLACK_MS = 300
ARTIFACTS = ROOT / "tests" / ".artifacts"


@dataclass
class Traffic:
    """A third session running short queries in a loop, timing each one."""

    dsn: str
    table: str = "call_log"
    latencies_ms: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> Traffic:
        self.thread.start()
        return self

    def run(self) -> None:
        number = 0
        table = sql.Identifier(self.table)
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    number += 1
                    for query, params in (
                        (sql.SQL("SELECT count(*) FROM {}").format(table), None),
                        (
                            sql.SQL(
                                "INSERT INTO {} (call_sid, status) VALUES (%s, 'ringing')"
                            ).format(table),
                            (f"TRAFFIC{number}",),
                        ),
                    ):
                        started = time.monotonic()
                        conn.execute(query, params)
                        self.latencies_ms.append((time.monotonic() - started) * 1000)
                    time.sleep(0.01)
        except psycopg.Error as exc:
            self.errors.append(str(exc))

    def finish(self) -> float:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.errors, self.errors
        assert self.latencies_ms
        return max(self.latencies_ms)


class Lines:
    """Read a pipe in a thread, stamping each line with the monotonic clock."""

    def __init__(self, pipe) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append((time.monotonic(), line))

    def first(self, text: str) -> float | None:
        return next((stamp for stamp, line in self.lines if text in line), None)

    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(line for _, line in self.lines)


def largest_lock_timeout(stderr: str) -> int:
    """The largest lock_timeout an attempt used: failed ones are logged, the last one is not."""
    failed = [int(ms) for ms in re.findall(r"\(lock_timeout (\d+) ms\) gave up", stderr)]
    following = min(100 * 2 ** len(failed), 1000)
    return max([*failed, following])


def test_old_holder_is_waited_out_without_blocking_traffic(database: str) -> None:
    assert run_migrator(database, "up", "--to", "2").code == 0
    insert_calls(database, 300)
    before = call_log_fingerprint(database)

    holder = psycopg.connect(database)  # session B: an open transaction reading call_log
    holder.execute("SELECT count(*) FROM call_log").fetchone()
    holder_pid = holder.info.backend_pid
    traffic = Traffic(database).start()  # session C
    migrator = start_migrator(database, "up")
    out, err = Lines(migrator.stdout), Lines(migrator.stderr)
    time.sleep(3.0)
    assert migrator.poll() is None, "the migrator must wait while B holds its lock"
    assert applied_versions(database) == [1, 2]
    released = time.monotonic()
    holder.commit()
    holder.close()
    code = migrator.wait(timeout=20)
    time.sleep(0.3)  # a little traffic after the change too
    longest_ms = traffic.finish()
    stdout, stderr = out.text(), err.text()
    done = out.first("✅ Migration 109 complete")

    assert code == 0, stdout + stderr
    assert done is not None, stdout
    release_to_completion_ms = (done - released) * 1000
    largest_ms = largest_lock_timeout(stderr)
    figures = {
        "longest_blocked_query_ms": round(longest_ms, 1),
        "release_to_completion_ms": round(release_to_completion_ms, 1),
        "largest_lock_timeout_ms": largest_ms,
        "traffic_queries": len(traffic.latencies_ms),
        "attempts": json.loads(stdout.strip().splitlines()[-1])["attempts"],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "contention.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\ncontention figures: {json.dumps(figures)}")

    assert f"pid {holder_pid} (idle in transaction" in stderr  # who is in the way, logged
    assert "not queueing behind" in stderr
    assert 0 < release_to_completion_ms < 1000
    assert longest_ms < largest_ms + SLACK_MS
    assert applied_versions(database) == [1, 2, 109]
    assert len(call_log_columns(database)) == 3
    count, _ = call_log_fingerprint(database)
    assert count >= before[0]


def test_holder_that_never_lets_go_exhausts_the_budget(database: str) -> None:
    assert run_migrator(database, "up", "--to", "2").code == 0
    insert_calls(database, 50)
    before = call_log_fingerprint(database)
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE call_log IN ACCESS SHARE MODE")
        traffic = Traffic(database).start()
        started = time.monotonic()
        run = run_migrator(database, "up", "--lock-budget-s", "3")
        took = time.monotonic() - started
        longest_ms = traffic.finish()
        holder.rollback()
    assert run.code == LOCK_BUDGET_EXHAUSTED, run.output
    assert 3 <= took < 8
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "lock budget of 3 s exhausted" in errors[0]
    assert "0109_call_log_timing.sql" in errors[0]
    assert "idle in transaction" in errors[0]
    assert run.summary["exit_code"] == LOCK_BUDGET_EXHAUSTED
    assert call_log_columns(database) == set()
    assert applied_versions(database) == [1, 2]
    assert longest_ms < 100 + SLACK_MS  # it never even queued
    assert call_log_fingerprint(database)[0] == before[0] + len(traffic.latencies_ms) // 2
    assert_no_secret(run, database)


def side_table_versions(tmp_path: Path) -> Path:
    """0001 plus a side table, and a migration that alters it without declaring it.

    The blocker check cannot see a holder on an undeclared table, so the runner really
    attempts, times out and retries: the retry schedule and the blocker log are exercised.
    """
    versions = copy_versions(tmp_path / "versions", (1,))
    (versions / "0002_side.sql").write_text(
        "CREATE TABLE side (id bigserial PRIMARY KEY, call_sid text NOT NULL, status text);\n"
    )
    (versions / "0003_side_note.sql").write_text(
        "-- touches: call_log\nALTER TABLE side ADD COLUMN IF NOT EXISTS note text;\n"
    )
    return versions


def side_has_note(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'side' AND column_name = 'note'"
        ).fetchone()
    return row[0] == 1


def test_failed_attempts_grow_their_lock_timeout_and_log_the_blockers(
    database: str, tmp_path: Path
) -> None:
    versions = side_table_versions(tmp_path)
    assert run_migrator(database, "up", "--dir", str(versions), "--to", "2").code == 0
    with psycopg.connect(database) as holder:
        holder.execute("SELECT count(*) FROM side /* the holder's query */").fetchone()
        pid = holder.info.backend_pid
        traffic = Traffic(database, table="side").start()
        run = run_migrator(database, "up", "--dir", str(versions), "--lock-budget-s", "2.5")
        longest_ms = traffic.finish()
        holder.rollback()
    assert run.code == LOCK_BUDGET_EXHAUSTED, run.output
    timeouts = [int(ms) for ms in re.findall(r"\(lock_timeout (\d+) ms\) gave up", run.stderr)]
    assert timeouts[:4] == [100, 200, 400, 800], run.stderr
    assert f"blocked by: pid {pid} (idle in transaction" in run.stderr
    assert "the holder's query" in run.stderr
    assert "canceling statement due to lock timeout" in run.stderr
    assert not side_has_note(database)
    assert applied_versions(database) == [1, 2]
    assert longest_ms < max(timeouts) + SLACK_MS


WAITING_ON_SIDE = """
    SELECT a.query_start FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.relation = 'side'::regclass AND NOT l.granted
"""


def wait_for_a_second_attempt(database: str) -> None:
    """Until a migrator's statement waits on `side` for the second time (a new query_start:
    the first attempt timed out and the next one is waiting), never for a fixed time."""
    with psycopg.connect(database, autocommit=True) as watch:
        seen: set[object] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 2:
            assert time.monotonic() < deadline, "the migrator never retried its lock"
            seen |= {row[0] for row in watch.execute(WAITING_ON_SIDE).fetchall()}
            time.sleep(0.01)


def test_retries_succeed_once_the_holder_is_gone(database: str, tmp_path: Path) -> None:
    versions = side_table_versions(tmp_path)
    assert run_migrator(database, "up", "--dir", str(versions), "--to", "2").code == 0
    holder = psycopg.connect(database)
    holder.execute("SELECT count(*) FROM side").fetchone()
    migrator = start_migrator(database, "up", "--dir", str(versions))
    wait_for_a_second_attempt(database)
    holder.commit()
    holder.close()
    stdout, stderr = migrator.communicate(timeout=20)
    assert migrator.returncode == 0, stdout + stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["applied"] == [3]
    assert summary["attempts"]["3"] >= 2
    assert "✅ Migration 3 complete" in stdout
    assert side_has_note(database)
