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
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import docker_argument_spec, docker_client, one_line
from ansible.module_utils.prosaas_service import SERVICE_ARGS, ServiceManager

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError


def argument_spec() -> dict[str, Any]:
    return docker_argument_spec(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "started", "choices": ["started", "stopped", "absent"]},
        network={"type": "str"},
        labels={"type": "dict", "default": {}},
        create_labels={"type": "dict", "default": {}},
        wait={"type": "str", "default": "running", "choices": ["none", "running", "healthy"]},
        wait_timeout={"type": "int", "default": 120},
        stop_timeout={"type": "int", "default": 30},
        **SERVICE_ARGS,
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "started", ("image",))],
        supports_check_mode=True,
    )
    manager = ServiceManager(module, docker_client(module), module.params)
    try:
        result = manager.run()
    except APIError as exc:
        manager.fail(f"the Docker engine refused: {one_line(exc)}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
