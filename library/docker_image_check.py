#!/usr/bin/python
"""Ansible module: check that the Docker engine answers and that images exist on it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_image_check
short_description: Check that the engine answers and that the given images exist on it
description:
  - Read-only preflight check. Connects to the engine and looks up every image by reference.
  - Fails with one line naming the missing images, so nothing is stopped before they exist.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  images:
    description: Image references that must exist on the engine.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - prosaas_read_only
  - prosaas_docker
"""

EXAMPLES = r"""
- name: Check that every image of the release exists
  docker_image_check:
    images:
      - prosaas-demo/app:v2
      - prosaas-demo/redis:7
"""

RETURN = r"""
engine_version:
  description: Version of the engine that answered.
  returned: always
  type: str
  sample: "20.10.24+dfsg1"
images:
  description: Image ID per reference that exists.
  returned: always
  type: dict
  sample: {"prosaas-demo/app:v2": "sha256:9c1f0d4e2a7b"}
missing:
  description: References not found on the engine.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    docker_argument_spec,
    docker_client,
    find_image_id,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            images={"type": "list", "elements": "str", "required": True}
        ),
        supports_check_mode=True,
    )
    client = docker_client(module)
    found: dict[str, str] = {}
    missing: list[str] = []
    for reference in module.params["images"]:
        image_id = find_image_id(client, reference)
        if image_id is None:
            missing.append(reference)
        else:
            found[reference] = image_id
    result = {
        "changed": False,
        "engine_version": client.version().get("Version", "unknown"),
        "images": found,
        "missing": missing,
    }
    if missing:
        module.fail_json(
            msg=f"images not found on the engine at {module.params['docker_host']}: "
            f"{', '.join(missing)} (build or pull them first)",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
