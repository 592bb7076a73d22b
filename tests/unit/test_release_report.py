"""The deploy's report kept in the release history (module_utils/prosaas_history.py), the lines
status.yml prints from it (plugins/filter/report.py), and the check of the reports folder
(plugins/action/check_reports_dir.py)."""

from __future__ import annotations

import importlib.util
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.prosaas_history import (
    REPORT_LIMIT,
    REPORT_TEXT_LIMIT,
    begin,
    bounded_report,
    dump_history,
    finish,
    release_report,
    stored_size,
)

from tests.conftest import ROOT


def load(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report_filters = load("plugins/filter/report.py", "report_filters")
reports_dir = load("plugins/action/check_reports_dir.py", "check_reports_dir")

PHASES = {
    "validate": 2.61,
    "preflight": 5.3,
    "stop": 1.02,
    "infra": 0.01,
    "migrate": 4.47,
    "verify": 0.35,
    "start": 7.8,
    "record": 0.02,
}
COLUMN = "call_log.started_at timestamp"
MIGRATE_SUMMARY = {
    "command": "up",
    "online": False,
    "exclusive_statement_timeout_ms": None,
    "applied": [109],
    "skipped": [1, 2],
    "attempts": {"109": 1},
    "duration_ms": 3920,
    "exit_code": 0,
}


def host_report(host: str, *, migrates: bool = True, **changes: Any) -> dict[str, Any]:
    """One host's report, as module_utils/prosaas_outcome.py's deploy_report makes it."""
    report = {
        "release": "20261124T181744Z-v2",
        "version": "v2",
        "outcome": "succeeded",
        "reason": None,
        "failed_phase": None,
        "rollback": None,
        "rolled_back_to": None,
        "user": "ops",
        "host": "bastion1",
        "inventory_host": host,
        "phases": dict(PHASES),
        "strategy": "stop",
        "downtime_s": 13.65,
        "plan": {"pending": [109], "migrations": [{"version": 109, "columns": []}] * 20},
        "lock_holders": [],
        "migrate": {
            "image": "prosaas-demo/migrate:v2",
            "exit_code": 0,
            "duration": 4.1,
            "summary": MIGRATE_SUMMARY,
            "log": "applying 0109_call_log_timing.sql\n" * 400,
        }
        if migrates
        else {},
        "verify": {"present": [COLUMN] * 8, "missing": [], "mismatched": []} if migrates else {},
        "previous_release": "20261120T090000Z-v1",
        "images_before": {"prosaas-api": "prosaas-demo/app:v1"},
        "images_after": {"prosaas-api": "prosaas-demo/app:v2"},
    }
    return {**report, **changes}


def three_hosts(**changes: Any) -> list[dict[str, Any]]:
    return [
        host_report("db1", **changes),
        host_report("web1", migrates=False, **changes),
        host_report("web2", migrates=False, **changes),
    ]


# --- What the record keeps ------------------------------------------------------------


def test_a_succeeded_deploy_keeps_outcome_phases_downtime_migrate_and_verify() -> None:
    kept = release_report([host_report("local")])

    assert kept == {
        "outcome": "succeeded",
        "strategy": "stop",
        "downtime_s": 13.65,
        "hosts": {
            "local": {
                "phases": {name: took for name, took in PHASES.items() if name != "record"},
                "downtime_s": 13.65,
            }
        },
        "migrate": {"host": "local", "exit_code": 0, "duration": 4.1, "summary": MIGRATE_SUMMARY},
        "verify": {"present": 8, "missing": [], "mismatched": []},
    }


def test_the_record_leaves_out_the_plan_the_migrate_log_and_the_images() -> None:
    text = json.dumps(release_report([host_report("local")]))

    for left_out in ("applying 0109", "pending", "images_before", "lock_holders", "bastion1"):
        assert left_out not in text


def test_three_hosts_keep_each_hosts_phases_the_longest_downtime_and_one_migrate_run() -> None:
    reports = three_hosts()
    reports[2]["downtime_s"] = 15.0

    kept = release_report(reports)

    assert list(kept["hosts"]) == ["db1", "web1", "web2"]
    assert kept["hosts"]["web2"]["downtime_s"] == 15.0
    assert kept["downtime_s"] == 15.0
    assert kept["migrate"]["host"] == "db1"
    assert "record" not in kept["hosts"]["web1"]["phases"]


def test_a_failed_deploy_keeps_its_phase_and_each_hosts_rollback_not_its_line_again() -> None:
    failure = {
        "outcome": "failed",
        "failed_phase": "migrate",
        "reason": "migrate: exit code 1: 0109_call_log_timing.sql failed",
        "rollback": "rolled back to release 20261120T090000Z-v1 (healthy)",
    }

    kept = release_report([host_report("local", **failure)])

    assert kept["outcome"] == "failed"
    assert kept["failed_phase"] == "migrate"
    assert kept["hosts"]["local"]["rollback"] == failure["rollback"]
    assert failure["reason"] not in json.dumps(kept)  # the record's reason holds it, whole


def test_an_online_deploy_keeps_no_downtime_and_a_deploy_without_migration_no_migrate() -> None:
    kept = release_report([host_report("local", migrates=False, downtime_s=0.0)])

    assert kept["downtime_s"] == 0.0
    assert "migrate" not in kept
    assert "verify" not in kept


# --- The size bound -----------------------------------------------------------------------


def test_one_and_three_host_reports_fit_the_bound_unchanged() -> None:
    one = release_report([host_report("local")])
    three = release_report(three_hosts())

    assert bounded_report(one) == one
    assert bounded_report(three) == three
    assert stored_size(one) < 1200  # bytes added to releases.json
    assert stored_size(three) < 2000 < REPORT_LIMIT


def test_a_long_text_is_cut_to_the_text_limit() -> None:
    kept = bounded_report(release_report([host_report("local", failed_phase="start",
                                                      rollback="x" * 5000)]))  # fmt: skip

    rollback = kept["hosts"]["local"]["rollback"]
    assert len(rollback) == REPORT_TEXT_LIMIT
    assert rollback.endswith("...")


def test_many_hosts_keep_the_hosts_that_fit_and_count_the_others() -> None:
    reports = [host_report("db1")] + [host_report(f"web{n}", migrates=False) for n in range(60)]

    kept = bounded_report(release_report(reports))

    assert stored_size(kept) <= REPORT_LIMIT
    assert 0 < len(kept["hosts"]) < 61
    assert kept["hosts_left_out"] == 61 - len(kept["hosts"])
    assert next(iter(kept["hosts"])) == "db1"  # in the run's order
    assert kept["migrate"]["summary"] == MIGRATE_SUMMARY


def test_a_huge_migrate_summary_keeps_only_the_migrate_runs_exit_code_and_seconds() -> None:
    summary = {**MIGRATE_SUMMARY, "skipped": list(range(5000))}
    report = host_report("local")
    report["migrate"] = {**report["migrate"], "summary": summary}

    kept = bounded_report(release_report([report]))

    assert stored_size(kept) <= REPORT_LIMIT
    assert kept["migrate"] == {"host": "local", "exit_code": 0, "duration": 4.1}


def test_what_never_fits_keeps_only_the_outcome_marked_cut() -> None:
    failure = {"outcome": "failed", "failed_phase": "start", "reason": "start: boom"}
    report = release_report([host_report("local", **failure)])
    report["verify"] = {"present": 1, "missing": ["c"] * 5000, "mismatched": []}

    kept = bounded_report(report)

    assert kept == {
        "outcome": "failed",
        "strategy": "stop",
        "downtime_s": 13.65,
        "failed_phase": "start",
        "cut": True,
    }


def test_finish_writes_the_bounded_report_with_the_outcome_in_one_update() -> None:
    releases, _ = begin([], {"id": "r2", "version": "v2"}, keep=50)
    huge = release_report([host_report("local", failed_phase="migrate", outcome="failed",
                                       rollback="y" * 9000)])  # fmt: skip

    updated, _, after = finish(
        releases, "r2", outcome="failed", reason="migrate: boom", details={"report": huge}
    )

    assert after["status"] == "failed"
    assert after["report"]["hosts"]["local"]["rollback"].endswith("...")
    assert stored_size(after["report"]) <= REPORT_LIMIT
    assert updated[-1] is after


def test_fifty_records_with_three_host_reports_keep_the_history_under_150_kib() -> None:
    releases: list[dict[str, Any]] = []
    for n in range(50):
        releases, _ = begin(releases, {"id": f"r{n}", "version": "v2"}, keep=50)
        report = release_report(three_hosts())
        releases, _, _ = finish(releases, f"r{n}", outcome="succeeded", reason="",
                                details={"report": report})  # fmt: skip

    assert len(dump_history(releases).encode()) < 150 * 1024


# --- What status.yml prints ---------------------------------------------------------------


def record(report: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": "20261124T181744Z-v2",
        "version": "v2",
        "status": report["outcome"],
        "finished_at": "2026-11-24T18:18:31Z",
        "report": report,
        **fields,
    }


def test_status_shows_the_last_reported_deploys_outcome_phases_downtime_and_migrate() -> None:
    rollback = {"id": "r-rollback", "kind": "rollback", "status": "succeeded"}
    releases = [record(release_report([host_report("local")])), rollback]
    releases = json.loads(dump_history(releases))["releases"]  # as read back: keys sorted

    lines = report_filters.last_report_lines(releases)

    assert lines == [
        "last deploy: 20261124T181744Z-v2 (v2) succeeded at 2026-11-24T18:18:31Z,"
        " strategy stop, downtime 13.7 s",
        "  phases on local: validate 2.6 s, preflight 5.3 s, stop 1.0 s, infra 0.0 s,"
        " migrate 4.5 s, verify 0.3 s, start 7.8 s",
        "  migrate on local: exit 0, 4.1 s, applied 0109",
        "  verify: 8 column(s) present, 0 missing, 0 mismatched",
    ]


FAILURE = {
    "outcome": "failed",
    "failed_phase": "start",
    "reason": "start: on web1: prosaas-api never turned healthy",
    "rollback": "rolled back to release r1 (healthy)",
}


def failed_record() -> dict[str, Any]:
    report = release_report(
        [host_report("db1", **FAILURE), host_report("web1", migrates=False, **FAILURE)]
    )
    return record(report, reason=FAILURE["reason"])


def test_status_of_a_failed_deploy_shows_its_phase_and_each_hosts_rollback() -> None:
    lines = report_filters.last_report_lines([failed_record()])

    assert lines[0].startswith("last deploy: 20261124T181744Z-v2 (v2) failed in phase start at")
    assert "  rollback on web1: rolled back to release r1 (healthy)" in lines
    phases = [line.split(":")[0] for line in lines if line.startswith("  phases on ")]
    assert phases == ["  phases on db1", "  phases on web1"]
    # The newest record's reason is status.yml's `release newest` line already.
    assert not [line for line in lines if line.startswith("  failure: ")]


def test_status_names_the_failure_of_a_deploy_a_rollback_came_after() -> None:
    rollback = {"id": "r-rollback", "kind": "rollback", "status": "succeeded", "reason": ""}

    lines = report_filters.last_report_lines([failed_record(), rollback])

    assert lines[1] == "  failure: start: on web1: prosaas-api never turned healthy"


def test_status_without_any_kept_report_says_so() -> None:
    old = {"id": "r1", "version": "v1", "status": "succeeded"}
    assert report_filters.last_report_lines([old]) == [
        "last deploy: no report in the release history"
    ]


def test_status_of_a_report_that_was_cut_says_what_is_missing() -> None:
    cut = {"outcome": "failed", "failed_phase": "start", "downtime_s": 3.0, "cut": True}
    lines = report_filters.last_report_lines([record(cut)])
    assert lines[-1] == "  (the rest of the report was over the size bound and not kept)"


# --- The reports folder -------------------------------------------------------------------


def test_a_missing_reports_folder_is_made_0700_and_left_empty(tmp_path: Path) -> None:
    folder = tmp_path / "outside" / "reports"

    assert reports_dir.unwritable_reason(folder, create=True) is None

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert list(folder.iterdir()) == []  # the probe file is gone


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A reports folder under a regular file: no user, root included, can make it."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "reports"


def test_a_reports_folder_that_cannot_be_made_is_refused_naming_the_setting(
    blocked: Path,
) -> None:
    reason = reports_dir.unwritable_reason(blocked, create=True)
    line = reports_dir.refusal(blocked, reason)

    assert reason == f"Not a directory: {blocked}"
    assert line.startswith(f"prosaas_reports_dir {blocked} cannot be written (Not a directory")
    assert "PROSAAS_REPORTS_DIR" in line
    assert "\n" not in line


def test_a_check_run_judges_a_missing_folder_by_the_one_above_and_makes_nothing(
    tmp_path: Path, blocked: Path
) -> None:
    missing = tmp_path / "new" / "reports"

    assert reports_dir.unwritable_reason(missing, create=False) is None
    assert not (tmp_path / "new").exists()
    assert reports_dir.unwritable_reason(blocked, create=False) == (
        f"Not a directory: {blocked.parent}"
    )


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("")
    reason = reports_dir.unwritable_reason(tmp_path / "reports", create=True)
    assert reason == "it exists and is not a folder"
