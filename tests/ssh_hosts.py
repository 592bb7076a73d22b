"""Test hosts that are real servers: containers of tests/hosts/Dockerfile reached over SSH.

Each host is a bare Debian server (systemd as PID 1, sshd, sudo, python3) with its own
hostname and host keys, a `deploy` user with password-less sudo, and an SSH port published
on loopback only. The session makes one key pair for the deploy user and a known_hosts file
holding each host's keys, so Ansible connects with host key checking on. Each host can run a
Docker engine of its own: `/var/lib/docker` is a volume, and the container gets the
capabilities an engine needs (`--privileged` first; where the sandbox refuses it, every
capability it allows).
"""

from __future__ import annotations

import hashlib
import io
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError

HOST_IMAGE_DIR = Path(__file__).resolve().parent / "hosts"
SSH_READY_TIMEOUT_S = 30.0
# What a Docker engine needs inside a container where --privileged is refused ("unable to
# apply caps": the sandbox's bounding set lacks CAP_SYS_RESOURCE).
ENGINE_OPTIONS_WITHOUT_PRIVILEGED: dict[str, Any] = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
}


class HostError(RuntimeError):
    """A test host that could not be built, started or reached."""


@dataclass
class SshHost:
    """One test host: its name, the loopback port of its sshd, and its container."""

    name: str
    port: int
    container: Any

    def inventory_vars(self, keys: SessionKeys) -> dict[str, Any]:
        """How Ansible reaches this host: as deploy, with the session key and known_hosts."""
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "deploy",
            "ansible_ssh_private_key_file": str(keys.private_key),
            "ansible_ssh_common_args": (
                f"-o UserKnownHostsFile={keys.known_hosts} -o StrictHostKeyChecking=yes"
            ),
        }


@dataclass
class SessionKeys:
    """The deploy user's key pair and the known_hosts file, made for one test session."""

    folder: Path

    @property
    def private_key(self) -> Path:
        return self.folder / "deploy_ed25519"

    @property
    def public_key(self) -> str:
        return (self.folder / "deploy_ed25519.pub").read_text().strip()

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @classmethod
    def make(cls, folder: Path) -> SessionKeys:
        keys = cls(folder)
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "prosaas-tests",
             "-f", str(keys.private_key)],
            check=True,
        )  # fmt: skip
        keys.known_hosts.touch()
        return keys


def host_image(client: docker.DockerClient, base_image: str) -> str:
    """The test host image on BASE_IMAGE, built once per content of tests/hosts/."""
    digest = hashlib.sha256(
        (HOST_IMAGE_DIR / "Dockerfile").read_bytes() + base_image.encode()
    ).hexdigest()[:12]
    tag = f"prosaas-deploy/testhost:{digest}"
    if not client.images.list(name=tag):
        try:
            client.images.build(
                path=str(HOST_IMAGE_DIR), tag=tag, buildargs={"BASE_IMAGE": base_image}, rm=True
            )
        except (APIError, docker.errors.BuildError) as exc:
            raise HostError(f"could not build the test host image {tag}: {exc}") from exc
    return tag


def prepared_image_tag(base_tag: str, inputs: list[Path], root: Path) -> str:
    """The tag of the prepared host image: BASE_TAG's host with what INPUTS (files, relative
    to ROOT in the digest) make of it."""
    digest = hashlib.sha256(base_tag.encode())
    for path in sorted(inputs):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"prosaas-deploy/testhost-prepared:{digest.hexdigest()[:12]}"


def snapshot_host(client: docker.DockerClient, host: SshHost, tag: str) -> None:
    """HOST's system, shut down cleanly, as image TAG, less its SSH host keys: each host
    started from it makes its own. Its engine's data (a volume) is not part of it."""
    try:
        host.container.stop(timeout=30)
        snapshot = host.container.commit()
        dockerfile = f"FROM {snapshot.id}\nRUN rm -f /etc/ssh/ssh_host_*\n".encode()
        client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    except (APIError, docker.errors.BuildError) as exc:
        raise HostError(f"could not save {host.name} as {tag}: {exc}") from exc


def run_host_container(
    client: docker.DockerClient,
    image: str,
    name: str,
    network: str | None = None,
    *,
    ssh_port: int | None = None,
    command: list[str] | None = None,
) -> Any:
    """A container for host NAME that can run its own engine; privileged where allowed.

    NETWORK: a Docker network to join instead of the default bridge, where the other
    containers of that network reach the host by its name (and it reaches them by theirs).
    SSH_PORT: the loopback port its sshd is published on (a free one when None); a fixed one
    stays the same when the host's container restarts, as a rebooted server keeps its address.
    COMMAND: what runs as PID 1 instead of systemd (a server booted some other way).
    """
    common: dict[str, Any] = {
        "command": command,
        "name": name,
        "hostname": name,
        "detach": True,
        "network": network,
        "ports": {"22/tcp": ("127.0.0.1", ssh_port)},
        "volumes": {
            f"{name}-docker": {"bind": "/var/lib/docker", "mode": "rw"},
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
        },
        # systemd runs as PID 1 and wants these on tmpfs, as on a booted server.
        "tmpfs": {"/run": "", "/run/lock": ""},
        "labels": {"prosaas-tests": "host"},
    }
    try:
        return client.containers.run(image, privileged=True, **common)
    except APIError as exc:
        if "caps" not in str(exc):
            raise HostError(f"could not start test host {name}: {exc}") from exc
    leftover = client.containers.list(all=True, filters={"name": f"^{name}$"})
    for container in leftover:
        container.remove(force=True)
    return client.containers.run(image, **ENGINE_OPTIONS_WITHOUT_PRIVILEGED, **common)


def authorize(container: Any, public_key: str) -> None:
    line = shlex.quote(public_key)
    command = (
        f"printf '%s\\n' {line} > /home/deploy/.ssh/authorized_keys"
        " && chown deploy:deploy /home/deploy/.ssh/authorized_keys"
        " && chmod 0600 /home/deploy/.ssh/authorized_keys"
    )
    result = container.exec_run(["sh", "-c", command])
    if result.exit_code != 0:
        raise HostError(f"could not install the deploy key: {result.output.decode().strip()}")


def scan_host_keys(port: int) -> str:
    """The host keys sshd on loopback PORT offers, as known_hosts lines; '' until it listens."""
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "2", "-p", str(port), "127.0.0.1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return scan.stdout if scan.returncode == 0 else ""


def published_port(container: Any) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"])


def start_host(
    client: docker.DockerClient,
    image: str,
    name: str,
    keys: SessionKeys,
    network: str | None = None,
    *,
    ssh_port: int | None = None,
    command: list[str] | None = None,
) -> SshHost:
    """Start host NAME, authorise the session key and add its host keys to known_hosts.

    NETWORK: a Docker network the host joins instead of the default bridge (a test
    registry's, tests/registry.py); SSH_PORT and COMMAND: as run_host_container's.
    """
    container = run_host_container(client, image, name, network, ssh_port=ssh_port, command=command)
    host = SshHost(name, published_port(container), container)
    authorize(container, keys.public_key)
    deadline = time.monotonic() + SSH_READY_TIMEOUT_S
    while not (lines := scan_host_keys(host.port)):
        if time.monotonic() > deadline:
            raise HostError(f"sshd of test host {name} did not answer on port {host.port}")
        time.sleep(0.2)
    with keys.known_hosts.open("a") as known:
        known.write(lines)
    return host


def remove_host(client: docker.DockerClient, host: SshHost) -> None:
    host.container.remove(force=True)
    for volume in client.volumes.list(filters={"name": f"{host.name}-docker"}):
        volume.remove(force=True)
