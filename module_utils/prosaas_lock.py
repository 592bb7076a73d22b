"""The deploy lock on a deploy host: pure logic, no Ansible imports.

The module deploy_state drives these functions; unit tests import them directly.

deploy.lock, in the state directory (prosaas_store), holds the lock record {user, host, pid,
release, started_at, renewed_at, expires_at}, created atomically; the running deploy renews
its lease.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ansible.module_utils.prosaas_store import StateError, iso, one_line, os_message, utc_now

LOCK_FILE = "deploy.lock"
DEFAULT_LEASE = 120
PID_GUARD = "ansible"
RUNBOOK_STALE = 'RUNBOOK.md: "Stale deploy lock"'
BREAK_HINT = "-e prosaas_break_stale_lock=true"


# --- Time -----------------------------------------------------------------------------


def parse_iso(text: Any) -> datetime | None:
    """The moment an ISO timestamp names (UTC when it carries no zone); None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def describe_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- Lock record and staleness ----------------------------------------------------------


def lock_record(owner: dict[str, Any], lease: int, now: datetime | None = None) -> dict[str, Any]:
    """What deploy.lock holds for OWNER (user, host, pid, release), leased for LEASE seconds."""
    moment = now or utc_now()
    return {
        "user": owner.get("user"),
        "host": owner.get("host"),
        "pid": owner.get("pid"),
        "release": owner.get("release"),
        "started_at": iso(moment),
        **lease_times(lease, moment),
    }


def lease_times(lease: int, now: datetime) -> dict[str, str]:
    """When a lease of LEASE seconds taken or renewed at NOW was renewed and runs out."""
    if lease < 1:
        raise StateError(f"the lock lease must be at least 1 second, got {lease}")
    return {"renewed_at": iso(now), "expires_at": iso(now + timedelta(seconds=lease))}


def renew_lock(
    lock: dict[str, Any] | None, owner: dict[str, Any], lease: int, now: datetime | None = None
) -> dict[str, Any]:
    """LOCK with its lease renewed for LEASE seconds from NOW; StateError unless OWNER holds it.

    A deploy whose lock is gone or held by another must stop: its lease ran out and someone
    broke the lock, so another deploy may be running.
    """
    if lock is None or lock.get("unreadable"):
        raise StateError(
            f"the deploy lock of {_holder(owner)} is gone (broken after its lease ran out?): "
            "stop, another deploy may be running"
        )
    if not same_owner(lock, owner):
        raise StateError(
            f"the deploy lock is now held by {_holder(lock)} since "
            f"{lock.get('started_at') or '?'}, not by this deploy ({_holder(owner)}): "
            "stop, another deploy is running"
        )
    return {**lock, **lease_times(lease, now or utc_now())}


def same_owner(lock: dict[str, Any] | None, owner: dict[str, Any]) -> bool:
    """Whether the lock was taken by this very run (same control host and pid)."""
    if not lock:
        return False
    return lock.get("host") == owner.get("host") and str(lock.get("pid")) == str(owner.get("pid"))


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return False
    return True


def pid_running(pid: Any, proc_root: str = "/proc", guard: str = PID_GUARD) -> bool:
    """Whether PID is a live process that looks like a deploy (its command line names GUARD).

    The command line check guards against a pid reused by an unrelated process after the
    deploy was killed. Where there is no /proc, only the existence of the pid is checked.
    """
    try:
        number = int(pid)
    except (TypeError, ValueError):
        return False
    if number <= 0 or not pid_exists(number):
        return False
    if not Path(proc_root).is_dir():
        return True
    try:
        cmdline = (Path(proc_root) / str(number) / "cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # exists but unreadable: assume it is the deploy
    return guard in cmdline.replace(b"\0", b" ").decode("utf-8", "replace")


def lock_staleness(
    lock: dict[str, Any],
    *,
    local_host: str,
    now: datetime | None = None,
    is_running: Callable[[Any], bool] = pid_running,
) -> tuple[bool, str]:
    """(stale, why) for an existing lock, seen from LOCAL_HOST.

    A lock taken on this machine is stale as soon as its pid no longer runs a deploy. From
    anywhere else the lease decides: the running deploy renews it at each phase, so a lock
    whose lease ran out belongs to a deploy that was killed or lost its control node. An
    unreadable lock record is stale.
    """
    if lock.get("unreadable"):
        return True, f"lock file unreadable ({lock['unreadable']})"
    host = lock.get("host")
    if host == local_host:
        if is_running(lock.get("pid")):
            return False, f"pid {lock.get('pid')} still runs a deploy on {local_host}"
        return True, f"pid {lock.get('pid')} no longer runs a deploy on {local_host}"
    expires = parse_iso(lock.get("expires_at"))
    if expires is None:
        return True, "lease expiry unreadable"
    left = (expires - (now or utc_now())).total_seconds()
    if left < 0:
        return True, f"lease ran out {describe_age(-left)} ago, at {iso(expires)}"
    return False, f"lease runs until {iso(expires)} ({describe_age(left)} left)"


def _holder(lock: dict[str, Any]) -> str:
    return f"{lock.get('user') or '?'}@{lock.get('host') or '?'} pid {lock.get('pid') or '?'}"


def held_message(lock: dict[str, Any]) -> str:
    return (
        f"deploy lock held by {_holder(lock)} since {lock.get('started_at') or '?'} "
        f"(release {lock.get('release') or '?'}, lease until {lock.get('expires_at') or '?'}): "
        "another deploy is running; wait for it to finish"
    )


def stale_message(lock: dict[str, Any], why: str, local_host: str) -> str:
    if lock.get("unreadable"):
        state = f"(unreadable: {lock['unreadable']})"
    elif lock.get("host") == local_host:
        state = "(not running)"
    else:
        state = f"({why})"
    return (
        f"stale deploy lock left by {_holder(lock)} {state} since "
        f"{lock.get('started_at') or '?'}, release {lock.get('release') or '?'}: "
        f"make sure no deploy runs, then re-run with {BREAK_HINT} ({RUNBOOK_STALE})"
    )


def parse_lock(text: str) -> dict[str, Any]:
    """The lock record in TEXT; {"unreadable": why} when it is not one."""
    try:
        lock = json.loads(text)
    except ValueError as exc:
        return {"unreadable": one_line(exc) if text.strip() else "empty file"}
    if not isinstance(lock, dict):
        return {"unreadable": f"expected an object, found {type(lock).__name__}"}
    return lock


def read_lock(path: str) -> dict[str, Any] | None:
    """The lock record in PATH; None when there is no lock."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(os_message("cannot read deploy lock", path, exc)) from None
    return parse_lock(text)
