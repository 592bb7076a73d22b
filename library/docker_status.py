#!/usr/bin/python
"""Ansible module: report what runs in the containers of named services (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_status
short_description: Report the image, release, status and health of named containers
description:
  - Read-only. Looks up each container by name and reports its image, the C(prosaas.*)
    labels the deploy set (service, release, version), its status and its health.
  - A container that does not exist is reported with RV(containers[].status=absent); that is
    not a failure. The module fails only when the engine does not answer.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  names:
    description: Container names to look up, in the order to report them.
    type: list
    elements: str
    required: true
  log_lines:
    description:
      - Last lines of each container's log to return in RV(containers[].log); 0 returns none.
      - Used to follow a long one-shot job (a backfill) while it runs.
    type: int
    default: 0
extends_documentation_fragment:
  - prosaas_read_only
  - prosaas_docker
seealso:
  - module: docker_services
"""

EXAMPLES = r"""
- name: Look at the app containers
  docker_status:
    names: [prosaas-api, prosaas-calls, worker]
  register: app_status

- name: Name the ones that run
  ansible.builtin.debug:
    msg: "running: {{ app_status.running | join(', ') or 'none' }}"

- name: Read the last line a running backfill logged
  docker_status:
    names: [prosaas-backfill]
    log_lines: 1
  register: backfill_status
"""

RETURN = r"""
containers:
  description: One entry per name, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: prosaas-api
      id: 4f1c2e0a9b7d
      image: prosaas-demo/app:v2
      service: prosaas-api
      release: 20261124T120000Z-v2
      version: v2
      status: running
      health: healthy
      exit_code: 0
      started_at: "2026-11-24T12:03:11.52Z"
      log: []
    - name: worker
      id: ""
      image: ""
      service: ""
      release: ""
      version: ""
      status: absent
      health: none
      exit_code: null
      started_at: ""
      log: []
  contains:
    name:
      description: The name looked up.
      type: str
    id:
      description: The container's short id; empty when it does not exist.
      type: str
    image:
      description: The image the container was created from; empty when it does not exist.
      type: str
    service:
      description: Its C(prosaas.service) label; empty without one.
      type: str
    release:
      description: Its C(prosaas.release) label; empty without one.
      type: str
    version:
      description: Its C(prosaas.version) label; empty without one.
      type: str
    status:
      description: The engine's status of the container, or C(absent) when there is none.
      type: str
      sample: running
    health:
      description: The health check's status, C(none) without a health check.
      type: str
      sample: healthy
    exit_code:
      description: Its last exit code; null when it does not exist.
      type: int
    started_at:
      description: When it last started, as the engine says; empty when it does not exist.
      type: str
    log:
      description: Its last O(log_lines) log lines; empty with O(log_lines=0).
      type: list
      elements: str
running:
  description: Names of the containers whose status is C(running) (or C(restarting)).
  returned: always
  type: list
  elements: str
  sample: [prosaas-api]
engine_version:
  description: Version of the engine that answered.
  returned: always
  type: str
  sample: "20.10.24+dfsg1"
"""

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    find_container,
    last_log_lines,
    one_line,
)

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

RUNNING = ("running", "restarting")


def absent(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": "",
        "image": "",
        "service": "",
        "release": "",
        "version": "",
        "status": "absent",
        "health": "none",
        "exit_code": None,
        "started_at": "",
        "log": [],
    }


def log_of(container: Any, count: int) -> list[str]:
    if count <= 0:
        return []
    try:
        return last_log_lines(container, count)
    except APIError:  # a one-shot container removed (or being removed) as it ended
        return []


def describe(name: str, container: Any, log_lines: int) -> dict[str, Any]:
    if container is None:
        return absent(name)
    attrs = container.attrs
    state = attrs.get("State") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return {
        "name": name,
        "id": container.short_id,
        "image": (attrs.get("Config") or {}).get("Image", ""),
        "service": labels.get("prosaas.service", ""),
        "release": labels.get("prosaas.release", ""),
        "version": labels.get("prosaas.version", ""),
        "status": state.get("Status", "unknown"),
        "health": (state.get("Health") or {}).get("Status", "none"),
        "exit_code": state.get("ExitCode"),
        "started_at": state.get("StartedAt", ""),
        "log": log_of(container, log_lines),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            names={"type": "list", "elements": "str", "required": True},
            log_lines={"type": "int", "default": 0},
        ),
        supports_check_mode=True,
    )
    client = docker_client(module)
    try:
        containers = [
            describe(name, find_container(client, name), module.params["log_lines"])
            for name in module.params["names"]
        ]
        version = client.version().get("Version", "unknown")
    except APIError as exc:
        module.fail_json(msg=f"the Docker engine refused: {one_line(exc)}")
    module.exit_json(
        changed=False,
        containers=containers,
        running=[item["name"] for item in containers if item["status"] in RUNNING],
        engine_version=version,
    )


if __name__ == "__main__":
    main()
