"""Action plugin: how a deploy ended (module_utils/prosaas_outcome.py), computed once."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

# checkout only: begin. Plugins run on the controller, where Ansible does not put the
# checkout's module_utils on the path: they are added to ansible.module_utils, the name they
# import each other by on a host. The prosaas.deploy collection (scripts/collection.py) has
# none of these lines: it imports module_utils by the collection's name.
MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
ANSIBLE_MODULE_UTILS = importlib.import_module("ansible.module_utils")
if MODULE_UTILS_DIR not in ANSIBLE_MODULE_UTILS.__path__:
    ANSIBLE_MODULE_UTILS.__path__.append(MODULE_UTILS_DIR)
# checkout only: end
from ansible.module_utils.prosaas_failpoint import failpoint  # noqa: E402 - needs the path set up just above
from ansible.module_utils.prosaas_history import release_report  # noqa: E402 - needs the path set up just above
from ansible.module_utils.prosaas_outcome import (  # noqa: E402 - needs the path set up just above
    decide_failure,
    deploy_report,
    failure_line,
    failure_notices,
    failure_reason,
    inventory_options,
    own_failure,
    phase_durations,
    rollback_line,
)

DOCUMENTATION = r"""
---
action: deploy_outcome
short_description: Say how a deploy ended, once, for the rescue and the report to read
description:
  - O(step=note), on each host that reaches the rescue, sets C(deploy_failure) (the phase it
    was in, why its own task failed).
  - O(step=decide), once, sets C(deploy_outcome) on every host (the failed phase, the reason,
    the hosts that answer and those lost, what the rollback does).
  - O(step=rollback), on each host, sets C(rollback_outcome) (what its rollback did).
  - O(step=record), once, sets C(deploy_record), what the release history keeps of the
    deploy (its phases, the migrations applied, the reports of every host, bounded).
  - O(step=report), on each host, sets C(deploy_report), the host's deploy report.
  - O(step=lock) fails with why the deploy lock could not be taken; O(step=end) fails with
    the one line a failed deploy ends with.
author: prosaas-deploy (!UNKNOWN)
options:
  step:
    description: What to compute.
    type: str
    choices: [note, decide, rollback, record, report, lock, end]
    required: true
  rollback_failure:
    description: With O(step=rollback), the failed result of the rollback, when it failed.
    type: dict
"""

EXAMPLES = r"""
- name: Note why the deploy failed
  deploy_outcome:
    step: note
"""

RETURN = r"""
ansible_facts:
  description: What the step computed (see the description).
  returned: success
  type: dict
  sample: {deploy_outcome: {phase: migrate, reason: "exit code 1", rollback: previous}}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("step", "rollback_failure"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        self._vars = task_vars or {}
        step = self._task.args["step"]
        if step in ("lock", "end"):
            return {**result, "failed": True, "msg": getattr(self, f"_{step}")()}
        facts = getattr(self, f"_{step}")()
        return {**result, "changed": False, "ansible_facts": facts}

    def _note(self) -> dict[str, Any]:
        failpoint("rescue")
        failed = self._get("ansible_failed_result")
        return {"deploy_failure": own_failure(self._get("deploy_phase") or "validate", failed)}

    def _decide(self) -> dict[str, Any]:
        hosts = self._hosts()
        failures = {h: self._get("deploy_failure", h) for h in hosts}
        outcome = decide_failure(
            hosts,
            {host: failure for host, failure in failures.items() if failure},
            {host: self._get("deploy_phase", host) or "validate" for host in hosts},
            {
                "inventories": self._inventories(),
                "migration_host": (self._get("deployment") or {}).get("migration_host", ""),
                "previous": (self._get("release_state_begin") or {}).get("current"),
            },
        )
        return {"deploy_outcome": outcome}

    def _rollback(self) -> dict[str, Any]:
        outcome = self._get("deploy_outcome") or {}
        failed = self._task.args.get("rollback_failure")
        line = rollback_line(
            outcome.get("rollback", "none"),
            (outcome.get("previous") or {}).get("id", ""),
            failure_reason(failed) if failed else None,
        )
        return {"rollback_outcome": line}

    def _record(self) -> dict[str, Any]:
        outcome = self._get("deploy_outcome")
        hosts = outcome["answering"] if outcome else self._hosts()
        reports = [deploy_report(self._getter(host), False) for host in hosts]
        if not outcome:
            migration_host = (self._get("deployment") or {}).get("migration_host")
            summary = (self._get("migrate_result", migration_host) or {}).get("summary") or {}
            return {
                "deploy_record": {
                    "phases": phase_durations(self._get("deploy_marks") or {}),
                    "migrations_applied": summary.get("applied") or [],
                    "report": release_report(reports),
                },
                "deploy_notices": [{"event": "success"}],
            }
        previous = outcome.get("previous") or {}
        return {
            "deploy_record": {
                "failed_phase": outcome["phase"],
                "rollback": self._get("rollback_outcome"),
                "rolled_back_to": previous.get("id") if outcome["rollback"] == "previous" else None,
                # A host lost during the rollback wrote none: the failure line names it.
                "report": release_report([r for r in reports if r["rollback"] is not None]),
            },
            "deploy_notices": failure_notices(
                outcome, {host: self._get("rollback_outcome", host) for host in hosts}
            ),
        }

    def _report(self) -> dict[str, Any]:
        return {"deploy_report": deploy_report(self._getter(), bool(self._task.check_mode))}

    def _lock(self) -> str:
        failed = next(
            (result for h in self._hosts() if (result := self._get("ansible_failed_result", h))),
            None,
        )
        return failure_reason(failed)

    def _end(self) -> str:
        outcome = self._get("deploy_outcome")
        lost_late = [h for h in outcome["answering"] if self._get("rollback_outcome", h) is None]
        return failure_line(
            self._get("deploy_release_id"),
            outcome,
            self._get("rollback_outcome") or "",
            self._get("rollback_record_problem") or "",
            lost_late=lost_late,
            inventories=self._inventories(),
        )

    def _hosts(self) -> list[str]:
        return list(self._vars["ansible_play_hosts_all"])

    def _inventories(self) -> str:
        sources = self._vars.get("ansible_inventory_sources") or []
        return inventory_options(list(sources), str(Path(self._vars["playbook_dir"]).parent))

    def _get(self, name: str, host: str | None = None) -> Any:
        """A variable of HOST (this host by default), templated; None when it is unset."""
        if host is None or host == self._vars.get("inventory_hostname"):
            value = self._vars.get(name)
        else:
            value = self._vars["hostvars"][host].get(name)
        return self._templar.template(value) if value is not None else None

    def _getter(self, host: str | None = None) -> Any:
        return lambda name: self._get(name, host)
