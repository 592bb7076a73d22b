#!/usr/bin/python
"""Ansible module: remove the images of some repositories that nothing keeps on the host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_image_retention
short_description: Remove the images of some repositories that nothing keeps or uses
description:
  - Looks at every image of the engine with a reference (tag or digest) in O(repositories),
    and removes those that no reference of O(keep) names and that no container, running or
    stopped, uses. Images of any other repository are never touched.
  - An image stays when O(keep) names it by one of its tags (C(repository:tag)), one of its
    digests (C(repository@sha256:...)) or its id - by any of its references, even one in
    another repository. Then all of its references stay.
  - An image goes by its references in O(repositories), tags first, each removed without
    force; the engine deletes the image with the last one. An image that also has a
    reference in another repository keeps it, and so stays on the engine.
  - A removal the engine refuses fails the module with one line naming the reference and
    what the engine said; what was removed before is in RV(removed).
version_added: "0.3.0"
author: prosaas-deploy (!UNKNOWN)
options:
  keep:
    description:
      - Images that stay, by C(repository:tag), C(repository@sha256:...) or image id, as the
        engine lists them (C(docker image ls --digests)). A tag is matched only with its tag
        spelled out.
    type: list
    elements: str
    required: true
  repositories:
    description:
      - Repositories whose images may be removed, as in the image references (a registry's
        host and port included), without tag or digest.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Reports in RV(removed) and RV(actions) what would be removed; removes nothing.
  diff_mode:
    support: none
    description: RV(removed) and RV(actions) say what it removed; there is no before and after.
seealso:
  - module: docker_pull
"""

EXAMPLES = r"""
- name: Keep the images of the last releases and those of the containers on the host
  docker_image_retention:
    keep:
      - "registry.example.internal:5000/prosaas/app@{{ app_v2_digest }}"
      - "registry.example.internal:5000/prosaas/migrate@{{ migrate_v2_digest }}"
      - registry.example.internal:5000/prosaas/app:v1
    repositories:
      - registry.example.internal:5000/prosaas/app
      - registry.example.internal:5000/prosaas/migrate
  register: retention

- name: Show what would go, removing nothing
  docker_image_retention:
    keep: "{{ release_images }}"
    repositories: [registry.example.internal:5000/prosaas/app]
  check_mode: true
"""

RETURN = r"""
removed:
  description: The references removed (in check mode, those that would be), in order.
  returned: always
  type: list
  elements: str
  sample: ["registry.example.internal:5000/prosaas/app:v1",
           "registry.example.internal:5000/prosaas/app@sha256:11aa...e9"]
kept:
  description: The references in O(repositories) of the images that stay.
  returned: always
  type: list
  elements: str
  sample: ["registry.example.internal:5000/prosaas/app@sha256:3b1f...e9"]
actions:
  description: What became of each image of O(repositories), and why.
  returned: always
  type: list
  elements: str
  sample: ["kept 3b1f0c6e1d5a (registry.example.internal:5000/prosaas/app@sha256:3b1f...e9):
            named by the kept reference
            registry.example.internal:5000/prosaas/app@sha256:3b1f...e9",
           "kept 77c2e04a9f10 (registry.example.internal:5000/prosaas/app:v3):
            used by container prosaas-api",
           "removed registry.example.internal:5000/prosaas/app:v1,
            registry.example.internal:5000/prosaas/app@sha256:11aa...e9
            (image 0a1b2c3d4e5f deleted)"]
"""

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import docker_argument_spec, docker_client, one_line
from ansible.module_utils.prosaas_retention import Verdict, image_users, judge_all, short_id

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import DockerException, ImageNotFound


class Retention:
    """Removes the images nothing keeps, one reference at a time, recording each step."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.client = docker_client(module)
        self.actions: list[str] = []
        self.removed: list[str] = []
        self.kept: list[str] = []

    def fail(self, msg: str) -> None:
        self.module.fail_json(msg=msg, removed=self.removed, kept=self.kept, actions=self.actions)

    def remove(self, verdict: Verdict) -> None:
        """Remove each reference of VERDICT's image; the engine deletes it with the last one."""
        gone: set[str] = set()
        records: list[dict[str, str]] = []
        for reference in verdict.references:
            if reference in gone:  # the engine drops a repository's digests with its last tag
                continue
            try:
                said = self.client.api.remove_image(reference)
            except ImageNotFound:
                continue  # removed meanwhile
            except DockerException as exc:
                self.fail(
                    f"could not remove {reference} (image {short_id(verdict.image_id)}): "
                    f"{one_line(exc)}"
                )
            gone |= {record["Untagged"] for record in said if "Untagged" in record}
            records += said
        self.removed += verdict.references
        deleted = any(record.get("Deleted") == verdict.image_id for record in records)
        fate = "deleted" if deleted else "left: named in another repository, or a parent image"
        self.actions.append(
            f"removed {', '.join(verdict.references)} (image {short_id(verdict.image_id)} {fate})"
        )

    def run(self) -> dict[str, Any]:
        params = self.module.params
        try:
            images = self.client.api.images()
            users = image_users(self.client.api.containers(all=True))
        except DockerException as exc:
            self.fail(f"could not list the images and containers: {one_line(exc)}")
        for verdict in judge_all(images, params["keep"], params["repositories"], users):
            references = ", ".join(verdict.references)
            if not verdict.removed:
                self.kept += verdict.references
                self.actions.append(
                    f"kept {short_id(verdict.image_id)} ({references}): {verdict.kept_because}"
                )
            elif self.module.check_mode:
                self.removed += verdict.references
                self.actions.append(f"would remove {references}")
            else:
                self.remove(verdict)
        return {
            "changed": bool(self.removed),
            "removed": self.removed,
            "kept": self.kept,
            "actions": self.actions,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            keep={"type": "list", "elements": "str", "required": True},
            repositories={"type": "list", "elements": "str", "required": True},
        ),
        supports_check_mode=True,
    )
    module.exit_json(**Retention(module).run())


if __name__ == "__main__":
    main()
