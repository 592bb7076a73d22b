"""A database ahead of the release: v2 applied 109, then v1 is deployed again, as operators
go back to the previous version (v1's migrate image carries 0001 and 0002 only).

By default the deploy accepts it: preflight's plan and the deploy summary name 109 as a
migration the release does not know, verify checks what v1's image declares, and v1 runs on
the newer schema. With prosaas_database_ahead: refuse the deploy fails in preflight on one
line naming 109 and playbooks/rollback.yml, before anything is stopped or migrated.
"""

from __future__ import annotations

from tests.e2e.conftest import APP_SERVICES, DeployRun, Stack
from tests.e2e.faults import MIGRATE_TASK, assert_plain_failure_line

AHEAD = "database ahead of the release: migration(s) 109 applied, not in the migrate image"


def summary(run: DeployRun) -> list[str]:
    """The lines of the report role's "Show the summary" task (the output wraps them)."""
    return [
        line
        for event in run.events
        if event.get("event") == "runner_on_ok"
        and event["event_data"].get("task", "") == "Show the summary"
        for line in event["event_data"]["res"]["msg"]
    ]


def tasks_started(run: DeployRun) -> set[str]:
    return {
        event["event_data"].get("task", "")
        for event in run.events
        if event.get("event") == "playbook_on_task_start"
    }


def test_v1_after_v2_is_refused_in_preflight_when_the_inventory_says_so_else_runs_on_109(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    stack.deploy_ok("v2")
    v2 = stack.release("v2")
    ids = {service: stack.container(service).id for service in APP_SERVICES}

    refused = stack.deploy("v1", prosaas_database_ahead="refuse")

    assert refused.rc != 0, refused.describe()
    line = refused.failure.strip()
    assert line and "\n" not in line, refused.describe()
    assert_plain_failure_line(line)
    assert "failed in phase preflight: the database is ahead of this release:" in line, line
    assert "migration(s) 109 are applied but not in its migrate image" in line, line
    assert "playbooks/rollback.yml -e prosaas_rollback_to=previous" in line, line
    assert line.endswith("nothing was stopped or changed"), line
    # Nothing stopped, nothing migrated: the same v2 containers run, healthy.
    assert {service: stack.container(service).id for service in APP_SERVICES} == ids
    stack.assert_app_healthy_on("v2")
    assert MIGRATE_TASK not in tasks_started(refused)
    assert not stack.lock_path.exists(), stack.lock()
    failed = stack.history()[-1]
    assert (failed["version"], failed["status"]) == ("v1", "failed"), failed
    assert failed["failed_phase"] == "preflight", failed

    accepted = stack.deploy_ok("v1")

    accepted_line = (
        f"{AHEAD}; accepted (prosaas_database_ahead: accept), verify checks only what the image"
        " declares"
    )
    assert accepted_line in accepted.plan(), accepted.plan()
    assert accepted_line in summary(accepted), summary(accepted)
    stack.assert_app_healthy_on("v1")
    assert 109 in stack.applied_versions()  # the schema stays as v2 left it
    record = stack.history()[-1]
    assert (record["version"], record["status"]) == ("v1", "succeeded"), record
    assert record["previous"] == v2["id"], record
    report = stack.reports()[record["id"]]
    assert report["plan"]["unknown_applied"] == [109], report["plan"]
    assert report["plan"]["pending"] == [], report["plan"]
    # Verify checked what v1's image declares (nothing of 109) and found nothing missing.
    assert report["verify"]["missing"] == [] and report["verify"]["mismatched"] == []
    assert not any("started_at" in column for column in report["verify"]["present"])
