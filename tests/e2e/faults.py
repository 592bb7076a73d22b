"""Fault rows: a v1 -> v2 deploy broken on purpose, and what every row must show.

The fault suites (test_faults.py, and test_online.py for the online strategy) define their
rows as Fault and check each with check_fault on a FaultStack: v1 deployed once, call_log
seeded with SEED_ROWS rows, brought back to v1 with 109 not applied before each row. For
every row:
- the play exits non-zero with one line naming the cause;
- v1 ends healthy, by the flow itself or by the RUNBOOK.md entry the row names (run as the
  operator would run it);
- call_log keeps every row it had, unchanged (count and content checksum);
- the deploy lock is released;
- the release history records the failure, when it came after the lock was taken;
- with traffic, a client wrote through the API all along: its failed requests are counted,
  and must be 0 where the row says so.
What each row saw goes into docs/reliability.md (tests/e2e/reliability.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import psycopg

from tests.e2e.conftest import (
    APP_SERVICES,
    RESET_109_SQL,
    DeployRun,
    Failpoints,
    Hold,
    Stack,
    deploy_held_at,
    deploy_pid,
    signal_until_gone,
    wait_until,
)
from tests.e2e.reliability import RECORD, Observed
from tests.e2e.traffic import CallWriter
from tests.engines import Engine
from tests.registry import Registry

SEED_ROWS = 2_000
MIGRATE_TASK = "Run the migrate image to completion"
# Every row of call_log but those a row's client wrote (tests.e2e.traffic.CallWriter).
CHECKSUM_SQL = """
    SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, call_sid, direction,
        from_number, to_number, status, created_at, answered_at, updated_at, duration),
        ',' ORDER BY id)), '')
    FROM call_log WHERE call_sid NOT LIKE 'e2e-%'
"""


@dataclass
class FaultStack:
    stack: Stack
    client: docker.DockerClient
    engine: Engine | None = None  # set when the stack has an engine of its own to restart
    unhealthy_version: str = ""  # the app tag that never turns healthy
    ghost_image: str = ""  # a migrate image whose 0109 declares a column it never adds
    registry: Registry | None = None  # set for the rows that pull from the test registry

    def checksum(self) -> tuple[int, str]:
        with self.stack.connect(autocommit=True) as conn:
            count, digest = conn.execute(CHECKSUM_SQL).fetchone()
        return int(count), str(digest)

    def missing_calls(self, call_sids: list[str]) -> int:
        """How many of CALL_SIDS call_log does not have."""
        with self.stack.connect(autocommit=True) as conn:
            (found,) = conn.execute(
                "SELECT count(*) FROM call_log WHERE call_sid = ANY(%s)", (call_sids,)
            ).fetchone()
        return len(call_sids) - int(found)

    def reset_to_v1(self) -> None:
        """v1 running healthy, 109 not applied, no lock: the starting state of every row."""
        with contextlib.suppress(FileNotFoundError):
            self.stack.lock_path.unlink()
        history = self.stack.state_dir / "releases.json"
        try:
            json.loads(history.read_text())
        except ValueError:  # a row that corrupted it failed before restoring it
            history.write_text((self.stack.state_dir / "releases.json.bak").read_text())
        with self.stack.connect(autocommit=True) as conn:
            conn.execute(RESET_109_SQL)
        if not self.runs_v1():
            self.stack.deploy_ok("v1")
        self.stack.assert_app_healthy_on("v1")

    def runs_v1(self) -> bool:
        return self.stack.runs_healthy("v1")

    def container(self, service: str) -> Any:
        return self.stack.container(service)


def seed_call_log(conn: psycopg.Connection) -> None:
    """SEED_ROWS rows of finished calls in call_log, the rows every fault row must keep."""
    conn.execute(
        "INSERT INTO call_log (call_sid, from_number, status, duration)"
        " SELECT 'seed-' || n, '+1555' || n, 'completed', n %% 600"
        " FROM generate_series(1, %s) AS n",
        (SEED_ROWS,),
    )


def seeded_v1(stack: Stack) -> Stack:
    """STACK with v1 deployed and SEED_ROWS rows in call_log."""
    stack.deploy_ok("v1")
    with stack.connect(autocommit=True) as conn:
        seed_call_log(conn)
    return stack


RECORD.seed_rows = SEED_ROWS


@dataclass(frozen=True)
class Fault:
    name: str
    phase: str
    cause: tuple[str, ...]  # words the failure line must contain
    inject: Callable[[FaultStack], DeployRun]
    runbook: str = ""  # RUNBOOK.md entry that recovers, when the flow cannot by itself
    # The runbook entry's commands, or (no runbook) putting v1 back after a row whose
    # failure left another release running.
    # Returns False when the flow had already recovered and nothing was run.
    recover: Callable[[FaultStack, DeployRun], bool | None] | None = None
    recorded: bool = True  # the failure came after the lock: it is in the history
    touched: bool = True  # False: the app containers must be the same ones after the failure
    # A client POSTs /calls through the deploy (the online strategy's rows); with
    # no_failed_requests, every one of its requests must succeed.
    traffic: bool = False
    no_failed_requests: bool = False


def at_v1(s: FaultStack) -> Iterator[FaultStack]:
    """A row's fixture: S back at v1 for the row; its lock gone after it, so that a failed
    row does not fail the next one."""
    s.reset_to_v1()
    yield s
    with contextlib.suppress(FileNotFoundError):
        s.stack.lock_path.unlink()


def fault_id(fault: Fault) -> str:
    return f"{fault.phase}: {fault.name}"


def migrate_running(s: FaultStack) -> str:
    """The failpoint where the migrate container runs and its module has not begun to wait."""
    return f"{s.stack.prefix}migrate-running"


def while_holding_call_log(
    s: FaultStack, act: Callable[[], None] | None = None, **extra: Any
) -> DeployRun:
    """Deploy v2 while a session holds a lock on call_log (the migrator waits); with ACT,
    the deploy is held where the migrate container runs until ACT is done."""
    holder = s.stack.connect()
    holder.execute("SELECT * FROM call_log LIMIT 1").fetchall()
    try:
        if act is None:
            return s.stack.deploy("v2", **extra)
        return deploy_held_at(s.stack, [Hold(migrate_running(s), act)], **extra)
    finally:
        holder.rollback()
        holder.close()


def killed_at(s: FaultStack, failpoint: str, signum: int, **extra: Any) -> DeployRun:
    """Send SIGNUM to ansible-playbook's process group (as Ctrl-C or a dying session does)
    while the flow is held at FAILPOINT. A killed play says nothing, so what names the cause
    is what the operator meets next: the refusal of a new deploy. The process held at
    FAILPOINT is not in that group: orphaned, it ends what it was doing, as it would have
    without the hold, before the recovery begins."""

    def kill() -> None:
        group = os.getpgid(deploy_pid(s.stack))
        assert group != os.getpgrp(), "ansible-playbook shares the tests' process group"
        signal_until_gone(group, signum)

    failpoints = Failpoints.under(s.stack.tmp_path)
    killed = deploy_held_at(s.stack, [Hold(failpoint, kill)], failpoints=failpoints, **extra)
    assert killed.rc != 0, killed.describe()
    refused = s.stack.deploy("v2", **extra)  # refused at the lock: it touches nothing
    wait_until(
        functools.partial(failpoints.ended, failpoint), 600, f"the process orphaned at {failpoint}"
    )
    return refused


def check_fault(s: FaultStack, fault: Fault) -> None:
    """Inject FAULT into a v2 deploy on S, recover, check what every row promises, record."""
    rows_before = s.checksum()
    ids_before = {service: s.container(service).id for service in APP_SERVICES}
    history_before = len(s.stack.history())

    writer = CallWriter(s.stack.extravars["prosaas_api_port"]) if fault.traffic else None
    if writer is not None:
        writer.start()
        wait_until(lambda: len(writer.acked) >= 3, 30, "the client's first acknowledged calls")
    try:
        run = fault.inject(s)
    finally:
        if writer is not None:
            writer.finish()

    assert run.rc != 0, run.describe()
    line = run.failure or last_error_line(run.output)
    assert line and "\n" not in line.strip(), run.describe()
    assert_plain_failure_line(line)
    for word in fault.cause:
        assert word in line, f"{word!r} not in the failure line {line!r}"
    if not fault.touched:
        assert {service: s.container(service).id for service in APP_SERVICES} == ids_before
    if writer is not None and fault.no_failed_requests:
        assert writer.failed == 0, writer.answers
    if writer is not None:  # every call the API acknowledged was kept
        assert s.missing_calls([sid for _, sid in writer.acked]) == 0
    needed = fault.recover(s, run) if fault.recover is not None else False
    by_runbook = bool(fault.runbook) and needed is not False
    s.stack.assert_app_healthy_on("v1")
    assert not s.stack.lock_path.exists(), s.stack.lock()
    rows_after = s.checksum()
    assert rows_after == rows_before, "call_log changed"
    failed = [r for r in s.stack.history()[history_before:] if r["status"] == "failed"]
    record = failed[0] if failed else None
    if fault.recorded:
        assert len(failed) == 1 and failed[0]["version"].startswith("v2"), s.stack.history()
    else:
        assert failed == [], failed
    RECORD.faults[fault_id(fault)] = Observed(
        fault=fault.name,
        phase=fault.phase,
        failure=line.strip(),
        recovered_by=f"runbook: {fault.runbook}" if by_runbook else "flow",
        history=f"failed: {record['reason']}" if record else "not recorded",
        rows_lost=rows_before[0] - rows_after[0],
        failed_requests=None if writer is None else writer.failed,
    )


# What no failure line may show: Ansible's internals (a filter or a template that raised) or
# an engine's HTTP error as the Docker SDK words it. Each says the cause was not put in the
# project's own words, which name the setting or the step and what to do.
DENIED_IN_FAILURE_LINES = (
    "Finalization",
    "Error while resolving",
    "http+docker",
    "Client Error",
    "Traceback",
)


def assert_plain_failure_line(line: str) -> None:
    """Every fault and bad-input row's failure line, as it is checked: none of the words of
    DENIED_IN_FAILURE_LINES in it."""
    shown = [word for word in DENIED_IN_FAILURE_LINES if word in line]
    assert not shown, f"the failure line shows {shown}: {line!r}"


def last_error_line(output: str) -> str:
    """The play's last error line, for runs that failed outside any task (interrupted, lock)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "[ERROR]", "msg:", "fatal:"))]
    return errors[-1] if errors else ""
