"""The command line without a database: help, usage errors, bad files."""

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator import lint
from migrator.cli import DEFAULT_DIR, build_parser, lint_verdicts, main
from migrator.exitcodes import ExitCode
from migrator.files import load_migrations
from migrator.output import Output
from migrator.runner import checksum_problems, pending_of


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv, env)
    return code, out.getvalue(), err.getvalue()


def test_help_lists_every_exit_code() -> None:
    text = build_parser().format_help()
    for code in ExitCode:
        assert f"{int(code):<3} {code.name}" in text
    assert "DATABASE_URL" in text and "MIGRATIONS_DIR" in text


def test_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--lock-budget-s", "3", "up", "--to", "2"])
    after = parser.parse_args(["up", "--lock-budget-s", "3", "--json"])
    assert before.lock_budget_s == 3 and before.to == 2
    assert after.lock_budget_s == 3 and after.json is True
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["up", "--lock-budget-s", "0"])
    assert exit_info.value.code == ExitCode.USAGE


def test_missing_dsn_is_one_line_and_a_json_summary() -> None:
    code, out, err = run(["up"], {})
    assert code == ExitCode.USAGE
    assert err.startswith("error: DATABASE_URL is not set") and err.count("\n") == 1
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["command"] == "up" and summary["exit_code"] == ExitCode.USAGE


def test_bad_file_stops_before_connecting(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;\n")
    (tmp_path / "1_bad.sql").write_text("SELECT 1;\n")
    # the DSN points nowhere: a connection attempt would give CANNOT_CONNECT instead
    env = {"DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/db", "MIGRATIONS_DIR": str(tmp_path)}
    code, _, err = run(["plan"], env)
    assert code == ExitCode.BAD_MIGRATION_FILE
    assert "1_bad.sql" in err and err.count("\n") == 1


def test_default_dir_holds_109_and_its_declared_columns() -> None:
    migrations = load_migrations(DEFAULT_DIR)
    assert [m.version for m in migrations][-1] == 109
    timing = migrations[-1]
    assert [(c.name, c.type) for c in timing.columns] == [
        ("started_at", "timestamp"),
        ("ended_at", "timestamp"),
        ("duration_sec", "integer"),
    ]
    assert not next(m for m in migrations if m.version == 2).transactional


def test_pending_and_checksum_logic() -> None:
    migrations = load_migrations(DEFAULT_DIR)

    class Row:
        def __init__(self, checksum: str) -> None:
            self.checksum = checksum

    history = {1: Row(migrations[0].checksum), 2: Row("0" * 64)}
    assert [m.version for m in pending_of(migrations, history)] == [109]  # type: ignore[arg-type]
    assert pending_of(migrations, {}, to=2)[-1].version == 2  # type: ignore[arg-type]
    problems = checksum_problems(migrations, history)  # type: ignore[arg-type]
    assert len(problems) == 1
    assert "0002_call_log_created_at_index.sql" in problems[0]
    assert "0" * 64 in problems[0] and migrations[1].checksum in problems[0]


def test_plan_reports_not_linted_where_no_record_and_no_squawk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lint, "find_squawk", lambda: None)
    migrations = load_migrations(DEFAULT_DIR)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        verdicts = lint_verdicts(migrations, {}, Output(json_only=False))
    assert verdicts == {}  # each file then takes NOT_LINTED
    assert "squawk not found" in out.getvalue() + err.getvalue()
    assert "every file is reported as not linted" in out.getvalue() + err.getvalue()
