"""``python -m migrator`` end to end against a real PostgreSQL: up, status, plan, verify."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.integration.migrator_support import (
    SEED_QUERY,
    TIMING_COLUMNS,
    applied_versions,
    assert_no_secret,
    call_log_columns,
    call_log_fingerprint,
    command,
    copy_versions,
    insert_calls,
    migrator_env,
    run_migrator,
    scalar,
    user_tables,
)

OK, USAGE, CANNOT_CONNECT, BAD_FILE, CHECKSUM, SQL_ERROR, VERIFY_FAILED = 0, 2, 3, 4, 5, 6, 8


def test_fresh_database_up_applies_everything_then_nothing(database: str) -> None:
    first = run_migrator(database, "up")
    assert first.code == OK, first.output
    with psycopg.connect(database) as conn:
        assert len(conn.execute(SEED_QUERY).fetchall()) == 3
    assert "✅ Migration 109 complete" in first.stdout
    assert "✅ Migration 1 complete" in first.stdout
    assert first.summary["applied"] == [1, 2, 109]
    assert first.summary["exit_code"] == 0
    assert applied_versions(database) == [1, 2, 109]
    assert "call_log.started_at: absent" in first.stderr
    assert "call_log.started_at: exists, timestamp without time zone" in first.stderr
    assert_no_secret(first, database)

    again = run_migrator(database, "up")
    assert again.code == OK, again.output
    assert again.summary["applied"] == []
    assert again.summary["skipped"] == [1, 2, 109]
    assert "✅" not in again.stdout
    assert_no_secret(again, database)


def test_history_rows_record_checksum_duration_and_who(database: str) -> None:
    assert run_migrator(database, "up", MIGRATOR_APPLIED_BY="deploy@ci").code == OK
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT version, name, length(checksum), duration_ms >= 0, applied_by,"
            " applied_at <= now() FROM prosaas_schema_history ORDER BY version"
        ).fetchall()
    assert rows == [
        (1, "create_call_log", 64, True, "deploy@ci", True),
        (2, "call_log_created_at_index", 64, True, "deploy@ci", True),
        (109, "call_log_timing", 64, True, "deploy@ci", True),
    ]


def test_up_to_stops_after_that_version_and_status_plan_verify(database: str) -> None:
    partial = run_migrator(database, "up", "--to", "2")
    assert partial.code == OK, partial.output
    assert partial.summary["applied"] == [1, 2]
    assert call_log_columns(database) == set()

    plan = run_migrator(database, "plan")
    assert plan.code == OK, plan.output
    assert plan.summary["pending"] == [109]
    assert plan.summary["applied"] == [1, 2]
    assert plan.summary["touches"] == ["call_log"]
    assert "would apply 0109_call_log_timing (online; in a transaction" in plan.stdout
    declared = {m["version"]: m for m in plan.summary["migrations"]}
    assert [(v, m["status"]) for v, m in declared.items()] == [
        (1, "applied"),
        (2, "applied"),
        (109, "pending"),
    ]
    assert declared[109]["file"] == "0109_call_log_timing.sql"
    assert len(declared[109]["checksum"]) == 64
    assert {c["column"] for c in declared[109]["columns"]} == {
        "started_at",
        "ended_at",
        "duration_sec",
    }
    assert declared[109]["touches"] == ["call_log"]
    # Three nullable columns without a default: only the catalog changes.
    assert (declared[109]["class"], declared[109]["class_reasons"]) == ("online", [])
    # From a checkout the lint runs now (squawk is in the virtualenv): 109 is accepted.
    assert (declared[109]["verdict"], declared[109]["findings"]) == ("accepted", [])
    assert declared[109]["allows"] == []
    assert (
        "would apply 0109_call_log_timing (online; in a transaction; touches call_log;"
        " lint accepted)" in plan.stdout
    )
    assert applied_versions(database) == [1, 2]

    status = run_migrator(database, "status", "--json")
    assert status.code == OK, status.output
    assert [a["version"] for a in status.summary["applied"]] == [1, 2]
    assert all(a["applied_at"] for a in status.summary["applied"])
    assert status.summary["pending"] == [109]
    assert len(status.stdout.strip().splitlines()) == 1  # --json: stdout is the summary only

    verify = run_migrator(database, "verify")
    assert verify.code == OK, verify.output
    assert verify.summary["checked"] == 5  # 0001's declared columns; 109 is not applied
    for run in (partial, plan, status, verify):
        assert_no_secret(run, database)


def test_plan_changes_nothing_on_a_fresh_database(database: str) -> None:
    plan = run_migrator(database, "plan")
    assert plan.code == OK, plan.output
    assert plan.summary["pending"] == [1, 2, 109]
    assert user_tables(database) == []
    status = run_migrator(database, "status")
    assert status.code == OK and user_tables(database) == []


def test_verify_compares_types_through_the_catalog_and_fails_on_drift(database: str) -> None:
    assert run_migrator(database, "up").code == OK
    verify = run_migrator(database, "verify")
    assert verify.code == OK, verify.output  # 'timestamp' == 'timestamp without time zone'
    assert verify.summary["checked"] == 8
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("ALTER TABLE call_log DROP COLUMN ended_at")
        conn.execute("ALTER TABLE call_log ALTER COLUMN duration_sec TYPE bigint")
    broken = run_migrator(database, "verify")
    assert broken.code == VERIFY_FAILED, broken.output
    assert "call_log.ended_at is missing" in broken.stderr
    assert "call_log.duration_sec is bigint, declared integer" in broken.stderr
    assert len([line for line in broken.stderr.splitlines() if "error:" in line]) == 1


def test_rows_are_the_same_before_and_after_109(database: str) -> None:
    assert run_migrator(database, "up", "--to", "2").code == OK
    insert_calls(database, 500)
    before = call_log_fingerprint(database)
    assert before[0] == 500
    assert run_migrator(database, "up").code == OK
    assert call_log_fingerprint(database) == before
    assert scalar(database, "SELECT count(*) FROM call_log WHERE started_at IS NOT NULL") == 0


def test_a_changed_applied_file_is_refused(database: str, tmp_path: Path) -> None:
    versions = copy_versions(tmp_path / "versions")
    assert run_migrator(database, "up", "--dir", str(versions)).code == OK
    path = versions / "0109_call_log_timing.sql"
    old = scalar(database, "SELECT checksum FROM prosaas_schema_history WHERE version = 109")
    path.write_text(path.read_text() + "ALTER TABLE call_log ADD COLUMN sneaky integer;\n")
    (versions / "0110_more.sql").write_text("ALTER TABLE call_log ADD COLUMN later integer;\n")
    refused = run_migrator(database, "up", MIGRATIONS_DIR=str(versions))
    assert refused.code == CHECKSUM, refused.output
    error_lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "0109_call_log_timing.sql" in error_lines[0]
    assert str(old) in error_lines[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() in error_lines[0]
    assert refused.summary["exit_code"] == CHECKSUM
    assert applied_versions(database) == [1, 2, 109]
    assert scalar(database, "SELECT to_regclass('call_log') IS NOT NULL") is True
    columns = scalar(
        database,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'call_log'"
        " AND column_name IN ('sneaky', 'later')",
    )
    assert columns == 0
    assert run_migrator(database, "plan", "--dir", str(versions)).code == CHECKSUM


def test_two_runners_started_together_apply_once(database: str) -> None:
    runners = [
        subprocess.Popen(
            command("up"),
            env=migrator_env(database),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [runner.communicate(timeout=60) for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], results
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    applied = sorted((s["applied"] for s in summaries), key=len)
    assert applied == [[], [1, 2, 109]]
    assert sum(out.count("✅ Migration 109 complete") for out, _ in results) == 1
    assert applied_versions(database) == [1, 2, 109]
    assert len(call_log_columns(database)) == 3


def test_a_migration_with_an_sql_error_changes_nothing(database: str, tmp_path: Path) -> None:
    versions = copy_versions(tmp_path / "versions", (1, 2))
    assert run_migrator(database, "up", "--dir", str(versions)).code == OK
    (versions / "0003_broken.sql").write_text(
        "-- adds-column: call_log.half_done integer\n"
        "ALTER TABLE call_log ADD COLUMN half_done integer;\n"
        "SELECT no_such_column FROM call_log;\n"
    )
    failed = run_migrator(database, "up", "--dir", str(versions))
    assert failed.code == SQL_ERROR, failed.output
    error_lines = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "0003_broken.sql" in error_lines[0]
    assert 'column "no_such_column" does not exist' in error_lines[0]
    assert "Traceback" not in failed.output
    assert failed.summary["failed"] == 3
    assert applied_versions(database) == [1, 2]
    assert (
        scalar(
            database,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'half_done'",
        )
        == 0
    )
    assert_no_secret(failed, database)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("109_call_log_timing.sql", "SELECT 1;\n", "named NNNN_slug.sql"),
        ("0003_Bad-Name.sql", "SELECT 1;\n", "named NNNN_slug.sql"),
        ("0003_empty.sql", "", "no SQL statement"),
        ("0003_comments_only.sql", "-- description: nothing\n-- more\n", "no SQL statement"),
        ("0109_again.sql", "SELECT 1;\n", "version 0109 is also used by"),
        ("0003_unknown_key.sql", "-- colour: blue\nSELECT 1;\n", "unknown header key"),
    ],
)
def test_bad_files_are_refused_before_touching_the_database(
    database: str, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    versions = copy_versions(tmp_path / "versions")
    (versions / name).write_text(content)
    run = run_migrator(database, "up", "--dir", str(versions))
    assert run.code == BAD_FILE, run.output
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
    assert expected in run.stderr
    assert name in run.stderr or "0109_call_log_timing.sql" in run.stderr
    assert user_tables(database) == []  # not even the history table
    assert run.summary["exit_code"] == BAD_FILE


def test_missing_dsn_is_a_usage_error() -> None:
    run = run_migrator(None, "up")
    assert run.code == USAGE
    assert run.stderr.startswith("error: DATABASE_URL is not set")
    assert run.stderr.count("\n") == 1
    assert run.summary["exit_code"] == USAGE


def test_wrong_password_and_dead_server_are_cannot_connect(database: str) -> None:
    wrong = psycopg.conninfo.make_conninfo(database, password="Wr0ng-s3cret-pw")  # noqa: S106
    run = run_migrator(wrong, "up")
    assert run.code == CANNOT_CONNECT, run.output
    assert "password authentication failed" in run.stderr
    assert "Wr0ng-s3cret-pw" not in run.output
    assert "postgresql://postgres:***@127.0.0.1" in run.stderr
    assert run.stderr.count("error:") == 1
    assert "Traceback" not in run.output

    dead = "postgresql://someone:Dead-s3cret@127.0.0.1:1/db"
    run = run_migrator(dead, "status", "--connect-timeout-s", "2")
    assert run.code == CANNOT_CONNECT, run.output
    assert "Dead-s3cret" not in run.output
    assert "postgresql://someone:***@127.0.0.1:1/db" in run.stderr


def test_help_documents_the_exit_codes() -> None:
    run = run_migrator(None, "--help")
    assert run.code == 0
    for name in ("LOCK_BUDGET_EXHAUSTED", "CHECKSUM_MISMATCH", "SQL_ERROR", "CANNOT_CONNECT",
                 "BAD_MIGRATION_FILE", "RUNNER_LOCK_TIMEOUT", "VERIFY_FAILED"):  # fmt: skip
        assert name in run.stdout
    for sub in ("up", "status", "plan", "verify", "lint"):
        assert sub in run.stdout
    assert "--to" in run_migrator(None, "up", "--help").stdout


def test_columns_are_listed_with_the_seed_query(database: str) -> None:
    assert run_migrator(database, "up").code == OK
    assert call_log_columns(database) == set(TIMING_COLUMNS)


def test_plan_reports_from_a_lint_record_and_vouches_only_for_its_checksums(
    database: str, tmp_path: Path
) -> None:
    linted = run_migrator(None, "lint", "--all", "--json")
    assert linted.code == OK, linted.output
    record = linted.summary
    for entry in record["files"]:
        if entry["version"] == 2:
            entry["verdict"] = "refused"
            entry["findings"] = [{"line": 4, "rule": "index-not-concurrent", "message": "m"}]
        if entry["version"] == 109:
            entry["checksum"] = "0" * 64  # the record is not of these files
    path = tmp_path / "lint.json"
    path.write_text(json.dumps(record))

    plan = run_migrator(database, "plan", MIGRATIONS_LINT=str(path))
    assert plan.code == OK, plan.output
    verdicts = {m["version"]: m["verdict"] for m in plan.summary["migrations"]}
    assert verdicts == {1: "accepted", 2: "refused", 109: "not linted"}
    assert "line 4: index-not-concurrent: m" in plan.stdout

    path.write_text("{not json")
    broken = run_migrator(database, "plan", MIGRATIONS_LINT=str(path))
    assert broken.code == BAD_FILE, broken.output
    assert f"the lint record {path} cannot be read" in broken.stderr
