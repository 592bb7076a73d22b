"""Extra Docker engines for the tests: each its own dockerd (socket, data root, exec root,
address pool), started detached and stopped by the test session that started it.

The engine leaves iptables alone, so it cannot disturb the main engine's rules; one FORWARD
rule lets its containers reach each other (the main engine's FORWARD policy drops bridged
traffic it does not know). Its default bridge is one made for it.

dockerd 20.10 deletes the host's docker0 (the main engine's default bridge) when it starts
with a network store from an earlier run, even with a bridge of its own; so after every
start of this engine, docker0 is put back as it was (the main engine finds it by name).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import DockerException

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


class EngineError(RuntimeError):
    """An engine that would not start, stop or take the images."""


@dataclass
class Engine:
    """One dockerd of the tests, under ROOT, its networks in ADDRESS_POOL (a /16), its
    default bridge BRIDGE (at most 15 characters) on BRIDGE_ADDRESS (a /24, ip/prefix)."""

    root: Path
    address_pool: str
    bridge: str
    bridge_address: str
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        """The engine's URL, as prosaas_docker_host takes it."""
        return f"unix://{self.socket}"

    def command(self) -> list[str]:
        return [
            "dockerd",
            "--host", self.host,
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
            "--bridge", self.bridge,
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--default-address-pool", f"base={self.address_pool},size=24",
        ]  # fmt: skip

    def make_bridge(self) -> None:
        """The engine's default bridge, made once (it outlives a restart of the engine)."""
        if not host_bridge_addresses(self.bridge):
            for command in (
                ["ip", "link", "add", self.bridge, "type", "bridge"],
                ["ip", "addr", "add", self.bridge_address, "dev", self.bridge],
                ["ip", "link", "set", self.bridge, "up"],
            ):
                subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.make_bridge()
        docker0 = host_bridge_addresses("docker0")
        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own session: no test's signal reaches it
            )
        self.wait_until_answering()
        if docker0:
            restore_bridge("docker0", docker0)

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EngineError(f"dockerd exited with {self.process.returncode}: {self.log()}")
            with contextlib.suppress(DockerException):
                self.client().ping()
                return
            time.sleep(0.2)
        raise EngineError(f"dockerd at {self.host} did not answer in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop dockerd as systemd would (SIGTERM: it stops its containers first)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float = 0.0) -> float:
        """Stop the engine, leave it down DOWN_FOR seconds, start it; seconds it all took."""
        started = time.monotonic()
        self.stop()
        time.sleep(down_for)
        self.start()
        return time.monotonic() - started

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=120)

    def log(self) -> str:
        lines = (self.root / "dockerd.log").read_text(errors="replace").splitlines()
        return " | ".join(lines[-3:])

    def load_images(self, images: list[str]) -> None:
        """Copy IMAGES from the tests' main engine (DOCKER_HOST, else the default socket) with
        docker save | docker load: nothing is pulled."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["docker", "-H", self.host, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        save.wait()
        if save.returncode != 0 or loaded.returncode != 0:
            raise EngineError(f"could not copy {images}: {loaded.stderr.strip()}")

    def forward_rule(self, action: str) -> list[str]:
        return ["iptables", action, "FORWARD", "-s", self.address_pool,
                "-d", self.address_pool, "-j", "ACCEPT"]  # fmt: skip

    def allow_forwarding(self) -> None:
        subprocess.run(self.forward_rule("-I"), check=True, capture_output=True)

    def remove(self) -> None:
        """Stop the engine, drop its FORWARD rule and its files."""
        self.stop()
        subprocess.run(self.forward_rule("-D"), check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def host_bridge_addresses(name: str) -> list[str]:
    """The addresses (ip/prefix) of the host's bridge NAME; empty when it does not exist."""
    shown = subprocess.run(
        ["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        return []
    return [
        f"{address['local']}/{address['prefixlen']}"
        for link in json.loads(shown.stdout)
        for address in link.get("addr_info", [])
        if address.get("family") == "inet"
    ]


def restore_bridge(name: str, addresses: list[str]) -> None:
    """Make bridge NAME again with ADDRESSES, if it is gone."""
    if host_bridge_addresses(name):
        return
    commands = [["ip", "link", "add", name, "type", "bridge"]]
    commands += [["ip", "addr", "add", address, "dev", name] for address in addresses]
    commands.append(["ip", "link", "set", name, "up"])
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
