"""Lookup plugin: who runs this deploy (user, control host, ansible-playbook pid)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_controller
short_description: Who runs this deploy - user, control host and ansible-playbook pid
description:
  - Returns the owner record of the deploy lock, taken on the control node.
  - The pid is that of the ansible-playbook process, so a lock left by a run that was
    killed can be recognised as stale on the control host.
  - The control host is named by the environment variable E(PROSAAS_CONTROL_NODE) when set,
    else by its hostname. Set it where control nodes are containers whose hostname changes
    from run to run (CI runners), so their locks keep a name an operator recognises.
options: {}
"""

EXAMPLES = r"""
- name: Take the deploy lock
  deploy_state:
    action: lock
    owner: "{{ lookup('deploy_controller') | combine({'release': release_id}) }}"
"""

RETURN = r"""
_raw:
  description: user, host and pid of the deploy.
  type: dict
  sample: {"user": "ops", "host": "bastion1", "pid": 31337}
"""

import getpass
import multiprocessing
import os
import socket
from typing import Any

from ansible.plugins.lookup import LookupBase


def playbook_pid() -> int:
    """Lookups run in a worker forked from ansible-playbook: its parent is the run itself."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list:
        host = os.environ.get("PROSAAS_CONTROL_NODE") or socket.gethostname()
        return [{"user": getpass.getuser(), "host": host, "pid": playbook_pid()}]
