"""Migrations that run outside a transaction (``transaction: false``, CREATE INDEX CONCURRENTLY)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from tests.integration.migrator_support import (
    applied_versions,
    assert_no_secret,
    copy_versions,
    insert_calls,
    run_migrator,
    start_migrator,
)

SQL_ERROR = 6


def index_state(dsn: str, name: str) -> bool | None:
    """indisvalid of the index, None when there is no such index."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s",
            (name,),
        ).fetchone()
    return None if row is None else row[0]


def invalid_index_count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]


def test_0002_builds_its_index_concurrently(database: str) -> None:
    run = run_migrator(database, "up", "--to", "2")
    assert run.code == 0, run.output
    assert run.summary["applied"] == [1, 2]
    assert "✅ Migration 2 complete" in run.stdout
    assert index_state(database, "call_log_created_at_idx") is True


@pytest.mark.parametrize("index_name", ["call_log_status_uniq", ""])
def test_a_failed_concurrent_build_leaves_no_invalid_index(
    database: str, tmp_path: Path, index_name: str
) -> None:
    versions = copy_versions(tmp_path / "versions", (1, 2))
    assert run_migrator(database, "up", "--dir", str(versions)).code == 0
    insert_calls(database, 20)  # every row has status 'completed': not unique
    (versions / "0003_status_unique.sql").write_text(
        "-- touches: call_log\n-- transaction: false\n"
        f"CREATE UNIQUE INDEX CONCURRENTLY {index_name} ON call_log (status);\n"
    )
    run = run_migrator(database, "up", "--dir", str(versions))
    assert run.code == SQL_ERROR, run.output
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "0003_status_unique.sql" in errors[0]
    assert "could not create unique index" in errors[0]
    assert "dropped INVALID index" in errors[0]
    assert invalid_index_count(database) == 0
    assert applied_versions(database) == [1, 2]
    assert_no_secret(run, database)


def test_an_invalid_index_from_an_earlier_failure_is_dropped_and_rebuilt(
    database: str, tmp_path: Path
) -> None:
    versions = copy_versions(tmp_path / "versions", (1, 2))
    assert run_migrator(database, "up", "--dir", str(versions)).code == 0
    insert_calls(database, 10)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE call_log SET from_number = '+1000' WHERE id <= 2")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY call_log_from_uniq ON call_log (from_number)"
            )
        conn.execute("UPDATE call_log SET from_number = '+2000' WHERE id = 2")
    assert index_state(database, "call_log_from_uniq") is False
    (versions / "0003_from_unique.sql").write_text(
        "-- touches: call_log\n-- transaction: false\n"
        "-- IF NOT EXISTS alone would keep the INVALID index and call it done\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS call_log_from_uniq"
        " ON call_log (from_number);\n"
        "COMMENT ON INDEX call_log_from_uniq IS 'one row per caller; a ; in a string';\n"
    )
    run = run_migrator(database, "up", "--dir", str(versions))
    assert run.code == 0, run.output
    assert "dropping INVALID index public.call_log_from_uniq" in run.stderr
    assert index_state(database, "call_log_from_uniq") is True
    assert applied_versions(database) == [1, 2, 3]


def test_a_lock_timeout_mid_build_is_retried_after_dropping_the_invalid_index(
    database: str, tmp_path: Path
) -> None:
    """CREATE INDEX CONCURRENTLY waits for every older snapshot: a REPEATABLE READ
    transaction that never touched call_log makes it time out after the index entry exists."""
    versions = copy_versions(tmp_path / "versions", (1, 2))
    assert run_migrator(database, "up", "--dir", str(versions)).code == 0
    insert_calls(database, 10)
    (versions / "0003_to_number_idx.sql").write_text(
        "-- touches: call_log\n-- transaction: false\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS call_log_to_number_idx ON call_log (to_number);\n"
    )
    holder = psycopg.connect(database)
    holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT count(*) FROM pg_class").fetchone()
    migrator = start_migrator(database, "up", "--dir", str(versions))
    time.sleep(1.5)
    holder.commit()
    holder.close()
    stdout, stderr = migrator.communicate(timeout=20)
    assert migrator.returncode == 0, stdout + stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["applied"] == [3]
    assert summary["attempts"]["3"] >= 2
    assert "gave up" in stderr
    assert "dropping INVALID index public.call_log_to_number_idx" in stderr
    assert index_state(database, "call_log_to_number_idx") is True
    assert invalid_index_count(database) == 0
