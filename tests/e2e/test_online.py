"""The online strategy end to end: v1 -> v2 (109 applied) while the old release serves,
each new container started beside the old one and switched to behind the proxy.

The deploy under load and the refusal start from the shared v1 stack. The fault rows
(ONLINE_FAULTS, checked as tests/e2e/faults.py says) share a stack of their own, with a
client writing through the API during each one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from tests.conftest import engine_events
from tests.e2e.conftest import (
    APP_SERVICES,
    V2_COLUMNS,
    DeployRun,
    Hold,
    Stack,
    copy_migrations,
    deploy_held_at,
    wait_until,
)
from tests.e2e.faults import (
    Fault,
    FaultStack,
    at_v1,
    check_fault,
    fault_id,
    killed_at,
    seeded_v1,
    while_holding_call_log,
)
from tests.e2e.reliability import RECORD
from tests.e2e.traffic import CallWriter, HeldCall

ONLINE = {"prosaas_deploy_strategy": "online"}
JOBS = "prosaas:jobs"


@contextmanager
def client_traffic(stack: Stack) -> Iterator[CallWriter]:
    """A client writing through the api from before the deploy until after it."""
    writer = CallWriter(stack.extravars["prosaas_api_port"])
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 5, 30, "the client's first acknowledged calls")
        yield writer
        ended = time.monotonic()
        wait_until(lambda: any(at > ended for at, _ in writer.acked), 30, "a call after it")
    finally:
        writer.finish()


def side_containers(stack: Stack) -> list[str]:
    """Containers a switch starts or keeps beside the services' own: none once it is over."""
    return [
        container.name
        for container in stack.client.containers.list(all=True, filters={"name": stack.prefix})
        if container.name.endswith(("-next", "-previous"))
    ]


def app_ids(stack: Stack) -> dict[str, str]:
    return {service: stack.container(service).id for service in APP_SERVICES}


def redis_cli(stack: Stack, *args: str) -> str:
    code, output = stack.container("redis").exec_run(["redis-cli", *args])
    assert code == 0, output
    return output.decode().strip()


def push_job(stack: Stack, job: dict) -> None:
    redis_cli(stack, "LPUSH", JOBS, json.dumps(job))


def requests_in_flight(stack: Stack, backend: str) -> int:
    """Requests the proxy's BACKEND is serving now, as HAProxy's statistics say."""
    code, output = stack.container("proxy").exec_run(["proxy-api", "show stat -1 4 -1"])
    assert code == 0, output
    lines = output.decode().splitlines()
    header = lines[0].removeprefix("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return sum(int(row["scur"] or 0) for row in rows if row["pxname"] == backend)


def deaths_of(stack: Stack, service: str, events: list[dict]) -> list[float]:
    """When the container named as the stack's SERVICE stopped, from the engine's die
    EVENTS (the old one is stopped before it takes the -previous name)."""
    name = stack.prefix + service
    return [e["timeNano"] / 1e9 for e in events if e["Actor"]["Attributes"].get("name") == name]


def test_online_deploy_under_load_fails_no_request_and_lets_long_work_finish(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    with stack.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO call_log (call_sid, from_number) VALUES ('job-call', '+15550100')"
        )
    held = HeldCall(stack.extravars["prosaas_calls_port"], seconds=8)
    pushed: list[float] = []

    def start_long_work() -> None:
        # A call in progress on calls, and a job the old worker is busy with, before the new
        # containers start beside the old ones.
        held.start()
        push_job(stack, {"call_sid": "job-call", "work_seconds": 6})
        pushed.append(time.time())
        wait_until(lambda: redis_cli(stack, "LLEN", JOBS) == "0", 30, "the old worker's job")
        wait_until(lambda: requests_in_flight(stack, "prosaas-calls"), 30, "the call in progress")

    dies = {"type": "container", "event": "die"}
    with client_traffic(stack) as writer, engine_events(stack.client, **dies) as events:
        run = deploy_held_at(stack, [Hold("phase-start", start_long_work)], **ONLINE)
    held.finish()

    assert run.rc == 0, run.describe()
    assert set(writer.answers) == {"201"}, writer.answers  # not one failed request
    assert held.status == 200, (held.status, held.error)
    assert held.body["version"] == "1", held.body  # the old calls container finished it
    with stack.connect(autocommit=True) as conn:
        answered = conn.execute(
            "SELECT status, answered_at FROM call_log WHERE call_sid = 'job-call'"
        ).fetchone()
    assert answered[0] == "answered", answered
    # The job ended before the old worker did: the stop waited for it.
    deaths = [at for at in deaths_of(stack, "worker", events) if at >= pushed[0]]
    assert deaths, "the old worker never stopped"
    assert answered[1].astimezone(UTC) < datetime.fromtimestamp(deaths[0], UTC), (answered, deaths)

    stack.assert_app_healthy_on("v2")
    assert stack.v2_columns() == set(V2_COLUMNS)
    assert side_containers(stack) == []
    record = stack.history()[-1]
    assert (record["version"], record["status"]) == ("v2", "succeeded"), record
    report = stack.reports()[record["id"]]
    assert report["strategy"] == "online", report["strategy"]
    assert report["downtime_s"] == 0.0
    assert report["migrate"]["summary"]["online"] is True, report["migrate"]["summary"]
    assert "strategy: online" in run.plan(), run.plan()


@pytest.fixture(scope="session")
def offline_migrate_image(build_image, base_image: str, tmp_path_factory) -> str:
    """migrate:v2 with a 0110 whose header declares it offline (the lint accepts it)."""
    folder = copy_migrations(tmp_path_factory.mktemp("offline") / "migrations")
    (folder / "versions" / "0110_call_log_note.sql").write_text(
        "-- class: offline\n-- adds-column: call_log.note text\n"
        "ALTER TABLE call_log ADD COLUMN note text;\n"
    )
    return build_image(folder, "prosaas-demo/migrate:v2-offline", {"BASE_IMAGE": base_image})


def test_online_refuses_an_offline_migration_unless_the_inventory_allows_the_fallback(
    v1_stack: Stack, offline_migrate_image: str
) -> None:
    stack = v1_stack
    before = app_ids(stack)
    history = stack.history()

    refused = stack.deploy("v2", prosaas_migrate_image=offline_migrate_image, **ONLINE)

    assert refused.rc != 0, refused.describe()
    assert "0110_call_log_note.sql (line 1: the header declares" in refused.failure, refused.failure
    assert "prosaas_online_fallback" in refused.failure
    assert app_ids(stack) == before  # nothing touched
    assert 109 not in stack.applied_versions()

    fallback = stack.deploy(
        "v2", prosaas_migrate_image=offline_migrate_image, prosaas_online_fallback=True, **ONLINE
    )

    assert fallback.rc == 0, fallback.describe()
    strategy = [line for line in fallback.plan() if line.startswith("strategy: ")]
    assert strategy == [
        "strategy: stop (online asked, but 0110_call_log_note.sql cannot run"
        " under the running release)"
    ], strategy
    record = stack.history()[-1]
    assert record["status"] == "succeeded" and len(stack.history()) == len(history) + 2
    assert stack.reports()[record["id"]]["strategy"].startswith("stop (online asked"), record
    stack.assert_app_healthy_on("v2")


# --- fault rows ----------------------------------------------------------------------


def never_healthy(s: FaultStack) -> DeployRun:
    return s.stack.deploy(
        s.unhealthy_version,
        prosaas_migrate_image="prosaas-demo/migrate:v2",
        services_wait_timeout=15,
        **ONLINE,
    )


def migrate_times_out(s: FaultStack) -> DeployRun:
    return while_holding_call_log(s, migrate_timeout=4, **ONLINE)


def verify_fails(s: FaultStack) -> DeployRun:
    return s.stack.deploy("v2", prosaas_migrate_image=s.ghost_image, **ONLINE)


def proxy_crashes_in_the_switch(s: FaultStack) -> DeployRun:
    """The proxy's process killed from the host (as the kernel's OOM killer would) while it
    drains the first old container: its restart policy brings it back, having forgotten the
    switch. The deploy waits at the failpoint switch-draining until the proxy has restarted."""
    restarts = s.container("proxy").attrs["RestartCount"]

    def proxy_back() -> bool:
        proxy = s.container("proxy")
        return proxy.attrs["RestartCount"] > restarts and proxy.status == "running"

    def crash() -> None:
        os.kill(s.container("proxy").attrs["State"]["Pid"], signal.SIGKILL)
        wait_until(proxy_back, 60, "the proxy's restart")

    return deploy_held_at(s.stack, [Hold("switch-draining", crash)], **ONLINE)


def control_node_killed_in_the_switch(s: FaultStack) -> DeployRun:
    """SIGKILL while the switch drains the first old container: the module it orphaned ends
    the switch, and the containers it kept for a rollback are left."""
    return killed_at(s, "switch-draining", signal.SIGKILL, **ONLINE)


def rollback_online_breaking_the_stale_lock(s: FaultStack, _: DeployRun) -> None:
    """RUNBOOK.md "A switch was interrupted", as written."""
    assert side_containers(s.stack), "the kill left no container of the switch behind"
    run = s.stack.play("playbooks/rollback.yml", "v2", prosaas_break_stale_lock=True, **ONLINE)
    assert run.rc == 0, run.describe()
    assert side_containers(s.stack) == []


ONLINE_FAULTS = [
    Fault("online: new image never healthy", "start", ("start", "not healthy", "serve on"),
          never_healthy, touched=False, traffic=True, no_failed_requests=True),
    Fault("online: migrate exceeds its timeout (lock held)", "migrate",
          ("migrate", "timed out after 4 s"), migrate_times_out, touched=False, traffic=True,
          no_failed_requests=True),
    Fault("online: a declared column missing", "verify", ("verify", "call_log.ghost"),
          verify_fails, touched=False, traffic=True, no_failed_requests=True),
    Fault("online: proxy crashed during the switch", "start",
          ("start", "restarted during the switch"), proxy_crashes_in_the_switch,
          touched=False, traffic=True),
    Fault("online: SIGKILL to ansible-playbook during the switch", "start",
          ("stale deploy lock", "not running"), control_node_killed_in_the_switch,
          runbook="A switch was interrupted: `-next` or `-previous` containers left",
          recover=rollback_online_breaking_the_stale_lock, traffic=True),
]  # fmt: skip
RECORD.fault_suites["test_online"] = len(ONLINE_FAULTS)


@pytest.fixture(scope="module")
def online_faults(
    module_stack: Stack, unhealthy_app_image: str, ghost_migrate_image: str
) -> FaultStack:
    return FaultStack(
        seeded_v1(module_stack),
        module_stack.client,
        unhealthy_version=unhealthy_app_image.split(":")[1],
        ghost_image=ghost_migrate_image,
    )


@pytest.fixture
def from_v1(online_faults: FaultStack) -> Iterator[FaultStack]:
    yield from at_v1(online_faults)


@pytest.mark.parametrize("fault", ONLINE_FAULTS, ids=fault_id)
def test_online_fault(from_v1: FaultStack, fault: Fault) -> None:
    check_fault(from_v1, fault)
