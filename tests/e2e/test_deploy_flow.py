"""deploy.yml end to end, tests 1-9: real engine, real Postgres, demo v1 -> v2.

Each test deploys v1 on its own stack, then exercises one behaviour of the v2 deploy. Tests
1, 2 and 9 share one stack (module scope): v1 deployed, then v2 deployed while a client
writes through the API; test 1 checks that deploy, test 2 re-runs it, test 9 checks the
client's rows.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import docker
import psycopg
import pytest

from tests.conftest import ROOT, engine_events
from tests.e2e.conftest import (
    APP_SERVICES,
    INFRA_SERVICES,
    V2_COLUMNS,
    DeployRun,
    Failpoints,
    HeldRun,
    Hold,
    Stack,
    deploy_held_at,
    meet_at,
    met_a_holder,
    wait_until,
)
from tests.e2e.traffic import Background, CallWriter

MIGRATION_109_DONE = "✅ Migration 109 complete"


def column_names(entries: list[str]) -> set[str]:
    """'call_log.started_at timestamp without time zone' -> 'call_log.started_at'."""
    return {entry.split()[0] for entry in entries}


def assert_rolled_back(stack: Stack, run: DeployRun, phase: str, v1: dict) -> dict:
    """The v2 deploy failed in PHASE and v1 runs again, healthy; returns the failed record."""
    assert run.rc != 0, run.describe()
    assert f"failed in phase {phase}:" in run.failure, run.describe()
    assert f"rolled back to release {v1['id']} (healthy)" in run.failure, run.describe()
    assert "\n" not in run.failure.strip()
    stack.assert_app_healthy_on("v1")
    for service in APP_SERVICES:
        assert stack.container(service).labels["prosaas.release"] == v1["id"], service
    failed = [record for record in stack.history() if record["id"] != v1["id"]]
    assert len(failed) == 1, stack.history()
    assert failed[0]["status"] == "failed", failed[0]
    assert failed[0]["reason"], failed[0]
    assert phase in failed[0]["reason"], failed[0]
    # v1 is still the current release: its record is untouched and the newest succeeded one.
    assert stack.release("v1")["status"] == "succeeded"
    succeeded = [record for record in stack.history() if record["status"] == "succeeded"]
    assert succeeded[-1]["id"] == v1["id"]
    assert not stack.lock_path.exists(), stack.lock()
    report = stack.reports()[failed[0]["id"]]
    assert report["outcome"] == "failed", report
    assert report["rolled_back_to"] == v1["id"], report
    # The rescue wrote the report into the record in the same update as the failure (whose
    # line is the record's reason).
    kept = failed[0]["report"]
    assert (kept["outcome"], kept["failed_phase"]) == ("failed", phase), kept
    assert failed[0]["reason"] == report["reason"], (failed[0], report)
    assert kept["hosts"]["localhost"]["rollback"] == report["rollback"], kept
    return failed[0]


# --- a reader of call_log ----------------------------------------------------------


@dataclass
class QueryTimer(Background):
    """Runs SELECT count(*) FROM call_log every 20 ms on its own session; keeps the longest."""

    dsn: str
    longest: float = 0.0
    queries: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute("SELECT count(*) FROM call_log").fetchone()
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                    return
                self.longest = max(self.longest, time.monotonic() - started)
                self.queries += 1
                time.sleep(0.02)


def hold_call_log(stack: Stack) -> psycopg.Connection:
    """A session with an open transaction that has read call_log (holds AccessShareLock)."""
    holder = stack.connect()
    holder.execute("SELECT * FROM call_log LIMIT 1").fetchall()
    return holder


# --- 1, 2, 9: one stack, v1 then v2 under client traffic --------------------------------


@dataclass
class Upgrade:
    stack: Stack
    v1: DeployRun
    v2: DeployRun
    writer: CallWriter
    deploy_started: float
    deploy_ended: float


@pytest.fixture(scope="module")
def upgraded(module_stack: Stack) -> Upgrade:
    """v1 deployed, then v2 deployed while a client POSTs /calls before, during and after."""
    stack = module_stack
    v1 = stack.deploy("v1")
    assert v1.rc == 0, v1.describe()
    writer = CallWriter(stack.extravars["prosaas_api_port"])
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 5, 30, "the client's first acknowledged calls")
        started = time.monotonic()
        v2 = stack.deploy("v2")
        ended = time.monotonic()
        wait_until(
            lambda: any(at > ended for at, _ in writer.acked), 30, "a call acknowledged by v2"
        )
        time.sleep(1)
    finally:
        writer.finish()
    return Upgrade(stack, v1, v2, writer, started, ended)


def test_1_fresh_deploy_of_v1_then_v2_applies_109_and_records_both(upgraded: Upgrade) -> None:
    stack, v1, v2 = upgraded.stack, upgraded.v1, upgraded.v2
    assert v2.rc == 0, v2.describe()
    assert v2.stats["failures"] == 0
    assert v2.stats["changed"] > 0

    assert stack.v2_columns() == set(V2_COLUMNS)
    assert 109 in stack.applied_versions()
    stack.assert_app_healthy_on("v2")
    assert stack.image("postgres") == "prosaas-demo/postgres:15"
    for service in INFRA_SERVICES + APP_SERVICES:
        labels = stack.container(service).labels
        assert labels["prosaas.service"] == service, labels
        assert labels["prosaas.project"] == "prosaas", labels

    history = stack.history()
    assert [record["version"] for record in history] == ["v1", "v2"], history
    assert [record["status"] for record in history] == ["succeeded", "succeeded"], history
    assert not stack.lock_path.exists(), stack.lock()

    reports = stack.reports()
    assert set(reports) == {record["id"] for record in history}, reports.keys()
    for record in history:
        report = reports[record["id"]]
        assert report["outcome"] == "succeeded", report
        assert report["version"] == record["version"]
    report_v2 = reports[history[1]["id"]]
    assert report_v2["migrate"]["exit_code"] == 0, report_v2["migrate"]
    assert MIGRATION_109_DONE in report_v2["migrate"]["log"], report_v2["migrate"]["log"]
    assert {f"call_log.{column}" for column in V2_COLUMNS} <= column_names(
        report_v2["verify"]["present"]
    ), report_v2["verify"]
    assert report_v2["verify"]["missing"] == []
    assert report_v2["verify"]["mismatched"] == []
    assert report_v2["images_after"]["prosaas-api"] == "prosaas-demo/app:v2", report_v2
    assert report_v2["images_before"]["prosaas-api"] == "prosaas-demo/app:v1", report_v2
    kept = history[1]["report"]  # the record keeps the report, without the migrate log
    assert (kept["outcome"], kept["downtime_s"]) == ("succeeded", report_v2["downtime_s"]), kept
    assert kept["migrate"]["summary"]["applied"] == [109], kept
    assert "log" not in kept["migrate"], kept
    assert MIGRATION_109_DONE in v2.output  # the migrate log is shown in the play output
    assert v1.rc == 0


def test_2_rerun_of_v2_changes_nothing_and_runs_no_migration(
    upgraded: Upgrade, docker_engine: docker.DockerClient
) -> None:
    stack = upgraded.stack
    assert upgraded.v2.rc == 0, upgraded.v2.describe()
    ids = stack.container_ids()
    history = stack.history()
    reports = stack.reports()
    with engine_events(docker_engine, type="container", event="create") as creates:
        rerun = stack.deploy("v2")

    assert rerun.rc == 0, rerun.describe()
    assert rerun.stats["changed"] == 0, rerun.describe()
    assert stack.container_ids() == ids
    assert stack.history() == history
    new_reports = {key: value for key, value in stack.reports().items() if key not in reports}
    assert all(not report.get("migrate") for report in new_reports.values()), new_reports
    created = [event["Actor"]["Attributes"].get("name") for event in creates]
    assert f"{stack.prefix}migrate" not in created, created
    for service in APP_SERVICES:
        assert stack.container(service).id == ids[service]
    assert not stack.lock_path.exists(), stack.lock()


def test_9_every_call_acknowledged_during_the_deploy_is_in_the_database(
    upgraded: Upgrade,
) -> None:
    stack, writer = upgraded.stack, upgraded.writer
    assert upgraded.v2.rc == 0, upgraded.v2.describe()
    before = [sid for at, sid in writer.acked if at < upgraded.deploy_started]
    after = [sid for at, sid in writer.acked if at > upgraded.deploy_ended]
    assert before, "no call acknowledged before the deploy"
    assert after, "no call acknowledged after the deploy"
    acked = {sid for _, sid in writer.acked}
    with stack.connect(autocommit=True) as conn:
        stored = {
            row[0]
            for row in conn.execute(
                "SELECT call_sid FROM call_log WHERE call_sid = ANY(%s)", (list(acked),)
            )
        }
    assert acked - stored == set(), f"{len(acked - stored)} acknowledged calls lost"


def test_10_while_the_app_is_down_the_proxy_answers_503_with_retry_after(
    upgraded: Upgrade,
) -> None:
    """The stop flow's window: the proxy keeps the port and says when to come back."""
    answers = upgraded.writer.answers
    assert answers["503 retry-after 5"] > 0, answers  # the window was seen...
    assert set(answers) <= {"201", "503 retry-after 5"}, answers  # ...and nothing else


# --- 3, 4, 5: failures after the stop roll back to v1 ---------------------------------


def test_3_failing_migration_rolls_back_to_v1_with_schema_unchanged(
    v1_stack: Stack, broken_migrate_image: str
) -> None:
    stack = v1_stack
    v1 = stack.release("v1")
    run = stack.deploy("v2", prosaas_migrate_image=broken_migrate_image)

    failed = assert_rolled_back(stack, run, "migrate", v1)
    assert failed["version"] == "v2"
    assert stack.v2_columns() == set()  # the failed transaction left no trace
    assert 109 not in stack.applied_versions()
    report = stack.reports()[failed["id"]]
    assert report["migrate"]["exit_code"] not in (0, None), report["migrate"]
    assert "division by zero" in report["migrate"]["log"], report["migrate"]["log"]


def test_4_migration_declaring_a_column_it_does_not_create_fails_verify_and_rolls_back(
    v1_stack: Stack, ghost_migrate_image: str
) -> None:
    """The image's copy of 0109 declares call_log.ghost; the control node's checkout's copy
    does not: the deploy verifies what the image declares."""
    checkout = (ROOT / "migrations" / "versions" / "0109_call_log_timing.sql").read_text()
    assert "call_log.ghost" not in checkout
    stack = v1_stack
    v1 = stack.release("v1")
    run = stack.deploy("v2", prosaas_migrate_image=ghost_migrate_image)

    failed = assert_rolled_back(stack, run, "verify", v1)
    assert "call_log.ghost" in run.failure, run.describe()
    report = stack.reports()[failed["id"]]
    assert "call_log.ghost" in column_names(report["verify"]["missing"]), report["verify"]


def test_4b_check_shows_each_pending_migration_as_the_migrate_image_classifies_it(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    before = {service: stack.container(service).id for service in APP_SERVICES}
    history = stack.history()

    checked = stack.play("deploy.yml", "v2", "--check")

    assert checked.rc == 0, checked.describe()
    plan = checked.plan()
    assert "pending migrations: 109 (online)" in plan, plan
    assert {service: stack.container(service).id for service in APP_SERVICES} == before
    assert stack.history() == history
    assert 109 not in stack.applied_versions()


def test_5_v2_that_never_turns_healthy_rolls_back_to_v1(
    v1_stack: Stack, unhealthy_app_image: str
) -> None:
    stack = v1_stack
    v1 = stack.release("v1")
    version = unhealthy_app_image.split(":")[1]
    run = stack.deploy(
        version,
        prosaas_migrate_image="prosaas-demo/migrate:v2",
        services_wait_timeout=20,  # the unhealthy image is given 20 s, not the default 120
    )

    failed = assert_rolled_back(stack, run, "start", v1)
    assert failed["version"] == version
    # The schema stays migrated (additive): v1 runs on it.
    assert stack.v2_columns() == set(V2_COLUMNS)


# --- 6: a session holding a lock on call_log ------------------------------------------


def test_6a_lock_holder_released_during_the_deploy_lets_the_migration_complete(
    v1_stack: Stack, docker_engine: docker.DockerClient
) -> None:
    stack = v1_stack
    holder = hold_call_log(stack)
    timer = QueryTimer(stack.dsn)
    timer.start()

    def let_go_once_met() -> None:
        migrate = docker_engine.containers.get(f"{stack.prefix}migrate")
        wait_until(lambda: met_a_holder(migrate.logs().decode()), 60, "the migrator's lock wait")
        holder.commit()

    try:
        run = deploy_held_at(stack, [Hold(f"{stack.prefix}migrate-running", let_go_once_met)])
    finally:
        holder.close()
        timer.finish()

    assert run.rc == 0, run.describe()
    assert stack.v2_columns() == set(V2_COLUMNS)
    assert 109 in stack.applied_versions()
    stack.assert_app_healthy_on("v2")
    report = stack.reports()[stack.release("v2")["id"]]
    log = report["migrate"]["log"]
    assert met_a_holder(log), log
    assert MIGRATION_109_DONE in log, log
    assert timer.errors == [], timer.errors
    assert timer.queries > 100
    assert timer.longest < 1.5, f"a reader waited {timer.longest:.2f} s"


def test_6b_lock_holder_that_never_lets_go_fails_the_migration_and_rolls_back(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    v1 = stack.release("v1")
    holder = hold_call_log(stack)
    timer = QueryTimer(stack.dsn)
    timer.start()
    try:
        run = stack.deploy("v2", migrate_command=["up", "--lock-budget-s", "4"])
    finally:
        timer.finish()
        holder.rollback()
        holder.close()

    assert_rolled_back(stack, run, "migrate", v1)
    assert stack.v2_columns() == set()
    assert timer.errors == [], timer.errors
    assert timer.longest < 1.5, f"a reader waited {timer.longest:.2f} s"


# --- 7, 8: the deploy lock --------------------------------------------------------------


def test_7_of_two_deploys_that_reach_the_lock_together_one_runs_the_other_is_refused(
    stack: Stack,
) -> None:
    """Both deploys meet just before the lock (failpoint lock-taking) and are let go
    together; the one that takes it is held just after (lock-taken) until the other ends."""
    armed = [("lock-taking", ""), ("lock-taken", "")]
    runs = [
        HeldRun.start(stack.deploy_args("v1"), Failpoints.under(stack.tmp_path), armed)
        for _ in range(2)
    ]
    try:
        meet_at("lock-taking", runs)
        first = wait_until(
            lambda: next((run for run in runs if run.failpoints.held("lock-taken")), None),
            120,
            "one deploy to take the lock",
        )
        (refused,) = [run for run in runs if run is not first]
        second = refused.result()
        lock = stack.lock()
        first_running = first.thread.is_alive()
    finally:
        for run in runs:
            run.release("lock-taking")
            run.release("lock-taken")
            run.thread.join(timeout=600)
    first_run = first.result()

    assert first_running, "the first deploy ended before the second was refused"
    assert lock is not None, "the first deploy held no lock"
    assert second.rc != 0, second.describe()
    holder = f"{lock['user']}@{lock['host']} pid {lock['pid']}"
    assert holder in second.output, second.describe()
    assert first_run.rc == 0, first_run.describe()
    stack.assert_app_healthy_on("v1")
    history = stack.history()
    assert [record["status"] for record in history] == ["succeeded"], history
    assert not stack.lock_path.exists(), stack.lock()


def test_8_killed_deploy_leaves_a_stale_lock_that_the_runbook_command_breaks(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    killed: dict = {}

    def kill_once_stopped() -> None:
        # Held as it enters the infra phase: the app services stopped, the lock held.
        assert all(stack.container(s).status == "exited" for s in APP_SERVICES)
        killed.update(stack.lock() or {})
        os.kill(killed["pid"], signal.SIGKILL)

    run = deploy_held_at(stack, [Hold("phase-infra", kill_once_stopped, kills=True)])
    assert run.rc != 0, run.describe()
    lock = killed
    assert stack.lock() == lock, "the killed run's lock should be left behind"

    refused = stack.deploy("v2")
    assert refused.rc != 0, refused.describe()
    assert "stale deploy lock" in refused.output, refused.describe()
    assert f"pid {lock['pid']}" in refused.output, refused.describe()
    assert stack.lock() == lock, "the stale lock must not be broken without the flag"

    # RUNBOOK.md "Stale deploy lock": bring the current release back, breaking the lock.
    recovered = stack.play("playbooks/rollback.yml", "v2", prosaas_break_stale_lock=True)
    assert recovered.rc == 0, recovered.describe()
    stack.assert_app_healthy_on("v1")
    killed = [record for record in stack.history() if record["id"] == lock["release"]]
    assert [record["status"] for record in killed] == ["failed"], stack.history()
    assert not stack.lock_path.exists(), stack.lock()

    redeployed = stack.deploy("v2")
    assert redeployed.rc == 0, redeployed.describe()
    stack.assert_app_healthy_on("v2")
    assert stack.v2_columns() == set(V2_COLUMNS)
    assert stack.history()[-1]["status"] == "succeeded", stack.history()
    assert stack.history()[-1]["version"] == "v2"
    assert not stack.lock_path.exists(), stack.lock()
