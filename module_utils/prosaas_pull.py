"""Pulling images from a registry: pure logic, no Docker or Ansible imports.

The module docker_pull drives these functions; unit tests import them directly. A pull is
read as the engine streams it (one JSON object per line: layer statuses, progress, the
digest, or an error), and every failure becomes one line an operator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNBOOK_PULL = 'RUNBOOK.md: "Image pull failed"'
# How the module words an engine connection that dropped during a login or a pull.
ENGINE_WENT_AWAY = "engine went away"

# What the engine or the registry says, mapped to what the operator should do. The first
# match wins; the texts are lower-cased before matching.
PULL_FAILURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (ENGINE_WENT_AWAY, "context canceled"),
        "the host's Docker engine stopped or restarted mid-pull: deploy again once `docker info` "
        "answers there",
    ),
    (
        ("unauthorized", "authentication required", "incorrect username or password"),
        "the registry refused the credentials of {user}: check vault_prosaas_registry_password",
    ),
    (
        ("x509", "certificate signed by unknown authority", "certificate is not valid"),
        "the registry's TLS certificate is not trusted on the host: set prosaas_registry_ca "
        "and run playbooks/prepare.yml",
    ),
    (
        ("manifest unknown", "not found: manifest", "manifest for", "repository does not exist"),
        "{reference} is not in the registry: push it, or fix the release's version or pins",
    ),
    (
        ("no space left on device",),
        "no space left on the host's disk for {reference}: free space (docker image prune)",
    ),
    (
        ("no such host", "connection refused", "i/o timeout", "network is unreachable",
         "no route to host", "tls handshake timeout", "dial tcp"),
        "registry {registry} unreachable from the host",
    ),
)  # fmt: skip


def split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag or digest) of an image reference; the tag is `latest` when absent."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, digest
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag
    return reference, "latest"


def digest_reference(reference: str, repo_digests: list[str]) -> str | None:
    """The `repository@sha256:...` of REFERENCE among an image's RepoDigests, if any."""
    repository = split_reference(reference)[0]
    for candidate in repo_digests:
        if candidate.split("@", 1)[0] == repository:
            return candidate
    return None


def pull_failure(text: str, *, reference: str, registry: str, user: str) -> str:
    """One line for a failed pull of REFERENCE, from what the engine said (TEXT)."""
    lowered = text.lower()
    for needles, advice in PULL_FAILURES:
        if any(needle in lowered for needle in needles):
            reason = advice.format(reference=reference, registry=registry or "?", user=user or "?")
            break
    else:
        reason = "the engine could not pull it"
    detail = " ".join(text.split())[:200]
    return f"pull of {reference} failed: {reason} ({detail}; {RUNBOOK_PULL})"


@dataclass
class PullProgress:
    """What one pull transferred, read from the engine's stream."""

    layers_present: set[str] = field(default_factory=set)
    layer_sizes: dict[str, int] = field(default_factory=dict)
    digest: str = ""
    error: str = ""

    def read(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            self.error = str(event.get("error"))
            return
        status = str(event.get("status", ""))
        layer = str(event.get("id", ""))
        if status == "Already exists":
            self.layers_present.add(layer)
        elif status == "Downloading":
            total = (event.get("progressDetail") or {}).get("total") or 0
            self.layer_sizes[layer] = max(self.layer_sizes.get(layer, 0), int(total))
        elif status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()

    def summary(self) -> dict[str, Any]:
        return {
            "layers_pulled": len(self.layer_sizes),
            "layers_present": len(self.layers_present),
            "bytes_pulled": sum(self.layer_sizes.values()),
        }
