"""Image retention on a host: which images to keep and which to remove, pure logic.

The module docker_image_retention drives these functions (the filter retained_images too);
unit tests import them directly. An image is what the engine lists: its Id, RepoTags
(`repository:tag`) and RepoDigests (`repository@sha256:...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUCCEEDED = "succeeded"


def retained_images(releases: list[dict[str, Any]], count: int) -> list[str]:
    """The images (every service's and the migrate image) of the newest COUNT succeeded
    releases of a release history, newest first, each once."""
    if count < 1:
        raise ValueError(f"the number of releases to keep must be at least 1, got {count}")
    succeeded = [record for record in releases if record.get("status") == SUCCEEDED]
    images: list[str] = []
    for record in reversed(succeeded[-count:]):
        images += (record.get("images") or {}).values()
        images.append(record.get("migrate_image") or "")
    return [image for image in dict.fromkeys(images) if image]


def repository(reference: str) -> str:
    """The repository of an engine's RepoTags (`repo:tag`) or RepoDigests (`repo@sha256:..`)
    entry; the registry's port stays part of it."""
    if "@" in reference:
        return reference.split("@", 1)[0]
    return reference.rsplit(":", 1)[0]


@dataclass(frozen=True)
class Verdict:
    """What becomes of one image: its references in the repositories under retention (tags
    first, the order they are removed in) and why it stays; an empty reason: it goes."""

    image_id: str
    references: tuple[str, ...]
    kept_because: str

    @property
    def removed(self) -> bool:
        return not self.kept_because


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def judge(
    image: dict[str, Any],
    keep: set[str],
    repositories: set[str],
    users: dict[str, list[str]],
) -> Verdict | None:
    """The verdict on one image of the engine; None when no reference of it is in
    REPOSITORIES (it is never touched). USERS: image id -> names of the containers using it."""
    tags = [tag for tag in image.get("RepoTags") or [] if repository(tag) in repositories]
    digests = [ref for ref in image.get("RepoDigests") or [] if repository(ref) in repositories]
    if not tags and not digests:
        return None
    image_id = image["Id"]
    names = {image_id, *(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])}
    if keep & names:
        why = f"named by the kept reference {min(keep & names)}"
    elif users.get(image_id):
        why = f"used by container {', '.join(sorted(users[image_id]))}"
    else:
        why = ""
    return Verdict(image_id, (*tags, *digests), why)


def judge_all(
    images: list[dict[str, Any]],
    keep: list[str],
    repositories: list[str],
    users: dict[str, list[str]],
) -> list[Verdict]:
    """The verdicts on every image of REPOSITORIES among IMAGES: an image stays when a
    reference of KEEP (tag, digest or image id) names it, or a container, running or
    stopped, uses it."""
    verdicts = (judge(image, set(keep), set(repositories), users) for image in images)
    return [verdict for verdict in verdicts if verdict is not None]


def image_users(containers: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Image id -> names of the containers (as the engine lists them, all of them) using it."""
    users: dict[str, list[str]] = {}
    for container in containers:
        names = [name.lstrip("/") for name in container.get("Names") or []]
        users.setdefault(container["ImageID"], []).extend(names or [short_id(container["Id"])])
    return users
