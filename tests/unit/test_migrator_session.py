"""A file's SET/RESET of its timeouts (migrator.session): what it sets, and what holds when."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator.db import MigratorError
from migrator.exitcodes import ExitCode
from migrator.files import Migration
from migrator.runner import statements_of
from migrator.session import (
    FileTimeout,
    TimeoutSetting,
    in_effect,
    looser,
    milliseconds,
    tighter,
    timeout_setting,
)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("0", 0),
        ("250", 250),
        ("'250ms'", 250),
        ("'5s'", 5000),
        ("'1.5s'", 1500),
        ("'2min'", 120_000),
        ("'1h'", 3_600_000),
        ("'1d'", 86_400_000),
        ("'5 s'", 5000),
        ("'1500us'", 2),
        ("'0.4'", 0),  # PostgreSQL rounds to whole ms: 0, no limit
        ("1e3", 1000),
        ("'+5'", 5),
        ('"5s"', 5000),
        ("DEFAULT", None),
    ],
)
def test_milliseconds_reads_a_value_as_postgresql_does(value: str, ms: int | None) -> None:
    assert milliseconds(value) == ms


@pytest.mark.parametrize(
    "value", ["'soon'", "-1", "'5 parsecs'", "''", "'5s", "'5sec'", "'25d'", "1e400"]
)
def test_milliseconds_refuses_what_is_not_a_timeout(value: str) -> None:
    with pytest.raises(ValueError, match="not a timeout"):
        milliseconds(value)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SET lock_timeout = 0", TimeoutSetting("lock_timeout", 0, False, "0")),
        ("set LOCAL lock_timeout to '10ms';", TimeoutSetting("lock_timeout", 10, True, "'10ms'")),
        (
            "SET SESSION statement_timeout = '1min'",
            TimeoutSetting("statement_timeout", 60_000, False, "'1min'"),
        ),
        (
            "SET idle_in_transaction_session_timeout = DEFAULT",
            TimeoutSetting("idle_in_transaction_session_timeout", None, False, "DEFAULT"),
        ),
        ("RESET lock_timeout", TimeoutSetting("lock_timeout", None, False, "reset")),
        (
            "-- the file's reason\nSET /* here */ lock_timeout = '5s' -- why",
            TimeoutSetting("lock_timeout", 5000, False, "'5s'"),
        ),
        ("SET search_path = public", None),
        ("SELECT set_config('lock_timeout', '0', false)", None),
        ("ALTER TABLE call_log ADD COLUMN note text", None),
        ("RESET ALL", None),
    ],
)
def test_timeout_setting_reads_one_statement(sql: str, expected: TimeoutSetting | None) -> None:
    assert timeout_setting(sql) == expected


def test_timeout_setting_names_the_timeout_and_the_bad_value() -> None:
    with pytest.raises(ValueError, match=r"^sets lock_timeout to 'soon', which is not a timeout$"):
        timeout_setting("SET lock_timeout = 'soon'")


@pytest.mark.parametrize(
    ("runner", "file", "expected"),
    [
        (100, None, 100),  # DEFAULT / RESET / nothing set: the runner's
        (100, 0, 100),  # "no limit" never lifts the runner's
        (100, 5000, 100),
        (100, 10, 10),
        (0, 30_000, 30_000),  # the runner has none: the file's holds
        (0, 0, 0),
        (0, None, 0),
    ],
)
def test_tighter_never_loosens_the_runner(runner: int, file: int | None, expected: int) -> None:
    assert tighter(runner, file) == expected


@pytest.mark.parametrize(
    ("runner", "file", "expected"),
    [(100, 0, True), (100, 5000, True), (100, 100, False), (100, 10, False), (0, 0, False)],
)
def test_looser_says_when_the_file_asked_for_more(runner: int, file: int, expected: bool) -> None:
    assert looser(runner, file) is expected


FILE = [
    ("SET statement_timeout = 0", 7),
    ("SET lock_timeout = '5s'", 8),
    ("ALTER TABLE call_log ADD COLUMN a int", 9),
    ("SET LOCAL lock_timeout = '10ms'", 10),
    ("ALTER TABLE call_log ADD COLUMN b int", 11),
    ("RESET lock_timeout", 12),
    ("ALTER TABLE call_log ADD COLUMN c int", 13),
]


def test_in_effect_follows_the_file_statement_by_statement_in_a_transaction() -> None:
    statement = FileTimeout("statement_timeout", 0, "0", 7)
    effects = in_effect(FILE, transactional=True)
    assert len(effects) == len(FILE)
    assert effects[0] == {}  # a SET holds from the statement after it
    assert effects[1] == {"statement_timeout": statement}
    assert effects[2] == {
        "statement_timeout": statement,
        "lock_timeout": FileTimeout("lock_timeout", 5000, "'5s'", 8),
    }
    assert effects[4]["lock_timeout"] == FileTimeout("lock_timeout", 10, "'10ms'", 10)
    assert effects[6] == {"statement_timeout": statement}  # RESET: the runner's again


def test_set_local_outside_a_transaction_changes_nothing() -> None:
    effects = in_effect(FILE, transactional=False)
    assert effects[4]["lock_timeout"].ms == 5000  # the SET LOCAL at line 10 is ignored
    assert "lock_timeout" not in effects[6]


def test_in_effect_names_the_line_of_a_bad_value() -> None:
    with pytest.raises(ValueError, match=r"^line 4 sets statement_timeout to 'later', "):
        in_effect([("SELECT 1", 3), ("SET statement_timeout = 'later'", 4)], transactional=True)


def test_a_shown_value_loses_its_quotes() -> None:
    assert FileTimeout("lock_timeout", 5000, "'5s'", 2).shown == "5s"
    assert FileTimeout("lock_timeout", 0, "0", 2).shown == "0"


def migration(sql: str, transactional: bool = True) -> Migration:
    path = Path("0003_x.sql")
    return Migration(3, "x", path, sql, "0" * 64, transactional=transactional)


def test_statements_of_gives_each_statement_its_line_and_the_files_timeouts() -> None:
    sql = (
        "-- description: x\n-- SET lock_timeout = 0 in a comment sets nothing\n"
        "SET lock_timeout = 0;\n\nALTER TABLE t\n  ADD COLUMN note text;\n"
    )
    statements = statements_of(migration(sql))
    assert [(s.step.line, s.step.lock is not None) for s in statements] == [(3, False), (5, True)]
    assert statements[0].file == {}
    assert statements[1].file == {"lock_timeout": FileTimeout("lock_timeout", 0, "0", 3)}


def test_statements_of_refuses_a_bad_timeout_naming_the_file_and_line() -> None:
    with pytest.raises(MigratorError) as raised:
        statements_of(migration("SELECT 1;\nSET LOCAL lock_timeout = '5 parsecs';\n", False))
    assert raised.value.code == ExitCode.BAD_MIGRATION_FILE
    assert raised.value.message == (
        "0003_x.sql: line 2 sets lock_timeout to '5 parsecs', which is not a timeout: write a"
        " number of milliseconds or a quoted value with a unit ('250ms', '5s', '1min');"
        " nothing applied"
    )
