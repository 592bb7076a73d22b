"""The committed volatility table against a real PostgreSQL 15, and the verdicts against
what PostgreSQL 15 does: scripts/gen_volatility.py run on a throwaway cluster must give the
committed migrations/migrator/volatility_pg15.json (a stale table fails here), and an
``ADD COLUMN ... DEFAULT expr`` rewrites the table exactly when migrator.volatility calls
``expr`` volatile."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.pg_cluster import postgres15

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import volatility  # noqa: E402

SCRIPT = ROOT / "scripts" / "gen_volatility.py"
REFRESH = "stale: run `python scripts/gen_volatility.py` and commit volatility_pg15.json"


@pytest.fixture(scope="module")
def pg15() -> Iterator[str]:
    """The DSN of a throwaway PostgreSQL 15 cluster (the table's version, whatever else is
    installed)."""
    with postgres15() as dsn:
        yield dsn


def generate(output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(output), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_same_table(generated: Path) -> None:
    """Everything but the server's minor version, which the table does not depend on."""
    fresh = json.loads(generated.read_text())
    committed = json.loads(volatility.TABLE.read_text())
    major = [table.pop("server_version").split(".")[0] for table in (fresh, committed)]
    assert major == ["15", "15"]
    added = sorted(fresh["functions"].keys() - committed["functions"].keys())
    removed = sorted(committed["functions"].keys() - fresh["functions"].keys())
    assert (added, removed) == ([], []), REFRESH
    assert fresh == committed, REFRESH


def test_the_script_on_its_own_cluster_gives_the_committed_table(tmp_path: Path) -> None:
    result = generate(tmp_path / "table.json")
    assert result.returncode == 0, result.stderr
    count = len(json.loads(volatility.TABLE.read_text())["functions"])
    assert result.stdout.startswith(f"wrote {tmp_path / 'table.json'}: {count} functions of")
    assert_same_table(tmp_path / "table.json")


def test_the_script_with_a_dsn_gives_the_committed_table(tmp_path: Path, pg15: str) -> None:
    result = generate(tmp_path / "table.json", "--dsn", pg15)
    assert result.returncode == 0, result.stderr
    assert_same_table(tmp_path / "table.json")
    rerun = generate(tmp_path / "again.json", "--dsn", pg15)
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "table.json").read_bytes()


def test_an_unreachable_server_fails_on_one_line_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "table.json"
    output.write_text("kept\n")
    result = generate(output, "--dsn", "postgresql://gen:s3cret-pw@127.0.0.1:1/postgres")
    assert result.returncode == 1
    assert result.stderr.startswith("gen_volatility: cannot read the catalog: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert output.read_text() == "kept\n"


def test_no_builtin_operator_cast_or_type_io_function_is_volatile(pg15: str) -> None:
    """What lets expression_volatility count operators and casts as immutable."""
    with psycopg.connect(pg15) as conn:
        operators = conn.execute(
            "SELECT o.oprname FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode"
            " WHERE p.provolatile = 'v'"
        ).fetchall()
        casts = conn.execute(
            "SELECT c.castfunc::regproc FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc"
            " WHERE p.provolatile = 'v'"
        ).fetchall()
        type_io = conn.execute(
            "SELECT t.typname FROM pg_type t JOIN pg_proc p"
            " ON p.oid IN (t.typinput, t.typoutput) WHERE p.provolatile = 'v'"
        ).fetchall()
        stable_operators = conn.execute(
            "SELECT count(*) FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode"
            " WHERE p.provolatile = 's'"
        ).fetchone()[0]
    assert (operators, casts, type_io) == ([], [], [])
    assert stable_operators > 0, "the docstring's caveat: some operators are stable"


# An expression, the column type it defaults, whether migrator.volatility calls it volatile.
DEFAULTS = [
    ("now()", "timestamptz", False),
    ("current_timestamp", "timestamptz", False),
    ("current_date", "date", False),
    ("current_user", "text", False),
    ("now() + interval '1 day'", "timestamptz", False),
    ("statement_timestamp()", "timestamptz", False),
    ("extract(epoch from now())", "numeric", False),
    ("'voice'", "text", False),
    ("lower('X')", "text", False),
    ("trim(both ' ' from ' x ')", "text", False),
    ("'x'::varchar(10)", "varchar(20)", False),
    ("app_today()", "date", False),
    ("clock_timestamp()", "timestamptz", True),
    ("random()", "float8", True),
    ("gen_random_uuid()", "uuid", True),
    ("nextval('volatility_seq')", "bigint", True),
    ("coalesce(now(), clock_timestamp())", "timestamptz", True),
    ("app_stamp()", "timestamptz", True),
]
FUNCTIONS = [
    "CREATE FUNCTION app_today() RETURNS date STABLE LANGUAGE sql AS $$ SELECT current_date $$",
    "CREATE FUNCTION app_stamp() RETURNS timestamptz LANGUAGE sql"
    " AS $$ SELECT clock_timestamp() $$",
]


@pytest.mark.parametrize(("expression", "sql_type", "volatile"), DEFAULTS)
def test_a_default_rewrites_the_table_exactly_when_it_is_volatile(
    pg15: str, expression: str, sql_type: str, volatile: bool
) -> None:
    declared = dict(filter(None, map(volatility.declared_volatility, FUNCTIONS)))
    level, _ = volatility.expression_volatility(expression, declared)
    assert (level == "volatile") is volatile
    with psycopg.connect(pg15) as conn:
        for statement in ["CREATE SEQUENCE IF NOT EXISTS volatility_seq", *FUNCTIONS]:
            conn.execute(statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
        conn.execute("CREATE TEMP TABLE t (id int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
        before = conn.execute("SELECT pg_relation_filenode('t')").fetchone()[0]
        conn.execute(f"ALTER TABLE t ADD COLUMN c {sql_type} DEFAULT {expression}")
        after = conn.execute("SELECT pg_relation_filenode('t')").fetchone()[0]
        conn.rollback()
    assert (before != after) is volatile, f"PostgreSQL 15 on DEFAULT {expression}"
