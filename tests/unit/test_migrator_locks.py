"""Which statements run under the online bound (migrator.locks), and the option that sets it."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator import lockrules, locks
from migrator.cli import build_parser, online_bound_ms
from migrator.db import MigratorError
from migrator.exitcodes import ExitCode
from migrator.output import Output
from migrator.retry import schedule
from migrator.runner import Runner, Settings

AE = "ACCESS EXCLUSIVE"

BOUNDED = [
    # (statement, mode, target)
    ("ALTER TABLE call_log ALTER COLUMN duration TYPE bigint", AE, "call_log"),
    ("alter table if exists only public.call_log * add column note text", AE, "public.call_log"),
    ("ALTER TABLE call_log ADD CONSTRAINT c CHECK (duration >= 0) NOT VALID", AE, "call_log"),
    ("ALTER TABLE call_log ALTER COLUMN status SET NOT NULL", AE, "call_log"),
    ("ALTER TABLE call_log SET TABLESPACE slow", AE, "call_log"),
    ("ALTER TABLE call_log SET LOGGED", AE, "call_log"),
    ("ALTER TABLE call_log RENAME COLUMN duration TO seconds", AE, "call_log"),
    ("ALTER TABLE call_log VALIDATE CONSTRAINT c, ADD COLUMN y int", AE, "call_log"),
    ("ALTER TABLE call_log SET STATISTICS 100, ALTER COLUMN x TYPE text", AE, "call_log"),
    ('ALTER TABLE "Call Log" ALTER COLUMN x DROP DEFAULT', AE, '"Call Log"'),
    ("ALTER /* why */ TABLE call_log -- note\n ALTER COLUMN duration TYPE bigint", AE, "call_log"),
    ("-- touches: call_log\nALTER TABLE call_log ADD COLUMN x int", AE, "call_log"),
    ("DROP TABLE IF EXISTS old_calls, older_calls CASCADE", AE, "old_calls, older_calls"),
    ("TRUNCATE ONLY call_log, side RESTART IDENTITY", AE, "call_log, side"),
    ("LOCK TABLE call_log", AE, "call_log"),
    ("LOCK call_log IN SHARE MODE", "SHARE", "call_log"),
    ("LOCK TABLE call_log IN EXCLUSIVE MODE NOWAIT", "EXCLUSIVE", "call_log"),
    ("CLUSTER call_log USING call_log_pkey", AE, "call_log"),
    ("CLUSTER", AE, "every clustered table"),
    ("VACUUM FULL call_log", AE, "call_log"),
    ("VACUUM (VERBOSE, FULL) call_log", AE, "call_log"),
    ("VACUUM FULL", AE, "every table"),
    ("REINDEX TABLE call_log", AE, "the indexes of call_log"),
    ("REINDEX (VERBOSE) INDEX call_log_pkey", AE, "index call_log_pkey"),
    ("REINDEX (CONCURRENTLY false) TABLE call_log", AE, "the indexes of call_log"),
    (
        "ALTER INDEX call_log_created_at_idx SET TABLESPACE slow",
        AE,
        "index call_log_created_at_idx",
    ),
    ("DROP INDEX IF EXISTS call_log_idx", AE, "the table of index call_log_idx"),
    ("CREATE INDEX call_log_status_idx ON call_log (status)", "SHARE", "call_log"),
    ("CREATE UNIQUE INDEX IF NOT EXISTS u ON ONLY call_log (call_sid)", "SHARE", "call_log"),
    ("CREATE INDEX ON call_log (status)", "SHARE", "call_log"),
    ("create index concurrently_named on call_log (status)", "SHARE", "call_log"),
    ("REFRESH MATERIALIZED VIEW daily_calls", AE, "daily_calls"),
    ("ALTER VIEW call_log_view SET (security_barrier = true)", AE, "view call_log_view"),
    ("ALTER TABLE call_log DISABLE TRIGGER USER", "SHARE ROW EXCLUSIVE", "call_log"),
    (
        "ALTER TABLE call_log ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES agent (id) NOT VALID",
        "SHARE ROW EXCLUSIVE",
        "call_log",
    ),
]

UNBOUNDED = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS call_log_status_idx ON call_log (status)",
    "CREATE UNIQUE INDEX CONCURRENTLY ON call_log (call_sid)",
    "DROP INDEX CONCURRENTLY IF EXISTS call_log_status_idx",
    "REINDEX TABLE CONCURRENTLY call_log",
    "REINDEX (CONCURRENTLY) INDEX call_log_pkey",
    "ALTER TABLE call_log VALIDATE CONSTRAINT call_log_duration_check",
    "ALTER TABLE call_log VALIDATE CONSTRAINT a, VALIDATE CONSTRAINT b",
    "ALTER TABLE call_log ALTER COLUMN duration SET STATISTICS 500",
    "ALTER TABLE call_log ALTER duration SET (n_distinct = 100)",
    "ALTER TABLE call_log SET (fillfactor = 70, autovacuum_enabled = off)",
    "ALTER TABLE call_log RESET (fillfactor)",
    "LOCK TABLE call_log IN ACCESS SHARE MODE",
    "LOCK call_log IN ROW EXCLUSIVE MODE NOWAIT",
    "LOCK TABLE call_log IN SHARE UPDATE EXCLUSIVE MODE",
    "VACUUM call_log",
    "VACUUM (ANALYZE) call_log",
    "VACUUM (FULL false) call_log",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY daily_calls",
    "CREATE TABLE call_tags (call_id bigint, tag text)",
    "UPDATE call_log SET status = 'done' WHERE id < 10",
    "INSERT INTO call_log (call_sid) VALUES ('x')",
    "COMMENT ON TABLE call_log IS 'ALTER TABLE call_log DROP COLUMN x'",
    "SELECT 1",
    "DO $$ BEGIN ALTER TABLE call_log ADD COLUMN x int; END $$",  # not seen inside DO
]


@pytest.mark.parametrize(("statement", "mode", "target"), BOUNDED)
def test_statements_that_block_the_app_are_bounded(statement: str, mode: str, target: str) -> None:
    lock = locks.blocking_lock(statement)
    assert lock is not None, statement
    assert (lock.mode, lock.target) == (mode, target)
    assert lock.why


@pytest.mark.parametrize("statement", UNBOUNDED)
def test_statements_that_leave_the_app_alone_keep_no_bound(statement: str) -> None:
    assert locks.blocking_lock(statement) is None


def test_steps_carry_the_line_their_code_starts_on() -> None:
    sql = (
        "-- description: widen duration\n"
        "-- touches: call_log\n"
        "ALTER TABLE call_log\n"
        "    ALTER COLUMN duration TYPE bigint;\n"
        "\n"
        "SELECT 1; /* a comment; with a semicolon */ CREATE INDEX i ON call_log (x);\n"
        "CREATE INDEX CONCURRENTLY j ON call_log (y)\n"
    )
    found = [(step.line, step.lock.mode if step.lock else None) for step in locks.steps(sql)]
    assert found == [(3, AE), (6, None), (6, "SHARE"), (7, None)]


def test_a_statement_repeated_in_a_file_gets_each_its_own_line() -> None:
    sql = "LOCK TABLE call_log;\nSELECT 1;\nLOCK TABLE call_log;\n"
    assert [step.line for step in locks.steps(sql)] == [1, 2, 3]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *argv])


@pytest.mark.parametrize(
    ("argv", "env", "bound"),
    [
        ((), {}, None),
        ((), {"MIGRATE_ONLINE": "0", "MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS": "500"}, None),
        (("--exclusive-statement-timeout-ms", "500"), {}, None),  # no bound without --online
        (("--online",), {}, locks.DEFAULT_BOUND_MS),
        ((), {"MIGRATE_ONLINE": "1"}, locks.DEFAULT_BOUND_MS),
        ((), {"MIGRATE_ONLINE": "true", "MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS": "750"}, 750),
        (
            ("--online", "--exclusive-statement-timeout-ms", "300"),
            {"MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS": "750"},
            300,
        ),
    ],
)
def test_the_bound_comes_from_the_flags_then_the_environment(
    argv: tuple[str, ...], env: dict[str, str], bound: int | None
) -> None:
    assert online_bound_ms(parse(*argv), env) == bound


@pytest.mark.parametrize(
    "env",
    [
        {"MIGRATE_ONLINE": "maybe"},
        {"MIGRATE_ONLINE": "1", "MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS": "0"},
        {"MIGRATE_ONLINE": "1", "MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS": "2s"},
    ],
)
def test_a_bad_environment_value_is_a_usage_error(env: dict[str, str]) -> None:
    with pytest.raises(MigratorError) as error:
        online_bound_ms(parse(), env)
    assert error.value.code == ExitCode.USAGE
    assert error.value.message.startswith("MIGRATE_")


def test_a_bad_flag_value_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--online", "--exclusive-statement-timeout-ms", "0")
    assert exit_info.value.code == ExitCode.USAGE


def lock_timeouts(**settings: int | None) -> list[int]:
    runner = Runner(Settings(dsn="postgresql://u@h/db", **settings), Output())
    return schedule(6, runner.first_lock_ms, runner.max_lock_ms)


def test_online_lock_waits_stay_within_half_the_bound() -> None:
    assert lock_timeouts() == [100, 200, 400, 800, 1000, 1000]
    assert lock_timeouts(lock_timeout_ms=2000) == [2000] * 6  # the stop flow, as before
    assert lock_timeouts(exclusive_statement_timeout_ms=2000) == [100, 200, 400, 800, 1000, 1000]
    assert lock_timeouts(exclusive_statement_timeout_ms=250) == [100, 125, 125, 125, 125, 125]
    assert lock_timeouts(exclusive_statement_timeout_ms=50) == [25] * 6
    assert lock_timeouts(lock_timeout_ms=2000, exclusive_statement_timeout_ms=5000) == [2000] * 6


# A materialized view is only read, and EXCLUSIVE lets reads through.
UNBOUNDED_THOUGH_BLOCKING_WRITES = {"refresh-concurrently"}


@pytest.mark.parametrize(
    "rule",
    [
        rule
        for rule in (*lockrules.ACTIONS, *lockrules.STATEMENTS)
        if rule.kind == lockrules.ONLINE and rule.example and ";" not in rule.example
    ],
    ids=lambda rule: rule.name,
)
def test_an_online_statement_is_bounded_when_the_lock_table_says_it_blocks_writes(
    rule: lockrules.LockRule,
) -> None:
    blocks = rule.lock in lockrules.BLOCKING and rule.name not in UNBOUNDED_THOUGH_BLOCKING_WRITES
    found = locks.blocking_lock(rule.example)
    assert (found is not None) == blocks, (rule.lock, found)
