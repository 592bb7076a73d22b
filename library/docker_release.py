#!/usr/bin/python
"""Ansible module: build a release's images on this machine and push them to a registry."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_release
short_description: Build a release's images and push them to a registry, never over a released tag
description:
  - Runs on the control (build) machine against its own engine. Builds every image of
    O(images) from its build context with the classic builder (no buildx needed), tags it
    as its O(images[].reference) names it and pushes it to the registry, then returns the
    digest of each.
  - Before anything is built, checks the input (the registry, each reference's tag, each
    build context) and asks the registry for every tag. A release image
    (O(images[].kind=release)) whose tag the registry already has is refused, all of them
    named on one line, unless O(move_tags) is true; an infra image
    (O(images[].kind=infra)) whose tag the registry has is kept as it is, neither built nor
    pushed. So a refusal builds and pushes nothing.
  - Every image is built before the first push, so a failed build pushes nothing.
  - The credentials go with each request to the engine as its auth_config; nothing is
    written to C(~/.docker/config.json), and the password never appears in a result or a
    message.
  - With O(images[].stage_squawk), the squawk of the Python running the module (the
    virtualenv's C(squawk-cli)), else the one on PATH, is copied into the build context as
    C(.build/squawk) first, where the migrate image's Dockerfile lints with it.
  - In check mode nothing is built, staged or pushed; the registry is still asked, so a
    refusal shows.
version_added: "0.3.0"
author: prosaas-deploy (!UNKNOWN)
options:
  images:
    description: The release's images, built and pushed in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      reference:
        description: C(REGISTRY/REPOSITORY:TAG), under O(registry.host).
        type: str
        required: true
      context:
        description: The build context, a directory holding a C(Dockerfile).
        type: path
        required: true
      kind:
        description:
          - V(release), a tag of the release, never overwritten unless O(move_tags);
            V(infra), pushed only when the registry lacks the tag.
        type: str
        choices: [release, infra]
        default: release
      setting:
        description: The inventory setting that names the image, for messages.
        type: str
        default: ""
      context_setting:
        description: The inventory setting that names the build context, for messages.
        type: str
        default: ""
      stage_squawk:
        description: Copy squawk into the context as C(.build/squawk) before the build.
        type: bool
        default: false
      versions:
        description:
          - A folder of migration files (C(NNNN_slug.sql)) that replace the context's C(versions/)
            in the build, which then runs from a copy of the context; empty builds the context
            as it is.
        type: path
        default: ""
      versions_setting:
        description: The inventory setting that names O(images[].versions), for messages.
        type: str
        default: ""
  base_image:
    description: The C(BASE_IMAGE) build argument every build gets.
    type: str
    required: true
  build_args:
    description: More build arguments for every build (an argument a Dockerfile does not
      declare is ignored); O(base_image) wins over a C(BASE_IMAGE) here.
    type: dict
    default: {}
  move_tags:
    description: Push release images over tags the registry already has (moves them).
    type: bool
    default: false
extends_documentation_fragment:
  - prosaas_docker
  - prosaas_registry
attributes:
  check_mode:
    support: full
    description: Builds and pushes nothing; asks the registry for each tag and says what a
      run would build and push, or refuses as a run would.
  diff_mode:
    support: none
    description: RV(images) says what it built and pushed; there is no before and after.
"""

EXAMPLES = r"""
- name: Build and push release v2
  docker_release:
    images:
      - reference: registry.example.internal/prosaas/app:v2
        context: /src/prosaas
        setting: prosaas_app_image
      - reference: registry.example.internal/prosaas/migrate:v2
        context: /src/prosaas-deploy/migrations
        setting: prosaas_migrate_image
        stage_squawk: true
      - reference: registry.example.internal/prosaas/proxy:1
        context: /src/prosaas-deploy/proxy
        kind: infra
    registry:
      host: registry.example.internal
      user: deploy-bot
    registry_password: "{{ vault_prosaas_registry_password }}"
    base_image: python:3.11-slim-bookworm
  register: released
"""

RETURN = r"""
digests:
  description: The digest each reference has in the registry after the run, by reference
    (empty in check mode for what would be pushed).
  returned: success
  type: dict
  sample: {"registry.example.internal/prosaas/app:v2": "sha256:3b1f...e9"}
images:
  description: Per image, what was done (pushed, moved, kept; would push, would move in check
    mode), the digest the registry had before and the one it has now.
  returned: success
  type: list
  elements: dict
  sample: [{"reference": "registry.example.internal/prosaas/app:v2",
            "setting": "prosaas_app_image", "kind": "release", "action": "pushed",
            "previous_digest": null, "digest": "sha256:3b1f...e9"}]
summary:
  description: One line per image, C(<image>:<tag> sha256:...), what happened in brackets
    when it was not a plain push.
  returned: success
  type: list
  elements: str
  sample: ["registry.example.internal/prosaas/app:v2 sha256:3b1f...e9",
           "registry.example.internal/prosaas/proxy:1 sha256:77a0...12
            (kept, already in the registry)"]
squawk_staged:
  description: Whether squawk was copied into a build context (false when it was there already).
  returned: success
  type: bool
build_log:
  description: The last lines of a build that failed.
  returned: when a build failed
  type: list
  elements: str
"""

from pathlib import Path
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    REGISTRY_ARGS,
    docker_argument_spec,
    docker_client,
)
from ansible.module_utils.prosaas_release import (
    KEEP,
    MOVE_SETTING,
    ReleaseError,
    ReleaseImage,
    Step,
    build_context,
    build_image,
    find_squawk,
    input_problems,
    plan_steps,
    push_image,
    registry_digest,
    stage_squawk,
    summary_line,
)

DONE = {"push": "pushed", "move": "moved", "keep": "kept"}
WOULD = {"push": "would push", "move": "would move", "keep": "kept"}


class Releaser:
    """Checks, builds and pushes the release's images, in that order."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        params = module.params
        self.images = [ReleaseImage.from_params(image) for image in params["images"]]
        self.registry = params["registry"] or {}
        self.password = params["registry_password"]
        self.auth = {"username": self.registry.get("user") or "", "password": self.password}
        extra = {name: str(value) for name, value in params["build_args"].items()}
        self.buildargs = {**extra, "BASE_IMAGE": params["base_image"]}

    def fail(self, message: str, **details: Any) -> NoReturn:
        self.module.fail_json(msg=message, **details)

    def squawk_or_fail(self) -> Path | None:
        """The squawk to stage, when an image wants it; the input problem when none is found."""
        if not any(image.stage_squawk for image in self.images):
            return None
        squawk = find_squawk()
        if squawk is None:
            self.fail(
                "squawk not found beside this Python nor on PATH: install requirements.txt "
                "(squawk-cli) into the virtualenv that runs ansible-playbook"
            )
        return squawk

    def validate(self) -> Path | None:
        """Every input checked, before the engine is asked anything: the squawk to stage."""
        problems = input_problems(self.images, self.registry, self.password)
        if not self.module.params["base_image"]:
            problems.append("no base image: set prosaas_release_base_image (or BASE_IMAGE)")
        if problems:
            self.fail("; ".join(problems))
        return self.squawk_or_fail()

    def plan(self, client: Any) -> list[Step]:
        """Every tag asked of the registry, then what to do with each image."""
        try:
            found = {
                image.reference: registry_digest(client, image.reference, self.auth)
                for image in self.images
            }
            return plan_steps(self.images, found, self.module.params["move_tags"])
        except ReleaseError as exc:
            self.fail(str(exc))

    def build_and_push(self, client: Any, steps: list[Step], squawk: Path | None) -> bool:
        """Build every image to push, then push them; whether squawk was staged."""
        wanted = [step for step in steps if step.action != KEEP]
        staged = False
        for step in wanted:
            with build_context(step.image) as context:
                if step.image.stage_squawk and squawk is not None:
                    staged = stage_squawk(squawk, context) or staged
                try:
                    build_image(client, step.image, context, self.buildargs)
                except ReleaseError as exc:
                    self.fail(str(exc), build_log=exc.details)
        for step in wanted:
            try:
                step.digest = push_image(client, step.image.reference, self.auth)
            except ReleaseError as exc:
                pushed = [summary_line(done) for done in wanted if done.digest]
                before = (
                    f"; pushed before it: {', '.join(pushed)}: once fixed, run again with "
                    f"-e {MOVE_SETTING}=true"
                    if pushed
                    else "; nothing was pushed"
                )
                self.fail(f"{exc}{before}")
        return staged

    def run(self) -> dict[str, Any]:
        squawk = self.validate()
        client = docker_client(self.module)
        steps = self.plan(client)
        check = self.module.check_mode
        staged = False if check else self.build_and_push(client, steps, squawk)
        words = WOULD if check else DONE
        images = [
            {
                "reference": step.image.reference,
                "setting": step.image.setting,
                "kind": step.image.kind,
                "action": words[step.action],
                "previous_digest": step.found,
                "digest": step.digest,
            }
            for step in steps
        ]
        changed = any(
            step.action != KEEP and (check or step.digest != step.found) for step in steps
        )
        return {
            "changed": changed,
            "digests": {step.image.reference: step.digest for step in steps},
            "images": images,
            "summary": [summary_line(step) for step in steps],
            "squawk_staged": staged,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            images={
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "reference": {"type": "str", "required": True},
                    "context": {"type": "path", "required": True},
                    "kind": {"type": "str", "choices": ["release", "infra"], "default": "release"},
                    "setting": {"type": "str", "default": ""},
                    "context_setting": {"type": "str", "default": ""},
                    "stage_squawk": {"type": "bool", "default": False},
                    "versions": {"type": "path", "default": ""},
                    "versions_setting": {"type": "str", "default": ""},
                },
            },
            **REGISTRY_ARGS,
            base_image={"type": "str", "required": True},
            build_args={"type": "dict", "default": {}},
            move_tags={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    module.exit_json(**Releaser(module).run())


if __name__ == "__main__":
    main()
