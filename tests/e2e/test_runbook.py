"""The runbook playbooks end to end: status, stop, migrate (mode B), start, rollback.

Real engine, real Postgres, demo v1 -> v2, each test on its own stack.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import APP_SERVICES, V2_COLUMNS, DeployRun, Stack, status_table


def app_statuses(stack: Stack) -> set[str]:
    return {stack.container(service).status for service in APP_SERVICES}


def status_line(run: DeployRun) -> str:
    """The last line of status.yml's table, `status: ...`, as the task returned it."""
    return status_table(run)[-1]


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
    recorded = stack.history()
    assert recorded[:-1] == history, "the rollback is appended, nothing else changes"
    rollback = recorded[-1]
    assert rollback["kind"] == "rollback"
    assert rollback["status"] == "succeeded"
    assert (rollback["version"], rollback["restores"], rollback["rolled_back_from"]) == (
        "v1",
        v1["id"],
        v2["id"],
    )
    assert rollback["images"] == v1["images"]
    assert rollback["migrate_image"] == v1["migrate_image"]
    assert rollback["user"] and rollback["host"] and rollback["finished_at"]
    for service in APP_SERVICES:
        assert stack.container(service).labels["prosaas.release"] == rollback["id"], service
        assert stack.container(service).labels["prosaas.version"] == "v1", service
    assert f"rolled back to release {v1['id']} (v1)" in back.output, back.describe()
    assert f"recorded in the release history as {rollback['id']}" in back.output

    status = stack.play("playbooks/status.yml", "v2")
    assert status.rc == 0, status.describe()
    assert f"release current: {rollback['id']} (v1" in status.output, status.describe()
    assert f"previous: {v2['id']}" in status.output
    assert status_line(status) == "status: OK", status.describe()

    same = stack.play("playbooks/rollback.yml", "v2", prosaas_rollback_to=v1["id"])
    assert same.rc == 0, same.describe()
    assert same.stats["changed"] == 0, same.describe()  # v1 already runs, and is recorded
    assert stack.history() == recorded

    unknown = stack.play("playbooks/rollback.yml", "v2", prosaas_rollback_to="r-no-such")
    assert unknown.rc != 0, unknown.describe()
    assert "release r-no-such is not in the release history" in unknown.failure
    assert "\n" not in unknown.failure.strip()
    stack.assert_app_healthy_on("v1")  # nothing was touched
    assert not stack.lock_path.exists(), stack.lock()

    forward = stack.play("playbooks/rollback.yml", "v2", prosaas_rollback_to="previous")
    assert forward.rc == 0, forward.describe()
    stack.assert_app_healthy_on("v2")
    assert stack.history()[:-1] == recorded
    again = stack.history()[-1]
    assert (again["kind"], again["version"], again["restores"], again["rolled_back_from"]) == (
        "rollback",
        "v2",
        v2["id"],
        rollback["id"],
    )
    for service in APP_SERVICES:
        assert stack.container(service).labels["prosaas.release"] == again["id"], service
    assert not stack.lock_path.exists(), stack.lock()


def replace_by_hand(stack: Stack, service: str, image: str) -> None:
    """`docker rm -f` the service's container and `docker run` IMAGE under its name, on the
    same network with the same command and environment (and none of the deploy's labels)."""
    old = stack.container(service)
    config = old.attrs["Config"]
    network = next(iter(old.attrs["NetworkSettings"]["Networks"]))
    old.remove(force=True)
    stack.client.containers.run(
        image,
        name=old.name,
        command=config["Cmd"],
        environment=config["Env"],
        network=network,
        detach=True,
    )


def test_status_on_a_container_replaced_by_hand_is_not_ok_and_start_puts_the_release_back(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    v1 = stack.release("v1")
    replace_by_hand(stack, "worker", "prosaas-demo/app:v2")

    status = stack.play("playbooks/status.yml", "v2")  # 109 pending: its columns may be missing

    assert status.rc == 0, status.describe()
    assert status.stats["changed"] == 0, status.describe()
    line = status_line(status)
    assert line.startswith("status: ATTENTION: what runs is not the current release"), line
    assert f"what runs is not the current release {v1['id']} (v1)" in line, line
    assert "worker runs prosaas-demo/app:v2, not prosaas-demo/app:v1" in line, line
    assert "prosaas-api runs" not in line, line
    assert "`ansible-playbook playbooks/start.yml`" in line, line

    started = stack.play("playbooks/start.yml", "v1")
    assert started.rc == 0, started.describe()
    stack.assert_app_healthy_on("v1")
    assert status_line(stack.play("playbooks/status.yml", "v2")) == "status: OK"


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
