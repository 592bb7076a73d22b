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
  - With O(proxy_container), each container of O(proxy_backends) is first taken out of the
    proxy's rotation (drained) and its requests in flight get up to O(timeout) seconds to
    finish, so new requests get the proxy's 503 with Retry-After rather than a refused
    connection. Every backend is drained in the same runtime API exchanges (a read, one line
    that drains them all and reads again, then a read every 0.1 s while a request is in
    flight), each a C(docker exec) in the proxy's container.
  - With O(remove), the containers are removed once stopped.
  - With O(previous), it acts on the container a replacement beside (module docker_services)
    kept stopped for each name, not on the named one.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  names:
    description: Container names.
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds between the stop signal and SIGKILL, for each container; also
      what the drain may take.
    type: int
    default: 30
  remove:
    description: Remove each container once it is stopped.
    type: bool
    default: false
  previous:
    description: Act, for each of O(names), on the container a replacement beside (module
      docker_services, V(replace=beside)) kept stopped for a rollback, C(<name>-previous),
      instead of the named one; O(proxy_backends) and the results then name those
      containers.
    type: bool
    default: false
  proxy_container:
    description: Name of the proxy's container; empty, or not running, drains nothing.
    type: str
    default: ""
  proxy_backends:
    description: The proxy's backend of each container it routes to, by container name.
    type: dict
    default: {}
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
    proxy_container: proxy
    proxy_backends:
      prosaas-api: prosaas-api
      prosaas-calls: prosaas-calls
- name: Remove the containers a replacement beside kept stopped for a rollback
  docker_stop:
    names: [prosaas-api, prosaas-calls, worker]
    previous: true
    remove: true
"""

RETURN = r"""
actions:
  description: What was done to each container, in the order given.
  returned: always
  type: list
  elements: str
  sample: ["stopped prosaas-api (exit code 0, 0.4 s)", "worker was already exited",
           "no container prosaas-calls"]
drained:
  description: What the proxy was told, one line per slot.
  returned: always
  type: list
  elements: str
  sample: ["drain prosaas-api1 (172.18.0.5)"]
removed:
  description: Names of the containers this run removed.
  returned: always
  type: list
  elements: str
  sample: [prosaas-api-previous]
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
from ansible.module_utils.prosaas_failpoint import failpoint
from ansible.module_utils.prosaas_proxy_runtime import (
    Proxy,
    ProxyError,
    address_on,
    drain_backends,
    running_proxy,
)
from ansible.module_utils.prosaas_service import PREVIOUS_SUFFIX

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


def drain_routed(module: AnsibleModule, client: Any, found: dict[str, Any]) -> list[str]:
    """Drain the running containers the proxy routes to, every backend in the same runtime
    API exchanges; what the proxy was told."""
    params = module.params
    proxy = running_proxy(client, params["proxy_container"]) if params["proxy_container"] else None
    if proxy is None:
        return []
    addresses = {
        backend: address
        for name, backend in params["proxy_backends"].items()
        if (address := address_on(found.get(name), proxy))
    }
    if not addresses:
        return []
    runtime = Proxy(proxy, ", ".join(addresses), module.check_mode, module.warn)
    try:
        drain_backends(runtime, addresses, params["timeout"])
    except ProxyError as exc:
        module.fail_json(msg=f"{exc}; nothing was stopped", drained=runtime.actions)
    return runtime.actions


def stop_all(module: AnsibleModule, found: dict[str, Any], running: list[str]) -> dict[str, str]:
    """Stop RUNNING all at once; what happened to each."""
    failpoint("services-stopping")
    with ThreadPoolExecutor(max_workers=len(running)) as pool:
        futures = {
            name: pool.submit(stop_one, found[name], module.params["timeout"]) for name in running
        }
    try:
        return {name: future.result() for name, future in futures.items()}
    except APIError as exc:
        return module.fail_json(msg=f"could not stop {', '.join(running)}: {one_line(exc)}")


def remove_all(module: AnsibleModule, found: dict[str, Any]) -> list[str]:
    """Remove the containers found; their names."""
    present = [name for name, container in found.items() if container is not None]
    if module.check_mode:
        return present
    try:
        for name in present:
            found[name].remove(force=True)
    except APIError as exc:
        module.fail_json(msg=f"could not remove {', '.join(present)}: {one_line(exc)}")
    return present


def container_names(params: dict[str, Any]) -> list[str]:
    """The containers to act on: the named ones, or those a replacement kept for them."""
    suffix = PREVIOUS_SUFFIX if params["previous"] else ""
    return [name + suffix for name in params["names"]]


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            names={"type": "list", "elements": "str", "required": True},
            timeout={"type": "int", "default": 30},
            remove={"type": "bool", "default": False},
            previous={"type": "bool", "default": False},
            proxy_container={"type": "str", "default": ""},
            proxy_backends={"type": "dict", "default": {}},
        ),
        supports_check_mode=True,
    )
    client = docker_client(module)
    names = container_names(module.params)
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
    drained = drain_routed(module, client, found)
    if module.check_mode:
        actions.update({name: f"would have stopped {name}" for name in running})
    elif running:
        actions.update(stop_all(module, found, running))
    removed = remove_all(module, found) if module.params["remove"] else []
    module.exit_json(
        changed=bool(running or removed),
        actions=[actions[name] for name in names],
        stopped=running,
        drained=drained,
        removed=removed,
        diff=diff,
    )


if __name__ == "__main__":
    main()
