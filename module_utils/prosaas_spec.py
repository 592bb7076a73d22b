"""Pure logic of docker_services: a service's canonical spec, and what differs between two.

The spec a container was created from is kept in its labels (secret values left out), so a
later run can tell exactly which settings changed and recreate only then.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

SPEC_LABEL = "prosaas.spec"
MANAGED_LABEL = "prosaas.managed-by"
MANAGED_BY = "prosaas-deploy"
NANOSECONDS = 1_000_000_000

_PORT = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>\d{1,5})?:)?"
    r"(?P<container>\d{1,5})(?:/(?P<proto>tcp|udp|sctp))?$"
)
_VOLUME_MODES = ("rw", "ro")


def normalize_port(entry: str) -> str:
    """'[ip:][host:]container[/proto]' as 'ip:host:container/proto' (ip and host may be empty)."""
    match = _PORT.match(entry.strip())
    if not match:
        raise ValueError(f"port {entry!r} is not [ip:][host_port:]container_port[/tcp|udp|sctp]")
    parts = match.groupdict()
    for key in ("host", "container"):
        if parts[key] is not None and not 0 < int(parts[key]) < 65536:
            raise ValueError(f"port {entry!r}: {parts[key]} is outside 1-65535")
    return (
        f"{parts['ip'] or ''}:{parts['host'] or ''}:{parts['container']}/{parts['proto'] or 'tcp'}"
    )


def ports_for_sdk(ports: list[str]) -> dict[str, Any]:
    """Canonical port entries in the shape docker-py's ``ports=`` takes; a container port
    published more than once (on two addresses, say) gets the list of its bindings."""
    bindings: dict[str, list[Any]] = {}
    for entry in ports:
        ip, host, container = entry.rsplit(":", 2)
        host_port = int(host) if host else None
        bindings.setdefault(container, []).append((ip.strip("[]"), host_port) if ip else host_port)
    return {
        port: targets[0] if len(targets) == 1 else targets for port, targets in bindings.items()
    }


def normalize_volume(entry: str) -> str:
    """'source:/target[:ro|rw]' as 'source:/target:mode'."""
    parts = entry.split(":")
    if len(parts) == 2:
        parts.append("rw")
    if (
        len(parts) != 3
        or not parts[0]
        or not parts[1].startswith("/")
        or parts[2] not in _VOLUME_MODES
    ):
        raise ValueError(f"volume {entry!r} is not source:/absolute/target[:ro|rw]")
    return ":".join(parts)


def volumes_for_sdk(volumes: list[str]) -> dict[str, dict[str, str]]:
    """Canonical volume entries in the shape docker-py's ``volumes=`` takes."""
    mounts = {}
    for entry in volumes:
        source, target, mode = entry.split(":")
        mounts[source] = {"bind": target, "mode": mode}
    return mounts


def healthcheck_for_sdk(healthcheck: dict[str, Any] | None) -> dict[str, Any] | None:
    """Seconds (as in the module's parameters) to the nanoseconds the engine wants."""
    if not healthcheck:
        return None
    result: dict[str, Any] = {"test": healthcheck["test"]}
    for key in ("interval", "timeout", "start_period"):
        if healthcheck.get(key) is not None:
            result[key] = int(float(healthcheck[key]) * NANOSECONDS)
    if healthcheck.get("retries") is not None:
        result["retries"] = int(healthcheck["retries"])
    return result


def secret_file_paths(files: dict[str, str] | None) -> list[str]:
    """The paths of a service's secret files, sorted; ValueError naming one that is not the
    absolute path of a file."""
    for path in files or {}:
        if not path.startswith("/") or path.endswith("/") or posixpath.normpath(path) != path:
            raise ValueError(f"secret_files path {path!r} must be the absolute path of a file")
    return sorted(files or {})


def build_spec(params: dict[str, Any], image_id: str) -> dict[str, Any]:
    """The canonical, comparable description of what the container should be.

    Secret environment values are not in it, only their names: they are compared with the
    container's own environment instead, so no label ever carries a secret. Secret files
    likewise: their paths only, and only when there are any (so the spec of a container
    without one reads as it did before they existed); their content is compared with the
    files in the container.
    """
    secret_files = secret_file_paths(params.get("secret_files"))
    return {
        **({"secret_files": secret_files} if secret_files else {}),
        "image": params["image"],
        "image_id": image_id,
        "command": params.get("command"),
        "env": dict(sorted((params.get("env") or {}).items())),
        "secret_env_keys": sorted(params.get("secret_env") or {}),
        "ports": sorted(normalize_port(p) for p in params.get("ports") or []),
        "network": params.get("network"),
        "network_aliases": sorted(params.get("network_aliases") or []),
        "volumes": sorted(normalize_volume(v) for v in params.get("volumes") or []),
        "labels": dict(sorted((params.get("labels") or {}).items())),
        "healthcheck": params.get("healthcheck"),
        "restart_policy": params.get("restart_policy"),
        "user": params.get("user"),
    }


def spec_to_label(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def spec_from_labels(labels: dict[str, str] | None) -> dict[str, Any] | None:
    """The spec a managed container was created from; None when it was not created by us."""
    raw = (labels or {}).get(SPEC_LABEL)
    if raw is None:
        return None
    try:
        spec = json.loads(raw)
    except ValueError:
        return None
    return spec if isinstance(spec, dict) else None


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def spec_differences(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Names of the settings that differ, e.g. ['env (LOG_LEVEL)', 'image']."""
    if before is None:
        return ["not created by prosaas-deploy"]
    differences = []
    for key in sorted(after.keys() | before.keys()):
        if key == "image_id" and before.get("image") != after.get("image"):
            continue  # a new image name says it already
        if before.get(key) == after.get(key):
            continue
        if key in ("env", "labels"):
            names = ", ".join(_changed_keys(before.get(key) or {}, after.get(key) or {}))
            differences.append(f"{key} ({names})")
        elif key == "image_id":
            differences.append("image_id (same tag, new image)")
        else:
            differences.append(key)
    return differences


def secret_env_differences(
    secret_env: dict[str, str], container_env: list[str] | None
) -> list[str]:
    """Names of secret variables whose value in the running container is not the wanted one."""
    actual = dict(item.split("=", 1) for item in container_env or [] if "=" in item)
    return sorted(key for key, value in secret_env.items() if actual.get(key) != value)
