#!/usr/bin/python
"""Ansible module: bring one service's container to started, stopped or absent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_service
short_description: Bring one service's container to started, stopped or absent
description:
  - Manages the single container of one service of the prosaas stack through the Docker SDK.
  - The container is recreated only when its image or configuration differ from the wanted
    ones, and the result names what differed. The spec it was created from is kept in the
    C(prosaas.spec) label, without secret values.
  - With O(wait=healthy), waits until the engine reports the container healthy; on timeout
    the failure carries the last health check output.
version_added: "0.1.0"
author: prosaas-deploy
options:
  name:
    description: Container name.
    type: str
    required: true
  state:
    description:
      - V(started) creates or recreates the container as needed and starts it.
      - V(stopped) stops it gracefully (SIGTERM, then SIGKILL after O(stop_timeout)).
      - V(absent) stops and removes it.
    type: str
    choices: [started, stopped, absent]
    default: started
  image:
    description: Image reference; must exist on the engine. Required when O(state=started).
    type: str
  command:
    description: Command (arguments to the image's entrypoint); the image's default when omitted.
    type: list
    elements: str
  env:
    description: Environment variables.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables whose values are secret (passwords, DSNs). Never logged, never
        put in a label; compared with the running container's own environment.
    type: dict
    default: {}
  ports:
    description: Published ports as V([ip:][host_port:]container_port[/proto]).
    type: list
    elements: str
    default: []
  network:
    description: User-defined network to attach the container to; created when missing.
    type: str
  network_aliases:
    description: Names the container answers to on O(network).
    type: list
    elements: str
    default: []
  volumes:
    description: Named volumes or bind mounts as V(source:/target[:ro|rw]).
    type: list
    elements: str
    default: []
  labels:
    description: Labels, for example the project and service; a change recreates the container.
    type: dict
    default: {}
  create_labels:
    description:
      - Labels set when the container is created or recreated, and never compared, for
        example the release that created it. An otherwise unchanged container keeps its own.
    type: dict
    default: {}
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
  wait:
    description: What to wait for after O(state=started).
    type: str
    choices: [none, running, healthy]
    default: running
  wait_timeout:
    description: Seconds to wait for O(wait).
    type: int
    default: 120
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL when stopping.
    type: int
    default: 30
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Reports what would be done; changes nothing.
  diff_mode:
    support: full
    description: Shows the spec before and after, secret values left out.
notes:
  - The module runs where the Docker SDK is installed; O(docker_host) may name a remote engine.
"""

EXAMPLES = r"""
- name: Start the API on v2 and wait until it is healthy
  docker_service:
    name: prosaas-api
    image: prosaas-demo/app:v2
    command: [api]
    env:
      RUN_MIGRATIONS_ON_START: "0"
      RUN_MIGRATIONS: "0"
    secret_env:
      DATABASE_URL: "{{ prosaas_database_url }}"
    network: prosaas
    network_aliases: [api]
    ports: ["127.0.0.1:8080:8000"]
    labels:
      prosaas.project: prosaas
      prosaas.service: prosaas-api
    create_labels:
      prosaas.release: "20261124T120000Z-v2"
    wait: healthy
    wait_timeout: 90

- name: Stop the worker gracefully
  docker_service:
    name: worker
    state: stopped
    stop_timeout: 20

- name: Remove a service on a remote engine
  docker_service:
    name: prosaas-calls
    state: absent
    docker_host: ssh://deploy@app2.example.com
"""

RETURN = r"""
actions:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
  sample: ["recreated (differences: env (LOG_LEVEL), image)", "waited 6.1 s until healthy"]
differences:
  description: Settings that differed from the existing container.
  returned: always
  type: list
  elements: str
  sample: ["image"]
container:
  description: The container after the run; empty when absent.
  returned: always
  type: dict
  sample: {"id": "4f1c2e0a9b7d", "name": "prosaas-api", "image": "prosaas-demo/app:v2",
           "status": "running", "health": "healthy"}
"""

import contextlib
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    find_container,
    find_image_id,
    missing_image,
    not_ready_reason,
    one_line,
    readiness,
)
from ansible.module_utils.prosaas_spec import (
    MANAGED_BY,
    MANAGED_LABEL,
    SPEC_LABEL,
    build_spec,
    healthcheck_for_sdk,
    ports_for_sdk,
    secret_env_differences,
    spec_differences,
    spec_from_labels,
    spec_to_label,
    volumes_for_sdk,
)

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

POLL_SECONDS = 0.5


def argument_spec() -> dict[str, Any]:
    return docker_argument_spec(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "started", "choices": ["started", "stopped", "absent"]},
        image={"type": "str"},
        command={"type": "list", "elements": "str"},
        env={"type": "dict", "default": {}},
        secret_env={"type": "dict", "default": {}, "no_log": True},
        ports={"type": "list", "elements": "str", "default": []},
        network={"type": "str"},
        network_aliases={"type": "list", "elements": "str", "default": []},
        volumes={"type": "list", "elements": "str", "default": []},
        labels={"type": "dict", "default": {}},
        create_labels={"type": "dict", "default": {}},
        healthcheck={
            "type": "dict",
            "options": {
                "test": {"type": "list", "elements": "str", "required": True},
                "interval": {"type": "float"},
                "timeout": {"type": "float"},
                "retries": {"type": "int"},
                "start_period": {"type": "float"},
            },
        },
        restart_policy={
            "type": "str",
            "default": "unless-stopped",
            "choices": ["no", "always", "unless-stopped", "on-failure"],
        },
        user={"type": "str"},
        wait={"type": "str", "default": "running", "choices": ["none", "running", "healthy"]},
        wait_timeout={"type": "int", "default": 120},
        stop_timeout={"type": "int", "default": 30},
    )


class ServiceManager:
    """Moves one container to its wanted state, recording each action."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.name = module.params["name"]
        self.client = docker_client(module)
        self.actions: list[str] = []
        self.differences: list[str] = []
        self.changed = False
        self.diff: dict[str, Any] = {"before": {}, "after": {}}

    def fail(self, reason: str) -> None:
        self.module.fail_json(
            msg=f"service {self.name}: {reason}", actions=self.actions, differences=self.differences
        )

    def find_container(self) -> Any:
        return find_container(self.client, self.name)

    def act(self, description: str) -> bool:
        """Record a change; True when it should really be carried out (not in check mode)."""
        self.changed = True
        self.actions.append(
            description if not self.module.check_mode else f"would have {description}"
        )
        return not self.module.check_mode

    def stop(self, container: Any) -> None:
        container.reload()
        if container.status in ("running", "restarting", "paused") and self.act("stopped"):
            container.stop(timeout=self.params["stop_timeout"])

    def remove(self, container: Any, verb: str = "removed") -> None:
        self.stop(container)
        if self.act(verb):
            container.remove(force=True)

    def image_id(self) -> str:
        found = find_image_id(self.client, self.params["image"])
        if found is None:
            self.fail(missing_image(self.params["image"], self.params["docker_host"]))
        return found or ""

    def ensure_network(self) -> None:
        network = self.params["network"]
        if (
            network
            and not self.client.networks.list(names=[network])
            and self.act(f"created network {network}")
        ):
            self.client.networks.create(
                network, driver="bridge", labels={MANAGED_LABEL: MANAGED_BY}
            )

    def create(self, spec: dict[str, Any]) -> Any:
        params = self.params
        labels = {
            **params["create_labels"],
            **params["labels"],
            MANAGED_LABEL: MANAGED_BY,
            SPEC_LABEL: spec_to_label(spec),
        }
        options: dict[str, Any] = {
            "name": self.name,
            "command": params["command"],
            "environment": {**params["env"], **params["secret_env"]},
            "labels": labels,
            "ports": ports_for_sdk(spec["ports"]),
            "volumes": volumes_for_sdk(spec["volumes"]),
            "healthcheck": healthcheck_for_sdk(params["healthcheck"]),
            "restart_policy": {
                "Name": "" if params["restart_policy"] == "no" else params["restart_policy"]
            },
            "user": params["user"],
            "detach": True,
        }
        if params["network"]:
            options["network"] = params["network"]
            options["networking_config"] = {
                params["network"]: self.client.api.create_endpoint_config(
                    aliases=params["network_aliases"] or None
                )
            }
        return self.client.containers.create(params["image"], **options)

    def ensure_started(self) -> Any:
        if not self.params["image"]:
            self.fail("image is required when state=started")
        spec = self.build_spec()
        container = self.find_container()
        self.diff["after"].update(spec)
        if container is not None:
            before = spec_from_labels(container.labels)
            self.diff["before"].update(before or {})
            self.differences = spec_differences(before, spec)
            self.differences += [
                f"secret_env ({key})"
                for key in secret_env_differences(
                    self.params["secret_env"], container.attrs["Config"].get("Env")
                )
            ]
        self.ensure_network()
        if container is not None and self.differences:
            self.remove(container, f"recreated (differences: {', '.join(self.differences)})")
            container = None
        elif container is None:
            self.act("created")
        if container is None:
            if self.module.check_mode:
                return None
            container = self.create(spec)
        container.reload()
        if container.status != "running" and self.act("started"):
            container.start()
        return container

    def build_spec(self) -> dict[str, Any]:
        try:
            return build_spec(self.params, self.image_id())
        except ValueError as exc:
            self.fail(str(exc))
        return {}

    def wait_for(self, container: Any) -> None:
        wanted = self.params["wait"]
        if wanted == "none" or container is None:
            return
        started = time.monotonic()
        deadline = started + self.params["wait_timeout"]
        while True:
            container.reload()
            standing = readiness(container.attrs["State"], wanted)
            if standing == "ready":
                break
            if standing == "exited" or time.monotonic() >= deadline:
                self.fail(not_ready_reason(container, wanted, self.params["wait_timeout"]))
            time.sleep(POLL_SECONDS)
        self.actions.append(f"waited {time.monotonic() - started:.1f} s until {wanted}")

    def run(self) -> dict[str, Any]:
        state = self.params["state"]
        container = self.find_container()
        self.diff["before"]["status"] = container.status if container is not None else "absent"
        if state == "absent" and container is not None:
            self.remove(container)
            container = None
        elif state == "stopped" and container is not None:
            self.stop(container)
        elif state == "started":
            container = self.ensure_started()
            self.wait_for(container)
        self.diff["after"]["status"] = describe(container).get("status", "absent")
        return {
            "changed": self.changed,
            "diff": self.diff,
            "actions": self.actions,
            "differences": self.differences,
            "container": describe(container) if state != "absent" else {},
        }


def describe(container: Any) -> dict[str, Any]:
    if container is None:
        return {}
    container.reload()
    state = container.attrs["State"]
    return {
        "id": container.short_id,
        "name": container.name,
        "image": container.attrs["Config"]["Image"],
        "status": state["Status"],
        "health": (state.get("Health") or {}).get("Status", "none"),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "started", ("image",))],
        supports_check_mode=True,
    )
    manager = ServiceManager(module)
    try:
        result = manager.run()
    except APIError as exc:
        manager.fail(f"the Docker engine refused: {one_line(exc)}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
