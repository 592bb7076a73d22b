"""pg_schema_verify run through Ansible against the real test PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from tests.conftest import run_module

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"started_at": "timestamp", "ended_at": "timestamp", "duration_sec": "integer"}
MISSING = ["call_log.started_at", "call_log.ended_at", "call_log.duration_sec"]


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def create_call_log(dsn: str) -> None:
    """call_log as production had it before 109: no timing columns."""
    sql = (ROOT / "migrations" / "versions" / "0001_create_call_log.sql").read_text()
    execute(dsn, sql)


def apply_109(dsn: str) -> None:
    execute(dsn, (ROOT / "migrations" / "versions" / "0109_call_log_timing.sql").read_text())


def password_of(dsn: str) -> str:
    return conninfo.conninfo_to_dict(dsn)["password"]


def dsn_template(tmp_path: Path, dsn: str) -> str:
    """The DSN as a playbook passes it: a template, never the literal value.

    On a failed ad hoc task Ansible 2.19 prints the task's own source ("Origin: <adhoc ...>")
    with its literal arguments, before and whatever the module returns; a template keeps
    the secret out of that line, as a variable or vault value does in a playbook.
    """
    path = tmp_path / f"dsn-{abs(hash(dsn))}"
    path.write_text(dsn)
    path.chmod(0o600)
    return f"{{{{ lookup('file', '{path}') }}}}"


def assert_no_secret(dsn: str, *texts: str) -> None:
    password = password_of(dsn)
    for text in texts:
        assert dsn not in text
        assert password not in text


def test_missing_columns_fail_with_one_line_naming_them(tmp_path: Path, database: str) -> None:
    create_call_log(database)
    dsn = dsn_template(tmp_path, database)
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": dsn, "columns": {"call_log": TIMING}})
    assert run.failed
    assert run.rc != 0
    assert run.result["missing"] == MISSING
    assert run.result["present"] == []
    assert run.result["mismatched"] == []
    assert run.result["checked"] == 3
    assert run.result["changed"] is False
    assert run.result["msg"] == "schema check failed: missing " + ", ".join(MISSING)
    assert_no_secret(database, str(run.result), run.stdout)


def test_a_literal_dsn_never_comes_back_in_the_result(tmp_path: Path, database: str) -> None:
    create_call_log(database)
    run = run_module(
        tmp_path, "pg_schema_verify", {"dsn": database, "columns": {"call_log": TIMING}}
    )
    assert run.failed
    assert run.result["missing"] == MISSING
    assert run.result["invocation"]["module_args"]["dsn"] != database
    assert_no_secret(database, str(run.result))


def test_present_columns_pass_unchanged(tmp_path: Path, database: str) -> None:
    create_call_log(database)
    apply_109(database)
    run = run_module(
        tmp_path, "pg_schema_verify", {"dsn": database, "columns": {"call_log": TIMING}}
    )
    assert not run.failed, run.result.get("msg")
    assert run.rc == 0
    assert run.result["changed"] is False
    assert run.result["present"] == [
        "call_log.started_at timestamp without time zone",
        "call_log.ended_at timestamp without time zone",
        "call_log.duration_sec integer",
    ]
    assert run.result["missing"] == []
    assert run.result["mismatched"] == []
    assert run.result["schema"] == "public"
    assert any("pg_attribute" in query for query in run.result["queries"])
    assert_no_secret(database, str(run.result), run.stdout)


def test_type_names_are_compared_through_the_catalog(tmp_path: Path, database: str) -> None:
    execute(
        database,
        "CREATE TABLE t (a timestamp, b timestamptz, c int4, d varchar(20), e numeric(10,2),"
        " f text[], g timestamp(3))",
    )
    columns = {
        "t": {
            "a": "timestamp without time zone",
            "b": "timestamp with time zone",
            "c": "INTEGER",
            "d": "varchar",
            "e": "numeric(10, 2)",
            "f": "text[]",
            "g": "timestamp(3)",
        }
    }
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": database, "columns": columns})
    assert not run.failed, run.result.get("msg")
    assert "t.d character varying(20)" in run.result["present"]
    assert "t.g timestamp(3) without time zone" in run.result["present"]


def test_wrong_types_and_modifiers_are_mismatched(tmp_path: Path, database: str) -> None:
    execute(database, "CREATE TABLE t (a text, d varchar(30), e numeric(10,2), s timestamp)")
    columns = {"t": {"a": "timestamp", "d": "varchar(20)", "e": "numeric(12,2)", "s": "timestamp"}}
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": database, "columns": columns})
    assert run.failed
    assert run.result["mismatched"] == [
        {"column": "t.a", "expected": "timestamp without time zone", "actual": "text"},
        {"column": "t.d", "expected": "character varying(20)", "actual": "character varying(30)"},
        {"column": "t.e", "expected": "numeric(12,2)", "actual": "numeric(10,2)"},
    ]
    assert run.result["present"] == ["t.s timestamp without time zone"]
    assert run.result["msg"] == (
        "schema check failed: t.a is text, expected timestamp without time zone; "
        "t.d is character varying(30), expected character varying(20); "
        "t.e is numeric(10,2), expected numeric(12,2)"
    )


@pytest.mark.parametrize("type_name", ["timestmp", "varchar(", "no such type at all"])
def test_an_unknown_type_is_mismatched(tmp_path: Path, database: str, type_name: str) -> None:
    execute(database, "CREATE TABLE t (a text, b integer)")
    columns = {"t": {"a": type_name, "b": "integer"}}
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": database, "columns": columns})
    assert run.failed
    assert run.result["mismatched"] == [
        {"column": "t.a", "expected": type_name, "actual": "text", "reason": "unknown type"}
    ]
    assert run.result["present"] == ["t.b integer"]
    assert run.result["msg"] == (
        f"schema check failed: t.a is text, expected {type_name} (unknown type)"
    )


def test_a_missing_table_and_another_schema(tmp_path: Path, database: str) -> None:
    execute(database, "CREATE SCHEMA app", "CREATE TABLE app.call_log (started_at timestamp)")
    columns = {"call_log": {"started_at": "timestamp"}, "nowhere": {"x": "integer"}}
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": database, "columns": columns})
    assert run.result["missing"] == ["call_log.started_at", "nowhere.x"]
    run = run_module(
        tmp_path, "pg_schema_verify", {"dsn": database, "columns": columns, "schema": "app"}
    )
    assert run.result["schema"] == "app"
    assert run.result["present"] == ["call_log.started_at timestamp without time zone"]
    assert run.result["missing"] == ["nowhere.x"]
    assert run.result["msg"] == "schema check failed: missing nowhere.x"


def test_a_dropped_column_counts_as_missing(tmp_path: Path, database: str) -> None:
    execute(database, "CREATE TABLE t (a integer, b integer)", "ALTER TABLE t DROP COLUMN b")
    run = run_module(
        tmp_path, "pg_schema_verify", {"dsn": database, "columns": {"t": {"b": "integer"}}}
    )
    assert run.result["missing"] == ["t.b"]


def test_check_mode_gives_the_same_result(tmp_path: Path, database: str) -> None:
    create_call_log(database)
    args = {"dsn": database, "columns": {"call_log": TIMING}}
    normal = run_module(tmp_path, "pg_schema_verify", args)
    checked = run_module(tmp_path, "pg_schema_verify", args, check=True)
    assert normal.rc == checked.rc != 0
    for key in ("missing", "present", "mismatched", "checked", "msg", "changed"):
        assert checked.result[key] == normal.result[key]
    apply_109(database)
    checked = run_module(tmp_path, "pg_schema_verify", args, check=True)
    assert checked.rc == 0
    assert not checked.failed
    assert checked.result["changed"] is False
    assert len(checked.result["present"]) == 3


def test_a_wrong_password_fails_with_one_line_and_no_password(
    tmp_path: Path, database: str
) -> None:
    wrong = conninfo.make_conninfo(database, password="not-the-Password-42")  # noqa: S106 - a wrong one
    args = {"dsn": dsn_template(tmp_path, wrong), "columns": {"call_log": TIMING}}
    run = run_module(tmp_path, "pg_schema_verify", args)
    assert run.failed
    params = conninfo.conninfo_to_dict(wrong)
    where = f"{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    assert run.result["msg"].startswith(f"cannot connect to PostgreSQL at {where}: ")
    assert "password authentication failed" in run.result["msg"]
    assert "\n" not in run.result["msg"]
    assert_no_secret(wrong, str(run.result), run.stdout)
    assert_no_secret(database, str(run.result), run.stdout)


def test_an_unreachable_server_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    dsn = "postgresql://deploy:Secret-Pw-9@127.0.0.1:1/prosaas"
    run = run_module(
        tmp_path,
        "pg_schema_verify",
        {
            "dsn": dsn_template(tmp_path, dsn),
            "connect_timeout": 2,
            "columns": {"call_log": TIMING},
        },
    )
    assert run.failed
    assert run.result["msg"].startswith(
        "cannot connect to PostgreSQL at deploy@127.0.0.1:1/prosaas: "
    )
    assert "Secret-Pw-9" not in str(run.result) + run.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"columns": "x"}, "columns"),
        ({"columns": {"call_log": TIMING}, "connect_timeout": "soon"}, "connect_timeout"),
        ({"columns": {"call_log": "started_at"}}, "columns"),
        ({}, "columns"),
    ],
)
def test_bad_parameters_fail_naming_the_parameter(
    tmp_path: Path, database: str, args: dict, named: str
) -> None:
    dsn = dsn_template(tmp_path, database)
    run = run_module(tmp_path, "pg_schema_verify", {"dsn": dsn, **args})
    assert run.failed
    assert named in run.result["msg"]
    assert "\n" not in run.result["msg"]
    assert_no_secret(database, str(run.result), run.stdout)
