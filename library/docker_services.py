#!/usr/bin/python
"""Ansible module: bring several services' containers up in one call, then wait for them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_services
short_description: Bring several services up in one call and wait until all are healthy
description:
  - Creates or recreates, then starts, the container of each entry of O(services), in
    order, all in one module call. A container is recreated only when its image or
    configuration differ from the wanted ones, and the result names what differed. The spec
    it was created from is kept in the C(prosaas.spec) label, without secret values.
  - Then waits for all of them together, so their start-up times overlap.
  - Each container is named O(name_prefix) followed by the service name, answers on
    O(network) to the service name unless the entry sets O(services[].aliases),
    and carries the label C(prosaas.service) with the service name besides O(labels).
  - With O(replace=beside), a running container that differs is not stopped first. Its
    replacement starts beside it as C(<name>-next), with the same network alias, and once
    every replacement is healthy each routed one is put in the proxy's rotation, the old
    one drained (its requests in flight finish), stopped gracefully and kept stopped as
    C(<name>-previous); the replacement then takes the service's name. A replacement that is
    kept as C(<name>-previous) and is what is wanted (a rollback) is started again instead
    of a new one. If a replacement is never healthy, or the proxy does not take it, every
    replacement is removed and the old containers serve on, put back in rotation.
  - A C(<name>-next) container left by a run that died in the middle of a switch is removed,
    or becomes the service's container when that one is gone.
  - With O(proxy_container), each container of a service in O(proxy_backends) must also be
    UP in the proxy's rotation (through the proxy's runtime API, C(docker exec proxy-api))
    before the module returns. In place, every slot of those backends that a stop or a drain
    left drained is readied while the containers start, in one runtime API line.
  - In check mode nothing is created or started, and the result says what would have been
    done, which makes the module a comparison of what runs with what is wanted.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  services:
    description: The services, started in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Service name.
        type: str
        required: true
      image:
        description: Image reference; must exist on the engine.
        type: str
        required: true
      command:
        description: Arguments to the image's entrypoint; the image's default when omitted.
        type: list
        elements: str
      env:
        description: Environment variables.
        type: dict
        default: {}
      secret_env:
        description: Environment variables whose values are secret; never logged, never in a label.
        type: dict
        default: {}
      secret_files:
        description:
          - Files whose content is secret (a TLS key), by absolute path in the container.
          - Put into the container once it is created and before it starts, with the
            engine's archive API, owned by the user the container runs as, mode 0600; never
            logged, never in its environment, command line or labels (the spec label names
            the paths only).
          - A restart keeps them; a later run compares each file's content with the wanted
            one and recreates the container when one differs or is missing.
        type: dict
        default: {}
      ports:
        description: Published ports as V([ip:][host_port:]container_port[/proto]).
        type: list
        elements: str
        default: []
      aliases:
        description: Names the container answers to on O(network); the service name when empty.
        type: list
        elements: str
        default: []
      volumes:
        description: Named volumes or bind mounts as V(source:/target[:ro|rw]).
        type: list
        elements: str
        default: []
      healthcheck:
        description: Health check overriding the image's; durations in seconds.
        type: dict
        suboptions:
          test:
            description: Check command in the engine's form, e.g. V(["CMD", "true"]).
            type: list
            elements: str
            required: true
          interval:
            description: Seconds between checks.
            type: float
          timeout:
            description: Seconds before one check counts as failed.
            type: float
          retries:
            description: Consecutive failures before the container is unhealthy.
            type: int
          start_period:
            description: Seconds during which failures do not count.
            type: float
      restart_policy:
        description: Engine restart policy.
        type: str
        choices: ["no", always, unless-stopped, on-failure]
        default: unless-stopped
      user:
        description: User (name or uid[:gid]) the container runs as; the image's when omitted.
        type: str
  name_prefix:
    description: Put in front of each service name to name its container.
    type: str
    default: ""
  network:
    description: User-defined network to attach the containers to; created when missing.
    type: str
  labels:
    description: Labels of every container; a change recreates it.
    type: dict
    default: {}
  create_labels:
    description: Labels set when a container is (re)created, and never compared.
    type: dict
    default: {}
  wait:
    description: What to wait for once every service is started.
    type: str
    choices: [none, running, healthy]
    default: healthy
  wait_timeout:
    description: Seconds to wait for all of them.
    type: int
    default: 120
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL when a container is recreated or
      replaced.
    type: int
    default: 30
  replace:
    description: How a running container that differs is replaced. V(stop_first) removes it,
      then starts the new one; V(beside) starts the new one beside it and switches over with
      no downtime (see the description).
    type: str
    choices: [stop_first, beside]
    default: stop_first
  proxy_container:
    description: Name of the proxy's container (HAProxy with C(proxy-api)); empty when no
      proxy routes to these services.
    type: str
    default: ""
  proxy_backends:
    description: The services the proxy routes to, each the name of its backend.
    type: list
    elements: str
    default: []
  drain_timeout:
    description: Seconds a replaced container's requests in flight get to finish once the
      proxy sends it no new one, before it is stopped anyway (with a warning).
    type: int
    default: 30
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Reports what would be done for each service; changes nothing, waits for nothing.
  diff_mode:
    support: full
    description: Shows each service's spec before and after, secret values left out.
notes:
  - The module runs where the Docker SDK is installed; O(docker_host) may name a remote engine.
"""

EXAMPLES = r"""
- name: Start the app services on v2 and wait until all are healthy
  docker_services:
    services:
      - name: prosaas-api
        image: prosaas-demo/app:v2
        command: [api]
        secret_env:
          DATABASE_URL: "{{ prosaas_database_url }}"
        ports: ["127.0.0.1:8080:8000"]
      - name: worker
        image: prosaas-demo/app:v2
        command: [worker]
    network: prosaas
    labels:
      prosaas.project: prosaas
    create_labels:
      prosaas.release: "20261124T120000Z-v2"
    wait_timeout: 90

- name: Replace the app services with no downtime behind the proxy
  docker_services:
    services: "{{ prosaas_app_services }}"
    network: prosaas
    replace: beside
    proxy_container: proxy
    proxy_backends: [prosaas-api, prosaas-calls]
    drain_timeout: 30
    wait_timeout: 120
- name: Compare what runs with the release, changing nothing
  docker_services:
    services: "{{ prosaas_app_services }}"
    network: prosaas
  check_mode: true
  register: compared
"""

RETURN = r"""
services:
  description: What was done for each service, in order.
  returned: always
  type: list
  elements: dict
  sample: [{"service": "prosaas-api", "name": "prosaas-api", "changed": true,
            "actions": ["recreated (differences: image)", "started"], "differences": ["image"],
            "running_image": "prosaas-demo/app:v1",
            "container": {"id": "4f1c2e0a9b7d", "name": "prosaas-api",
                          "image": "prosaas-demo/app:v2", "status": "running",
                          "health": "starting"}}]
switched:
  description: With O(replace=beside), how each replaced service switched over, by service.
  returned: when a container was replaced beside the old one
  type: dict
  sample: {"prosaas-api": {"proxy": ["ready prosaas-api2 (172.18.0.9)",
           "drain prosaas-api1 (172.18.0.5)"], "drained": true, "stopped_s": 0.4}}
waited:
  description: Seconds until each container was ready, by container name.
  returned: success, unless O(wait=none) or in check mode
  type: dict
  sample: {"prosaas-api": 3.1, "worker": 2.2}
"""

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    NotReady,
    docker_argument_spec,
    docker_client,
    one_line,
    poll_ready,
)
from ansible.module_utils.prosaas_failpoint import failpoint
from ansible.module_utils.prosaas_proxy_runtime import (
    Proxy,
    ProxyError,
    address_on,
    bring_up,
    drain_backends,
    put_all,
    ready_backends,
    running_proxy,
)
from ansible.module_utils.prosaas_schema import SERVICE_OPTIONS
from ansible.module_utils.prosaas_service import ServiceManager, describe

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

SERVICE_LABEL = "prosaas.service"
# How long a proxy that could not be reached gets to show the engine it died, and how often.
PROXY_SETTLE_S = 5.0
PROXY_SETTLE_POLL_S = 0.2


def argument_spec() -> dict[str, Any]:
    return docker_argument_spec(
        services={"type": "list", "elements": "dict", "required": True, "options": SERVICE_OPTIONS},
        name_prefix={"type": "str", "default": ""},
        network={"type": "str"},
        labels={"type": "dict", "default": {}},
        create_labels={"type": "dict", "default": {}},
        wait={"type": "str", "default": "healthy", "choices": ["none", "running", "healthy"]},
        wait_timeout={"type": "int", "default": 120},
        stop_timeout={"type": "int", "default": 30},
        replace={"type": "str", "default": "stop_first", "choices": ["stop_first", "beside"]},
        proxy_container={"type": "str", "default": ""},
        proxy_backends={"type": "list", "elements": "str", "default": []},
        drain_timeout={"type": "int", "default": 30},
    )


def service_params(params: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The ServiceManager's parameters for one entry of SERVICES."""
    return {
        **entry,
        "name": params["name_prefix"] + entry["name"],
        "network": params["network"],
        "network_aliases": entry["aliases"] or [entry["name"]],
        "labels": {**params["labels"], SERVICE_LABEL: entry["name"]},
        "create_labels": params["create_labels"],
        "stop_timeout": params["stop_timeout"],
        "docker_host": params["docker_host"],
    }


def ready_leaving_errors(runtime: Proxy, backends: list[str]) -> None:
    """ready_backends; a proxy that cannot be asked is left to the rotation's own wait
    (bring_up), which readies the slot it finds and fails in one line."""
    with contextlib.suppress(ProxyError):
        ready_backends(runtime, backends)


class Run:
    """One call's services: their managers, what they started, and how to undo it."""

    def __init__(self, module: AnsibleModule, client: Any) -> None:
        self.module = module
        self.client = client
        params = module.params
        self.entries = params["services"]
        self.managers = [
            ServiceManager(module, client, service_params(params, entry)) for entry in self.entries
        ]
        self.old: dict[str, Any] = {}  # replaced containers, by manager name (beside)
        self.new: dict[str, Any] = {}  # the container to wait for, by manager name
        self.switched: dict[str, dict[str, Any]] = {}
        self.waited: dict[str, float] = {}

    def routed(self) -> list[tuple[str, ServiceManager]]:
        backends = self.module.params["proxy_backends"]
        return [
            (entry["name"], manager)
            for entry, manager in zip(self.entries, self.managers, strict=True)
            if entry["name"] in backends
        ]

    def fail(self, reason: str) -> NoReturn:
        self.module.fail_json(
            msg=reason,
            changed=any(manager.changed for manager in self.managers),
            services=[{"name": m.name, "actions": m.actions} for m in self.managers],
            waited=self.waited,
            switched=self.switched,
        )

    def start(self) -> None:
        """Start every service, in order: in place, or beside the running one."""
        beside = self.module.params["replace"] == "beside"
        for manager in self.managers:
            try:
                if beside:
                    old, new = manager.start_beside()
                    if old is not None:
                        self.old[manager.name] = old
                else:
                    new = manager.ensure_started()
            except APIError as exc:
                self.undo()
                self.fail(f"service {manager.name}: the Docker engine refused: {one_line(exc)}")
            self.new[manager.name] = new

    def wait(self) -> None:
        params = self.module.params
        if params["wait"] == "none" or self.module.check_mode:
            return
        try:
            self.waited = poll_ready(self.new, params["wait"], params["wait_timeout"])
        except NotReady as exc:
            self.waited = exc.waited
            self.undo()
            self.fail(f"{exc}{self.undone()}")
        failpoint("services-healthy")

    @contextlib.contextmanager
    def readying_early(self) -> Iterator[None]:
        """In place (the stop flow), while the containers start: ready every slot of the
        routed backends that a stop or a drain left drained, in one runtime API line beside
        the start, so that a new container takes requests as soon as the proxy has placed it
        and its own check passes, not after every service's health check and the rotation
        below (which then finds it UP). Errors are left to the rotation's own wait."""
        name = self.module.params["proxy_container"]
        proxy = (
            running_proxy(self.client, name)
            if name and self.module.params["replace"] != "beside" and not self.module.check_mode
            else None
        )
        backends = [route[0] for route in self.routed()]
        if proxy is None or not backends:
            yield
            return
        runtime = Proxy(proxy, ", ".join(backends), False, self.module.warn)
        thread = threading.Thread(target=ready_leaving_errors, args=(runtime, backends))
        thread.start()
        try:
            yield
        finally:
            thread.join()

    def proxy(self) -> Any:
        name = self.module.params["proxy_container"]
        if not name or not self.routed() or self.module.check_mode:
            return None
        container = running_proxy(self.client, name, wait=self.module.params["wait_timeout"])
        if container is None:
            self.undo()
            self.fail(f"proxy container {name} is not running: start the proxy service first")
        return container

    def put_in_rotation(self, proxy: Any) -> None:
        """Every routed container UP in the proxy; beside, each old one drained after its
        replacement is UP."""
        params = self.module.params
        started_at = proxy.attrs["State"]["StartedAt"]
        for backend, manager in self.routed():
            runtime = Proxy(proxy, backend, self.module.check_mode, self.module.warn)
            new, old = self.new[manager.name], self.old.get(manager.name)
            failure, settle = "", 0.0
            try:
                if new is not None:
                    bring_up(runtime, [address_on(new, proxy)], params["wait_timeout"])
                drained = True
                if old is not None:
                    drained = drain_backends(
                        runtime,
                        {backend: address_on(old, proxy)},
                        params["drain_timeout"],
                        held_at="switch-draining",
                    )[0]
            except ProxyError as exc:
                failure, settle = str(exc), PROXY_SETTLE_S if exc.transient else 0.0
            # A proxy that restarted meanwhile lost what it was told, even when it answered.
            if failure or old is not None:
                failure = restarted(proxy, started_at, settle) or failure
            if failure:
                self.undo(proxy)
                self.fail(f"{failure}{self.undone()}")
            self.switched.setdefault(manager.name, {}).update(
                proxy=runtime.actions, drained=drained
            )

    def retire_old(self) -> None:
        """Stop the replaced containers gracefully, all at once, and let the new ones take
        their names."""
        if not self.old or self.module.check_mode:
            return
        by_name = {manager.name: manager for manager in self.managers}
        with ThreadPoolExecutor(max_workers=len(self.old)) as pool:
            stops = {
                name: pool.submit(timed_stop, by_name[name], old) for name, old in self.old.items()
            }
        try:
            for name, stop in stops.items():
                self.switched.setdefault(name, {})["stopped_s"] = stop.result()
                by_name[name].take_over(self.old[name], self.new[name])
        except APIError as exc:
            self.fail(f"could not retire the replaced containers: {one_line(exc)}")

    def undo(self, proxy: Any = None) -> None:
        """Put the old containers back in the proxy's rotation, then remove every
        replacement started beside one of them."""
        if self.module.check_mode:
            return
        if proxy is not None:
            for backend, manager in self.routed():
                old = self.old.get(manager.name)
                if old is not None:
                    with contextlib.suppress(ProxyError):
                        runtime = Proxy(proxy, backend, False, self.module.warn)
                        put_all(runtime, [address_on(old, proxy)], "ready")
        for manager in self.managers:
            new = self.new.get(manager.name)
            if manager.name in self.old and new is not None:
                manager.discard(new)

    def undone(self) -> str:
        if not self.old:
            return ""
        return f"; the replaced containers serve on ({', '.join(sorted(self.old))})"

    def outcome(self) -> list[dict[str, Any]]:
        return [
            {
                "service": entry["name"],
                "name": manager.name,
                "changed": manager.changed,
                "actions": manager.actions,
                "differences": manager.differences,
                "running_image": manager.running_image,
                "container": describe(self.new[manager.name]),
            }
            for entry, manager in zip(self.entries, self.managers, strict=True)
        ]


def restarted(proxy: Any, started_at: str, settle: float = 0) -> str:
    """Why the switch cannot be trusted when the proxy is no longer the one that started at
    STARTED_AT (it lost what it was told); "" when it is. SETTLE: seconds to give the
    engine to notice a proxy that just died (its exec can fail before its state changes)."""
    deadline = time.monotonic() + settle
    while True:
        with contextlib.suppress(APIError):
            proxy.reload()
        state = proxy.attrs["State"]
        if state["StartedAt"] != started_at or state["Status"] != "running":
            return (
                f"proxy container {proxy.name} restarted during the switch (now"
                f" {state['Status']}, restarts: {proxy.attrs.get('RestartCount', '?')});"
                " the switch is undone"
            )
        if time.monotonic() >= deadline:
            return ""
        time.sleep(PROXY_SETTLE_POLL_S)


def timed_stop(manager: ServiceManager, container: Any) -> float:
    started = time.monotonic()
    manager.stop(container)
    return round(time.monotonic() - started, 1)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run = Run(module, docker_client(module))
    with run.readying_early():
        run.start()
        run.wait()
    proxy = run.proxy()
    if proxy is not None:
        run.put_in_rotation(proxy)
    run.retire_old()
    result: dict[str, Any] = {
        "changed": any(manager.changed for manager in run.managers),
        "diff": [manager.diff for manager in run.managers],
        "services": run.outcome(),
    }
    if module.params["wait"] != "none" and not module.check_mode:
        result["waited"] = run.waited
    if run.old:
        result["switched"] = run.switched
    module.exit_json(**result)


if __name__ == "__main__":
    main()
