#!/usr/bin/python
"""Ansible module: wait until several containers are healthy, all at once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_wait
short_description: Wait until several containers are running or healthy, all at once
description:
  - Polls every named container together, so services started one after the other come up
    in the time of the slowest, not of all of them added.
  - Fails as soon as one exits, or at the timeout, with one line per container that is not
    ready, naming it and carrying its last health check output.
  - A container without a health check counts as healthy once it runs.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  names:
    description: Container names.
    type: list
    elements: str
    required: true
  wait:
    description: What to wait for.
    type: str
    choices: [running, healthy]
    default: healthy
  timeout:
    description: Seconds to wait for all of them.
    type: int
    default: 120
extends_documentation_fragment:
  - prosaas_read_only
  - prosaas_docker
"""

EXAMPLES = r"""
- name: Wait until the app services are healthy
  docker_wait:
    names: [prosaas-api, prosaas-calls, worker]
    timeout: 90
"""

RETURN = r"""
waited:
  description: Seconds until each container was ready.
  returned: success
  type: dict
  sample: {"prosaas-api": 3.1, "prosaas-calls": 3.4, "worker": 2.2}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    find_container,
    wait_ready,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            names={"type": "list", "elements": "str", "required": True},
            wait={"type": "str", "default": "healthy", "choices": ["running", "healthy"]},
            timeout={"type": "int", "default": 120},
        ),
        supports_check_mode=True,
    )
    client = docker_client(module)
    containers = {name: find_container(client, name) for name in module.params["names"]}
    missing = [name for name, container in containers.items() if container is None]
    if missing:
        module.fail_json(msg=f"no such container: {', '.join(missing)}")
    waited = wait_ready(module, containers, module.params["wait"], module.params["timeout"])
    module.exit_json(changed=False, waited=waited)


if __name__ == "__main__":
    main()
