"""`python -m migrator backfill call_log_timing` against a real PostgreSQL server."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.migrator_support import Run, run_migrator, start_migrator

JOB = "call_log_timing"
# What the job must produce, computed independently of its SET clause.
EXPECTED = """
    SELECT id,
           (COALESCE(answered_at, created_at) AT TIME ZONE 'UTC') AS started_at,
           duration AS duration_sec,
           CASE WHEN duration IS NULL THEN NULL
                ELSE (COALESCE(answered_at, created_at) AT TIME ZONE 'UTC')
                     + duration * interval '1 second' END AS ended_at
    FROM call_log WHERE id = ANY(%s) ORDER BY id
"""
ACTUAL = (
    "SELECT id, started_at, duration_sec, ended_at FROM call_log WHERE id = ANY(%s) ORDER BY id"
)


@pytest.fixture
def migrated(database: str) -> str:
    """A database with every migration applied (call_log has 109's columns, all NULL)."""
    run = run_migrator(database, "up")
    assert run.code == 0, run.output
    return database


def insert_legacy_rows(dsn: str, count: int, *, tag: str = "r") -> list[int]:
    """COUNT rows as v1 wrote them: a mix of answered, unanswered, NULL and zero durations."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            """
            INSERT INTO call_log (call_sid, created_at, answered_at, duration, status)
            SELECT %s || '-' || g,
                   now() - g * interval '1 minute',
                   CASE WHEN g %% 3 = 0 THEN NULL
                        ELSE now() - g * interval '1 minute' + interval '5 s' END,
                   CASE WHEN g %% 7 = 0 THEN NULL WHEN g %% 11 = 0 THEN 0 ELSE g %% 600 END,
                   'completed'
            FROM generate_series(1, %s) AS g
            RETURNING id
            """,
            (f"{tag}-{time.monotonic_ns()}", count),
        ).fetchall()
    return [row[0] for row in rows]


def insert_v2_row(dsn: str) -> int:
    """A row v2 wrote itself: its timing columns are set and must not be touched."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO call_log (call_sid, duration, started_at, ended_at, duration_sec)"
            " VALUES ('v2-row', 99, '2020-01-01 00:00:00', '2020-01-01 00:00:07', 7) RETURNING id"
        ).fetchone()
    assert row is not None
    return row[0]


def assert_filled(dsn: str, ids: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        expected = conn.execute(EXPECTED, (ids,)).fetchall()
        actual = conn.execute(ACTUAL, (ids,)).fetchall()
    wrong = [(want, got) for want, got in zip(expected, actual, strict=True) if want != got]
    assert not wrong, f"{len(wrong)} of {len(ids)} rows wrong, e.g. {wrong[:3]}"


def unfilled(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM call_log WHERE started_at IS NULL").fetchone()
    return row[0] if row else -1


def backfill(dsn: str, *args: str, timeout: float = 120) -> Run:
    return run_migrator(dsn, "backfill", JOB, *args, timeout=timeout)


def test_fills_ordinary_and_edge_rows_and_leaves_v2_rows_alone(migrated: str) -> None:
    ids = insert_legacy_rows(migrated, 2000)
    v2_row = insert_v2_row(migrated)

    run = backfill(migrated, "--batch-size", "150")

    assert run.code == 0, run.output
    assert run.summary["rows"] == 2000
    assert run.summary["finished"] is True
    assert run.summary["batches"] >= 2
    assert "✅ backfill call_log_timing complete: 2,000 rows filled" in run.stdout
    assert_filled(migrated, ids)
    with psycopg.connect(migrated, autocommit=True) as conn:
        edges = conn.execute(
            "SELECT count(*) FILTER (WHERE duration IS NULL AND duration_sec IS NULL"
            " AND ended_at IS NULL), count(*) FILTER (WHERE duration = 0 AND ended_at = started_at)"
            " FROM call_log WHERE id = ANY(%s)",
            (ids,),
        ).fetchone()
        kept = conn.execute(
            "SELECT started_at::text, duration_sec FROM call_log WHERE id = %s", (v2_row,)
        ).fetchone()
    assert edges is not None and edges[0] > 0 and edges[1] > 0, edges  # both kinds were there
    assert kept == ("2020-01-01 00:00:00", 7)


def test_dry_run_counts_and_changes_nothing_and_a_finished_job_does_nothing(migrated: str) -> None:
    insert_legacy_rows(migrated, 500)

    dry = backfill(migrated, "--dry-run")
    assert dry.code == 0, dry.output
    assert dry.summary["pending"] == 500
    assert "500 rows to fill (not started); dry run" in dry.stdout
    assert unfilled(migrated) == 500

    assert backfill(migrated).code == 0
    again = backfill(migrated)
    assert again.code == 0, again.output
    assert again.summary["rows"] == 0
    assert again.summary["already_finished"] is True
    assert "already finished, nothing to do" in again.stdout


def test_rows_inserted_while_the_job_runs_are_filled_when_it_goes_on(migrated: str) -> None:
    first = insert_legacy_rows(migrated, 1000)

    part = backfill(migrated, "--batch-size", "100", "--target-batch-ms", "0", "--max-rows", "400")
    assert part.code == 0, part.output
    assert part.summary["finished"] is False
    assert unfilled(migrated) == 600
    later = insert_legacy_rows(migrated, 300, tag="later")  # written while the job is under way

    rest = backfill(migrated)
    assert rest.code == 0, rest.output
    assert rest.summary["rows"] == 900
    assert f"resuming backfill {JOB} after key" in rest.stderr
    assert unfilled(migrated) == 0
    assert_filled(migrated, first + later)


def test_killed_job_resumes_where_it_stopped_and_fills_every_row_once(migrated: str) -> None:
    ids = insert_legacy_rows(migrated, 30000)
    job = start_migrator(
        migrated, "backfill", JOB, "--batch-size", "200", "--target-batch-ms", "0",
        "--sleep-ms", "20",
    )  # fmt: skip
    with psycopg.connect(migrated, autocommit=True) as conn:
        done = 0
        deadline = time.monotonic() + 60
        while done < 2000 and time.monotonic() < deadline:
            time.sleep(0.1)
            row = conn.execute(
                "SELECT rows_done FROM prosaas_backfill_progress WHERE name = %s", (JOB,)
            ).fetchone() if progress_exists(conn) else None  # fmt: skip
            done = row[0] if row else 0
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=10)
    assert job.returncode == -signal.SIGKILL
    left = unfilled(migrated)
    assert 0 < left <= 30000 - 2000, f"the kill should land mid-run, {left} rows left"

    resumed = backfill(migrated, timeout=300)

    assert resumed.code == 0, resumed.output
    assert resumed.summary["rows"] == left  # no batch done twice, none skipped
    assert unfilled(migrated) == 0
    assert_filled(migrated, ids)
    with psycopg.connect(migrated, autocommit=True) as conn:
        total = conn.execute(
            "SELECT rows_done, finished_at IS NOT NULL FROM prosaas_backfill_progress"
            " WHERE name = %s",
            (JOB,),
        ).fetchone()
    assert total == (30000, True)


def progress_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('prosaas_backfill_progress')").fetchone()
    return bool(row and row[0])


class Writer:
    """Updates random call_log rows, one short transaction each, and keeps each latency."""

    def __init__(self, dsn: str, ids: list[int]) -> None:
        self.dsn = dsn
        self.ids = ids
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        pick = random.Random(7)  # noqa: S311 - picks rows, not secrets
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute(
                        "UPDATE call_log SET status = 'answered', updated_at = now() WHERE id = %s",
                        (pick.choice(self.ids),),
                    )
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.002)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture
def big_table(migrated: str) -> Iterator[tuple[str, list[int]]]:
    yield migrated, insert_legacy_rows(migrated, 100_000)


def test_a_concurrent_writer_is_never_blocked_longer_than_one_batch(big_table) -> None:
    dsn, ids = big_table
    with Writer(dsn, ids) as writer:
        time.sleep(0.3)
        run = backfill(dsn, "--target-batch-ms", "50", timeout=300)
        time.sleep(0.3)

    assert run.code == 0, run.output
    assert run.summary["rows"] == 100_000
    assert writer.errors == []
    assert len(writer.latencies) > 100
    longest_batch_s = run.summary["longest_batch_ms"] / 1000
    # A writer waits at most for the batch that holds its row: one batch, plus scheduling.
    assert max(writer.latencies) <= longest_batch_s + 0.25, (
        f"writer waited {max(writer.latencies):.3f} s; longest batch {longest_batch_s:.3f} s"
    )
    assert longest_batch_s < 1.0
