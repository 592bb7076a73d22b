"""Migration headers, parsed by migrator.files, and the columns the lookup makes of them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "migrations"))

from migrator.files import (  # noqa: E402 - needs the migrations folder on the path
    Allow,
    Column,
    MigrationFileError,
    load_migration,
    load_migrations,
)

GOOD = """\
-- description: Add call timing columns to call_log
-- adds-column: call_log.started_at timestamp
-- adds-column: Call_Log.Duration_Sec   INTEGER
-- adds-column: call_log.amount numeric(10, 2)
-- touches: call_log, call_event
-- transaction: false
-- allow: drop-column because no release reads it since 0041
-- allow: rename-column because   the 0040 release reads both names
-- a free comment, not a header line
ALTER TABLE call_log ADD COLUMN started_at TIMESTAMP;
-- adds-column: call_log.after_body text
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_header_is_parsed(tmp_path: Path) -> None:
    migration = load_migration(write(tmp_path, "0042_call_timing.sql", GOOD))
    assert migration.version == 42
    assert migration.label == "0042_call_timing"
    assert migration.description == "Add call timing columns to call_log"
    assert migration.columns == (
        Column("call_log", "started_at", "timestamp"),
        Column("call_log", "duration_sec", "integer"),
        Column("call_log", "amount", "numeric(10, 2)"),
    )
    assert migration.touches == ("call_log", "call_event")
    assert migration.transactional is False
    assert migration.allows == (
        Allow("drop-column", "no release reads it since 0041", 7),
        Allow("rename-column", "the 0040 release reads both names", 8),
    )
    assert migration.allow == frozenset({"drop-column", "rename-column"})
    assert len(migration.checksum) == 64


def test_defaults_without_header(tmp_path: Path) -> None:
    migration = load_migration(write(tmp_path, "0003_plain.sql", "SELECT 1;\n"))
    assert migration.columns == ()
    assert migration.transactional is True
    assert migration.allow == frozenset()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("109_call_log.sql", "SELECT 1;", "named NNNN_slug.sql"),
        ("0109-call-log.sql", "SELECT 1;", "named NNNN_slug.sql"),
        ("0109_Call_Log.sql", "SELECT 1;", "named NNNN_slug.sql"),
        ("0109_call_log.sql", "-- description: nothing\n\n-- only comments\n", "no SQL statement"),
        ("0109_call_log.sql", "", "no SQL statement"),
        ("0109_call_log.sql", "-- adds-colum: call_log.x int\nSELECT 1;", "unknown header key"),
        ("0109_call_log.sql", "-- adds-column: call_log x int\nSELECT 1;", "table.column type"),
        ("0109_call_log.sql", "-- adds-column: call_log.x\nSELECT 1;", "table.column type"),
        ("0109_call_log.sql", "-- adds-column: 1call.x int\nSELECT 1;", "table.column type"),
        ("0109_call_log.sql", "-- transaction: no\nSELECT 1;", "true or false"),
        ("0109_call_log.sql", "-- allow: truncate because x\nSELECT 1;", "unknown lint rule"),
        ("0109_call_log.sql", "-- allow: drop-column\nSELECT 1;", "RULE because REASON"),
    ],
)
def test_bad_files_are_refused_with_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(MigrationFileError) as raised:
        load_migration(write(tmp_path, name, text))
    text_of_error = str(raised.value)
    assert message in text_of_error
    assert text_of_error.startswith(name)
    assert "\n" not in text_of_error


def test_the_line_number_is_named(tmp_path: Path) -> None:
    text = "-- description: x\n-- transaction: maybe\nSELECT 1;\n"
    with pytest.raises(MigrationFileError, match=r"^0001_x\.sql:2: "):
        load_migration(write(tmp_path, "0001_x.sql", text))


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_one.sql", "SELECT 1;")
    write(tmp_path, "0001_again.sql", "SELECT 2;")
    with pytest.raises(MigrationFileError, match="version 0001 is also used by"):
        load_migrations(tmp_path)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="no such migrations directory"):
        load_migrations(tmp_path / "nowhere")


def test_migrations_come_in_numeric_order(tmp_path: Path) -> None:
    write(tmp_path, "0109_b.sql", "SELECT 1;")
    write(tmp_path, "0002_a.sql", "SELECT 1;")
    assert [m.version for m in load_migrations(tmp_path)] == [2, 109]


def test_the_real_0109_declares_the_three_timing_columns() -> None:
    migrations = {m.version: m for m in load_migrations(ROOT / "migrations" / "versions")}
    assert migrations[109].label == "0109_call_log_timing"
    assert migrations[109].columns == (
        Column("call_log", "started_at", "timestamp"),
        Column("call_log", "ended_at", "timestamp"),
        Column("call_log", "duration_sec", "integer"),
    )
