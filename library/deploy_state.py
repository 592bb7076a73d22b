#!/usr/bin/python
"""Ansible module: the deploy lock and the release history on a deploy host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_state
short_description: Own the deploy lock and the release history on a deploy host
description:
  - Keeps the state of prosaas deploys under O(state_dir) on the deploy host - the deploy
    lock C(deploy.lock) and the release history C(releases.json) - and derives from it the
    C(current) release (the newest one that succeeded) and the C(previous) one (the
    succeeded one before it), the only releases a rollback may target.
  - A manual rollback is recorded as a succeeded release of kind C(rollback) with the
    target's version and images, so C(current) always names what should run.
  - The state directory is created with mode 0700 when missing; every file in it is
    written with mode 0600. C(releases.json) is replaced atomically and its prior version
    is kept as C(releases.json.bak).
  - A lock left by a deploy that no longer runs is reported as stale with its holder, and
    broken only with O(break_stale=true). The lock is a lease, taken for O(lease) seconds
    and renewed (V(renew)) by the running deploy at each phase, so a lock whose lease ran
    out is stale whichever control node looks at it. A lock taken on the machine the module
    runs on is also stale as soon as its pid no longer runs an Ansible process.
  - Every failure is one line naming what to do, for example the RUNBOOK.md section.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  action:
    description:
      - V(lock) takes the deploy lock for O(owner); fails when another deploy holds it or
        when a stale lock is found and O(break_stale) is not set.
      - V(renew) extends the lease of the lock O(owner) holds by O(lease) seconds from now;
        fails when the lock is gone or held by another deploy (the lease ran out and the lock
        was broken), since another deploy may then be running.
      - V(unlock) releases the lock when O(owner) holds it; a lock held by someone else is
        left alone and reported in RV(warning).
      - V(begin) appends O(release) to the history as C(in_progress); with O(owner), it also
        renews the lease of the lock O(owner) holds, as V(renew) does, in the same call.
      - V(finish) marks O(release_id) V(succeeded) or V(failed) with O(reason) and O(details).
      - V(read) changes nothing and returns the history, the current and previous releases
        and the lock.
      - V(note) appends O(job) (a backfill run, for example) to the C(jobs) of release
        O(release_id).
      - V(rollback) records that the succeeded release O(release_id) runs again - appends a
        succeeded record of kind C(rollback) with O(release)'s id, user and host and
        O(release_id)'s version, images and migrate image, which becomes C(current). When
        the current release already runs the same, nothing is appended. A failed, unfinished
        or unknown release is refused.
    type: str
    required: true
    choices: [lock, renew, unlock, begin, finish, read, note, rollback]
  state_dir:
    description: Directory holding the lock and the history; created with mode 0700.
    type: path
    default: /var/lib/prosaas-deploy
  owner:
    description:
      - Who runs the deploy. Required for O(action=lock), O(action=renew) and O(action=unlock);
        with O(action=begin), the lock it holds is renewed too.
    type: dict
    suboptions:
      user:
        description: User running the deploy.
        type: str
      host:
        description: Control host the deploy runs from.
        type: str
        required: true
      pid:
        description: Pid of the C(ansible-playbook) process on the control host.
        type: int
        required: true
      release:
        description: Release the deploy installs.
        type: str
  controller_host:
    description:
      - Hostname of the control node running this deploy. The pid of a lock can be checked
        only when the lock was taken on the machine the module runs on; this name is
        reported beside that decision in RV(stale_check).
    type: str
  break_stale:
    description: Remove a stale lock and take it. A lock whose owner still runs is never broken.
    type: bool
    default: false
  lease:
    description:
      - Seconds the lock stays live after it is taken (V(lock)) or renewed (V(renew)) without
        being renewed again; after that, any control node sees it as stale.
    type: int
    default: 120
  release:
    description:
      - The new release, for O(action=begin).
      - For O(action=rollback), the record of the rollback - only its id, user and host are
        used; the version and images are those of O(release_id).
    type: dict
    suboptions:
      id:
        description: Release id; unique in the history.
        type: str
        required: true
      version:
        description: Application version.
        type: str
      images:
        description: Image per service.
        type: dict
        default: {}
      migrate_image:
        description: Image of the one-shot migrate container.
        type: str
      user:
        description: Who deploys it.
        type: str
      host:
        description: Control host it is deployed from.
        type: str
      previous:
        description: Id of the release it replaces; the current release when omitted.
        type: str
  release_id:
    description:
      - Release to mark, for O(action=finish); to note a job on, for O(action=note); to go back
        to, for O(action=rollback).
    type: str
  job:
    description: What to note on the release, for O(action=note) - name, outcome, rows, and so on.
    type: dict
  outcome:
    description: How the deploy ended, for O(action=finish).
    type: str
    choices: [succeeded, failed]
  reason:
    description: Why it failed, one line; for O(action=finish).
    type: str
    default: ""
  details:
    description:
      - Merged into the record on O(action=finish) - timings, downtime, migrations, verify,
        rolled_back_to, and so on. They never override the id, status, reason or times.
      - A C(report) among them (the deploy's report in compact form) is cut to add at most
        8192 bytes to C(releases.json), and written in the same update as the outcome.
    type: dict
    default: {}
  keep:
    description:
      - Records kept in the history on O(action=begin) and O(action=rollback); older ones are
        dropped, except the newest two succeeded ones, which are always kept.
    type: int
    default: 50
attributes:
  check_mode:
    support: full
    description: Reports what would be done in RV(actions); writes nothing. V(read) works as usual.
  diff_mode:
    support: full
    description: Shows the lock record (lock, unlock) or the release record (begin, finish,
      rollback) before and after.
notes:
  - Writers of one state directory are serialised with an advisory lock on a file in it.
  - A failed or in-progress release is never current or previous, and never pushes a
    succeeded one out of the history.
"""

EXAMPLES = r"""
- name: Take the deploy lock
  deploy_state:
    action: lock
    owner: "{{ lookup('deploy_controller') | combine({'release': release_id}) }}"
    controller_host: "{{ lookup('deploy_controller').host }}"
    break_stale: "{{ prosaas_break_stale_lock | bool }}"
    lease: 120

- name: Keep the lock through a migration that may take up to 30 minutes
  deploy_state:
    action: renew
    owner: "{{ lookup('deploy_controller') | combine({'release': release_id}) }}"
    lease: 1920

- name: Record the new release as in progress
  deploy_state:
    action: begin
    release:
      id: 20261124T120000Z-v2
      version: v2
      images: {prosaas-api: "prosaas-demo/app:v2", worker: "prosaas-demo/app:v2"}
      migrate_image: prosaas-demo/migrate:v2
      user: ops
      host: bastion1
  register: begun

- name: Mark it failed after the rollback
  deploy_state:
    action: finish
    release_id: 20261124T120000Z-v2
    outcome: failed
    reason: "migrate: exit code 1"
    details:
      rolled_back_to: "{{ begun.current.id }}"

- name: Show what runs and what a rollback would go back to
  deploy_state:
    action: read
  register: state

- name: Record that release 20261120T090000Z-v1 runs again (nothing when it already does)
  deploy_state:
    action: rollback
    release_id: 20261120T090000Z-v1
    release:
      id: 20261124T130000Z-rollback-v1
      user: ops
      host: bastion1

- name: Note a finished backfill on the current release
  deploy_state:
    action: note
    release_id: "{{ state.current.id }}"
    job:
      kind: backfill
      name: call_log_timing
      outcome: succeeded
      rows: 1000000
"""

RETURN = r"""
actions:
  description: What was done, in order (V(would have ...) in check mode).
  returned: always
  type: list
  elements: str
  sample: ["broke stale lock of ops@bastion1 pid 4242 (pid 4242 no longer runs a deploy
            on bastion1)", "acquired deploy lock for ops@bastion1 pid 5151"]
holder:
  description: The lock record now in the file (after the run); null when there is none.
  returned: lock, renew, unlock, begin (with O(owner))
  type: dict
  sample: {"user": "ops", "host": "bastion1", "pid": 5151, "release": "20261124T120000Z-v2",
           "started_at": "2026-11-24T12:00:00Z", "renewed_at": "2026-11-24T12:00:00Z",
           "expires_at": "2026-11-24T12:02:00Z"}
acquired:
  description: Whether O(owner) holds the lock after the run.
  returned: lock
  type: bool
  sample: true
broken_stale:
  description: The stale lock record that was broken; null when none was.
  returned: lock
  type: dict
  sample: {"user": "ops", "host": "bastion1", "pid": 4242, "release": "20261124T110000Z-v1",
           "started_at": "2026-11-24T11:00:00Z"}
stale_check:
  description: How the staleness of the existing lock was decided; null when there was none.
  returned: lock, read
  type: str
  sample: "lease ran out 95 s ago, at 2026-11-24T12:02:00Z"
released:
  description: Whether the lock of O(owner) was removed.
  returned: unlock
  type: bool
  sample: true
warning:
  description: Why a lock was left alone on unlock; null otherwise.
  returned: unlock
  type: str
  sample: "deploy lock is held by ops@bastion2 pid 77 since 2026-11-24T12:00:00Z (release
    20261124T120000Z-v2), not by this deploy (ops@bastion1 pid 5151): left alone"
record:
  description:
    - The release record written (begin) or updated (finish).
    - For V(rollback), the record of what now runs - the appended rollback record, or the
      current release when nothing was appended.
  returned: begin, finish, rollback
  type: dict
  sample: {"id": "20261124T120000Z-v2", "version": "v2", "status": "in_progress",
           "images": {"prosaas-api": "prosaas-demo/app:v2"},
           "migrate_image": "prosaas-demo/migrate:v2",
           "user": "ops", "host": "bastion1", "previous": "20261120T090000Z-v1",
           "started_at": "2026-11-24T12:00:00Z"}
current:
  description:
    - The newest succeeded release, the one a rollback goes back to; null when none.
    - For V(begin), computed before the new record was appended.
  returned: begin, read
  type: dict
  sample: {"id": "20261120T090000Z-v1", "version": "v1", "status": "succeeded"}
previous:
  description: The succeeded release before RV(current); null when none.
  returned: begin, read
  type: dict
  sample: {"id": "20261101T090000Z-v0", "version": "v0", "status": "succeeded"}
releases:
  description: The release history, oldest first.
  returned: read
  type: list
  elements: dict
  sample: [{"id": "20261120T090000Z-v1", "status": "succeeded"},
           {"id": "20261124T120000Z-v2", "status": "failed", "reason": "migrate: exit code 1"}]
lock:
  description: The lock record; null when there is no lock.
  returned: read
  type: dict
  sample: {"user": "ops", "host": "bastion1", "pid": 5151, "release": "20261124T120000Z-v2",
           "started_at": "2026-11-24T12:00:00Z"}
lock_stale:
  description: Whether the lock is stale; null when there is no lock.
  returned: lock, read
  type: bool
  sample: false
"""

import json
import os
import socket
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_failpoint import failpoint
from ansible.module_utils.prosaas_history import (
    DEFAULT_KEEP,
    HISTORY_FILE,
    add_job,
    begin,
    current_and_previous,
    dump_history,
    finish,
    load_history,
    roll_back,
)
from ansible.module_utils.prosaas_lock import (
    DEFAULT_LEASE,
    LOCK_FILE,
    held_message,
    lock_record,
    lock_staleness,
    read_lock,
    renew_lock,
    same_owner,
    stale_message,
)
from ansible.module_utils.prosaas_store import (
    StateError,
    create_exclusive,
    ensure_dir,
    remove_file,
    state_mutex,
)
from ansible.module_utils.prosaas_store import atomic_write as write_file

WRITERS = ("lock", "renew", "unlock", "begin", "finish", "note", "rollback")


def argument_spec() -> dict[str, Any]:
    return {
        "action": {
            "type": "str",
            "required": True,
            "choices": ["lock", "renew", "unlock", "begin", "finish", "read", "note", "rollback"],
        },
        "state_dir": {"type": "path", "default": "/var/lib/prosaas-deploy"},
        "owner": {
            "type": "dict",
            "options": {
                "user": {"type": "str"},
                "host": {"type": "str", "required": True},
                "pid": {"type": "int", "required": True},
                "release": {"type": "str"},
            },
        },
        "controller_host": {"type": "str"},
        "break_stale": {"type": "bool", "default": False},
        "lease": {"type": "int", "default": DEFAULT_LEASE},
        "release": {
            "type": "dict",
            "options": {
                "id": {"type": "str", "required": True},
                "version": {"type": "str"},
                "images": {"type": "dict", "default": {}},
                "migrate_image": {"type": "str"},
                "user": {"type": "str"},
                "host": {"type": "str"},
                "previous": {"type": "str"},
            },
        },
        "release_id": {"type": "str"},
        "job": {"type": "dict"},
        "outcome": {"type": "str", "choices": ["succeeded", "failed"]},
        "reason": {"type": "str", "default": ""},
        "details": {"type": "dict", "default": {}},
        "keep": {"type": "int", "default": DEFAULT_KEEP},
    }


def who(lock: dict[str, Any] | None) -> str:
    lock = lock or {}
    return f"{lock.get('user') or '?'}@{lock.get('host') or '?'} pid {lock.get('pid') or '?'}"


class DeployState:
    """Carries out one action on the state directory, recording each step."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.dir = module.params["state_dir"]
        self.lock_path = os.path.join(self.dir, LOCK_FILE)
        self.history_path = os.path.join(self.dir, HISTORY_FILE)
        self.local_host = socket.gethostname()
        self.actions: list[str] = []
        self.changed = False
        self.result: dict[str, Any] = {}
        self.diff: dict[str, Any] = {"before": {}, "after": {}}

    def fail(self, msg: str) -> None:
        self.module.fail_json(msg=msg, actions=self.actions, **self.result)

    def act(self, description: str) -> bool:
        """Record a change; True when it should really be carried out (not in check mode)."""
        self.changed = True
        self.actions.append(
            description if not self.module.check_mode else f"would have {description}"
        )
        return not self.module.check_mode

    def prepare_dir(self) -> None:
        if not os.path.isdir(self.dir) and self.act(
            f"created state directory {self.dir} (mode 0700)"
        ):
            ensure_dir(self.dir)

    # --- lock -------------------------------------------------------------------------

    def staleness(self, lock: dict[str, Any]) -> tuple[bool, str]:
        stale, why = lock_staleness(lock, local_host=self.local_host)
        controller = self.params["controller_host"]
        if controller and controller != self.local_host:
            why += f" (deploy run from {controller})"
        return stale, why

    def lock(self) -> None:
        owner = self.params["owner"]
        existing = read_lock(self.lock_path)
        self.result.update(
            holder=existing, acquired=False, broken_stale=None, lock_stale=None, stale_check=None
        )
        self.diff["before"] = existing or {}
        if existing is not None and same_owner(existing, owner):
            self.result.update(acquired=True, lock_stale=False)
            self.actions.append(f"deploy lock already held by this deploy ({who(existing)})")
            self.diff["after"] = existing
            return
        if existing is not None:
            self.take_over(existing)
        wanted = lock_record(owner, self.params["lease"])
        self.diff["after"] = wanted
        if self.act(f"acquired deploy lock for {who(wanted)}") and not create_exclusive(
            self.lock_path, to_json(wanted)
        ):
            self.result["holder"] = read_lock(self.lock_path)  # taken meanwhile by another run
            self.fail(held_message(self.result["holder"] or {}))
        self.result.update(holder=wanted, acquired=True)

    def renew(self) -> None:
        existing = read_lock(self.lock_path)
        renewed = renew_lock(existing, self.params["owner"], self.params["lease"])
        self.result["holder"] = renewed
        if self.params["action"] == "renew":
            self.diff = {"before": existing, "after": renewed}
        # Renewing is bookkeeping, like taking the lock: reported, never a change.
        self.actions.append(f"renewed the lease of {who(renewed)} until {renewed['expires_at']}")
        if not self.module.check_mode:
            write_file(self.lock_path, to_json(renewed), keep_backup=False)

    def take_over(self, existing: dict[str, Any]) -> None:
        """Break EXISTING when it is stale and breaking was asked for; fail otherwise."""
        stale, why = self.staleness(existing)
        self.result.update(lock_stale=stale, stale_check=why)
        if not stale:
            self.fail(held_message(existing))
        if not self.params["break_stale"]:
            self.fail(stale_message(existing, why, self.local_host))
        if self.act(f"broke stale lock of {who(existing)} ({why})"):
            remove_file(self.lock_path)
        self.result.update(broken_stale=existing, holder=None)

    def unlock(self) -> None:
        owner = self.params["owner"]
        existing = read_lock(self.lock_path)
        self.result.update(holder=existing, released=False, warning=None)
        self.diff["before"] = existing or {}
        self.diff["after"] = existing or {}
        if existing is None:
            self.actions.append("no deploy lock to release")
        elif same_owner(existing, owner):
            if self.act(f"released deploy lock of {who(existing)}"):
                remove_file(self.lock_path)
            self.result.update(holder=None, released=True)
            self.diff["after"] = {}
        else:
            warning = (
                f"deploy lock is held by {who(existing)} since "
                f"{existing.get('started_at') or '?'} (release {existing.get('release') or '?'}), "
                f"not by this deploy ({who(owner)}): left alone"
            )
            self.module.warn(warning)
            self.result["warning"] = warning
            self.actions.append("left the deploy lock of another deploy alone")

    # --- history ----------------------------------------------------------------------

    def begin(self) -> None:
        if self.params["owner"] and not self.module.check_mode:  # check mode takes no lock
            self.renew()
        releases = load_history(self.history_path)
        current, previous = current_and_previous(releases)
        updated, record = begin(releases, self.params["release"], self.params["keep"])
        self.result.update(current=current, previous=previous, record=record)
        self.diff["after"] = record
        dropped = len(releases) + 1 - len(updated)
        note = f", dropped {dropped} old record(s)" if dropped else ""
        if self.act(f"recorded release {record['id']} as in progress{note}"):
            write_file(self.history_path, dump_history(updated))

    def finish(self) -> None:
        releases = load_history(self.history_path)
        release_id = self.params["release_id"]
        updated, before, after = finish(
            releases,
            release_id,
            outcome=self.params["outcome"],
            reason=self.params["reason"],
            details=self.params["details"],
        )
        self.result["record"] = after
        self.diff = {"before": before, "after": after}
        if after is before:
            self.actions.append(f"release {release_id} already marked {after['status']}")
            return
        if self.act(f"marked release {release_id} {after['status']}"):
            write_file(self.history_path, dump_history(updated))

    def note(self) -> None:
        releases = load_history(self.history_path)
        release_id = self.params["release_id"]
        updated, record = add_job(releases, release_id, self.params["job"])
        self.result["record"] = record
        self.diff = {"before": {}, "after": self.params["job"]}
        if self.act(f"noted job {self.params['job'].get('name', '?')} on release {release_id}"):
            write_file(self.history_path, dump_history(updated))

    def rollback(self) -> None:
        releases = load_history(self.history_path)
        target = self.params["release_id"]
        updated, record, appended = roll_back(
            releases, target, self.params["release"], self.params["keep"]
        )
        self.result["record"] = record
        self.diff["after"] = record if appended else {}
        if not appended:
            self.actions.append(
                f"nothing to record: the current release {record['id']} already runs "
                f"the version and images of {target}"
            )
        elif self.act(f"recorded rollback {record['id']} to release {target}"):
            write_file(self.history_path, dump_history(updated))

    def read(self) -> None:
        releases = load_history(self.history_path)
        current, previous = current_and_previous(releases)
        lock = read_lock(self.lock_path)
        stale, why = self.staleness(lock) if lock is not None else (None, None)
        self.result.update(
            releases=releases,
            current=current,
            previous=previous,
            lock=lock,
            lock_stale=stale,
            stale_check=why,
        )

    def run(self) -> dict[str, Any]:
        action = self.params["action"]
        if action in ("lock", "begin"):
            self.prepare_dir()
        if action == "lock":  # outside the mutex, so that two runs can meet there
            failpoint("lock-taking")
        handler = getattr(self, action)
        if action in WRITERS and not self.module.check_mode and os.path.isdir(self.dir):
            with state_mutex(self.dir):
                handler()
        else:
            handler()
        if action == "lock":
            failpoint("lock-taken")
        result = {"changed": self.changed, "actions": self.actions, **self.result}
        if action != "read":
            result["diff"] = self.diff
        return result


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ("action", "lock", ("owner",)),
            ("action", "renew", ("owner",)),
            ("action", "unlock", ("owner",)),
            ("action", "begin", ("release",)),
            ("action", "finish", ("release_id", "outcome")),
            ("action", "note", ("release_id", "job")),
            ("action", "rollback", ("release_id", "release")),
        ],
        supports_check_mode=True,
    )
    state = DeployState(module)
    try:
        result = state.run()
    except StateError as exc:
        state.fail(str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
