"""migrator.volatility: an expression's volatility from PostgreSQL 15's catalog table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import sql as sql_text  # noqa: E402
from migrator import volatility  # noqa: E402
from migrator.volatility import declared_volatility, expression_volatility  # noqa: E402


def lint_text(expression: str) -> str:
    """The expression as the lint reads it: blanked, lower-cased, whitespace collapsed."""
    return " ".join(sql_text.blank(expression).lower().split())


# --- the committed table ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "letter"),
    [
        ("now", "s"),
        ("clock_timestamp", "v"),
        ("random", "v"),
        ("gen_random_uuid", "v"),
        ("lower", "i"),
        ("statement_timestamp", "s"),
        ("nextval", "v"),
    ],
)
def test_the_committed_table_holds_known_rows(name: str, letter: str) -> None:
    assert json.loads(volatility.TABLE.read_text())["functions"][name] == letter


def test_the_committed_table_names_its_script_and_server() -> None:
    table = json.loads(volatility.TABLE.read_text())
    assert table["generated_by"] == "python scripts/gen_volatility.py"
    assert table["server_version"].startswith("15.")
    assert list(table["functions"]) == sorted(table["functions"])
    assert {"cast", "current_timestamp"} <= set(table["keywords"]["reserved"])
    assert {"coalesce", "numeric", "trim"} <= set(table["keywords"]["column_name"])


# --- expression_volatility: the cases the lint meets ------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("now()", ("stable", "now")),
        ("current_timestamp", ("stable", "current_timestamp")),
        ("now() + interval '1 day'", ("stable", "now")),
        ("clock_timestamp()", ("volatile", "clock_timestamp")),
        ("random()", ("volatile", "random")),
        ("gen_random_uuid()", ("volatile", "gen_random_uuid")),
        ("'x'::text", ("immutable", "")),
        ("lower('x')", ("immutable", "lower")),
        ("42", ("immutable", "")),
        ("'voice'", ("immutable", "")),
        ("my_fn()", ("volatile", "my_fn")),
        ("coalesce(now(), clock_timestamp())", ("volatile", "clock_timestamp")),
        ("nextval('call_log_id_seq'::regclass)", ("volatile", "nextval")),
        ("uuid_generate_v4()", ("volatile", "uuid_generate_v4")),
    ],
)
def test_expression_volatility(expression: str, expected: tuple[str, str]) -> None:
    assert expression_volatility(lint_text(expression)) == expected
    assert expression_volatility(expression) == expected, "raw SQL reads the same"


@pytest.mark.parametrize(
    "keyword",
    [
        "current_timestamp", "current_date", "current_time", "localtime", "localtimestamp",
        "current_user", "session_user", "user", "current_role", "current_schema",
        "current_catalog",
    ],
)  # fmt: skip
def test_keyword_functions_are_stable_with_or_without_precision(keyword: str) -> None:
    assert expression_volatility(keyword) == ("stable", keyword)
    assert expression_volatility(f"{keyword}(3)") == ("stable", keyword)


def test_a_declared_function_counts_as_declared() -> None:
    assert expression_volatility("my_fn()", {"my_fn": "stable"}) == ("stable", "my_fn")
    assert expression_volatility("my_fn()", {"public.My_Fn": "immutable"}) == ("immutable", "my_fn")


def test_a_schema_qualified_call_resolves_by_name() -> None:
    declared = {"my_fn": "stable"}
    assert expression_volatility("public.my_fn()", declared) == ("stable", "public.my_fn")
    assert expression_volatility("pg_catalog.now()") == ("stable", "pg_catalog.now")
    assert expression_volatility('"now"()') == ("stable", '"now"')
    assert expression_volatility("public.my_fn()") == ("volatile", "public.my_fn")


def test_a_declared_name_that_shadows_the_catalog_counts_as_the_more_volatile() -> None:
    assert expression_volatility("lower(x)", {"lower": "volatile"}) == ("volatile", "lower")
    assert expression_volatility("random()", {"random": "immutable"}) == ("volatile", "random")


def test_a_declared_volatility_that_is_none_of_the_three_is_refused() -> None:
    with pytest.raises(ValueError, match=r"my_fn is 'sometimes': use one of immutable"):
        expression_volatility("my_fn()", {"my_fn": "sometimes"})


def test_a_blanked_literal_is_not_read_as_a_call() -> None:
    blanked = lint_text("'clock_timestamp()'")
    assert blanked == "' '"
    assert expression_volatility(blanked) == ("immutable", "")
    assert expression_volatility("'   '") == ("immutable", "")
    assert expression_volatility(lint_text("lower('random()') /* now() */")) == (
        "immutable",
        "lower",
    )
    assert expression_volatility("$$ random() $$") == ("immutable", "")


def test_the_most_volatile_call_wins_and_the_first_among_equals_is_named() -> None:
    assert expression_volatility("lower(now()::text)") == ("stable", "now")
    assert expression_volatility("random() + clock_timestamp()") == ("volatile", "random")
    assert expression_volatility("statement_timestamp() - now()") == (
        "stable",
        "statement_timestamp",
    )


# --- syntax that looks like a call ------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "1::numeric(10,2)",
        "'x'::character varying(20)",
        "'x'::varchar(20)[]",
        "x::double precision",
        "'2020-01-01'::timestamp(3) without time zone",
        "'1 day'::interval day to second(3)",
        "cast('x' as numeric(10,2))",
        "numeric(10,2) '1.5'",
        "nullif(x, 0)",
        "greatest(1, 2)",
        "least(1, 2)",
        "row(1, 2)",
        "array[1, 2]",
        "case when x > 0 then 1 else 2 end",
        "x ilike ('a%')",
        "x between (1) and (2)",
    ],
)
def test_casts_types_and_constructs_are_not_calls(expression: str) -> None:
    assert expression_volatility(expression) == ("immutable", "")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cast(now() as timestamp(3) with time zone)", ("stable", "now")),
        ("greatest(now(), clock_timestamp())", ("volatile", "clock_timestamp")),
        ("array[random()]", ("volatile", "random")),
        ("row(1, gen_random_uuid())", ("volatile", "gen_random_uuid")),
        ("case when random() > 0.5 then 1 end", ("volatile", "random")),
        ("x::numeric(10,2) + random()", ("volatile", "random")),
    ],
)
def test_calls_inside_syntax_still_count(expression: str, expected: tuple[str, str]) -> None:
    assert expression_volatility(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("trim(both ' ' from x)", ("immutable", "trim")),
        ("substring(x from 1 for 3)", ("immutable", "substring")),
        ("position('a' in x)", ("immutable", "position")),
        ("extract(epoch from now())", ("stable", "extract")),
        ("collation for (x)", ("stable", "collation for")),
        ("x at time zone 'utc'", ("stable", "at time zone")),
    ],
)
def test_keyword_syntax_counts_as_the_function_it_calls(
    expression: str, expected: tuple[str, str]
) -> None:
    assert expression_volatility(expression) == expected


def test_column_constraints_after_a_default_are_not_calls() -> None:
    text = lint_text("now() NOT NULL REFERENCES public.accounts(id) CHECK (x > 0)")
    assert expression_volatility(text) == ("stable", "now")


def test_a_generated_expression_after_as_is_read() -> None:
    assert expression_volatility("generated always as (lower(name)) stored") == (
        "immutable",
        "lower",
    )


def test_a_quoted_keyword_is_a_name_not_the_keyword() -> None:
    assert expression_volatility('"user"()') == ("volatile", '"user"')
    assert expression_volatility('"current_timestamp"') == ("immutable", "")


# --- declared_volatility ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RETURN NEW; END $$",
            ("touch", "volatile"),
        ),
        (
            'CREATE OR REPLACE FUNCTION public."Fmt"(a int DEFAULT 1) RETURNS text'
            " LANGUAGE sql STABLE AS $$ SELECT 'x' $$",
            ("fmt", "stable"),
        ),
        (
            "create function add1(i int) returns int language sql immutable"
            " parallel safe return i + 1",
            ("add1", "immutable"),
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1 -- immutable'",
            ("f", "volatile"),
        ),
        (
            "CREATE FUNCTION f() RETURNS TABLE (stable int) LANGUAGE sql"
            " AS $$ SELECT 1 $$ /* immutable */",
            ("f", "volatile"),
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT stable FROM t; END",
            ("f", "volatile"),
        ),
        (
            "-- a helper\nCREATE FUNCTION f()\n  RETURNS timestamptz\n  VOLATILE\n"
            "  LANGUAGE sql AS $$ SELECT clock_timestamp() $$",
            ("f", "volatile"),
        ),
    ],
)
def test_declared_volatility(statement: str, expected: tuple[str, str]) -> None:
    assert declared_volatility(statement) == expected
    assert declared_volatility(lint_text(statement)) == expected, "the lint's text reads the same"


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$",
        "ALTER TABLE call_log ADD COLUMN x int",
        "SELECT my_fn()",
        "CREATE TABLE f (id int)",
    ],
)
def test_declared_volatility_is_none_for_other_statements(statement: str) -> None:
    assert declared_volatility(statement) is None


def test_a_declared_function_feeds_expression_volatility() -> None:
    found = declared_volatility(
        "CREATE FUNCTION app.today() RETURNS date STABLE LANGUAGE sql AS $$ SELECT current_date $$"
    )
    assert found == ("today", "stable")
    assert expression_volatility("app.today()", dict([found])) == ("stable", "app.today")
