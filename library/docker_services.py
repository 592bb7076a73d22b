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
  - In check mode nothing is created or started, and the result says what would have been
    done, which makes the module a comparison of what runs with what is wanted.
version_added: "0.1.0"
author: prosaas-deploy
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
    description: Seconds between SIGTERM and SIGKILL when a container is recreated.
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
waited:
  description: Seconds until each container was ready, by container name.
  returned: success, unless O(wait=none) or in check mode
  type: dict
  sample: {"prosaas-api": 3.1, "worker": 2.2}
"""

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    one_line,
    wait_ready,
)
from ansible.module_utils.prosaas_schema import SERVICE_OPTIONS
from ansible.module_utils.prosaas_service import ServiceManager, describe

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

SERVICE_LABEL = "prosaas.service"


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


def bring_up(manager: ServiceManager) -> Any:
    """Start one service (or find what would be done); its container, None in check mode."""
    try:
        return manager.ensure_started()
    except APIError as exc:
        manager.fail(f"the Docker engine refused: {one_line(exc)}")
    return None


def outcome(entry: dict[str, Any], manager: ServiceManager, container: Any) -> dict[str, Any]:
    return {
        "service": entry["name"],
        "name": manager.name,
        "changed": manager.changed,
        "actions": manager.actions,
        "differences": manager.differences,
        "running_image": manager.running_image,
        "container": describe(container),
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    client = docker_client(module)
    managers = [
        ServiceManager(module, client, service_params(params, entry))
        for entry in params["services"]
    ]
    containers = {manager.name: bring_up(manager) for manager in managers}
    result: dict[str, Any] = {
        "changed": any(manager.changed for manager in managers),
        "diff": [manager.diff for manager in managers],
    }
    if params["wait"] != "none" and not module.check_mode:
        done = [{"name": m.name, "actions": m.actions} for m in managers]
        result["waited"] = wait_ready(
            module, containers, params["wait"], params["wait_timeout"], services=done
        )
    result["services"] = [
        outcome(entry, manager, containers[manager.name])
        for entry, manager in zip(params["services"], managers, strict=True)
    ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
