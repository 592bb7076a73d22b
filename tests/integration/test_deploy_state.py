"""deploy_state module through Ansible itself: the deploy lock and the release history."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ModuleRun, run_module

HERE = socket.gethostname()
STALE_TAIL = (
    ": make sure no deploy runs, then re-run with -e prosaas_break_stale_lock=true "
    '(RUNBOOK.md: "Stale deploy lock")'
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def fake_deploy() -> Iterator[subprocess.Popen]:
    """A live process whose command line names ansible, like a running ansible-playbook."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ansible-fake"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass", "ansible-gone"])
    child.wait()
    return child.pid


def owner(pid: int, release: str = "r1", user: str = "ops") -> dict[str, Any]:
    return {"user": user, "host": HERE, "pid": pid, "release": release}


def state(
    tmp_path: Path, state_dir: Path, action: str, *, check: bool = False, diff: bool = False, **args
) -> ModuleRun:
    return run_module(
        tmp_path,
        "deploy_state",
        {"action": action, "state_dir": str(state_dir), **args},
        check=check,
        diff=diff,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def release(release_id: str, version: str) -> dict[str, Any]:
    return {
        "id": release_id,
        "version": version,
        "images": {"prosaas-api": f"prosaas-demo/app:{version}"},
        "migrate_image": f"prosaas-demo/migrate:{version}",
        "user": "ops",
        "host": HERE,
    }


# --- lock -------------------------------------------------------------------------------


def test_lock_is_created_0600_in_a_0700_dir_and_reacquiring_is_ok(
    tmp_path: Path, state_dir: Path, fake_deploy: subprocess.Popen
) -> None:
    me = owner(fake_deploy.pid)
    first = state(tmp_path, state_dir, "lock", owner=me, controller_host=HERE)
    assert not first.failed, first.result
    assert first.result["changed"]
    assert first.result["acquired"]
    holder = first.result["holder"]
    assert {k: holder[k] for k in ("user", "host", "pid", "release")} == me
    assert holder["started_at"].endswith("Z")
    lock = state_dir / "deploy.lock"
    assert json.loads(lock.read_text()) == holder
    assert mode(state_dir) == 0o700
    assert mode(lock) == 0o600

    again = state(tmp_path, state_dir, "lock", owner=me)
    assert not again.failed, again.result
    assert not again.result["changed"]
    assert again.result["acquired"]
    assert again.result["holder"] == holder


def test_second_lock_against_a_live_deploy_fails_with_one_line(
    tmp_path: Path, state_dir: Path, fake_deploy: subprocess.Popen
) -> None:
    first = state(tmp_path, state_dir, "lock", owner=owner(fake_deploy.pid, "r1"))
    assert not first.failed, first.result
    started = first.result["holder"]["started_at"]

    second = state(tmp_path, state_dir, "lock", owner=owner(999999, "r2", "cron"), break_stale=True)
    assert second.failed
    assert second.result["msg"] == (
        f"deploy lock held by ops@{HERE} pid {fake_deploy.pid} since {started} (release r1, "
        f"lease until {first.result['holder']['expires_at']}): "
        "another deploy is running; wait for it to finish"
    )
    assert second.result["acquired"] is False
    assert second.result["holder"] == first.result["holder"]
    assert json.loads((state_dir / "deploy.lock").read_text()) == first.result["holder"]


def test_lock_of_a_dead_deploy_is_reported_stale_then_broken_on_request(
    tmp_path: Path, state_dir: Path
) -> None:
    gone = dead_pid()
    first = state(tmp_path, state_dir, "lock", owner=owner(gone, "r1"))
    assert not first.failed, first.result
    started = first.result["holder"]["started_at"]

    refused = state(tmp_path, state_dir, "lock", owner=owner(4242, "r2"))
    assert refused.failed
    assert refused.result["msg"] == (
        f"stale deploy lock left by ops@{HERE} pid {gone} (not running) since {started}, "
        f"release r1{STALE_TAIL}"
    )
    assert refused.result["lock_stale"] is True

    broken = state(tmp_path, state_dir, "lock", owner=owner(4242, "r2"), break_stale=True)
    assert not broken.failed, broken.result
    assert broken.result["changed"]
    assert broken.result["acquired"]
    assert broken.result["broken_stale"] == first.result["holder"]
    assert broken.result["holder"]["pid"] == 4242
    assert broken.result["actions"][0].startswith(f"broke stale lock of ops@{HERE} pid {gone}")
    assert json.loads((state_dir / "deploy.lock").read_text())["pid"] == 4242


def test_lock_from_another_control_node_is_stale_once_its_lease_ran_out(
    tmp_path: Path, state_dir: Path
) -> None:
    """Its pid cannot be checked from here: the lease alone decides, renewed or not."""
    elsewhere = {"user": "ops", "host": "bastion9", "pid": 4242, "release": "r1"}
    # A lease that outlasts the two module runs after it on a busy machine (seconds each).
    lease = 10
    first = state(tmp_path, state_dir, "lock", owner=elsewhere, lease=lease)
    assert not first.failed, first.result
    renewed = state(tmp_path, state_dir, "renew", owner=elsewhere, lease=lease)
    assert not renewed.failed, renewed.result
    assert not renewed.result["changed"]
    assert renewed.result["holder"]["expires_at"] >= first.result["holder"]["expires_at"]

    held = state(tmp_path, state_dir, "lock", owner=owner(4243, "r2"), break_stale=True)
    assert held.failed
    assert held.result["msg"].startswith("deploy lock held by ops@bastion9 pid 4242 since ")
    assert held.result["lock_stale"] is False

    expires = datetime.fromisoformat(renewed.result["holder"]["expires_at"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.1)
    refused = state(tmp_path, state_dir, "lock", owner=owner(4243, "r2"))
    assert refused.failed
    assert refused.result["msg"].startswith(
        "stale deploy lock left by ops@bastion9 pid 4242 (lease ran out "
    ), refused.result["msg"]
    broken = state(tmp_path, state_dir, "lock", owner=owner(4243, "r2"), break_stale=True)
    assert not broken.failed, broken.result
    assert broken.result["broken_stale"]["host"] == "bastion9"

    # The deploy that lost its lock finds out at its next renewal, and stops.
    late = state(tmp_path, state_dir, "renew", owner=elsewhere, lease=lease)
    assert late.failed
    assert late.result["msg"].startswith(f"the deploy lock is now held by ops@{HERE} pid 4243")


def test_unlock_removes_only_the_owners_lock(tmp_path: Path, state_dir: Path) -> None:
    me = owner(dead_pid())
    assert not state(tmp_path, state_dir, "lock", owner=me).failed

    other = state(tmp_path, state_dir, "unlock", owner=owner(1, user="someone"))
    assert not other.failed, other.result
    assert not other.result["changed"]
    assert "not by this deploy" in other.result["warning"]
    assert (state_dir / "deploy.lock").exists()

    mine = state(tmp_path, state_dir, "unlock", owner=me)
    assert not mine.failed, mine.result
    assert mine.result["changed"]
    assert mine.result["released"]
    assert not (state_dir / "deploy.lock").exists()

    nothing = state(tmp_path, state_dir, "unlock", owner=me)
    assert not nothing.failed, nothing.result
    assert not nothing.result["changed"]


# --- history ----------------------------------------------------------------------------


def test_begin_finish_read_with_a_failed_release_between_two_good_ones(
    tmp_path: Path, state_dir: Path
) -> None:
    def deploy(release_id: str, version: str, outcome: str, **finish: Any) -> ModuleRun:
        begun = state(tmp_path, state_dir, "begin", release=release(release_id, version))
        assert not begun.failed, begun.result
        assert begun.result["changed"]
        assert begun.result["record"]["status"] == "in_progress"
        done = state(
            tmp_path,
            state_dir,
            "finish",
            release_id=release_id,
            outcome=outcome,
            **finish,
        )
        assert not done.failed, done.result
        assert done.result["record"]["status"] == outcome
        return begun

    first = deploy("r1", "v1", "succeeded")
    assert first.result["current"] is None
    assert first.result["record"]["previous"] is None
    second = deploy("r2", "v2", "succeeded", details={"downtime_s": 3.2})
    assert second.result["current"]["id"] == "r1"
    assert second.result["record"]["previous"] == "r1"
    third = deploy(
        "r3",
        "v3",
        "failed",
        reason="migrate: exit code 1",
        details={"rolled_back_to": "r2"},
    )
    assert third.result["current"]["id"] == "r2"
    assert third.result["previous"]["id"] == "r1"

    fourth = state(tmp_path, state_dir, "begin", release=release("r4", "v4"))
    assert fourth.result["current"]["id"] == "r2", "the failed r3 is never current"
    assert fourth.result["previous"]["id"] == "r1"

    read = state(tmp_path, state_dir, "read")
    assert not read.failed, read.result
    assert not read.result["changed"]
    assert [r["id"] for r in read.result["releases"]] == ["r1", "r2", "r3", "r4"]
    assert [r["status"] for r in read.result["releases"]] == [
        "succeeded",
        "succeeded",
        "failed",
        "in_progress",
    ]
    assert read.result["current"]["id"] == "r2"
    assert read.result["previous"]["id"] == "r1", "previous skips the failed r3"
    failed = read.result["releases"][2]
    assert failed["reason"] == "migrate: exit code 1"
    assert failed["rolled_back_to"] == "r2"
    assert failed["finished_at"].endswith("Z")
    assert read.result["releases"][1]["downtime_s"] == 3.2
    assert read.result["lock"] is None
    assert read.result["lock_stale"] is None

    history = state_dir / "releases.json"
    assert mode(history) == 0o600
    assert mode(state_dir / "releases.json.bak") == 0o600
    assert len(json.loads((state_dir / "releases.json.bak").read_text())["releases"]) == 3


def test_begin_duplicate_and_finish_unknown_fail(tmp_path: Path, state_dir: Path) -> None:
    assert not state(tmp_path, state_dir, "begin", release=release("r1", "v1")).failed
    duplicate = state(tmp_path, state_dir, "begin", release=release("r1", "v1"))
    assert duplicate.failed
    assert duplicate.result["msg"].startswith("release r1 is already in the release history")
    unknown = state(tmp_path, state_dir, "finish", release_id="r9", outcome="succeeded")
    assert unknown.failed
    assert unknown.result["msg"].startswith("release r9 is not in the release history")


def test_corrupted_history_fails_every_action_that_needs_it(
    tmp_path: Path, state_dir: Path
) -> None:
    state_dir.mkdir()
    history = state_dir / "releases.json"
    history.write_text('{"releases": [ {"id": "r1", ')
    runs = [
        state(tmp_path, state_dir, "read"),
        state(tmp_path, state_dir, "begin", release=release("r2", "v2")),
        state(tmp_path, state_dir, "finish", release_id="r1", outcome="failed"),
    ]
    for run in runs:
        assert run.failed
        message = run.result["msg"]
        assert "\n" not in message
        assert message.startswith(f"release history {history} is corrupted (")
        assert message.endswith(
            f": restore it from {history}.bak or move it aside "
            '(RUNBOOK.md: "Corrupted release history")'
        )
    assert history.read_text() == '{"releases": [ {"id": "r1", ', "left as it was"


def test_unwritable_state_dir_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    blocked = tmp_path / "afile" / "sub"
    attempts = (("lock", {"owner": owner(4242)}), ("begin", {"release": release("r1", "v1")}))
    for action, args in attempts:
        run = state(tmp_path, blocked, action, **args)
        assert run.failed
        assert run.result["msg"] == (
            f"cannot create state directory {blocked}: Not a directory (ENOTDIR)"
        )


# --- check and diff mode ------------------------------------------------------------------


def test_check_mode_writes_nothing(tmp_path: Path, state_dir: Path) -> None:
    lock = state(tmp_path, state_dir, "lock", owner=owner(4242), check=True, diff=True)
    assert not lock.failed, lock.result
    assert lock.result["changed"]
    assert all(action.startswith("would have ") for action in lock.result["actions"])
    assert lock.result["diff"]["after"]["pid"] == 4242
    begun = state(tmp_path, state_dir, "begin", release=release("r1", "v1"), check=True)
    assert not begun.failed, begun.result
    assert begun.result["changed"]
    assert begun.result["actions"][-1] == "would have recorded release r1 as in progress"
    assert not state_dir.exists()

    assert not state(tmp_path, state_dir, "begin", release=release("r1", "v1")).failed
    before = (state_dir / "releases.json").read_text()
    finished = state(
        tmp_path, state_dir, "finish", release_id="r1", outcome="succeeded", check=True, diff=True
    )
    assert not finished.failed, finished.result
    assert finished.result["actions"] == ["would have marked release r1 succeeded"]
    assert finished.result["diff"]["before"]["status"] == "in_progress"
    assert finished.result["diff"]["after"]["status"] == "succeeded"
    assert (state_dir / "releases.json").read_text() == before
    assert not (state_dir / "deploy.lock").exists()

    read = state(tmp_path, state_dir, "read", check=True)
    assert not read.failed, read.result
    assert [r["id"] for r in read.result["releases"]] == ["r1"]


def test_diff_shows_the_new_record_on_begin(tmp_path: Path, state_dir: Path) -> None:
    run = state(tmp_path, state_dir, "begin", release=release("r1", "v1"), diff=True)
    assert not run.failed, run.result
    assert run.result["diff"]["before"] == {}
    assert run.result["diff"]["after"]["id"] == "r1"
    assert "in_progress" in run.stdout


def test_note_adds_a_job_to_the_release_and_check_mode_writes_nothing(
    tmp_path: Path, state_dir: Path
) -> None:
    state(tmp_path, state_dir, "begin", release=release("r1", "v1"))
    state(tmp_path, state_dir, "finish", release_id="r1", outcome="succeeded")
    job = {"kind": "backfill", "name": "call_log_timing", "outcome": "succeeded", "rows": 5}

    planned = state(tmp_path, state_dir, "note", check=True, release_id="r1", job=job)
    assert planned.result["changed"] is True
    assert "jobs" not in state(tmp_path, state_dir, "read").result["current"]

    noted = state(tmp_path, state_dir, "note", release_id="r1", job=job)
    assert not noted.failed, noted.result
    assert noted.result["actions"] == ["noted job call_log_timing on release r1"]
    assert state(tmp_path, state_dir, "read").result["current"]["jobs"] == [job]

    unknown = state(tmp_path, state_dir, "note", release_id="r9", job=job)
    assert unknown.failed
    assert unknown.result["msg"].startswith("release r9 is not in the release history")


def test_rollback_records_what_runs_once_and_check_mode_writes_nothing(
    tmp_path: Path, state_dir: Path
) -> None:
    for release_id, version, outcome in (("r1", "v1", "succeeded"), ("r2", "v2", "succeeded")):
        state(tmp_path, state_dir, "begin", release=release(release_id, version))
        state(tmp_path, state_dir, "finish", release_id=release_id, outcome=outcome)
    history = state_dir / "releases.json"
    back = {"id": "rb1", "user": "ops", "host": HERE}

    planned = state(tmp_path, state_dir, "rollback", check=True, release_id="r1", release=back)
    assert not planned.failed, planned.result
    assert planned.result["changed"] is True
    assert planned.result["record"]["id"] == "rb1"
    assert planned.result["actions"] == ["would have recorded rollback rb1 to release r1"]
    assert state(tmp_path, state_dir, "read").result["current"]["id"] == "r2"

    done = state(tmp_path, state_dir, "rollback", diff=True, release_id="r1", release=back)
    assert not done.failed, done.result
    assert done.result["changed"] is True
    record = done.result["record"]
    assert (record["kind"], record["version"], record["restores"]) == ("rollback", "v1", "r1")
    assert record["images"] == release("r1", "v1")["images"]
    assert record["migrate_image"] == "prosaas-demo/migrate:v1"
    assert record["rolled_back_from"] == "r2"
    assert done.result["diff"]["after"] == record
    read = state(tmp_path, state_dir, "read").result
    assert (read["current"]["id"], read["previous"]["id"]) == ("rb1", "r2")
    assert mode(history) == 0o600

    written = history.read_text()
    again = state(tmp_path, state_dir, "rollback", release_id="r1", release={**back, "id": "rb2"})
    assert not again.failed, again.result
    assert again.result["changed"] is False
    assert again.result["record"]["id"] == "rb1"
    assert history.read_text() == written

    state(tmp_path, state_dir, "begin", release=release("r3", "v3"))
    state(tmp_path, state_dir, "finish", release_id="r3", outcome="failed", reason="verify")
    refused = state(tmp_path, state_dir, "rollback", release_id="r3", release={**back, "id": "x"})
    assert refused.failed
    assert refused.result["msg"] == (
        "release r3 is failed: a failed or unfinished release is never a rollback target"
    )
    assert state(tmp_path, state_dir, "read").result["current"]["id"] == "rb1"
