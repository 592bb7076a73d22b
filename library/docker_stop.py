#!/usr/bin/python
"""Ansible module: stop several containers gracefully, all at once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_stop
short_description: Stop several containers gracefully, all at once
description:
  - Sends each running container its stop signal at the same time and waits for all of
    them, so the services stop in the time of the slowest, not of all of them added.
  - A container still running after O(timeout) seconds is killed by the engine.
  - A container that is already stopped or does not exist is left alone and reported.
version_added: "0.1.0"
author: prosaas-deploy
options:
  names:
    description: Container names.
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds between the stop signal and SIGKILL, for each container.
    type: int
    default: 30
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Reports what would be stopped; stops nothing.
  diff_mode:
    support: full
    description: Shows the status of each container before and after.
seealso:
  - module: docker_services
"""

EXAMPLES = r"""
- name: Stop the app services
  docker_stop:
    names: [prosaas-api, prosaas-calls, worker]
    timeout: 30
"""

RETURN = r"""
actions:
  description: What was done to each container, in the order given.
  returned: always
  type: list
  elements: str
  sample: ["stopped prosaas-api (exit code 0, 0.4 s)", "worker was already exited",
           "no container prosaas-calls"]
stopped:
  description: Names of the containers this run stopped.
  returned: always
  type: list
  elements: str
  sample: [prosaas-api]
"""

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    find_container,
    one_line,
)

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

RUNNING = ("running", "restarting", "paused")


def stop_one(container: Any, timeout: int) -> str:
    """Stop CONTAINER gracefully; what happened, for the actions list."""
    started = time.monotonic()
    container.stop(timeout=timeout)
    container.reload()
    code = container.attrs["State"].get("ExitCode")
    return f"stopped {container.name} (exit code {code}, {time.monotonic() - started:.1f} s)"


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            names={"type": "list", "elements": "str", "required": True},
            timeout={"type": "int", "default": 30},
        ),
        supports_check_mode=True,
    )
    client = docker_client(module)
    names = module.params["names"]
    found = {name: find_container(client, name) for name in names}
    running = [name for name in names if found[name] is not None and found[name].status in RUNNING]
    actions: dict[str, str] = {}
    for name in names:
        if found[name] is None:
            actions[name] = f"no container {name}"
        elif name not in running:
            actions[name] = f"{name} was already {found[name].status}"
    diff = {
        "before": {name: found[name].status if found[name] else "absent" for name in names},
        "after": {name: "exited" if name in running else "unchanged" for name in names},
    }
    if module.check_mode:
        actions.update({name: f"would have stopped {name}" for name in running})
    elif running:
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            futures = {
                name: pool.submit(stop_one, found[name], module.params["timeout"])
                for name in running
            }
        try:
            actions.update({name: future.result() for name, future in futures.items()})
        except APIError as exc:
            module.fail_json(msg=f"could not stop {', '.join(running)}: {one_line(exc)}")
    module.exit_json(
        changed=bool(running),
        actions=[actions[name] for name in names],
        stopped=running,
        diff=diff,
    )


if __name__ == "__main__":
    main()
