"""Statement splitting for migrations that run outside a transaction."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator.sql import created_index_names, split_statements


def test_plain_statements_and_trailing_piece() -> None:
    assert split_statements("SELECT 1; SELECT 2;\nSELECT 3") == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_comment_only_pieces_are_dropped() -> None:
    sql = "-- header: x\n-- only comments;\n/* block; */\nSELECT 1;\n-- trailing; comment\n"
    assert split_statements(sql) == ["-- header: x\n-- only comments;\n/* block; */\nSELECT 1"]


def test_semicolons_inside_quotes_identifiers_and_comments_do_not_split() -> None:
    sql = (
        "COMMENT ON TABLE t IS 'a; b ''c;'' d';"
        'SELECT 1 AS "odd;name";'
        "SELECT E'it\\'s; fine';"
        "SELECT 1 /* outer /* nested; */ still; */ + 1;"
        "SELECT 2 -- note; here\n + 2;"
    )
    assert split_statements(sql) == [
        "COMMENT ON TABLE t IS 'a; b ''c;'' d'",
        'SELECT 1 AS "odd;name"',
        "SELECT E'it\\'s; fine'",
        "SELECT 1 /* outer /* nested; */ still; */ + 1",
        "SELECT 2 -- note; here\n + 2",
    ]


def test_dollar_quoting() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;"
        "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $body$;"
        "SELECT $1;"
    )
    assert split_statements(sql) == [
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $body$",
        "SELECT $1",
    ]


def test_a_plain_quote_after_an_identifier_ending_in_e_is_not_an_escape_string() -> None:
    assert split_statements("SELECT name='x\\'; SELECT 2") == ["SELECT name='x\\'", "SELECT 2"]


def test_unterminated_literals_do_not_loop_forever() -> None:
    assert split_statements("SELECT 'open; SELECT 2") == ["SELECT 'open; SELECT 2"]
    assert split_statements("SELECT $x$ open;") == ["SELECT $x$ open;"]
    assert split_statements("/* open; ") == []


def test_created_index_names() -> None:
    sql = (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS Call_Idx ON call_log (a);\n"
        'create unique index concurrently "Mixed""Q" on call_log (b);\n'
        "CREATE INDEX CONCURRENTLY ON call_log (c);\n"
        "-- CREATE INDEX CONCURRENTLY commented_out ON call_log (d);\n"
    )
    assert created_index_names(sql) == ["call_idx", 'Mixed"Q']
