"""``up --online``: a statement that blocks a table runs under the bound, others under none.

One table of 2.5 million rows (its ``ALTER COLUMN ... TYPE bigint`` rewrite takes 2-4
seconds here) is filled once for the module; each test adds its own migration versions.
Figures are printed (``pytest -s``) and written to ``tests/.artifacts/online_bound.json``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PgServer
from tests.integration.migrator_support import ROOT, Run, assert_no_secret, run_migrator

ONLINE_BOUND_EXCEEDED = 10
ROWS = 2_500_000
BOUND_MS = 250
LOCK_TIMEOUT_MS = BOUND_MS // 2  # the runner keeps lock_timeout at or below half the bound
SLACK_MS = 3000  # a bound on behaviour on a loaded 2-core machine, not a speed claim
ARTIFACTS = ROOT / "tests" / ".artifacts"
FIGURES: dict[str, object] = {}

SETUP = """
CREATE TABLE call_archive (
    id bigint NOT NULL, duration integer NOT NULL, status text NOT NULL,
    caller integer, callee integer
) WITH (autovacuum_enabled = off);
INSERT INTO call_archive
    SELECT g, g % 600, 'completed', g % 7919, g % 104729 FROM generate_series(1, {rows}) AS g;
ALTER TABLE call_archive ADD PRIMARY KEY (id);
CREATE INDEX call_archive_caller_idx ON call_archive (caller);
CREATE INDEX call_archive_callee_idx ON call_archive (callee);
ALTER TABLE call_archive ADD CONSTRAINT call_archive_duration_check
    CHECK (duration >= 0 AND status ~ '^[a-z]+$') NOT VALID
"""


@pytest.fixture(scope="module")
def archive(postgres: PgServer) -> Iterator[str]:
    """A database whose ``call_archive`` holds ROWS rows; autovacuum off, so it stays still."""
    name = postgres.create_database()
    dsn = postgres.dsn_for(name)
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP.format(rows=ROWS))
        conn.execute("VACUUM ANALYZE call_archive")
    FIGURES["fill_s"] = round(time.monotonic() - started, 2)
    try:
        yield dsn
    finally:
        postgres.drop_database(name)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "online_bound.json").write_text(json.dumps(FIGURES, indent=2) + "\n")
        print(f"\nonline bound figures: {json.dumps(FIGURES)}")


@dataclass
class Reader:
    """The serving release: point reads of call_archive in a loop, each one timed."""

    dsn: str
    limit_s: float = 60.0
    reads: list[tuple[float, float]] = field(default_factory=list)  # (started, latency ms)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            key = 0
            while not self.stop.is_set() and time.monotonic() < deadline:
                key = key % ROWS + 7
                started = time.monotonic()
                try:
                    conn.execute("SELECT duration FROM call_archive WHERE id = %s", (key,))
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.reads.append((started, (time.monotonic() - started) * 1000))
                time.sleep(0.01)

    def finish(self) -> float:
        """Stop; every read succeeded; the longest one, ms."""
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.errors, self.errors[:3]
        return max(latency for _, latency in self.reads)

    def after(self, moment: float) -> int:
        return sum(1 for started, _ in self.reads if started > moment)


def versions(tmp_path: Path, name: str, sql: str) -> Path:
    folder = tmp_path / "versions"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)
    return folder


def run_while_serving(dsn: str, folder: Path, *args: str) -> tuple[Run, float, Reader]:
    """Run the migrator while a Reader serves; returns its run, when it exited, the reader."""
    reader = Reader(dsn)
    time.sleep(0.3)
    run = run_migrator(dsn, "up", "--dir", str(folder), *args)
    exited = time.monotonic()
    time.sleep(0.5)
    return run, exited, reader


def column_type(dsn: str, column: str) -> str | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'call_archive'::regclass AND attname = %s AND NOT attisdropped",
            (column,),
        ).fetchone()
    return row[0] if row else None


def history(dsn: str) -> dict[int, int]:
    """version -> duration_ms of the applied migrations."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT version, duration_ms FROM prosaas_schema_history").fetchall()
    return dict(rows)


def error_lines(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


def test_a_rewrite_is_cancelled_at_the_bound_online_and_applies_in_a_stop_run(
    archive: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    folder = versions(
        tmp_path,
        "0003_call_archive_duration_bigint.sql",
        "-- description: an accidental rewrite\n-- touches: call_archive\n"
        "ALTER TABLE call_archive ALTER COLUMN duration TYPE bigint;\n",
    )
    bound = ("--online", "--exclusive-statement-timeout-ms", str(BOUND_MS), "--json")
    run, exited, reader = run_while_serving(archive, folder, *bound)
    longest_ms = reader.finish()

    assert run.code == ONLINE_BOUND_EXCEEDED, run.output
    assert error_lines(run) == [
        "error: 0003_call_archive_duration_bigint.sql: line 3 held ACCESS EXCLUSIVE on"
        f" call_archive past the online bound of {BOUND_MS} ms and was cancelled; rolled back,"
        " schema and history unchanged: it rewrites or scans the table, so run it with the"
        " stop strategy or make it an online change"
    ]
    assert run.summary["online"] is True
    assert run.summary["exclusive_statement_timeout_ms"] == BOUND_MS
    assert run.summary["failed"] == 3
    assert run.summary["exit_code"] == ONLINE_BOUND_EXCEEDED
    assert "line 3 takes ACCESS EXCLUSIVE on call_archive" in run.stderr
    assert_no_secret(run, archive)
    assert column_type(archive, "duration") == "integer"
    assert 3 not in history(archive)
    assert longest_ms >= BOUND_MS / 2, "the reader never met the lock: the test proves nothing"
    assert longest_ms < BOUND_MS + LOCK_TIMEOUT_MS + SLACK_MS
    assert reader.after(exited) > 0, "reads must go on after the migrator exits"

    stop_run = run_migrator(archive, "up", "--dir", str(folder), "--json")
    assert stop_run.code == 0, stop_run.output
    assert stop_run.summary["online"] is False
    assert stop_run.summary["exclusive_statement_timeout_ms"] is None
    assert column_type(archive, "duration") == "bigint"
    rewrite_ms = history(archive)[3]
    assert rewrite_ms > 4 * BOUND_MS, "the rewrite must outlast the bound for the test to mean it"
    FIGURES.update(
        rewrite_without_bound_ms=rewrite_ms,
        rewrite_reader_longest_ms=round(longest_ms, 1),
        rewrite_reader_reads=len(reader.reads),
        rewrite_test_s=round(time.monotonic() - began, 2),
    )


def test_statements_after_a_blocking_one_share_what_is_left_of_its_bound(
    archive: str, tmp_path: Path
) -> None:
    """ADD COLUMN takes ACCESS EXCLUSIVE for a moment, but the UPDATE after it in the same
    transaction keeps that lock until the commit: the bound covers both."""
    began = time.monotonic()
    folder = versions(
        tmp_path,
        "0004_call_archive_note.sql",
        "-- description: a note on every archived call\n-- touches: call_archive\n"
        "ALTER TABLE call_archive ADD COLUMN note text;\n"
        "UPDATE call_archive SET note = 'archived';\n",
    )
    bound = ("--online", "--exclusive-statement-timeout-ms", str(BOUND_MS))
    run, _, reader = run_while_serving(archive, folder, *bound)
    longest_ms = reader.finish()

    assert run.code == ONLINE_BOUND_EXCEEDED, run.output
    assert error_lines(run) == [
        "error: 0004_call_archive_note.sql: line 4 ran while the transaction held ACCESS"
        " EXCLUSIVE on call_archive (taken at line 3) past the online bound of"
        f" {BOUND_MS} ms and was cancelled; rolled back, schema and history unchanged: that"
        " lock lasts until the commit, over every statement after line 3, so run it with the"
        " stop strategy or make it an online change"
    ]
    assert column_type(archive, "note") is None
    assert 4 not in history(archive)
    assert longest_ms < BOUND_MS + LOCK_TIMEOUT_MS + SLACK_MS
    FIGURES.update(
        same_transaction_reader_longest_ms=round(longest_ms, 1),
        same_transaction_test_s=round(time.monotonic() - began, 2),
    )


def test_concurrent_builds_and_validation_keep_no_bound_online(
    archive: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    tiny_ms = 50
    folder = versions(
        tmp_path,
        "0005_call_archive_status_idx.sql",
        "-- touches: call_archive\n-- transaction: false\n"
        "CREATE INDEX CONCURRENTLY call_archive_status_idx ON call_archive (status);\n",
    )
    versions(
        tmp_path,
        "0006_call_archive_validate.sql",
        "-- touches: call_archive\n"
        "ALTER TABLE call_archive VALIDATE CONSTRAINT call_archive_duration_check;\n",
    )
    run = run_migrator(
        archive, "up", "--dir", str(folder), "--online",
        "--exclusive-statement-timeout-ms", str(tiny_ms),
    )  # fmt: skip

    assert run.code == 0, run.output
    assert run.summary["applied"] == [5, 6]
    assert "takes" not in run.stderr  # neither statement was bounded
    with psycopg.connect(archive, autocommit=True) as conn:
        valid_index = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'call_archive_status_idx'::regclass"
        ).fetchone()[0]
        validated = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'call_archive_duration_check'"
        ).fetchone()[0]
    assert valid_index is True
    assert validated is True
    took = history(archive)
    assert took[5] > 2 * tiny_ms and took[6] > 2 * tiny_ms, took  # both outlasted the bound
    FIGURES.update(
        concurrent_index_ms=took[5],
        validate_constraint_ms=took[6],
        unbounded_test_s=round(time.monotonic() - began, 2),
    )
