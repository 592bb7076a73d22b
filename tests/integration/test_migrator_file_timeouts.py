"""A file's own SET of lock_timeout / statement_timeout can only tighten the runner's.

Each test makes a table ``t`` itself and gives the migrator one or two files that do not
declare it (no ``touches``), so the runner really attempts the ALTER TABLE rather than
waiting for a blocker to leave. A lock is held from another connection for the whole run
(checked granted in pg_locks first), so which timeout ends a wait never depends on timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.integration.migrator_support import (
    Run,
    applied_versions,
    assert_no_secret,
    run_migrator,
    user_tables,
)

BAD_FILE, SQL_ERROR, LOCK_BUDGET_EXHAUSTED, ONLINE_BOUND_EXCEEDED = 4, 6, 7, 10
HANG_S = 30  # far beyond any budget here: a run still going then waits on its own


@pytest.fixture
def table(database: str) -> str:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    return database


@contextmanager
def lock_held(dsn: str, mode: str = "ACCESS SHARE") -> Iterator[int]:
    """Another session holds MODE on ``t`` until the block ends; yields its pid."""
    with psycopg.connect(dsn) as holder:
        holder.execute(f"LOCK TABLE t IN {mode} MODE")
        pid = holder.info.backend_pid
        with psycopg.connect(dsn, autocommit=True) as observer:
            granted = observer.execute(
                "SELECT granted FROM pg_locks WHERE pid = %s AND relation = 't'::regclass",
                (pid,),
            ).fetchone()
        assert granted == (True,), "the holder must hold its lock before the run starts"
        try:
            yield pid
        finally:
            holder.rollback()


def versions(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "versions"
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / f"{name}.sql").write_text(sql)
    return folder


def up(dsn: str, folder: Path, *args: str) -> Run:
    return run_migrator(dsn, "up", "--dir", str(folder), *args, timeout=HANG_S)


def error_lines(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


def lock_timeouts(run: Run) -> list[int]:
    """The lock_timeout of each failed attempt, as the runner logged it."""
    return [int(ms) for ms in re.findall(r"\(lock_timeout (\d+) ms\) gave up", run.stderr)]


def has_note(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_attribute"
            " WHERE attrelid = 't'::regclass AND attname = 'note' AND NOT attisdropped"
        ).fetchone()
    return row == (1,)


@pytest.mark.parametrize(
    ("header", "value", "args"),
    [
        ("", "0", ()),
        ("", "'5s'", ()),
        ("-- transaction: false\n", "0", ()),
        ("", "'1h'", ("--online",)),
    ],
    ids=["no-limit", "5s", "no-limit-outside-a-transaction", "1h-online"],
)
def test_a_looser_lock_timeout_in_the_file_gets_the_runners(
    table: str, tmp_path: Path, header: str, value: str, args: tuple[str, ...]
) -> None:
    line = header.count("\n") + 1  # of the SET
    folder = versions(
        tmp_path,
        **{
            "0001_t_note": f"{header}SET lock_timeout = {value};\n"
            "ALTER TABLE t ADD COLUMN note text;\n"
        },
    )
    with lock_held(table):
        run = up(table, folder, "--lock-budget-s", "2.5", *args)

    assert run.code == LOCK_BUDGET_EXHAUSTED, run.output
    [error] = error_lines(run)
    assert re.fullmatch(
        r"error: 0001_t_note\.sql: lock budget of 2\.5 s exhausted after \d+ attempt\(s\);"
        r" 0001_t_note not applied; in the way: .*",
        error,
    ), error
    assert lock_timeouts(run)[:3] == [100, 200, 400], run.stderr
    assert "canceling statement due to lock timeout" in run.stderr
    shown = value.strip("'")
    assert (
        f"0001_t_note: line {line} sets lock_timeout {shown}; the runner's 100 ms applies"
        " (a file can only tighten it)" in run.stderr
    )
    assert run.stderr.count(f"line {line} sets lock_timeout") == 1  # once, not per attempt
    assert not has_note(table)
    assert applied_versions(table) == []
    assert_no_secret(run, table)


def test_a_tighter_set_local_lock_timeout_in_the_file_holds(table: str, tmp_path: Path) -> None:
    """The runner would wait 2 s at once (its 5 s, clipped to the budget): one attempt.
    The file's 10 ms gives up at once, and the runner retries within the budget."""
    folder = versions(
        tmp_path,
        **{
            "0001_t_note": "SET LOCAL lock_timeout = '10ms';\nALTER TABLE t ADD COLUMN note text;\n"
        },
    )
    runner = ("--lock-timeout-ms", "5000", "--max-lock-timeout-ms", "5000")
    with lock_held(table):
        run = up(table, folder, *runner, "--lock-budget-s", "2")

    assert run.code == LOCK_BUDGET_EXHAUSTED, run.output
    [error] = error_lines(run)
    attempts = int(re.search(r"exhausted after (\d+) attempt", error)[1])
    assert attempts >= 3, run.stderr
    *first, last = lock_timeouts(run)
    assert set(first) == {10}, run.stderr
    assert last <= 10, run.stderr  # the last attempt gets what is left of the budget, if less
    # the runner's value applies (and is logged) only where it is the tighter one
    applied = re.findall(r"sets lock_timeout 10ms; the runner's (\d+) ms applies", run.stderr)
    assert all(int(ms) < 10 for ms in applied), run.stderr
    assert not has_note(table)


def test_a_file_cannot_lift_the_online_bound_with_statement_timeout_0(
    table: str, tmp_path: Path
) -> None:
    folder = versions(
        tmp_path,
        **{
            "0001_t_note": "SET statement_timeout = 0;\n"
            "ALTER TABLE t ADD COLUMN note text;\n"
            "SELECT pg_sleep(60);\n"
        },
    )
    bound = ("--online", "--exclusive-statement-timeout-ms", "500")
    run = up(table, folder, *bound)

    assert run.code == ONLINE_BOUND_EXCEEDED, run.output
    assert error_lines(run) == [
        "error: 0001_t_note.sql: line 3 ran while the transaction held ACCESS EXCLUSIVE on t"
        " (taken at line 2) past the online bound of 500 ms and was cancelled; rolled back,"
        " schema and history unchanged: that lock lasts until the commit, over every"
        " statement after line 2, so run it with the stop strategy or make it an online change"
    ]
    assert (
        "0001_t_note: line 1 sets statement_timeout 0; the runner's online bound of 500 ms"
        " applies (a file can only tighten it)" in run.stderr
    )
    assert not has_note(table)
    assert applied_versions(table) == []


@pytest.mark.parametrize("args", [(), ("--online",)], ids=["stop", "online"])
def test_a_tighter_statement_timeout_in_the_file_holds_and_is_the_files_error(
    table: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Stop runs have no statement bound; online, 100 ms is under the 2 s bound: both runs
    end at the file's own timeout, an SQL error, not the online bound."""
    folder = versions(
        tmp_path,
        **{
            "0001_t_note": "ALTER TABLE t ADD COLUMN note text;\n"
            "SET LOCAL statement_timeout = '100ms';\n"
            "SELECT pg_sleep(60);\n"
        },
    )
    run = up(table, folder, *args)

    assert run.code == SQL_ERROR, run.output
    assert error_lines(run) == [
        "error: 0001_t_note.sql failed: canceling statement due to statement timeout"
        " (SQLSTATE 57014); rolled back; schema and history unchanged"
    ]
    assert not has_note(table)


def test_a_files_settings_end_with_the_file(table: str, tmp_path: Path) -> None:
    folder = versions(
        tmp_path,
        **{
            "0001_tight": "SET statement_timeout = '50ms';\nSET lock_timeout = '1ms';\nSELECT 1;\n",
            "0002_t_note": "SELECT pg_sleep(0.3);\nALTER TABLE t ADD COLUMN note text;\n",
        },
    )
    run = up(table, folder)

    assert run.code == 0, run.output
    assert run.summary["applied"] == [1, 2]
    assert has_note(table)


def test_a_timeout_that_is_not_one_is_refused_before_anything_is_created(
    table: str, tmp_path: Path
) -> None:
    folder = versions(
        tmp_path,
        **{"0001_t_note": "ALTER TABLE t ADD COLUMN note text;\nSET lock_timeout = 'soon';\n"},
    )
    run = up(table, folder)

    assert run.code == BAD_FILE, run.output
    assert error_lines(run) == [
        "error: 0001_t_note.sql: line 2 sets lock_timeout to 'soon', which is not a timeout:"
        " write a number of milliseconds or a quoted value with a unit ('250ms', '5s',"
        " '1min'); nothing applied"
    ]
    assert "Traceback" not in run.output
    assert user_tables(table) == ["t"]  # not even the history table
    assert not has_note(table)
