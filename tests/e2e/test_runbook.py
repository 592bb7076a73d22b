"""The runbook playbooks end to end: status, stop, migrate (mode B), start, rollback.

Real engine, real Postgres, demo v1 -> v2, each test on its own stack.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import APP_SERVICES, V2_COLUMNS, Stack


def app_statuses(stack: Stack) -> set[str]:
    return {stack.container(service).status for service in APP_SERVICES}


def test_status_shows_each_service_the_migrations_and_the_three_columns(v1_stack: Stack) -> None:
    stack = v1_stack
    stack.deploy_ok("v2")
    v2 = stack.release("v2")

    status = stack.play("playbooks/status.yml", "v2")

    assert status.rc == 0, status.describe()
    assert status.stats["changed"] == 0, status.describe()
    for service in APP_SERVICES:
        cells = [service, stack.prefix + service, "prosaas-demo/app:v2", v2["id"], "running"]
        row = " +".join(map(re.escape, [*cells, "healthy"]))
        assert re.search(row, status.output), status.describe()
    assert "migrations pending (prosaas-demo/migrate:v2): none" in status.output
    assert "columns (seed check): 3/3 present" in status.output
    assert f"release current: {v2['id']} (v2" in status.output
    assert "lock: free" in status.output
    assert "status: OK" in status.output


def test_status_on_v1_names_109_pending_and_the_missing_columns(v1_stack: Stack) -> None:
    status = v1_stack.play("playbooks/status.yml", "v2")

    assert status.rc == 0, status.describe()
    assert "migrations pending (prosaas-demo/migrate:v2): 0109" in status.output
    assert "columns (seed check): 0/3 present" in status.output
    assert "status: OK" in status.output  # missing columns are expected while 109 is pending


def test_manual_migration_mode_b_refuses_while_the_app_runs_then_stop_migrate_start(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    history = stack.history()

    refused = stack.play("playbooks/migrate.yml", "v2")
    assert refused.rc != 0, refused.describe()
    assert "app services still running" in refused.failure, refused.describe()
    assert "playbooks/stop.yml" in refused.failure
    assert stack.v2_columns() == set()
    assert app_statuses(stack) == {"running"}
    assert not stack.lock_path.exists(), stack.lock()

    stopped = stack.play("playbooks/stop.yml", "v1")
    assert stopped.rc == 0, stopped.describe()
    assert app_statuses(stack) == {"exited"}
    again = stack.play("playbooks/stop.yml", "v1")
    assert again.stats["changed"] == 0, again.describe()

    migrated = stack.play("playbooks/migrate.yml", "v2")
    assert migrated.rc == 0, migrated.describe()
    assert "✅ Migration 109 complete" in migrated.output
    assert "applied now: 109" in migrated.output, migrated.describe()
    # 0001's columns and 0109's three: every column the applied migrations declare.
    assert "verified: 8 declared column(s) present" in migrated.output, migrated.describe()
    assert stack.v2_columns() == set(V2_COLUMNS)
    assert app_statuses(stack) == {"exited"}

    started = stack.play("playbooks/start.yml", "v2")
    assert started.rc == 0, started.describe()
    stack.assert_app_healthy_on("v1")  # the current release, not the inventory's version
    assert stack.history() == history  # the runbook records no release
    assert not stack.lock_path.exists(), stack.lock()


def test_rollback_to_previous_then_back_to_current_and_an_unknown_release_is_refused(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    stack.deploy_ok("v2")
    v1, v2 = stack.release("v1"), stack.release("v2")
    history = stack.history()

    back = stack.play("playbooks/rollback.yml", "v2", prosaas_rollback_to="previous")
    assert back.rc == 0, back.describe()
    stack.assert_app_healthy_on("v1")
    for service in APP_SERVICES:
        assert stack.container(service).labels["prosaas.release"] == v1["id"], service
    assert f"rolled back to release {v1['id']} (v1)" in back.output, back.describe()

    unknown = stack.play("playbooks/rollback.yml", "v2", prosaas_rollback_to="r-no-such")
    assert unknown.rc != 0, unknown.describe()
    assert "release r-no-such is not in the release history" in unknown.failure
    assert "\n" not in unknown.failure.strip()
    stack.assert_app_healthy_on("v1")  # nothing was touched

    forward = stack.play("playbooks/rollback.yml", "v2")
    assert forward.rc == 0, forward.describe()
    stack.assert_app_healthy_on("v2")
    for service in APP_SERVICES:
        assert stack.container(service).labels["prosaas.release"] == v2["id"], service
    assert stack.history() == history
    assert not stack.lock_path.exists(), stack.lock()


def test_failed_first_deploy_says_there_is_no_previous_release_and_leaves_the_app_stopped(
    stack: Stack, broken_migrate_image: str
) -> None:
    run = stack.deploy("v2", prosaas_migrate_image=broken_migrate_image)

    assert run.rc != 0, run.describe()
    assert "failed in phase migrate:" in run.failure, run.describe()
    assert "no previous release to roll back to (first deploy)" in run.failure
    running = stack.client.containers.list(filters={"name": f"^{stack.prefix}"})
    assert not {container.name for container in running} & {
        f"{stack.prefix}{service}" for service in APP_SERVICES
    }
    assert [record["status"] for record in stack.history()] == ["failed"]
    assert not stack.lock_path.exists(), stack.lock()
