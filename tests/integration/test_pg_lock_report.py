"""pg_lock_report through Ansible against the real PostgreSQL: who holds call_log."""

import psycopg

from tests.conftest import run_module


def test_reports_a_session_holding_a_lock_and_nothing_when_clear(database: str, tmp_path) -> None:
    with psycopg.connect(database, autocommit=True) as setup:
        setup.execute("CREATE TABLE call_log (id int)")
    holder = psycopg.connect(database, application_name="long-report")
    try:
        holder.execute("SELECT count(*) FROM call_log")  # opens a transaction, keeps its lock
        held = run_module(tmp_path, "pg_lock_report", {"dsn": database, "tables": ["call_log"]})

        assert not held.failed, held.result
        assert held.result["changed"] is False
        assert held.result["holders"] == 1
        session = held.result["sessions"][0]
        assert session["table"] == "call_log"
        assert session["mode"] == "AccessShareLock"
        assert session["granted"] is True
        assert session["state"] == "idle in transaction"
        assert session["application"] == "long-report"
        assert "SELECT count(*) FROM call_log" in session["query"]
        assert "1 session(s) hold" in held.result["summary"]
    finally:
        holder.close()

    clear = run_module(tmp_path, "pg_lock_report", {"dsn": database, "tables": ["call_log"]})
    assert clear.result["sessions"] == []
    assert clear.result["oldest_xact_age_s"] is None


def test_unknown_tables_report_nothing_and_a_bad_dsn_fails_in_one_line(
    database: str, tmp_path
) -> None:
    missing = run_module(tmp_path, "pg_lock_report", {"dsn": database, "tables": ["nope"]})
    assert not missing.failed
    assert missing.result["sessions"] == []

    wrong = psycopg.conninfo.make_conninfo(database, password="not-" + "it")
    failed = run_module(tmp_path, "pg_lock_report", {"dsn": wrong, "tables": ["call_log"]})
    assert failed.failed
    assert failed.result["msg"].startswith("cannot connect to PostgreSQL at ")
    assert "not-it" not in failed.result["msg"]
