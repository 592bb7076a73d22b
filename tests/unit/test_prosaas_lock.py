"""The deploy lock (module_utils/prosaas_lock.py): staleness, lease renewal, the stale
lock's message and the pid check."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.prosaas_lock import (
    lock_record,
    lock_staleness,
    parse_lock,
    pid_running,
    renew_lock,
    stale_message,
)
from ansible.module_utils.prosaas_store import StateError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HERE = "deployhost"


# --- staleness ------------------------------------------------------------------------------


def lock_from(host: str, age: timedelta, pid: int = 4242, lease: int = 120) -> dict[str, Any]:
    """A lock HOST took AGE ago, leased for LEASE seconds and never renewed."""
    return lock_record({"user": "ops", "host": host, "pid": pid, "release": "r9"}, lease, NOW - age)


def test_same_host_dead_pid_is_stale_whatever_its_lease() -> None:
    stale, why = lock_staleness(
        lock_from(HERE, timedelta(seconds=5)),
        local_host=HERE,
        now=NOW,
        is_running=lambda pid: False,
    )
    assert stale
    assert "no longer runs" in why


def test_same_host_live_pid_is_held_whatever_its_lease() -> None:
    stale, why = lock_staleness(
        lock_from(HERE, timedelta(days=3)),
        local_host=HERE,
        now=NOW,
        is_running=lambda pid: pid == 4242,
    )
    assert not stale
    assert "still runs" in why


def never_called(pid: Any) -> bool:
    raise AssertionError("the pid of another host's lock cannot be checked here")


def test_other_host_lock_whose_lease_ran_out_is_stale() -> None:
    stale, why = lock_staleness(
        lock_from("bastion1", timedelta(seconds=150), lease=120),
        local_host=HERE,
        now=NOW,
        is_running=never_called,
    )
    assert stale
    assert why == "lease ran out 30 s ago, at 2026-11-24T11:59:30Z"


def test_other_host_lock_within_its_lease_is_held() -> None:
    stale, why = lock_staleness(
        lock_from("bastion1", timedelta(seconds=100), lease=120),
        local_host=HERE,
        now=NOW,
        is_running=never_called,
    )
    assert not stale
    assert why == "lease runs until 2026-11-24T12:00:20Z (20 s left)"


def test_a_renewed_lease_keeps_an_old_lock_held() -> None:
    owner = {"user": "ops", "host": "bastion1", "pid": 4242}
    lock = lock_from("bastion1", timedelta(hours=2))
    renewed = renew_lock(lock, owner, 60, NOW - timedelta(seconds=10))
    assert renewed["started_at"] == lock["started_at"]
    assert renewed["expires_at"] == "2026-11-24T12:00:50Z"
    stale, _ = lock_staleness(renewed, local_host=HERE, now=NOW, is_running=never_called)
    assert not stale


def test_renewing_a_lock_held_by_another_deploy_fails_naming_it() -> None:
    other = lock_from("bastion2", timedelta(seconds=10), pid=77)
    with pytest.raises(StateError, match=r"now held by ops@bastion2 pid 77 .*another deploy"):
        renew_lock(other, {"user": "ops", "host": "bastion1", "pid": 4242}, 60, NOW)


def test_renewing_a_lock_that_is_gone_fails() -> None:
    with pytest.raises(StateError, match="lock of ops@bastion1 pid 4242 is gone"):
        renew_lock(None, {"user": "ops", "host": "bastion1", "pid": 4242}, 60, NOW)


def test_a_lock_without_an_expiry_is_stale() -> None:
    lock = {"user": "ops", "host": "bastion1", "pid": 1, "started_at": "2026-11-24T11:59:00Z"}
    stale, why = lock_staleness(lock, local_host=HERE, now=NOW, is_running=never_called)
    assert stale
    assert why == "lease expiry unreadable"


def test_unreadable_lock_is_stale() -> None:
    lock = parse_lock("")
    stale, why = lock_staleness(lock, local_host=HERE, now=NOW)
    assert stale
    assert "empty file" in why


def test_stale_message_names_holder_and_runbook() -> None:
    message = stale_message(lock_from(HERE, timedelta(hours=1)), "why", HERE)
    assert message == (
        "stale deploy lock left by ops@deployhost pid 4242 (not running) since "
        "2026-11-24T11:00:00Z, release r9: make sure no deploy runs, then re-run with "
        '-e prosaas_break_stale_lock=true (RUNBOOK.md: "Stale deploy lock")'
    )


def test_pid_running_guards_against_pid_reuse() -> None:
    # This test process runs, but its command line names python and pytest, not ansible.
    assert not pid_running(os.getpid())
    script = "import time; print('up', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script, "ansible-x"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # the child has exec'd: its command line is its own
        assert pid_running(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not pid_running(child.pid), "a reaped child no longer runs"
    assert not pid_running(None)
    assert not pid_running("x")


def test_pid_running_without_proc_checks_existence_only(tmp_path: Path) -> None:
    assert pid_running(os.getpid(), proc_root=str(tmp_path / "no-proc"))
