"""Action plugin: enter a phase of the deploy."""

from __future__ import annotations

import importlib
import time
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

DOCUMENTATION = r"""
---
action: deploy_phase
short_description: Enter a phase of the deploy
description:
  - Sets the facts C(deploy_phase) (a failure names it) and C(deploy_marks) (when each phase
    started, for the report's timings and downtime). Before the first phase it enters, a
    deploy is in its validate phase, which began at C(deploy_started).
  - It runs nothing on the host, so entering a phase inside the stop flow's window costs
    that window no module run.
author: prosaas-deploy (!UNKNOWN)
options:
  name:
    description: The phase.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Enter the migrate phase
  deploy_phase:
    name: migrate
"""

RETURN = r"""
ansible_facts:
  description: C(deploy_phase) and C(deploy_marks) (phase -> epoch seconds it started).
  returned: success
  type: dict
  sample: {deploy_phase: migrate, deploy_marks: {validate: 1765090000.1, migrate: 1765090012.4}}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("name",))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        name = self._task.args["name"]
        # Before the first phase it enters, a deploy is validating, since deploy_started.
        started = {"validate": float(self._templar.template(task_vars.get("deploy_started", 0)))}
        marks = dict(self._templar.template(task_vars.get("deploy_marks") or started))
        facts = {"deploy_phase": name, "deploy_marks": {**marks, name: time.time()}}
        failpoint(f"phase-{name}")
        return {**result, "changed": False, "ansible_facts": facts}
