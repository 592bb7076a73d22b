"""Values that become part of a name, checked against what Docker accepts: pure logic.

The inventory check (the filter naming_problems, roles/preflight/tasks/inventory.yml) calls
these before anything is touched, so that a version, an image, the container prefix, a
service name, the registry or a host name that the engine (or a file name) would refuse is
one line naming the setting and a valid example, never the engine's HTTP error later.

The grammar is Docker's (github.com/distribution/reference, as the engine parses a
reference): ``[domain/]path[:tag][@digest]``, the domain a host with an optional port, the
path lowercase components, the name at most 255 characters.
"""

from __future__ import annotations

import re
from typing import Any

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
ALPHANUMERIC = "[a-z0-9]+"
PATH_COMPONENT = f"{ALPHANUMERIC}(?:(?:[._]|__|-+){ALPHANUMERIC})*"
PATH = re.compile(f"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = re.compile(
    rf"(?:{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
NAME_MAX = 255
CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
# An inventory host's name ends up in its report's file name (<release>.<host>.json).
HOST_NAME = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:-]*")

TAG_RULE = (
    "use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-'),"
    " e.g. v2 or 2026.12.07-1"
)
REFERENCE_EXAMPLE = "e.g. registry.example.internal:5000/prosaas/app:v2"
CONTAINER_RULE = "use letters, digits, '_', '.' and '-', starting with a letter or a digit"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def not_a_string(where: str, value: Any) -> str:
    """A line for a value YAML read as something else than a string (1.10 is the number 1.1)."""
    return (
        f"{where} is {_kind(value)} ({value!r}), not a string: quote it in the inventory"
        f" (YAML reads an unquoted 1.10 as the number 1.1)"
    )


def tag_problem(where: str, tag: Any) -> str:
    """A line when TAG, the value of WHERE, is not an image tag Docker accepts; '' else."""
    if not isinstance(tag, str):
        return not_a_string(where, tag)
    if TAG.fullmatch(tag):
        return ""
    return f"{where} {tag!r} is not a valid image tag: {TAG_RULE}"


def split_reference(reference: str) -> tuple[str, str, str | None, str | None]:
    """(domain, path, tag, digest) of REFERENCE as the engine splits it (None: no tag, no
    digest): the first component is the registry when it holds a '.' or a ':' or is localhost
    (newer engines also take one with an uppercase letter; older ones refuse it)."""
    name, at, digest = reference.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost"):
        return first, rest, tag, digest if at else None
    return "", name, tag, digest if at else None


def reference_reason(reference: str) -> str:
    """Why REFERENCE is not an image reference Docker accepts; '' when it is one."""
    if not reference:
        return "it is empty"
    domain, path, tag, digest = split_reference(reference)
    name = f"{domain}/{path}" if domain else path
    checks = (
        (
            digest is not None and not DIGEST.fullmatch(digest),
            f"its digest {digest!r} is not an algorithm and hex digits (sha256:<64 hex digits>)",
        ),
        (tag is not None and not TAG.fullmatch(tag), f"its tag {tag!r} is not a valid tag"),
        (
            bool(domain) and not DOMAIN.fullmatch(domain),
            f"its registry {domain!r} is not a host or host:port",
        ),
        (path != path.lower(), f"its repository {path!r} must be lowercase"),
        (
            not PATH.fullmatch(path),
            f"its repository {path!r} is not lowercase letters and digits separated by '.',"
            " '_', '__', '-' or '/'",
        ),
        (len(name) > NAME_MAX, f"its name is longer than {NAME_MAX} characters"),
    )
    return next((reason for failed, reason in checks if failed), "")


def reference_problem(where: str, reference: Any) -> str:
    """A line when REFERENCE, the image WHERE names, is not one Docker accepts; '' else."""
    if not isinstance(reference, str):
        return not_a_string(where, reference)
    reason = reference_reason(reference)
    if not reason:
        return ""
    return f"{where} {reference!r} is not a valid image reference: {reason}; {REFERENCE_EXAMPLE}"


def prefix_problem(prefix: Any) -> str:
    """A line when the container prefix would make container names Docker refuses."""
    if not isinstance(prefix, str):
        return not_a_string("prosaas_container_prefix", prefix)
    if prefix == "" or CONTAINER_NAME.fullmatch(prefix):
        return ""
    return (
        f"prosaas_container_prefix {prefix!r} is not a valid start of a container name:"
        f' {CONTAINER_RULE}, e.g. staging- (or "" for none)'
    )


def service_name_problem(where: str, name: Any) -> str:
    """A line when a service's NAME (its container's name after the prefix, its network
    alias) is not a container name Docker accepts."""
    if not isinstance(name, str) or CONTAINER_NAME.fullmatch(name):
        return ""  # a name that is not a string is the service check's to report
    return f"{where} name {name!r} is not a valid container name: {CONTAINER_RULE}, e.g. worker"


def registry_problem(registry: Any) -> str:
    """A line when the registry's host (the first part of every image pulled from it) is
    not a host or host:port."""
    host = registry.get("host") if isinstance(registry, dict) else None
    if not host or (isinstance(host, str) and DOMAIN.fullmatch(host)):
        return ""
    return (
        f"prosaas_registry.host {host!r} is not a valid registry host: a host name or address"
        " and an optional :port, as in the image names, e.g. registry.example.internal:5000"
    )


def host_name_problem(host: str) -> str:
    """A line when an inventory host's name cannot be part of its report's file name."""
    if HOST_NAME.fullmatch(host):
        return ""
    return (
        f"the inventory host {host!r} cannot name its report (<release>.<host>.json): use"
        " letters, digits, '_', '.', ':' and '-', not starting with '.' or '-', e.g."
        " app1.example.internal"
    )


# The settings the inventory check passes by name: the tag of every app image, and the
# images named on their own (the app image is the repository the app services' tags go on).
VERSION = "prosaas_app_version"
IMAGES = ("prosaas_app_image", "prosaas_migrate_image", "prosaas_proxy_image")


def _made_of(image: str, bad_tags: list[str], bad_repositories: list[str]) -> bool:
    """Whether IMAGE is made of a tag or a repository already refused (not named again)."""
    return any(image.endswith(f":{tag}") for tag in bad_tags) or any(
        image == repository or image.startswith((f"{repository}:", f"{repository}@"))
        for repository in bad_repositories
    )


def _bad_tags(names: dict[str, Any], pins: Any) -> list[tuple[str, str]]:
    """(tag, line) for the version and each pin Docker would refuse as a tag."""
    tags = [(VERSION, names[VERSION])] if VERSION in names else []
    if isinstance(pins, dict):
        tags += [(f"prosaas_app_pins['{service}']", tag) for service, tag in pins.items()]
    return [(str(tag), line) for where, tag in tags if (line := tag_problem(where, tag))]


def _service_lines(lists: dict[str, Any], bad_tags: list[str], bad_repos: list[str]) -> list[str]:
    """A line per service name or image of the service LISTS that Docker would refuse."""
    lines = []
    for variable, services in lists.items():
        for index, entry in enumerate(services if isinstance(services, list) else []):
            if not isinstance(entry, dict):
                continue  # the service check names it
            name, image = entry.get("name"), entry.get("image")
            where = f"{variable}[{index}]" + (f" ({name})" if name else "")
            lines.append(service_name_problem(where, name))
            if isinstance(image, str) and image and not _made_of(image, bad_tags, bad_repos):
                lines.append(reference_problem(f"{where} image", image))
    return [line for line in lines if line]


def naming_problems(
    lists: dict[str, Any], names: dict[str, Any], pins: Any, hosts: list[str]
) -> list[str]:
    """One line per value that becomes part of a name and that Docker (or a file name) would
    refuse: NAMES (inventory variable -> value: the version, the app, migrate and proxy
    images, prosaas_container_prefix, prosaas_registry), the tags of the PINS, the name and
    image of each service of the LISTS (variable -> list) and the inventory's HOSTS. An image
    made of a version, pin or app image already refused is not named again."""
    tags = _bad_tags(names, pins)
    bad_tags = [tag for tag, _line in tags]
    app_image = names.get(IMAGES[0])
    app_line = reference_problem(IMAGES[0], app_image) if IMAGES[0] in names else ""
    bad_repos = [str(app_image)] if app_line else []
    image_lines = [
        reference_problem(variable, names[variable])
        for variable in IMAGES[1:]
        if variable in names and not _made_of(str(names[variable]), bad_tags, bad_repos)
    ]
    lines = [
        *(line for _tag, line in tags),
        app_line,
        *image_lines,
        prefix_problem(names.get("prosaas_container_prefix", "")),
        *_service_lines(lists, bad_tags, bad_repos),
        registry_problem(names.get("prosaas_registry")),
        *(host_name_problem(host) for host in hosts),
    ]
    return [line for line in lines if line]
