"""`python -m migrator lint`: the project's rules, squawk with the project config, the report.

Squawk runs for real (it is pinned in requirements.txt and takes milliseconds).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import lint  # noqa: E402
from migrator import sql as sql_text  # noqa: E402
from migrator.exitcodes import ExitCode  # noqa: E402
from migrator.files import load_migration, load_migrations  # noqa: E402

FINDING = re.compile(
    r"^(?P<file>\S+\.sql):(?P<line>\d+): (?P<rule>\S+): (?P<msg>.+)"
    r" — safe alternative: (?P<alt>.+)$"
)


def run(*paths: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = lint.run_lint([load_migration(path) for path in paths], out)
    return code, out.getvalue().splitlines()


def write(directory: Path, sql: str, name: str = "0500_bad.sql") -> Path:
    path = directory / name
    path.write_text(sql, encoding="utf-8")
    return path


def rules(lines: list[str]) -> list[str]:
    return [match["rule"] for line in lines if (match := FINDING.match(line))]


def lint_sql(directory: Path, sql: str) -> list[str]:
    return rules(run(write(directory, sql))[1])


# --- the real versions ---------------------------------------------------------------


def test_real_versions_lint_clean() -> None:
    out = io.StringIO()
    code = lint.run_lint(load_migrations(ROOT / "migrations" / "versions"), out)
    assert out.getvalue() == "lint: 0 finding(s) in 0 of 3 file(s) checked\n"
    assert code == ExitCode.OK


# --- project rules: each fires on the bad form and not on the safe one ---------------

BAD_AND_SAFE = [
    pytest.param(
        "data-change",
        "UPDATE call_log SET duration_sec = duration;",
        "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS duration_sec integer;",
        id="update",
    ),
    pytest.param(
        "data-change",
        "DELETE FROM call_log WHERE status = 'x';",
        "INSERT INTO call_status (name) VALUES ('ringing');",
        id="delete-vs-insert-values",
    ),
    pytest.param(
        "data-change",
        "INSERT INTO archive SELECT * FROM call_log;",
        "INSERT INTO call_status (name) VALUES ('select');",
        id="insert-select",
    ),
    pytest.param("data-change", "TRUNCATE call_log;", "SELECT 1;", id="truncate"),
    pytest.param(
        "data-change",
        "MERGE INTO call_log c USING staging s ON c.call_sid = s.call_sid"
        " WHEN MATCHED THEN UPDATE SET status = s.status;",
        "SELECT 1;",
        id="merge",
    ),
    pytest.param("data-change", "COPY call_log FROM '/tmp/x.csv';", "SELECT 1;", id="copy"),
    pytest.param(
        "data-change",
        "WITH old AS (SELECT id FROM call_log) DELETE FROM call_log USING old;",
        "SELECT 1;",
        id="cte-delete",
    ),
    pytest.param(
        "drop-column",
        "ALTER TABLE call_log DROP COLUMN duration;",
        "ALTER TABLE call_log DROP CONSTRAINT IF EXISTS call_log_duration_check;",
        id="drop-column",
    ),
    pytest.param(
        "drop-column",
        "ALTER TABLE call_log DROP IF EXISTS duration;",
        "ALTER TABLE call_log ALTER COLUMN duration DROP DEFAULT;",
        id="drop-without-column-keyword",
    ),
    pytest.param("drop-table", "DROP TABLE call_log;", "DROP VIEW IF EXISTS v;", id="drop-table"),
    pytest.param(
        "rename-column",
        "ALTER TABLE call_log RENAME COLUMN duration TO duration_legacy;",
        "ALTER TABLE call_log ADD COLUMN duration_legacy integer;",
        id="rename-column",
    ),
    pytest.param(
        "rename-table",
        "ALTER TABLE call_log RENAME TO calls;",
        "CREATE VIEW calls AS SELECT * FROM call_log;",
        id="rename-table",
    ),
    pytest.param(
        "volatile-default",
        "ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();",
        "ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT now();",
        id="default-now",
    ),
    pytest.param(
        "volatile-default",
        "ALTER TABLE call_log ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();",
        "ALTER TABLE call_log ADD COLUMN token uuid;",
        id="default-uuid",
    ),
    pytest.param(
        "volatile-default",
        "ALTER TABLE call_log ADD COLUMN picked float8 DEFAULT random();",
        "ALTER TABLE call_log ADD COLUMN seen_at timestamp DEFAULT CURRENT_TIMESTAMP;",
        id="default-current-timestamp",
    ),
    pytest.param(
        "set-not-null",
        "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;",
        "ALTER TABLE call_log ADD CONSTRAINT status_nn CHECK (status IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE call_log VALIDATE CONSTRAINT status_nn;\n"
        "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;\n"
        "ALTER TABLE call_log DROP CONSTRAINT status_nn;",
        id="set-not-null",
    ),
    pytest.param(
        "column-type-change",
        "ALTER TABLE call_log ALTER COLUMN duration TYPE bigint;",
        "ALTER TABLE call_log ADD COLUMN duration_big bigint;",
        id="type-change",
    ),
    pytest.param(
        "column-type-change",
        "ALTER TABLE call_log ALTER duration SET DATA TYPE bigint;",
        "ALTER TABLE call_log ALTER COLUMN duration SET STATISTICS 500;",
        id="set-data-type",
    ),
    pytest.param(
        "add-column-rewrite",
        "ALTER TABLE call_log ADD COLUMN seq bigserial;",
        "ALTER TABLE call_log ADD COLUMN seq bigint;",
        id="add-serial",
    ),
    pytest.param(
        "add-column-rewrite",
        "ALTER TABLE call_log ADD COLUMN ext_id text UNIQUE;",
        "ALTER TABLE call_log ADD COLUMN ext_id text;",
        id="add-unique",
    ),
    pytest.param(
        "add-column-rewrite",
        "ALTER TABLE call_log ADD COLUMN total int GENERATED ALWAYS AS (duration * 2) STORED;",
        "ALTER TABLE call_log ADD COLUMN total int;",
        id="add-generated-stored",
    ),
    pytest.param(
        "constraint-not-valid",
        "ALTER TABLE call_log ADD CONSTRAINT fk FOREIGN KEY (agent_id) REFERENCES agent (id);",
        "ALTER TABLE call_log ADD CONSTRAINT fk FOREIGN KEY (agent_id) REFERENCES agent (id)"
        " NOT VALID;",
        id="foreign-key",
    ),
    pytest.param(
        "constraint-not-valid",
        "ALTER TABLE call_log ADD CONSTRAINT pos CHECK (duration >= 0);",
        "ALTER TABLE call_log ADD CONSTRAINT pos CHECK (duration >= 0) NOT VALID;",
        id="check",
    ),
    pytest.param(
        "constraint-builds-index",
        "ALTER TABLE call_log ADD CONSTRAINT sid_key UNIQUE (call_sid);",
        "ALTER TABLE call_log ADD CONSTRAINT sid_key UNIQUE USING INDEX sid_idx;",
        id="unique-constraint",
    ),
    pytest.param(
        "index-not-concurrent",
        "CREATE INDEX call_log_status_idx ON call_log (status);",
        "CREATE TABLE agent (id bigint PRIMARY KEY, name text);\n"
        "CREATE INDEX agent_name_idx ON agent (name);",
        id="create-index",
    ),
    pytest.param(
        "reindex-not-concurrent",
        "REINDEX INDEX call_log_created_at_idx;",
        "SELECT 1;",
        id="reindex",
    ),
    pytest.param("cluster", "CLUSTER call_log USING call_log_pkey;", "SELECT 1;", id="cluster"),
    pytest.param("vacuum-full", "VACUUM (FULL) call_log;", "VACUUM call_log;", id="vacuum-full"),
    pytest.param(
        "lock-table", "LOCK TABLE call_log IN ACCESS EXCLUSIVE MODE;", "SELECT 1;", id="lock"
    ),
    pytest.param(
        "table-rewrite",
        "ALTER TABLE call_log SET UNLOGGED;",
        "ALTER TABLE call_log SET (fillfactor = 90);",
        id="set-unlogged",
    ),
]


@pytest.mark.parametrize(("rule", "bad", "safe"), BAD_AND_SAFE)
def test_rule_fires_on_bad_form_only(tmp_path: Path, rule: str, bad: str, safe: str) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "safe").mkdir()
    assert rule in lint_sql(tmp_path / "bad", bad)
    assert rule not in lint_sql(tmp_path / "safe", safe)


def test_concurrently_needs_transaction_false(tmp_path: Path) -> None:
    statement = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON call_log (status);\n"
    inside = write(tmp_path, statement, "0500_bad.sql")
    outside = write(tmp_path, "-- transaction: false\n" + statement, "0501_ok.sql")
    assert "concurrently-in-transaction" in rules(run(inside)[1])
    assert run(outside) == (ExitCode.OK, ["lint: 0 finding(s) in 0 of 1 file(s) checked"])


def test_set_not_null_after_check_validated_in_an_earlier_migration(tmp_path: Path) -> None:
    write(
        tmp_path,
        "ALTER TABLE call_log ADD CONSTRAINT status_nn CHECK (status IS NOT NULL) NOT VALID;\n",
        "0500_check.sql",
    )
    write(tmp_path, "ALTER TABLE call_log VALIDATE CONSTRAINT status_nn;\n", "0501_validate.sql")
    late = write(
        tmp_path, "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;\n", "0502_nn.sql"
    )
    # only 0502 is linted (the others are applied): their CHECK still counts
    assert "set-not-null" not in rules(run(late)[1])
    # a CHECK that was never validated does not
    (tmp_path / "0501_validate.sql").unlink()
    assert "set-not-null" in rules(run(late)[1])
    # and neither does a CHECK on another column
    other = tmp_path / "other"
    other.mkdir()
    write(
        other,
        "ALTER TABLE call_log ADD CONSTRAINT s CHECK (direction IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE call_log VALIDATE CONSTRAINT s;\n"
        "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;\n",
    )
    assert "set-not-null" in rules(run(other / "0500_bad.sql")[1])


def test_validate_in_the_transaction_that_added_the_constraint(tmp_path: Path) -> None:
    add = "ALTER TABLE call_log ADD CONSTRAINT pos CHECK (duration >= 0) NOT VALID;\n"
    validate = "ALTER TABLE call_log VALIDATE CONSTRAINT pos;\n"
    # one wrapped file: the ADD's lock is still held while VALIDATE scans; reported once
    assert lint_sql(tmp_path, add + validate) == ["constraint-not-valid"]
    # in a later migration VALIDATE has a transaction of its own
    write(tmp_path, add, "0400_add.sql")
    assert lint_sql(tmp_path, validate) == []


DESTRUCTIVE = [
    ("drop-column", "ALTER TABLE call_log DROP COLUMN duration;", "drop-column"),
    ("drop-table", "DROP TABLE IF EXISTS call_log_old;", "drop-table"),
    (
        "rename-column",
        "ALTER TABLE call_log RENAME COLUMN duration TO duration_legacy;",
        "rename-column",
    ),
    ("rename-table", "ALTER TABLE call_log_old RENAME TO call_log_archive;", "rename-table"),
    ("data-change", "UPDATE call_log SET status = 'done' WHERE status = 'ended';", "data-change"),
]


@pytest.mark.parametrize(("flag", "sql", "rule"), DESTRUCTIVE)
def test_header_flag_lets_destructive_change_through(
    tmp_path: Path, flag: str, sql: str, rule: str
) -> None:
    code, lines = run(write(tmp_path, sql, "0500_bad.sql"))
    assert code == ExitCode.LINT_FINDINGS
    assert rule in rules(lines)
    # squawk's own ban-drop-*/renaming-* rules are let through by the same flag
    flagged = write(
        tmp_path, f"-- allow: {flag} because no release uses it\n{sql}", "0501_allowed.sql"
    )
    assert run(flagged) == (ExitCode.OK, ["lint: 0 finding(s) in 0 of 1 file(s) checked"])


def test_flag_allows_only_what_it_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "-- allow: rename-column because unused\nALTER TABLE call_log DROP COLUMN duration;\n",
    )
    assert "drop-column" in rules(run(path)[1])


# --- text handling ---------------------------------------------------------------------


def test_comments_strings_and_function_bodies_are_not_statements(tmp_path: Path) -> None:
    sql = (
        "-- UPDATE call_log SET x = 1;\n"
        "/* DROP TABLE call_log; /* nested */ DELETE FROM call_log; */\n"
        "COMMENT ON TABLE call_log IS 'we never UPDATE; or DROP TABLE call_log;';\n"
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        "BEGIN NEW.note := 'UPDATE call_log SET x = 1; DROP TABLE t'; RETURN NEW; END;\n"
        "$body$;\n"
    )
    assert run(write(tmp_path, sql)) == (
        ExitCode.OK,
        ["lint: 0 finding(s) in 0 of 1 file(s) checked"],
    )


def test_blank_keeps_offsets_and_lines() -> None:
    sql = "SELECT 'a;''b' -- c;\n/* x /* y */ z; */ $f$ body; $f$, E'\\'';\n\"q;\";"
    blanked = sql_text.blank(sql)
    assert len(blanked) == len(sql)
    assert blanked.count("\n") == sql.count("\n")
    assert '"q;"' in blanked  # quoted identifiers are kept
    found = list(lint.statements(sql))
    assert [statement.line for statement in found] == [1, 3]
    assert found[1].text == '"q;"'


def test_finding_has_file_line_and_alternative(tmp_path: Path) -> None:
    sql = (
        "-- description: two bad statements, the second spans lines\n"
        "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS started_at timestamp;\n"
        "\n"
        "UPDATE call_log\n"
        "   SET started_at = created_at;\n"
        "ALTER TABLE call_log\n"
        "    ALTER COLUMN duration TYPE bigint;\n"
    )
    path = write(tmp_path, sql)
    code, lines = run(path)
    assert code == ExitCode.LINT_FINDINGS
    ours = {m["rule"]: m for line in lines if (m := FINDING.match(line))}
    assert ours["data-change"]["file"] == str(path)
    assert ours["data-change"]["line"] == "4"
    assert "migrations/backfills/" in ours["data-change"]["alt"]
    assert ours["column-type-change"]["line"] == "6"
    assert "new column" in ours["column-type-change"]["alt"]
    assert lines[-1] == f"lint: {len(lines) - 1} finding(s) in 1 of 1 file(s) checked"
    assert all(FINDING.match(line) for line in lines[:-1])


def test_output_sorted_by_file_and_line(tmp_path: Path) -> None:
    second = write(tmp_path, "VACUUM FULL call_log;\nLOCK TABLE call_log;\n", "0502_b.sql")
    first = write(tmp_path, "CLUSTER call_log;\n\nTRUNCATE call_log;\n", "0501_a.sql")
    code, lines = run(second, first)
    assert code == ExitCode.LINT_FINDINGS
    found = [(m["file"], int(m["line"])) for line in lines if (m := FINDING.match(line))]
    assert found == sorted(found)
    assert [pair[1] for pair in found if pair[0] == str(first)][:2] == [1, 3]
    assert lines[-1].endswith("in 2 of 2 file(s) checked")


# --- squawk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("REINDEX TABLE call_log;", "reindex-not-concurrent"),
        ("ALTER TABLE call_log ADD COLUMN ext_id text UNIQUE;", "add-column-rewrite"),
        ("ALTER TABLE call_log ADD COLUMN n bigint PRIMARY KEY;", "add-column-rewrite"),
        (
            "ALTER TABLE call_log ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
            "add-column-rewrite",
        ),
        ("ALTER TABLE call_log ADD CONSTRAINT pk PRIMARY KEY (id);", "constraint-builds-index"),
    ],
)
def test_squawk_rule_of_the_same_concern_is_reported_once(
    tmp_path: Path, sql: str, rule: str
) -> None:
    # squawk finds these too (require-concurrent-reindex, disallowed-unique-constraint,
    # adding-serial-primary-key-field, adding-field-with-default, constraint-missing-not-valid)
    assert lint_sql(tmp_path, sql) == [rule]


def test_squawk_finding_is_reported(tmp_path: Path) -> None:
    # our own rules have nothing against this; squawk does (ban-char-field)
    sql = "CREATE TABLE agent (id bigint PRIMARY KEY, code char(2));\n"
    code, lines = run(write(tmp_path, sql))
    assert code == ExitCode.LINT_FINDINGS
    found = rules(lines)
    assert found
    assert all(rule.startswith("squawk/") for rule in found)
    assert "squawk/ban-char-field" in found
    match = next(m for line in lines if (m := FINDING.match(line)))
    assert match["line"] == "1"
    assert match["alt"].strip()


def test_squawk_sees_explicit_transaction_in_a_wrapped_file(tmp_path: Path) -> None:
    sql = "BEGIN;\nALTER TABLE call_log ADD COLUMN note text;\nCOMMIT;\n"
    lines = run(write(tmp_path, sql))[1]
    assert "squawk/transaction-nesting" in rules(lines)


def test_squawk_syntax_error_is_a_finding(tmp_path: Path) -> None:
    code, lines = run(write(tmp_path, "ALTER TABLE call_log ADD COLUMN;\n"))
    assert code == ExitCode.LINT_FINDINGS
    assert "squawk/syntax-error" in rules(lines)


def test_squawk_config_excludes_only_the_conflicting_rules() -> None:
    config = (ROOT / "migrations" / "squawk.toml").read_text(encoding="utf-8")
    block = re.search(r"excluded_rules = \[(.*?)\]", config, re.DOTALL)
    assert block
    excluded = set(re.findall(r'^\s*"([a-z-]+)",', block[1], re.MULTILINE))
    assert excluded == {
        "require-lock-timeout",
        "require-statement-timeout",
        "prefer-timestamp-tz",
        "prefer-bigint-over-int",
        "prefer-identity",
        "prefer-text-field",
    }
    assert 'pg_version = "15"' in config


def test_missing_squawk_fails_the_lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "find_squawk", lambda: None)
    code, lines = run(ROOT / "migrations" / "versions" / "0109_call_log_timing.sql")
    assert code == ExitCode.LINT_FINDINGS
    assert len(lines) == 1
    assert "squawk-cli" in lines[0]


def test_broken_squawk_fails_the_lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "squawk"
    fake.write_text("#!/bin/sh\necho 'Configuration error: boom' >&2\nexit 2\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(lint, "find_squawk", lambda: str(fake))
    code, lines = run(ROOT / "migrations" / "versions" / "0109_call_log_timing.sql")
    assert code == ExitCode.LINT_FINDINGS
    assert lines == ["lint: squawk failed (exit 2): Configuration error: boom"]


def test_squawk_is_found_next_to_the_interpreter() -> None:
    found = lint.find_squawk()
    assert found
    assert Path(found).name == "squawk"


# --- through the command line ------------------------------------------------------------


def migrator(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT / "migrations")
    return subprocess.run(
        [sys.executable, "-m", "migrator", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_lint(tmp_path: Path) -> None:
    clean = migrator("lint", "--all")
    assert clean.returncode == ExitCode.OK, clean.stderr
    assert "lint: 0 finding(s) in 0 of 3 file(s) checked" in clean.stdout
    bad = write(tmp_path, "ALTER TABLE call_log DROP COLUMN duration;\n")
    found = migrator("lint", str(bad))
    assert found.returncode == ExitCode.LINT_FINDINGS, found.stderr
    assert f"{bad}:1: drop-column: " in found.stdout
    # ours only: squawk/ban-drop-column says the same of the same statement
    assert "lint: 1 finding(s) in 1 of 1 file(s) checked" in found.stdout


# --- code the lint cannot see into -------------------------------------------------------

OPAQUE = [
    pytest.param(
        "do-block",
        "DO $$ BEGIN EXECUTE 'ALTER TABLE call_log DROP COLUMN duration'; END $$;",
        "DO $$ BEGIN RAISE NOTICE 'ALTER TABLE call_log DROP COLUMN x'; END $$;",
        id="do-execute",
    ),
    pytest.param(
        "do-block",
        "DO LANGUAGE plpgsql $body$ BEGIN UPDATE call_log SET status = 'x'; END $body$;",
        "DO $body$ BEGIN RAISE NOTICE 'nothing to change'; END $body$;",
        id="do-update",
    ),
    pytest.param("do-block", "CALL archive_calls(30);", "SELECT 1;", id="call"),
    pytest.param(
        "do-block",
        "SELECT purge_old_calls();",
        "SELECT 1 WHERE true;",
        id="select-of-a-function",
    ),
    pytest.param(
        "function-body",
        "CREATE FUNCTION purge() RETURNS void LANGUAGE sql AS 'DELETE FROM call_log';",
        "CREATE FUNCTION twice(n int) RETURNS int LANGUAGE sql AS 'SELECT n * 2';",
        id="sql-function-delete",
    ),
    pytest.param(
        "function-body",
        "CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $f$\n"
        "BEGIN EXECUTE format('TRUNCATE %I', 'call_log'); END $f$;",
        "CREATE OR REPLACE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
        "BEGIN NEW.updated_at := now(); RETURN NEW; END $f$;",
        id="procedure-execute-vs-trigger-function",
    ),
]


@pytest.mark.parametrize(("rule", "bad", "safe"), OPAQUE)
def test_code_the_lint_cannot_see_into_is_refused(
    tmp_path: Path, rule: str, bad: str, safe: str
) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "safe").mkdir()
    assert rule in lint_sql(tmp_path / "bad", bad)
    assert lint_sql(tmp_path / "safe", safe) == []


def test_squawk_does_not_see_into_a_do_block(tmp_path: Path) -> None:
    sql = "DO $$ BEGIN EXECUTE 'ALTER TABLE call_log DROP COLUMN duration'; END $$;\n"
    assert lint_sql(tmp_path, sql) == ["do-block"]  # no squawk/ban-drop-column


def test_an_opt_in_with_its_reason_lets_a_do_block_through_and_is_reported(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "-- allow: do-block because it only creates the enum type when missing\n"
        "DO $$ BEGIN CREATE TYPE call_kind AS ENUM ('in', 'out');"
        " EXCEPTION WHEN duplicate_object THEN NULL; END $$;\n",
    )
    (result,) = lint.lint_results([load_migration(path)])
    assert result.verdict == "accepted"
    assert result.as_dict()["allows"] == [
        {"line": 1, "rule": "do-block", "reason": "it only creates the enum type when missing"}
    ]


# --- changes PostgreSQL makes without a rewrite -------------------------------------------


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ("TYPE varchar(120)", False),  # widening a varchar
        ("TYPE text", False),  # varchar to text
        ("SET DATA TYPE varchar", False),  # to an unbounded varchar
        ("TYPE varchar(20)", True),  # narrowing checks every row
        ("TYPE bigint USING name::bigint", True),  # another type: rewrite
    ],
)
def test_widening_a_varchar_is_accepted_narrowing_is_not(
    tmp_path: Path, change: str, refused: bool
) -> None:
    write(tmp_path, "CREATE TABLE agent (id bigint PRIMARY KEY, name varchar(60));\n", "0400_a.sql")
    late = write(tmp_path, f"ALTER TABLE agent ALTER COLUMN name {change};\n", "0500_widen.sql")
    found = rules(run(late)[1])
    assert ("column-type-change" in found) is refused
    # squawk's changing-column-type is the same concern: never reported beside ours
    assert "squawk/changing-column-type" not in found


# --- one tokenizer -------------------------------------------------------------------------


def test_lint_and_runner_split_statements_alike() -> None:
    sql = (
        "SELECT E'it\\'s; fine';\n"
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fn_1$ SELECT ';' $fn_1$;\n"
        'COMMENT ON COLUMN call_log."odd;""name" IS $$ a; b $$;\n'
        "SELECT $été$ ; $été$;\n"
        "/* a; /* b; */ c; */ SELECT 2"
    )
    runner = sql_text.split_statements(sql)
    linted = list(lint.statements(sql))
    assert len(runner) == len(linted) == 5
    assert [statement.line for statement in linted] == [1, 2, 3, 4, 5]
