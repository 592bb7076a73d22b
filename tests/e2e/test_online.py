"""The online strategy end to end: v1 -> v2 (109 applied) while the old release serves,
each new container started beside the old one and switched to behind the proxy.

Every test starts from the shared v1 stack and runs a client that POSTs /calls every 50 ms
through the whole deploy: with the online strategy it must never see anything but 201.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import (
    APP_SERVICES,
    V2_COLUMNS,
    Hook,
    Stack,
    copy_migrations,
    deploy_with_hooks,
    wait_until,
)
from tests.e2e.traffic import CallWriter, HeldCall

ONLINE = {"prosaas_deploy_strategy": "online"}
START_TASK = (
    "Start the app services on the new images, a batch of hosts at a time, and wait until"
    " each is healthy"
)


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


def push_job(stack: Stack, job: dict) -> None:
    redis = stack.container("redis")
    code, output = redis.exec_run(["redis-cli", "LPUSH", "prosaas:jobs", json.dumps(job)])
    assert code == 0, output


def worker_deaths(stack: Stack, since: float) -> list[float]:
    """When each container named as the worker's stopped since SINCE (epoch seconds)."""
    events = stack.client.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "die", "container": f"{stack.prefix}worker"},
    )
    return [event["timeNano"] / 1e9 for event in events]


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
        # A call in progress on calls, and a job the old worker is busy with, as the new
        # containers start beside the old ones.
        held.start()
        push_job(stack, {"call_sid": "job-call", "work_seconds": 6})
        pushed.append(time.time())

    with client_traffic(stack) as writer:
        run = deploy_with_hooks(
            stack, [Hook("playbook_on_task_start", START_TASK, start_long_work)], **ONLINE
        )
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
    deaths = worker_deaths(stack, pushed[0] - 1)
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


def test_online_v2_never_healthy_keeps_the_old_containers_serving(
    v1_stack: Stack, unhealthy_app_image: str
) -> None:
    stack = v1_stack
    before = app_ids(stack)
    version = unhealthy_app_image.split(":")[1]
    with client_traffic(stack) as writer:
        run = stack.deploy(
            version,
            prosaas_migrate_image="prosaas-demo/migrate:v2",
            service_up_wait_timeout=15,
            **ONLINE,
        )

    assert run.rc != 0, run.describe()
    assert "phase start" in run.failure and "not healthy" in run.failure, run.failure
    assert set(writer.answers) == {"201"}, writer.answers
    assert app_ids(stack) == before  # never stopped, never replaced
    assert side_containers(stack) == []
    stack.assert_app_healthy_on("v1")
    assert stack.history()[-1]["status"] == "failed"


def test_online_verify_failure_never_switches(v1_stack: Stack, ghost_migrate_image: str) -> None:
    stack = v1_stack
    before = app_ids(stack)
    with client_traffic(stack) as writer:
        run = stack.deploy("v2", prosaas_migrate_image=ghost_migrate_image, **ONLINE)

    assert run.rc != 0, run.describe()
    assert "phase verify" in run.failure and "call_log.ghost" in run.failure, run.failure
    assert set(writer.answers) == {"201"}, writer.answers
    assert app_ids(stack) == before
    stack.assert_app_healthy_on("v1")


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
