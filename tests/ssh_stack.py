"""The prosaas stack on a test host reached over SSH: what a test sees of it from here.

The host's Docker engine and the ports its services publish on the host's own loopback are
reached through one SSH connection of the deploy user (`ssh -L`), as an operator would look
at a server; images are put on the host's engine with `docker save | docker load`.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.ssh_hosts import HostError, SessionKeys, SshHost

ROOT = Path(__file__).resolve().parent.parent

TUNNEL_READY_TIMEOUT_S = 15.0


def ssh_command(host: SshHost, keys: SessionKeys, *args: str) -> list[str]:
    """ssh as the deploy user to HOST, with the session key and host key checking on."""
    return [
        "ssh", "-i", str(keys.private_key), "-p", str(host.port),
        "-o", f"UserKnownHostsFile={keys.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ControlPath=none",
        *args, "deploy@127.0.0.1",
    ]  # fmt: skip


@dataclass
class Tunnel:
    """`ssh -N -L` forwards: the host's engine socket and loopback ports, here."""

    host: SshHost
    keys: SessionKeys
    folder: Path
    ports: dict[int, int] = field(default_factory=dict)  # remote loopback port -> local one
    process: subprocess.Popen | None = None

    @property
    def engine_socket(self) -> Path:
        return self.folder / "engine.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.engine_socket}"

    def start(self) -> None:
        self.engine_socket.unlink(missing_ok=True)
        forwards = ["-L", f"{self.engine_socket}:/var/run/docker.sock"]
        for remote, local in self.ports.items():
            forwards += ["-L", f"127.0.0.1:{local}:127.0.0.1:{remote}"]
        command = ssh_command(self.host, self.keys, "-N", "-o", "ExitOnForwardFailure=yes")
        self.process = subprocess.Popen(
            [*command[:-1], *forwards, command[-1]],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + TUNNEL_READY_TIMEOUT_S
        while not self.engine_socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HostError(f"ssh tunnel to {self.host.name} did not come up")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.engine_socket.unlink(missing_ok=True)


def load_images(host: SshHost, images: list[str]) -> None:
    """Put IMAGES (from this machine's engine) on HOST's engine: docker save | docker load."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "exec", "-i", host.container.name, "docker", "load", "-q"],
        stdin=save.stdout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert save.stdout is not None
    save.stdout.close()
    if save.wait() != 0 or load.returncode != 0:
        raise HostError(f"could not load {images} on {host.name}: {load.stderr.strip()}")


# How often a read is tried when the exec itself fails (not the file missing): on a loaded
# machine an exec can fail to start, and an empty answer would read as "no file".
READ_ATTEMPTS = 3


def read_remote(host: SshHost, path: str) -> str | None:
    """The text of PATH on HOST; None when there is no such file. Any other failure of the
    read is the test's, on one line, never taken for a missing file."""
    said = ""
    for _attempt in range(READ_ATTEMPTS):
        result = host.container.exec_run(["cat", path], demux=True)
        out, err = result.output
        if result.exit_code == 0:
            return (out or b"").decode()
        said = (err or out or b"").decode(errors="replace").strip()
        if "No such file" in said:
            return None
    raise AssertionError(
        f"cannot read {path} on {host.name} ({READ_ATTEMPTS} tries): exit status"
        f" {result.exit_code}: {said or 'no output'}"
    )


def write_host_inventory(folder: Path, host: SshHost, keys: SessionKeys, wheels: Path) -> Path:
    """The shared settings (inventories/common.yml), the demo release, and HOST, which
    prepare.yml gives the libraries of the wheels in WHEELS."""
    settings = folder / "group_vars" / "all"
    settings.mkdir(parents=True)
    (settings / "00-common.yml").symlink_to(ROOT / "inventories" / "common.yml")
    own = {
        "prosaas_app_version": "v1",
        "prosaas_app_image": "prosaas-demo/app",
        "prosaas_migrate_image": "prosaas-demo/migrate:v1",
        "prosaas_infra_services": [{"name": "redis", "image": "prosaas-demo/redis:7"}],
        "prosaas_database_host": "db.invalid",
        "vault_prosaas_database_password": "unused",
        "prosaas_reports_dir": str(folder / "reports"),
        "prosaas_python_packages_from": "controller",
        "prosaas_python_wheels_dir": str(wheels),
    }
    (settings / "main.yml").write_text(yaml.safe_dump(own))
    hosts = {"prosaas": {"hosts": {host.name: host.inventory_vars(keys)}}}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return folder


def write_stack_inventory(folder: Path, server: SshHost, keys: SessionKeys) -> Path:
    """The server alone in the prosaas group, over the local inventory's group_vars: the
    whole stack, PostgreSQL included, on the server's engine."""
    (folder / "group_vars").mkdir(parents=True)
    (folder / "group_vars" / "all").symlink_to(ROOT / "inventories/local/group_vars/all")
    hosts = {"prosaas": {"hosts": {server.name: server.inventory_vars(keys)}}}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return folder
