"""How a deploy ended (module_utils/prosaas_outcome.py): the failure, the line, the report."""

from ansible.module_utils.prosaas_outcome import (
    decide_failure,
    deploy_report,
    failure_line,
    failure_notices,
    own_failure,
    rollback_action,
    rollback_line,
)

SETTINGS = {"inventories": "-i inventories/staging", "migration_host": "app1", "previous": {}}
PREVIOUS = {"id": "20261206T100000Z-v1", "images": {"prosaas-api": "app:v1"}}


def test_a_host_notes_its_own_reason_and_one_brought_by_another_notes_none() -> None:
    assert own_failure("migrate", {"msg": "exit code 1"}) == {
        "phase": "migrate",
        "reason": "exit code 1",
    }
    assert own_failure("migrate", None) == {"phase": "migrate", "reason": None}


def test_the_first_host_whose_task_failed_gives_the_reason_named_on_many_hosts() -> None:
    failures = {
        "app1": own_failure("start", None),
        "app2": own_failure("start", {"msg": "service worker: not healthy"}),
    }
    outcome = decide_failure(
        ["app1", "app2"], failures, {"app1": "start", "app2": "start"}, SETTINGS
    )
    assert outcome["phase"] == "start"
    assert outcome["reason"] == "on app2: service worker: not healthy"
    assert outcome["lost"] == [] and outcome["answering"] == ["app1", "app2"]
    assert outcome["rollback"] == "stop"  # no previous release


def test_one_host_failure_is_not_named() -> None:
    outcome = decide_failure(
        ["app1"], {"app1": own_failure("migrate", {"msg": "boom"})}, {"app1": "migrate"},
        {**SETTINGS, "previous": PREVIOUS},
    )  # fmt: skip
    assert outcome["reason"] == "boom" and outcome["rollback"] == "previous"


def test_a_lost_host_gives_the_reason_and_the_command_that_brings_it_back() -> None:
    phases = {"app1": "migrate", "app2": "migrate"}
    outcome = decide_failure(
        ["app1", "app2"], {"app2": own_failure("migrate", None)}, phases, SETTINGS
    )
    assert outcome["lost"] == ["app1"]
    assert outcome["reason"].startswith("host app1 (in phase migrate) stopped answering over SSH")
    assert (
        "ansible-playbook -i inventories/staging playbooks/start.yml --limit app1"
        in outcome["reason"]
    )
    assert "the migrate container may still run on app1" in outcome["reason"]


def test_nothing_is_rolled_back_before_anything_was_touched() -> None:
    for phase in ("validate", "lock", "preflight"):
        assert rollback_action(phase, PREVIOUS) == "none"
    assert rollback_action("stop", PREVIOUS) == "previous"
    assert rollback_action("stop", {}) == "stop"


def test_the_rollback_line_says_what_it_did_or_why_it_failed() -> None:
    assert rollback_line("none", "", None) == "nothing was stopped or changed"
    assert rollback_line("previous", "r1", None) == "rolled back to release r1 (healthy)"
    assert rollback_line("previous", "r1", "timeout") == (
        'rollback to release r1 failed too (timeout): see RUNBOOK.md "Rollback failed"'
    )
    assert rollback_line("stop", "", None).startswith("no previous release to roll back to")


def test_the_failure_line_carries_the_record_problem_and_hosts_lost_during_the_rollback() -> None:
    outcome = {"phase": "start", "reason": "on app2: x"}
    line = failure_line(
        "r2", outcome, "rolled back to release r1 (healthy)", "history corrupted",
        lost_late=["app2"], inventories="-i inventories/staging",
    )  # fmt: skip
    assert line.startswith(
        "deploy of release r2 failed in phase start: on app2: x"
        "; rolled back to release r1 (healthy)"
        "; not recorded in the release history: history corrupted"
        "; during the rollback, host app2 (in phase rollback) stopped answering"
    )


def test_chat_hears_the_rollback_only_when_one_acted_then_the_failure() -> None:
    outcome = {"phase": "start", "reason": "x", "rollback": "previous"}
    assert failure_notices(outcome, {"a": "rolled back", "b": "rolled back"}) == [
        {"event": "rollback", "reason": "a: rolled back; b: rolled back"},
        {"event": "failure", "reason": "start: x"},
    ]
    untouched = {**outcome, "rollback": "none"}
    assert failure_notices(untouched, {"a": "nothing"}) == [
        {"event": "failure", "reason": "start: x"}
    ]


def report_vars(**extra: object) -> dict:
    return {
        "deploy_release_id": "r2",
        "prosaas_app_version": "v2",
        "prosaas_migrate_image": "migrate:v2",
        "deploy_owner": {"user": "ops", "host": "laptop"},
        "inventory_hostname": "app1",
        "deploy_marks": {"validate": 0.0, "stop": 10.0, "record": 14.5},
        "deployment": {
            "strategy": "stop",
            "strategy_note": "stop",
            "plan": {"pending": [109]},
            "app_services": [{"name": "prosaas-api", "image": "app:v2"}],
        },
        "release_state_begin": {"current": PREVIOUS},
        "migrate_result": {
            "log": "x\n{}",
            "exit_code": 0,
            "duration": 1.5,
            "summary": {"applied": [109]},
        },
        **extra,
    }


def test_a_succeeded_report_has_its_downtime_from_stop_to_record_and_the_new_images() -> None:
    got = report_vars()
    report = deploy_report(got.get, check_mode=False, now=20.0)
    assert report["outcome"] == "succeeded" and report["reason"] is None
    assert report["downtime_s"] == 4.5
    assert report["phases"] == {"validate": 10.0, "stop": 4.5, "record": 5.5}
    assert report["images_after"] == {"prosaas-api": "app:v2"}
    assert report["migrate"]["summary"] == {"applied": [109]}
    assert report["verify"] == {}


def test_a_failed_report_after_a_rollback_names_the_release_it_went_back_to() -> None:
    outcome = {"phase": "start", "reason": "x", "rollback": "previous", "previous": PREVIOUS}
    got = report_vars(
        deploy_outcome=outcome, rollback_outcome="rolled back to release r1 (healthy)"
    )
    report = deploy_report(got.get, check_mode=False, now=20.0)
    assert report["outcome"] == "failed" and report["reason"] == "start: x"
    assert report["rolled_back_to"] == PREVIOUS["id"]
    assert report["images_after"] == PREVIOUS["images"]
    assert report["downtime_s"] == 10.0  # stop to the end


def test_a_check_run_is_planned_with_no_downtime() -> None:
    report = deploy_report(report_vars().get, check_mode=True, now=20.0)
    assert report["outcome"] == "planned (check mode)" and report["downtime_s"] is None
