#!/usr/bin/python
"""Ansible module: pull images from a registry and say which digest each one is."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_pull
short_description: Pull images from a registry and return the digest of each
description:
  - Pulls every image of O(images) on the engine, with the registry's credentials when
    O(registry) is given, and returns per image the C(repository@sha256:...) reference
    that pins what was pulled, so a release can run and roll back by digest.
  - The credentials go with each request to the engine and are kept nowhere on the host
    (no C(docker login), no C(~/.docker/config.json)).
  - A pull that fails - registry unreachable, credentials refused, an image not in the
    registry, no disk space, the engine gone mid-pull - fails the module with one line that
    names the image and what to do. The password never appears in a result or a message.
  - In check mode nothing is pulled; the registry is asked for each image's digest.
version_added: "0.2.0"
author: prosaas-deploy (!UNKNOWN)
options:
  images:
    description: Image references to pull (C(repository:tag) or C(repository@sha256:...)).
    type: list
    elements: str
    required: true
  only_missing:
    description:
      - Pull only the images the engine does not have yet, so a release whose images are
        all on the host starts without the registry (a rollback, say).
    type: bool
    default: false
extends_documentation_fragment:
  - prosaas_docker
  - prosaas_registry
attributes:
  check_mode:
    support: full
    description: Pulls nothing; returns the digest the registry has for each image.
  diff_mode:
    support: none
    description: RV(pulls) and RV(digests) say what it pulled; there is no before and after.
"""

EXAMPLES = r"""
- name: Pull the release's images and pin their digests
  docker_pull:
    images:
      - registry.example.internal:5000/prosaas/app:v2
      - registry.example.internal:5000/prosaas/migrate:v2
    registry:
      host: registry.example.internal:5000
      user: deploy-bot
    registry_password: "{{ vault_prosaas_registry_password }}"
  register: pulled
"""

RETURN = r"""
digests:
  description: The C(repository@sha256:...) reference of each image, by the reference asked for.
  returned: always
  type: dict
  sample: {"registry.example.internal:5000/prosaas/app:v2":
           "registry.example.internal:5000/prosaas/app@sha256:3b1f...e9"}
pulls:
  description: Per image, what the pull transferred.
  returned: always
  type: list
  elements: dict
  sample: [{"reference": "registry.example.internal:5000/prosaas/app:v2",
            "digest_reference": "registry.example.internal:5000/prosaas/app@sha256:3b1f...e9",
            "layers_pulled": 1, "layers_present": 6, "bytes_pulled": 1842, "seconds": 0.4}]
would_pull:
  description: In check mode, the images (by digest) the engine lacks and a pull would fetch.
  returned: always
  type: list
  elements: str
  sample: ["registry.example.internal:5000/prosaas/app@sha256:3b1f...e9"]
actions:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
  sample: ["logged in to registry.example.internal:5000 as deploy-bot",
           "pulled registry.example.internal:5000/prosaas/app:v2: 1 layer(s), 1842 bytes
            (6 already present) in 0.4 s"]
"""

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    ENGINE_CONNECTION_ERRORS,
    REGISTRY_ARGS,
    DockerException,
    docker_argument_spec,
    docker_client,
    find_image_id,
    one_line,
)
from ansible.module_utils.prosaas_pull import (
    ENGINE_WENT_AWAY,
    PullProgress,
    digest_reference,
    pull_failure,
    split_reference,
)


class Puller:
    """Pulls the images one by one with the registry's credentials, recording each step."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.client = docker_client(module)
        registry = module.params["registry"] or {}
        self.registry = registry.get("host") or ""
        self.user = registry.get("user") or ""
        password = module.params["registry_password"]
        self.auth = {"username": self.user, "password": password} if self.user else None
        self.actions: list[str] = []
        self.pulls: list[dict[str, Any]] = []
        self.digests: dict[str, str] = {}
        self.would_pull: list[str] = []

    def fail(self, text: str, reference: str) -> None:
        message = pull_failure(text, reference=reference, registry=self.registry, user=self.user)
        self.module.fail_json(msg=message, actions=self.actions, digests=self.digests)

    @contextlib.contextmanager
    def failing_on_engine_errors(self, reference: str) -> Iterator[None]:
        """One line for what the engine refuses, or for its connection dropping mid-call."""
        try:
            yield
        except DockerException as exc:
            self.fail(one_line(exc), reference)
        except ENGINE_CONNECTION_ERRORS as exc:
            self.fail(f"{ENGINE_WENT_AWAY}: {one_line(exc)}", reference)

    def log_in(self) -> None:
        """Check the credentials once, before any pull, so a refusal says so first."""
        if not self.auth:
            return
        with self.failing_on_engine_errors(self.registry):
            self.client.login(registry=self.registry, reauth=True, **self.auth)
        self.actions.append(f"logged in to {self.registry} as {self.user}")

    def pull(self, reference: str) -> None:
        repository, tag = split_reference(reference)
        progress = PullProgress()
        started = time.monotonic()
        with self.failing_on_engine_errors(reference):
            stream = self.client.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=self.auth
            )
            for event in stream:
                progress.read(event)
        if progress.error:  # what the engine said beats what a lookup would find after it
            self.fail(progress.error, reference)
        with self.failing_on_engine_errors(reference):
            pinned = digest_reference(
                reference, self.client.images.get(reference).attrs.get("RepoDigests") or []
            )
        if pinned is None:
            self.fail("the engine knows no digest for it after the pull", reference)
        summary = {**progress.summary(), "seconds": round(time.monotonic() - started, 1)}
        self.digests[reference] = pinned
        self.pulls.append({"reference": reference, "digest_reference": pinned, **summary})
        self.actions.append(
            f"pulled {reference}: {summary['layers_pulled']} layer(s), "
            f"{summary['bytes_pulled']} bytes ({summary['layers_present']} already present) "
            f"in {summary['seconds']} s"
        )

    def look_up(self, reference: str) -> None:
        """Check mode: the digest the registry has for REFERENCE, nothing pulled; noted in
        would_pull when the engine lacks it."""
        repository = split_reference(reference)[0]
        with self.failing_on_engine_errors(reference):
            data = self.client.images.get_registry_data(reference, auth_config=self.auth)
        pinned = f"{repository}@{data.id}"
        self.digests[reference] = pinned
        if find_image_id(self.client, pinned) is None:
            self.would_pull.append(pinned)
            self.actions.append(f"would pull {reference} ({data.id})")
        else:
            self.actions.append(f"{reference} ({data.id}) already on the engine")

    def run(self) -> dict[str, Any]:
        wanted = list(dict.fromkeys(self.module.params["images"]))
        if self.module.params["only_missing"]:
            present = [ref for ref in wanted if find_image_id(self.client, ref) is not None]
            self.actions += [f"{ref} already on the engine" for ref in present]
            wanted = [ref for ref in wanted if ref not in present]
        if wanted:
            self.log_in()
        for reference in wanted:
            if self.module.check_mode:
                self.look_up(reference)
            else:
                self.pull(reference)
        changed = any(pull["layers_pulled"] for pull in self.pulls)
        return {
            "changed": changed,
            "digests": self.digests,
            "pulls": self.pulls,
            "would_pull": self.would_pull,
            "actions": self.actions,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            images={"type": "list", "elements": "str", "required": True},
            **REGISTRY_ARGS,
            only_missing={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    module.exit_json(**Puller(module).run())


if __name__ == "__main__":
    main()
