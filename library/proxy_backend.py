#!/usr/bin/python
"""Ansible module: ready, drain or put in maintenance the proxy's server slots of a service."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: proxy_backend
short_description: Ready, drain or put in maintenance the proxy's server slots of one service
description:
  - Works on one backend of the proxy (HAProxy) running in container O(container). The
    backend has a few server slots, each filled by Docker's DNS with the address of one
    container carrying the service's name on the project network; this module finds a slot
    by that address.
  - Talks to HAProxy's runtime API through C(proxy-api) inside the proxy container
    (C(docker exec)), so nothing of HAProxy is reached from outside the container and no
    reload happens.
  - In this order, whatever the order of the options. O(ready) first, waiting up to
    O(timeout) for each address to fill a slot that passes its health check, and clearing
    a drain or maintenance left on that slot (a slot keeps it when its container goes and
    another takes its place); it fails, having drained nothing, when one never gets there.
    Then O(drain) and O(maint). Then it waits, up to O(drain_timeout), until the drained
    slots have no session left.
  - A drain that outlasts O(drain_timeout) is a warning and RV(drained) false, not a
    failure; the caller decides whether to stop the container anyway.
  - An address of O(drain) or O(maint) that fills no slot gets no traffic already; that is
    a warning.
  - Running it again with the same options changes nothing.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  container:
    description: Name of the proxy's container.
    type: str
    required: true
  backend:
    description: The backend, that is the service's name (the route's C(service)).
    type: str
    required: true
  ready:
    description:
      - Containers whose slots must take new requests (READY) and be UP, each by its IP
        address or by its container name (then its address on the proxy's network).
      - Waits for each to fill a slot and pass its health check.
      - A named container that is not running fails the run.
    type: list
    elements: str
    default: []
  drain:
    description:
      - Containers (addresses or names) whose slots take no new request (DRAIN); the
        requests in flight finish.
      - Then waits until those slots have no session left.
      - A named container that is not running, or a proxy container that is missing or
        stopped, leaves nothing to drain (the first deploy, before the proxy exists).
    type: list
    elements: str
    default: []
  maint:
    description: Containers (addresses or names) whose slots are put in maintenance
      (MAINT); as for O(drain), nothing running is nothing to do.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait until every address of O(ready) is in a slot that is UP.
    type: int
    default: 60
  drain_timeout:
    description: Seconds to wait until the slots of O(drain) have no session left.
    type: int
    default: 30
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Reads the slots once and reports what it would change and wait for;
      changes nothing and waits for nothing.
  diff_mode:
    support: none
    description: RV(actions) and RV(servers) say what changed.
notes:
  - The proxy's image must carry C(proxy-api) (C(proxy/Dockerfile)).
seealso:
  - module: docker_wait
"""

EXAMPLES = r"""
- name: Route to the new container, then drain the old one
  proxy_backend:
    container: prosaas-proxy
    backend: prosaas-api
    ready: ["{{ new_address }}"]
    drain: ["{{ old_address }}"]
    timeout: 60
    drain_timeout: 30
  register: switch

- name: Roll back, before the old container is stopped
  proxy_backend:
    container: prosaas-proxy
    backend: prosaas-api
    ready: ["{{ old_address }}"]
    maint: ["{{ new_address }}"]
"""

RETURN = r"""
actions:
  description: What this run changed, one line per slot; in check mode, what it would
    change and wait for.
  returned: always
  type: list
  elements: str
  sample: ["ready prosaas-api3 (172.18.0.7)", "drain prosaas-api2 (172.18.0.5)"]
servers:
  description: The backend's slots when the run ended; an empty slot has no address.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The slot's server name.
      type: str
    address:
      description: The address of the container in the slot, or null.
      type: str
    state:
      description: V(UP), V(DOWN) (failing its health check), V(DRAIN) or V(MAINT) (an
        empty slot is in MAINT).
      type: str
    sessions:
      description: Requests the slot is serving.
      type: int
  sample:
    - {"name": "prosaas-api1", "address": null, "state": "MAINT", "sessions": 0}
    - {"name": "prosaas-api2", "address": "172.18.0.5", "state": "DRAIN", "sessions": 0}
    - {"name": "prosaas-api3", "address": "172.18.0.7", "state": "UP", "sessions": 2}
drained:
  description: Whether the slots of O(drain) had no session left in time (true when
    there is nothing to drain).
  returned: always
  type: bool
  sample: true
waited_s:
  description: Seconds waited for O(ready) and for the drain.
  returned: always
  type: dict
  sample: {"ready": 1.4, "drain": 2.8}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import docker_argument_spec, docker_client, find_container
from ansible.module_utils.prosaas_proxy import BACKEND_NAME
from ansible.module_utils.prosaas_proxy_runtime import (
    Proxy,
    ProxyError,
    address_on,
    as_address,
    bring_up,
    put_all,
    wait_drained,
)


def address_of(module: AnsibleModule, client: Any, proxy: Any, option: str, given: str) -> str:
    """GIVEN as an IP address: itself, or the address of the container so named on a
    network it shares with the proxy; "" for a container that is not running (nothing to
    drain), a failure for one that should be READY."""
    address = as_address(given)
    if address:
        return address
    container = find_container(client, given)
    address = address_on(container, proxy)
    if address or option != "ready":
        return address
    return module.fail_json(
        msg=f"{option}: container {given} is not running on a network of the proxy"
        f" ({'missing' if container is None else container.status}): start it first"
    )


def addresses(module: AnsibleModule, client: Any, proxy: Any) -> dict[str, list[str]]:
    """The addresses of ready, drain and maint, normalized; fails on an address that is in
    two of them."""
    wanted: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for option in ("ready", "drain", "maint"):
        wanted[option] = []
        for given in module.params[option]:
            address = address_of(module, client, proxy, option, given)
            if not address:
                continue
            if address in seen:
                module.fail_json(
                    msg=f"{address} is in both {seen[address]} and {option}: give it one state"
                )
            seen[address] = option
            wanted[option].append(address)
    return wanted


def switch(module: AnsibleModule, proxy: Proxy, wanted: dict[str, list[str]]) -> None:
    """Ready, then drain and maint, then wait for the drain; exits the module."""
    params = module.params
    waited_ready = bring_up(proxy, wanted["ready"], params["timeout"])
    put_all(proxy, wanted["drain"], "drain")
    put_all(proxy, wanted["maint"], "maint")
    drained, waited_drain = wait_drained(proxy, wanted["drain"], params["drain_timeout"])
    module.exit_json(
        changed=proxy.changed,
        actions=proxy.actions,
        servers=[slot.as_result() for slot in proxy.slots()],
        drained=drained,
        waited_s={"ready": round(waited_ready, 1), "drain": round(waited_drain, 1)},
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            container={"type": "str", "required": True},
            backend={"type": "str", "required": True},
            ready={"type": "list", "elements": "str", "default": []},
            drain={"type": "list", "elements": "str", "default": []},
            maint={"type": "list", "elements": "str", "default": []},
            timeout={"type": "int", "default": 60},
            drain_timeout={"type": "int", "default": 30},
        ),
        supports_check_mode=True,
    )
    name, backend = module.params["container"], module.params["backend"]
    if not BACKEND_NAME.match(backend):
        module.fail_json(msg=f"backend {backend!r}: a service name has letters, digits, . _ : -")
    client = docker_client(module)
    container = find_container(client, name)
    running = container is not None and container.status == "running"
    if not running and not module.params["ready"]:
        # No proxy serving: no request reaches these containers, nothing to take out.
        module.exit_json(changed=False, actions=[], servers=[], drained=True, waited_s={})
    if container is None:
        module.fail_json(
            msg=f"proxy container {name} not found on the engine at "
            f"{module.params['docker_host']}: start the proxy service, or name its container"
        )
    if not running:
        module.fail_json(
            msg=f"proxy container {name} is {container.status}, not running: start it "
            f"(docker logs {name} says why it stopped)"
        )
    wanted = addresses(module, client, container)
    proxy = Proxy(container, backend, module.check_mode, module.warn)
    try:
        switch(module, proxy, wanted)
    except ProxyError as exc:
        module.fail_json(
            msg=str(exc),
            changed=proxy.changed,
            actions=proxy.actions,
            servers=[slot.as_result() for slot in exc.slots],
        )


if __name__ == "__main__":
    main()
