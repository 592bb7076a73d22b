"""Online / offline: can the running release keep serving while a migration runs?

Each rule is shown with an online form and an offline one; `lint --json` reports the class
of every file next to its findings (squawk runs for real, as in test_migrator_lint.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import lint, lockrules  # noqa: E402
from migrator.cli import main  # noqa: E402
from migrator.exitcodes import ExitCode  # noqa: E402
from migrator.files import Migration, MigrationFileError, load_migration  # noqa: E402

VERSIONS = ROOT / "migrations" / "versions"


def migration(sql: str, version: int = 500) -> Migration:
    return Migration(version, "case", Path(f"{version:04d}_case.sql"), sql, "")


def classify(sql: str, *earlier: str) -> lint.Classification:
    """The class of SQL, after the earlier files' SQL went through the same schema."""
    schema = lint.Schema()
    for number, text in enumerate(earlier, start=1):
        lint.classify(migration(text, number), schema)
    return lint.classify(migration(sql), schema)


# --- each rule: an online form and an offline one ------------------------------------

ONLINE_AND_OFFLINE = [
    pytest.param(
        "CREATE TABLE agent (id bigint PRIMARY KEY, name text);",
        "DROP TABLE call_log_old;",
        "drop",
        id="create-vs-drop-table",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "ALTER TABLE call_log ADD COLUMN note text NOT NULL;",
        "add-column-not-null",
        id="add-column-nullable",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN channel text NOT NULL DEFAULT 'voice';",
        "ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();",
        "add-column-volatile-default",
        id="add-column-constant-vs-volatile-default",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN attempts integer DEFAULT 0;",
        "ALTER TABLE call_log ADD COLUMN seq bigserial;",
        "add-column-identity",
        id="add-column-serial",
    ),
    pytest.param(
        "CREATE INDEX CONCURRENTLY call_log_status_idx ON call_log (status);",
        "CREATE INDEX call_log_status_idx ON call_log (status);",
        "create-index",
        id="create-index",
    ),
    pytest.param(
        "CREATE TABLE agent (id bigint, name text);\nCREATE INDEX agent_name_idx ON agent (name);",
        "CREATE INDEX agent_name_idx ON agent (name);",
        "create-index",
        id="index-on-table-created-here",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id) NOT VALID;",
        "ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id);",
        "add-foreign-key",
        id="constraint-not-valid",
    ),
    pytest.param(
        "ALTER TABLE call_log VALIDATE CONSTRAINT call_log_agent_fk;",
        "ALTER TABLE call_log DROP CONSTRAINT call_log_agent_fk;",
        "drop-constraint",
        id="validate-vs-drop-constraint",
    ),
    pytest.param(
        "COMMENT ON COLUMN call_log.duration IS 'legacy; DROP TABLE call_log when unused';",
        "CREATE RULE call_log_keep AS ON DELETE TO call_log DO INSTEAD NOTHING;",
        "not in the lock table",
        id="comment-vs-unknown",
    ),
    pytest.param(
        "CREATE TABLE agent (id bigint, old integer);\nALTER TABLE agent DROP COLUMN old;",
        "ALTER TABLE call_log DROP COLUMN duration;",
        "drop-column",
        id="drop-column",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN duration_legacy integer;",
        "ALTER TABLE call_log RENAME COLUMN duration TO duration_legacy;",
        "rename",
        id="rename-column",
    ),
    pytest.param(
        "CREATE TABLE calls (id bigint);",
        "ALTER TABLE call_log RENAME TO calls;",
        "rename",
        id="rename-table",
    ),
    pytest.param(
        "ALTER TABLE call_log ALTER COLUMN status DROP NOT NULL;",
        "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;",
        "set-not-null",
        id="set-not-null",
    ),
    pytest.param(
        "CREATE TABLE call_status (name text);\nINSERT INTO call_status (name) VALUES ('x');",
        "INSERT INTO call_status (name) VALUES ('ringing');",
        "data-change",
        id="insert",
    ),
    pytest.param(
        "ALTER TABLE call_log ALTER COLUMN status SET DEFAULT 'ringing';",
        "UPDATE call_log SET status = 'done' WHERE status = 'ended';",
        "data-change",
        id="update",
    ),
    pytest.param(
        "CREATE TABLE scratch (id bigint);\nDELETE FROM scratch;",
        "DELETE FROM call_log WHERE status = 'x';",
        "data-change",
        id="delete",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "LOCK TABLE call_log IN ACCESS EXCLUSIVE MODE;",
        "lock",
        id="lock",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "CLUSTER call_log USING call_log_pkey;",
        "cluster",
        id="cluster",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "VACUUM FULL call_log;",
        "vacuum-full",
        id="vacuum-full",
    ),
]


@pytest.mark.parametrize(("online", "offline", "row"), ONLINE_AND_OFFLINE)
def test_rule_has_an_online_and_an_offline_form(online: str, offline: str, row: str) -> None:
    """ROW: the lock table's row the offline form's reason names."""
    assert classify(online) == lint.Classification(lint.ONLINE)
    found = classify(offline)
    assert found.kind == lint.OFFLINE
    assert len(found.reasons) == 1
    why = found.reasons[0].why
    assert why.endswith(f"{row})") or row in why, why


WIDENING = [
    pytest.param("varchar(50)", "varchar(100)", lint.ONLINE, id="longer-varchar"),
    pytest.param("character varying(50)", "text", lint.ONLINE, id="varchar-to-text"),
    pytest.param("varchar(50)", "varchar", lint.ONLINE, id="varchar-unbounded"),
    pytest.param("varchar(50)", "varchar(20)", lint.OFFLINE, id="shorter-varchar"),
    pytest.param("integer", "bigint", lint.OFFLINE, id="integer-to-bigint"),
    pytest.param("varchar(50)", "text USING trim(name)", lint.OFFLINE, id="using"),
]


@pytest.mark.parametrize(("before", "after", "kind"), WIDENING)
def test_only_widening_a_varchar_is_online(before: str, after: str, kind: str) -> None:
    created = f"CREATE TABLE agent (id bigint PRIMARY KEY, name {before} NOT NULL);"
    found = classify(f"ALTER TABLE agent ALTER COLUMN name TYPE {after};", created)
    assert found.kind == kind
    if kind == lint.OFFLINE:
        assert found.reasons[0].why.endswith("alter-column-type)"), found.reasons[0].why


def test_type_follows_added_columns_and_earlier_type_changes() -> None:
    added = "ALTER TABLE call_log ADD COLUMN label varchar(20);"
    widened = "ALTER TABLE call_log ALTER COLUMN label TYPE varchar(40);"
    assert classify(widened, added).kind == lint.ONLINE
    # after a change to varchar(80), varchar(40) is a narrowing
    wider = "ALTER TABLE call_log ALTER COLUMN label TYPE varchar(80);"
    assert classify(widened, added, wider).kind == lint.OFFLINE


def test_type_change_of_an_unknown_column_is_offline() -> None:
    found = classify("ALTER TABLE call_log ALTER COLUMN note TYPE text;")
    assert found.kind == lint.OFFLINE


def test_reasons_name_each_offline_statement_line() -> None:
    sql = (
        "-- description: one safe statement, then two that are not\n"
        "ALTER TABLE call_log ADD COLUMN note text;\n"
        "UPDATE call_log\n"
        "   SET note = status;\n"
        "ALTER TABLE call_log ADD COLUMN a text, DROP COLUMN duration;\n"
    )
    found = classify(sql)
    assert found.kind == lint.OFFLINE
    assert [reason.line for reason in found.reasons] == [3, 5]
    assert found.reasons[1].why.endswith("drop-column)"), found.reasons[1].why


def test_header_forces_offline_never_online(tmp_path: Path) -> None:
    path = tmp_path / "0500_note.sql"
    path.write_text(
        "-- description: additive, but run it in a window anyway\n"
        "-- class: offline\n"
        "ALTER TABLE call_log ADD COLUMN note text;\n",
        encoding="utf-8",
    )
    found = lint.classify(load_migration(path))
    assert found.kind == lint.OFFLINE
    assert [(reason.line, reason.why) for reason in found.reasons] == [
        (2, "the header declares `-- class: offline`")
    ]
    path.write_text("-- class: online\nDROP TABLE call_log;\n", encoding="utf-8")
    with pytest.raises(MigrationFileError, match="only be forced to offline"):
        load_migration(path)


# --- the project's own migrations ----------------------------------------------------


def test_project_migrations_are_online() -> None:
    # 0001 creates call_log, 0002 indexes it CONCURRENTLY, 0109 adds nullable columns
    results = lint.lint_results(
        [load_migration(VERSIONS / name) for name in sorted(p.name for p in VERSIONS.iterdir())]
    )
    assert [(result.migration.version, result.classification.kind) for result in results] == [
        (1, lint.ONLINE),
        (2, lint.ONLINE),
        (109, lint.ONLINE),
    ]


# --- lint --json -----------------------------------------------------------------------


def lint_json(*args: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["lint", "--json", *args], {})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines  # one JSON document, no text lines
    return code, json.loads(lines[0]), err.getvalue()


def test_lint_json_reports_class_and_findings_per_file(tmp_path: Path) -> None:
    good = tmp_path / "0500_note.sql"
    good.write_text("ALTER TABLE call_log ADD COLUMN note text;\n", encoding="utf-8")
    bad = tmp_path / "0501_drop.sql"
    bad.write_text(
        "CREATE RULE keep AS ON DELETE TO call_log DO INSTEAD NOTHING;\n"
        "ALTER TABLE call_log DROP COLUMN duration;\n",
        encoding="utf-8",
    )
    code, document, _ = lint_json(str(bad), str(good))
    assert code == ExitCode.LINT_FINDINGS
    assert document["exit_code"] == ExitCode.LINT_FINDINGS
    by_file = {item["file"]: item for item in document["files"]}
    assert list(by_file) == [str(good), str(bad)]  # version order
    assert by_file[str(good)] == {
        "file": str(good),
        "version": 500,
        "checksum": hashlib.sha256(good.read_bytes()).hexdigest(),
        "verdict": "accepted",
        "class": "online",
        "class_reasons": [],
        "class_notes": [],
        "findings": [],
        "allows": [],
    }
    offline = by_file[str(bad)]
    assert offline["version"] == 501
    assert offline["class"] == "offline"
    assert [reason["line"] for reason in offline["class_reasons"]] == [1, 2]
    assert "not in the lock table" in offline["class_reasons"][0]["reason"]
    assert offline["verdict"] == "refused"
    # squawk's ban-drop-column says the same as the project rule: reported once
    assert [finding["rule"] for finding in offline["findings"]] == ["drop-column"]
    for finding in offline["findings"]:
        assert set(finding) == {"line", "rule", "message", "alternative"}
        assert finding["line"] == 2


def test_lint_json_of_the_project_is_clean() -> None:
    code, document, _ = lint_json("--all")
    assert code == ExitCode.OK
    assert [(item["version"], item["class"]) for item in document["files"]] == [
        (1, "online"),
        (2, "online"),
        (109, "online"),
    ]


def test_lint_json_without_squawk_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "find_squawk", lambda: None)
    code, document, err = lint_json(str(VERSIONS / "0109_call_log_timing.sql"))
    assert code == ExitCode.LINT_FINDINGS
    assert "squawk-cli" in document["error"]
    assert err.startswith("error: lint: squawk not found")


# --- PostgreSQL's lock rules, not an allowlist -------------------------------------------

LOCK_RULE_CASES = [
    pytest.param("GRANT SELECT ON call_log TO prosaas_reader;", "accepted", "online", id="grant"),
    pytest.param(
        "CREATE OR REPLACE VIEW call_log_recent AS SELECT id, caller FROM call_log;",
        "accepted",
        "online",
        id="view",
    ),
    pytest.param(
        "ALTER TABLE call_log SET (fillfactor = 90);", "accepted", "online", id="fillfactor"
    ),
    pytest.param(
        "SET statement_timeout = 0;\n"
        "SET lock_timeout = '5s';\n"
        "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS started_at timestamptz;\n"
        "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS ended_at timestamptz;\n"
        "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS duration_sec integer;\n",
        "accepted",
        "online",
        id="109-as-the-seed-wrote-it",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT now();",
        "accepted",
        "online",
        id="stable-default",
    ),
    pytest.param(
        "-- transaction: false\nDROP INDEX CONCURRENTLY IF EXISTS call_log_caller_idx;",
        "accepted",
        "online",
        id="drop-index-concurrently",
    ),
    pytest.param(
        "SET lock_timeout = 0;\nALTER TABLE call_log ADD COLUMN note text;",
        "refused",
        "online",
        id="lock-bound-off",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN agent varchar(32);\n"
        "ALTER TABLE call_log ALTER COLUMN agent TYPE varchar(64);",
        "accepted",
        "online",
        id="widened-in-the-file-that-added-it",
    ),
]


@pytest.mark.parametrize(("sql", "verdict", "kind"), LOCK_RULE_CASES)
def test_harmless_statements_are_online_and_the_lock_bound_stays_on(
    tmp_path: Path, sql: str, verdict: str, kind: str
) -> None:
    path = tmp_path / "0500_case.sql"
    path.write_text(sql, encoding="utf-8")
    (result,) = lint.lint_results([load_migration(path)])
    assert (result.verdict, result.classification.kind) == (verdict, kind), (
        [str(finding) for finding in result.findings],
        result.classification.reasons,
    )


def test_a_refused_lock_bound_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "0500_case.sql"
    path.write_text("ALTER TABLE call_log ADD COLUMN a text;\nSET LOCAL lock_timeout TO 0;\n")
    (result,) = lint.lint_results([load_migration(path)])
    assert [(finding.line, finding.rule) for finding in result.findings] == [
        (2, "lock-timeout-off")
    ]


def test_a_files_timeouts_are_noted_as_under_the_runners_bounds() -> None:
    found = classify("SET lock_timeout = '5s';\nALTER TABLE call_log ADD COLUMN a text;")
    assert found.kind == lint.ONLINE
    assert [(note.line, note.why) for note in found.notes] == [
        (1, "lock_timeout '5s' is held to the runner's bound (a file can only tighten it)")
    ]


def test_a_function_created_earlier_has_the_volatility_it_declares() -> None:
    stable = "CREATE FUNCTION today() RETURNS date LANGUAGE sql STABLE AS $$ SELECT now()::date $$;"
    volatile = "CREATE FUNCTION pick() RETURNS int LANGUAGE sql AS $$ SELECT 4 $$;"
    assert classify("ALTER TABLE call_log ADD COLUMN d date DEFAULT today();", stable).kind == (
        lint.ONLINE
    )
    found = classify("ALTER TABLE call_log ADD COLUMN p int DEFAULT pick();", volatile)
    assert found.reasons[0].why.endswith("add-column-volatile-default)")
    unknown = classify("ALTER TABLE call_log ADD COLUMN p int DEFAULT nobody_knows();")
    assert unknown.kind == lint.OFFLINE


def test_set_not_null_after_a_validated_check_in_the_same_file_is_online() -> None:
    added = "ALTER TABLE call_log ADD CONSTRAINT caller_nn CHECK (caller IS NOT NULL) NOT VALID;"
    sql = (
        "ALTER TABLE call_log VALIDATE CONSTRAINT caller_nn;\n"
        "ALTER TABLE call_log ALTER COLUMN caller SET NOT NULL;\n"
    )
    assert classify(sql, added).kind == lint.ONLINE
    # validated in the transaction that added it: the ADD's lock is held through the scan
    same = classify(f"{added}\n{sql}")
    assert same.reasons[0].why.endswith("validate-in-adding-transaction)"), same.reasons
    unproven = classify("ALTER TABLE call_log ALTER COLUMN caller SET NOT NULL;")
    assert unproven.reasons[0].why.endswith("set-not-null)")


def test_every_row_of_the_lock_table_is_in_the_document() -> None:
    document = (ROOT / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    assert lockrules.markdown_table() in document, "docs/lint-rules.md: regenerate the lock table"
