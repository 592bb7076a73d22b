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

from migrator import lint  # noqa: E402
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
        "DROP TABLE",
        id="create-vs-drop-table",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "ALTER TABLE call_log ADD COLUMN note text NOT NULL;",
        "NOT NULL without a default",
        id="add-column-nullable",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN channel text NOT NULL DEFAULT 'voice';",
        "ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT now();",
        "volatile default",
        id="add-column-constant-vs-volatile-default",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN attempts integer DEFAULT 0;",
        "ALTER TABLE call_log ADD COLUMN seq bigserial;",
        "BIGSERIAL",
        id="add-column-serial",
    ),
    pytest.param(
        "CREATE INDEX CONCURRENTLY call_log_status_idx ON call_log (status);",
        "CREATE INDEX call_log_status_idx ON call_log (status);",
        "without CONCURRENTLY on existing table call_log",
        id="create-index",
    ),
    pytest.param(
        "CREATE TABLE agent (id bigint, name text);\nCREATE INDEX agent_name_idx ON agent (name);",
        "CREATE INDEX agent_name_idx ON agent (name);",
        "existing table agent",
        id="index-on-table-created-here",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id) NOT VALID;",
        "ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id);",
        "checks every row",
        id="constraint-not-valid",
    ),
    pytest.param(
        "ALTER TABLE call_log VALIDATE CONSTRAINT call_log_agent_fk;",
        "ALTER TABLE call_log DROP CONSTRAINT call_log_agent_fk;",
        "may rely on it",
        id="validate-vs-drop-constraint",
    ),
    pytest.param(
        "COMMENT ON COLUMN call_log.duration IS 'legacy; DROP TABLE call_log when unused';",
        "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
        "not recognised",
        id="comment-vs-unknown",
    ),
    pytest.param(
        "CREATE TABLE agent (id bigint, old integer);\nALTER TABLE agent DROP COLUMN old;",
        "ALTER TABLE call_log DROP COLUMN duration;",
        "drops column duration of call_log",
        id="drop-column",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN duration_legacy integer;",
        "ALTER TABLE call_log RENAME COLUMN duration TO duration_legacy;",
        "renames column duration",
        id="rename-column",
    ),
    pytest.param(
        "CREATE TABLE calls (id bigint);",
        "ALTER TABLE call_log RENAME TO calls;",
        "renames table call_log",
        id="rename-table",
    ),
    pytest.param(
        "ALTER TABLE call_log ALTER COLUMN status DROP NOT NULL;",
        "ALTER TABLE call_log ALTER COLUMN status SET NOT NULL;",
        "SET NOT NULL on existing column call_log.status",
        id="set-not-null",
    ),
    pytest.param(
        "CREATE TABLE call_status (name text);\nINSERT INTO call_status (name) VALUES ('x');",
        "INSERT INTO call_status (name) VALUES ('ringing');",
        "INSERT changes data",
        id="insert",
    ),
    pytest.param(
        "ALTER TABLE call_log ALTER COLUMN status SET DEFAULT 'ringing';",
        "UPDATE call_log SET status = 'done' WHERE status = 'ended';",
        "UPDATE changes data",
        id="update",
    ),
    pytest.param(
        "CREATE TABLE scratch (id bigint);\nDELETE FROM scratch;",
        "DELETE FROM call_log WHERE status = 'x';",
        "DELETE changes data",
        id="delete",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "LOCK TABLE call_log IN ACCESS EXCLUSIVE MODE;",
        "LOCK holds",
        id="lock",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "CLUSTER call_log USING call_log_pkey;",
        "CLUSTER holds",
        id="cluster",
    ),
    pytest.param(
        "ALTER TABLE call_log ADD COLUMN note text;",
        "VACUUM FULL call_log;",
        "VACUUM holds",
        id="vacuum-full",
    ),
]


@pytest.mark.parametrize(("online", "offline", "reason"), ONLINE_AND_OFFLINE)
def test_rule_has_an_online_and_an_offline_form(online: str, offline: str, reason: str) -> None:
    assert classify(online) == lint.Classification(lint.ONLINE)
    found = classify(offline)
    assert found.kind == lint.OFFLINE
    assert len(found.reasons) == 1
    assert reason in found.reasons[0].why


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
        assert "changes the type of agent.name" in found.reasons[0].why


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
    assert "drops column duration" in found.reasons[1].why


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
    bad.write_text("SELECT 1;\nALTER TABLE call_log DROP COLUMN duration;\n", encoding="utf-8")
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
        "findings": [],
        "allows": [],
    }
    offline = by_file[str(bad)]
    assert offline["version"] == 501
    assert offline["class"] == "offline"
    assert [reason["line"] for reason in offline["class_reasons"]] == [1, 2]
    assert offline["class_reasons"][0]["reason"].startswith("not recognised")
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
