"""Building and pushing a release's images on the control machine: what the docker_release
module checks, decides and says, and the push the tests' registry helper shares with it.

Everything goes through the local engine (the docker SDK): builds with the classic builder,
the registry asked for each tag's digest, pushes. The registry's credentials go with each
request as its auth_config, so nothing is written to ~/.docker/config.json and no command
line, environment or log carries the password.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import re
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible.module_utils.prosaas_docker import (
    ENGINE_CONNECTION_ERRORS,
    DockerException,
    NotFound,
    one_line,
)
from ansible.module_utils.prosaas_pull import split_reference

# What the release does with each image: a release image (app, migrate) is pushed under its
# version's tag, which is never overwritten unless asked; an infra image (proxy, redis) is
# pushed only when the registry lacks its tag.
RELEASE = "release"
INFRA = "infra"
PUSH = "push"
MOVE = "move"
KEEP = "keep"
MOVE_SETTING = "prosaas_release_move_tags"
# A Docker tag: letters, digits, _ . - ; at most 128 characters, not starting with . or -.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Where the migrate image's Dockerfile expects squawk, relative to its build context.
SQUAWK_IN_CONTEXT = Path(".build") / "squawk"
BUILD_LOG_LINES = 15

# What the engine says when it asks the registry, mapped to what the operator should do; the
# first match wins, on the lower-cased text.
REGISTRY_FAILURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("unauthorized", "authentication required", "incorrect username or password",
         "no basic auth credentials", "denied"),
        "the registry refused the credentials of {user}: check prosaas_registry.user and "
        "vault_prosaas_registry_password",
    ),
    (
        ("x509", "certificate signed by unknown authority", "certificate is not valid"),
        "this machine's engine does not trust the registry's TLS certificate: put its CA in "
        "/etc/docker/certs.d/{registry}/ca.crt",
    ),
    (
        ("no such host", "connection refused", "i/o timeout", "network is unreachable",
         "no route to host", "tls handshake timeout", "dial tcp"),
        "registry {registry} unreachable from this machine's engine",
    ),
)  # fmt: skip


class ReleaseError(Exception):
    """What stops a release, on one line; DETAILS: lines the result may carry beside it."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass(frozen=True)
class ReleaseImage:
    """One image of the release: its reference in the registry, its build context, its kind
    and the inventory settings that name them (for messages)."""

    reference: str
    context: str
    kind: str = RELEASE
    setting: str = ""
    context_setting: str = ""
    stage_squawk: bool = False
    versions: str = ""  # a folder whose files replace the context's versions/ in the build
    versions_setting: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ReleaseImage:
        return cls(
            reference=params["reference"],
            context=params["context"],
            kind=params.get("kind") or RELEASE,
            setting=params.get("setting") or "",
            context_setting=params.get("context_setting") or "",
            stage_squawk=bool(params.get("stage_squawk")),
            versions=params.get("versions") or "",
            versions_setting=params.get("versions_setting") or "",
        )

    @property
    def named(self) -> str:
        """The reference, with the setting that names it."""
        return f"{self.reference} ({self.setting})" if self.setting else self.reference


@dataclass
class Step:
    """What the release does with one image, given the digest its tag has in the registry."""

    image: ReleaseImage
    found: str | None
    action: str
    digest: str = ""


def explicit_tag(reference: str) -> str | None:
    """The tag REFERENCE names itself (None without one: no implicit `latest` here)."""
    if "@" in reference or ":" not in reference.rsplit("/", 1)[-1]:
        return None
    return split_reference(reference)[1]


def context_problem(image: ReleaseImage) -> str | None:
    """Why IMAGE's build context cannot be built from, if it cannot."""
    context = Path(image.context)
    dockerfile = context / "Dockerfile"
    if not (context.is_dir() and os.access(context, os.R_OK | os.X_OK)):
        reason = "is not a readable directory"
    elif not (dockerfile.is_file() and os.access(dockerfile, os.R_OK)):
        reason = "has no readable Dockerfile"
    else:
        return None
    fix = f"fix {image.context_setting}" if image.context_setting else "fix the path"
    return f"build context {image.context} of {image.reference} {reason}: {fix}"


def versions_problem(image: ReleaseImage) -> str | None:
    """Why IMAGE's migrations folder cannot be built from, if it is named and cannot."""
    if not image.versions:
        return None
    folder = Path(image.versions)
    if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK):
        return None
    fix = f"fix {image.versions_setting}" if image.versions_setting else "fix the path"
    return (
        f"migrations folder {image.versions} of {image.reference} is not a readable directory:"
        f" {fix}"
    )


def image_problems(image: ReleaseImage, registry: str) -> list[str]:
    """What is wrong with one image of the release, one clause each."""
    problems = []
    tag = explicit_tag(image.reference)
    if tag is None or not TAG.fullmatch(tag):
        problems.append(
            f"{image.named} names no valid tag: an image of a release is REPOSITORY:TAG"
            + (" (is prosaas_app_version empty?)" if image.reference.endswith(":") else "")
        )
    if not image.reference.startswith(f"{registry}/"):
        problems.append(
            f"{image.named} is not named under the registry {registry}: name it {registry}/..."
        )
    problems += [found for found in (context_problem(image), versions_problem(image)) if found]
    return problems


def input_problems(
    images: list[ReleaseImage], registry: dict[str, Any], password: str
) -> list[str]:
    """Every reason the release cannot start, checked before anything is built."""
    host, user = registry.get("host") or "", registry.get("user") or ""
    if not host:
        return [
            "the inventory names no registry: set prosaas_registry "
            "({host: HOST[:PORT], user: USER}) in its group_vars/all/main.yml"
        ]
    problems = []
    if not user:
        problems.append(f"prosaas_registry names no user for {host}: add its user")
    if not password:
        problems.append(
            f"no password for the registry {host}: put vault_prosaas_registry_password in the "
            "inventory's vault"
        )
    for image in images:
        problems += image_problems(image, host)
    return problems


def registry_failure(text: str, reference: str, user: str) -> str:
    """What the engine said (TEXT) about REFERENCE's registry, with what to do about it."""
    detail = " ".join(text.split())[:200]
    registry = reference.split("/", 1)[0]
    lowered = detail.lower()
    for needles, advice in REGISTRY_FAILURES:
        if any(needle in lowered for needle in needles):
            return f"{advice.format(registry=registry, user=user or '?')} ({detail})"
    return detail


def plan_steps(
    images: list[ReleaseImage], found: dict[str, str | None], move_tags: bool
) -> list[Step]:
    """What to do with each image; a ReleaseError naming every release tag the registry
    already has, unless MOVE_TAGS."""
    taken = [image for image in images if image.kind == RELEASE and found[image.reference]]
    if taken and not move_tags:
        named = ", ".join(f"{image.named} at {found[image.reference]}" for image in taken)
        raise ReleaseError(
            f"the registry already has {named}: a released tag is never overwritten; release "
            f"another prosaas_app_version, or move the tag with -e {MOVE_SETTING}=true"
        )
    steps = []
    for image in images:
        previous = found[image.reference]
        action = PUSH if previous is None else MOVE if image.kind == RELEASE else KEEP
        steps.append(Step(image, previous, action, previous if action == KEEP else ""))
    return steps


def summary_line(step: Step) -> str:
    """`<image>:<tag> sha256:...` and, when it is not a plain push, what happened."""
    reference = step.image.reference
    if not step.digest:  # check mode: nothing built, nothing pushed
        over = f" over {step.found}" if step.action == MOVE else ""
        return f"{reference} would be built and pushed{over}"
    if step.action == KEEP:
        return f"{reference} {step.digest} (kept, already in the registry)"
    if step.action == MOVE:
        moved = "unchanged" if step.found == step.digest else f"moved from {step.found}"
        return f"{reference} {step.digest} ({moved})"
    return f"{reference} {step.digest}"


# --- Squawk, which the migrate image's build lints with ---------------------------------


def find_squawk(python: str = sys.executable) -> Path | None:
    """The squawk installed beside PYTHON (the virtualenv's squawk-cli), else on PATH."""
    beside = Path(python).parent / "squawk"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


def stage_squawk(squawk: Path, context: str) -> bool:
    """SQUAWK copied into CONTEXT as .build/squawk (mode 0755); False when already there."""
    target = Path(context) / SQUAWK_IN_CONTEXT
    if target.is_file() and filecmp.cmp(squawk, target, shallow=False):
        return False
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(squawk, target)
    target.chmod(0o755)
    return True


# --- The engine: builds, the registry's digests, pushes ---------------------------------


@dataclass
class BuildLog:
    """The last lines of a build's output and its error, read from the engine's stream."""

    lines: deque[str] = field(default_factory=lambda: deque(maxlen=BUILD_LOG_LINES))
    error: str = ""

    def read(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            self.error = " ".join(str(event["error"]).split())
            return
        for line in str(event.get("stream", "")).splitlines():
            if line.strip():
                self.lines.append(line.rstrip())


@dataclass
class PushProgress:
    """The digest a push ends with, or its error, read from the engine's stream."""

    digest: str = ""
    error: str = ""

    def read(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            self.error = str(event["error"])
        digest = (event.get("aux") or {}).get("Digest")
        if digest:
            self.digest = str(digest)


def engine_text(exc: BaseException) -> str:
    """What the engine answered (an API error's explanation), else the error's first line."""
    return str(getattr(exc, "explanation", "") or one_line(exc))


@contextlib.contextmanager
def build_context(image: ReleaseImage) -> Iterator[str]:
    """The folder IMAGE is built from: its context, or, with a migrations folder, a copy of
    the context whose versions/ holds that folder's files instead (removed after the build)."""
    if not image.versions:
        yield image.context
        return
    with tempfile.TemporaryDirectory(prefix="prosaas-release-") as folder:
        context = Path(folder) / "context"
        shutil.copytree(image.context, context, ignore=shutil.ignore_patterns("versions"))
        shutil.copytree(image.versions, context / "versions")
        yield str(context)


def build_image(client: Any, image: ReleaseImage, context: str, buildargs: dict[str, str]) -> None:
    """Build IMAGE from CONTEXT under its reference, with the classic builder (the engine
    API's default: no buildx needed) and the engine's layer cache."""
    log = BuildLog()
    failed = f"build of {image.reference} from {image.versions or image.context} failed"
    try:
        stream = client.api.build(
            path=context,
            tag=image.reference,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for event in stream:
            log.read(event)
    except (DockerException, *ENGINE_CONNECTION_ERRORS) as exc:
        raise ReleaseError(f"{failed}: {engine_text(exc)}", list(log.lines)) from exc
    if log.error:
        raise ReleaseError(f"{failed}: {log.error} (its last lines: build_log)", list(log.lines))


def registry_digest(client: Any, reference: str, auth: dict[str, str]) -> str | None:
    """The digest the registry has for REFERENCE's tag, None when it lacks the tag."""
    try:
        data = client.api.inspect_distribution(reference, auth_config=auth)
    except NotFound:
        return None
    except (DockerException, *ENGINE_CONNECTION_ERRORS) as exc:
        reason = registry_failure(engine_text(exc), reference, auth.get("username", ""))
        raise ReleaseError(f"cannot ask the registry for {reference}: {reason}") from exc
    return str(data["Descriptor"]["digest"])


def push_image(client: Any, reference: str, auth: dict[str, str]) -> str:
    """Push the engine's image REFERENCE (REGISTRY/REPOSITORY:TAG) with AUTH: its digest."""
    repository, tag = split_reference(reference)
    progress = PushProgress()
    failed = f"push of {reference} failed"
    try:
        stream = client.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True)
        for event in stream:
            progress.read(event)
    except (DockerException, *ENGINE_CONNECTION_ERRORS) as exc:
        raise ReleaseError(f"{failed}: {engine_text(exc)}") from exc
    if progress.error:
        reason = registry_failure(progress.error, reference, auth.get("username", ""))
        raise ReleaseError(f"{failed}: {reason}")
    if not progress.digest:
        raise ReleaseError(f"{failed}: the engine named no digest")
    return progress.digest
