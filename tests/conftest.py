"""Shared fixtures: a real PostgreSQL server, a real Docker engine, and playbook runs."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import docker
import psycopg
import pytest
import yaml
from docker.errors import DockerException

from tests import pg_cluster
from tests.e2e import reliability
from tests.pg_cluster import free_loopback_port
from tests.registry import (
    Registry,
    RegistryError,
    engine_trusts,
    push_images,
    registry_image,
    remove_registry,
    start_registry,
)
from tests.ssh_hosts import (
    HostError,
    SessionKeys,
    SshHost,
    host_image,
    prepared_image_tag,
    remove_host,
    snapshot_host,
    start_host,
)
from tests.ssh_stack import write_host_inventory
from tests.webhook import Webhook

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("unit", "integration", "e2e")
# How the tests run Ansible: the project's ansible.cfg, and host keys checked as ops have them
# (ansible-runner turns the check off unless told otherwise).
ANSIBLE_ENV = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_HOST_KEY_CHECKING": "True"}
# The Ansible commands (and squawk) installed beside this interpreter, even when the
# virtualenv is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, taken from the folder it lives in."""
    for item in items:
        layer = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


# --- The reliability record: one per session, pytest-xdist workers merged -------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker hands its record to the controller; the controller (or a lone run) saves."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability"] = asdict(reliability.RECORD)
    else:
        reliability.save_if_complete()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker ended; keep what it recorded."""
    recorded = getattr(node, "workeroutput", {}).get("reliability")
    if recorded:
        reliability.RECORD.merge(recorded)


# --- PostgreSQL ---------------------------------------------------------------------


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create databases on."""

    dsn: str

    def dsn_for(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn, dbname=dbname)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_throwaway_cluster() -> pg_cluster.ThrowawayCluster:
    try:
        cluster = pg_cluster.ThrowawayCluster()
        cluster.start()
    except pg_cluster.ClusterError as exc:
        pytest.fail(str(exc))
    return cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """TEST_DATABASE_URL when set, else a throwaway cluster removed at the end."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PgServer(url)
        return
    cluster = start_throwaway_cluster()
    try:
        yield PgServer(cluster.dsn)
    finally:
        cluster.stop()


@pytest.fixture
def database(postgres: PgServer) -> Iterator[str]:
    """The DSN of a new, empty database, dropped after the test."""
    name = postgres.create_database()
    try:
        yield postgres.dsn_for(name)
    finally:
        postgres.drop_database(name)


# --- Docker -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine() -> docker.DockerClient:
    """The engine at DOCKER_HOST (default socket). Missing is a failure, never a skip."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        pytest.fail(f"no Docker engine reachable ({exc}); scripts/test.sh starts one")
    return client


@pytest.fixture(scope="session")
def demo_images(docker_engine: docker.DockerClient) -> list[str]:
    """The demo images scripts/test.sh builds; missing ones fail the test that needs them."""
    lines = (ROOT / "scripts" / "images.tsv").read_text().splitlines()
    wanted = [line.split("\t")[0] for line in lines if line and not line.startswith("#")]
    missing = [ref for ref in wanted if not docker_engine.images.list(name=ref)]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}; run scripts/test.sh to build them")
    return wanted


@pytest.fixture(scope="session")
def base_image(docker_engine: docker.DockerClient) -> str:
    """BASE_IMAGE (scripts/test.sh exports it), else the newest prosaas-deploy/base tag."""
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    images = sorted(
        docker_engine.images.list(name="prosaas-deploy/base"),
        key=lambda image: image.attrs["Created"],
    )
    tags = [tag for image in images for tag in image.tags]
    if not tags:
        pytest.fail("no prosaas-deploy/base image and no BASE_IMAGE: run scripts/test.sh")
    return tags[-1]


# --- Chat webhook: a loopback server that records each post (tests/webhook.py) -------


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.start()
    yield hook
    assert hook.server is not None
    hook.server.shutdown()


@contextlib.contextmanager
def engine_events(client: docker.DockerClient, **filters: Any) -> Iterator[list[dict]]:
    """The engine's events that match FILTERS while the block runs, read as they come. A
    later query (since, until) would not do: the engine keeps only its last 256 events for
    it, fewer than a busy machine's health checks make in a few seconds."""
    seen: list[dict] = []
    stream = client.events(decode=True, filters=filters)

    def read() -> None:
        seen.extend(stream)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        time.sleep(0.5)  # the engine sends an event a moment after the change it tells of
        stream.close()
        reader.join(timeout=10)


# --- Test hosts: bare servers reached over SSH (tests/ssh_hosts.py) ----------------------


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SessionKeys:
    """The deploy user's key pair and the known_hosts file of this session's test hosts."""
    return SessionKeys.make(tmp_path_factory.mktemp("ssh"))


HOST_WHEELS = ROOT / ".cache" / "wheels"


def host_wheels() -> Path:
    """The wheels prepare.yml copies to the test hosts (prosaas_python_packages_from:
    controller); the test fails when scripts/test.sh has not downloaded them."""
    if not list(HOST_WHEELS.glob("*.whl")):
        pytest.fail(
            f"no wheels in {HOST_WHEELS}: scripts/test.sh downloads them (ensure_host_wheels)"
        )
    return HOST_WHEELS


def start_test_host(
    client: docker.DockerClient,
    base_image: str,
    keys: SessionKeys,
    prefix: str,
    network: str | None = None,
    *,
    ssh_port: int | None = None,
    command: list[str] | None = None,
    image: str | None = None,
) -> SshHost:
    """A fresh bare test host named PREFIX-<random> (on NETWORK, its sshd on loopback
    SSH_PORT, COMMAND as PID 1 instead of systemd, when given; of IMAGE, the prepared host
    image say, instead of the bare one); the test fails when it cannot start."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    try:
        image = image or host_image(client, base_image)
        return start_host(client, image, name, keys, network, ssh_port=ssh_port, command=command)
    except HostError as exc:
        pytest.fail(str(exc))


# What prepare.yml does to a host: a prepared host image is made again when one changes.
PREPARE_INPUTS = ("playbooks/prepare.yml", "playbooks/check-ansible.yml", "roles/prepare")


@pytest.fixture(scope="session")
def prepared_host_image(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The test host image with playbooks/prepare.yml run on it (Docker, the virtualenv, the
    deploy user in the docker group), for the tests whose subject is not prepare.yml on a
    bare server (tests/e2e/test_ssh.py and the README walkthrough keep that one). A host of
    it still runs prepare.yml for what its own inventory adds, a registry's CA say. Made
    once per content of what prepare.yml runs and of the wheels it installs; kept on the
    engine between runs."""
    wheels = host_wheels()
    inputs = [ROOT / name for name in PREPARE_INPUTS]
    files = [f for path in inputs for f in ([path] if path.is_file() else path.rglob("*"))]
    files = [f for f in files if f.is_file()] + sorted(wheels.glob("*.whl"))
    tag = prepared_image_tag(host_image(docker_engine, base_image), files, ROOT)
    (ROOT / ".state").mkdir(exist_ok=True)
    with (ROOT / ".state" / "prepared-host.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second test worker waits here for the first
        if not docker_engine.images.list(name=tag):
            make_prepared_image(docker_engine, base_image, ssh_keys, tmp_path_factory, tag)
    return tag


def make_prepared_image(
    client: docker.DockerClient,
    base_image: str,
    keys: SessionKeys,
    tmp_path_factory: pytest.TempPathFactory,
    tag: str,
) -> None:
    host = start_test_host(client, base_image, keys, "pdsnap")
    try:
        base = tmp_path_factory.mktemp("prepared-host")
        inventory = write_host_inventory(base / "inventory", host, keys, HOST_WHEELS)
        args = playbook_args("playbooks/prepare.yml", base) | {"inventory": str(inventory)}
        run = ansible_runner.run(**args)
        if run.rc != 0:
            pytest.fail(f"prepare.yml failed on {host.name}, the prepared host image's host")
        snapshot_host(client, host, tag)
    except HostError as exc:
        pytest.fail(str(exc))
    finally:
        remove_host(client, host)


@pytest.fixture(scope="session")
def ssh_host(
    docker_engine: docker.DockerClient, base_image: str, ssh_keys: SessionKeys
) -> Iterator[SshHost]:
    """One bare test host (its own hostname and host keys), removed at the end of the session."""
    host = start_test_host(docker_engine, base_image, ssh_keys, "pdhost")
    try:
        yield host
    finally:
        remove_host(docker_engine, host)


# --- A private registry of the session (tests/registry.py) -----------------------------

REGISTRY_USER = "prosaas-ci"
# The database runs outside a real deployment: no deploy pulls its image from a registry.
NOT_PUSHED = ("prosaas-demo/postgres:",)


def registry_images(demo_images: list[str]) -> list[str]:
    """The demo images the registry fixture pushes."""
    return [ref for ref in demo_images if not ref.startswith(NOT_PUSHED)]


TRUST_REGISTRY_PLAYBOOK = "tests/playbooks/trust_registry.yml"


@pytest.fixture(scope="session")
def registry(
    docker_engine: docker.DockerClient,
    base_image: str,
    demo_images: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    """A registry on a network of its own, the demo images (registry_images) pushed to it
    once with the docker_release module's push (their digests in .digests). This machine's
    engine trusts the session CA for its loopback address meanwhile; everything goes at the end."""
    name = f"pdreg-{uuid.uuid4().hex[:6]}"
    try:
        started = start_registry(
            docker_engine,
            registry_image(docker_engine, base_image),
            name,
            network=f"{name}-net",
            ca_folder=tmp_path_factory.mktemp("registry"),
            user=REGISTRY_USER,
            password=secrets.token_urlsafe(24),
        )
    except RegistryError as exc:
        pytest.fail(str(exc))
    try:
        with engine_trusts(started):
            try:
                push_images(started, registry_images(demo_images))
            except RegistryError as exc:
                pytest.fail(str(exc))
            yield started
    finally:
        remove_registry(docker_engine, started)


def trust_registry(
    host: SshHost, keys: SessionKeys, registry_vars: dict, tmp_path: Path, *flags: str
) -> ansible_runner.Runner:
    """Run the prepare role's registry tasks on HOST over SSH (tests/playbooks/
    trust_registry.yml), with REGISTRY_VARS as the inventory's (Registry.inventory_vars()):
    the host's engine then trusts the registry's CA as a prepared deploy host does."""
    inventory = tmp_path / f"hosts-{uuid.uuid4().hex[:8]}.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {host.name: host.inventory_vars(keys)}}}))
    args = playbook_args(TRUST_REGISTRY_PLAYBOOK, tmp_path, registry_vars)
    args |= {"inventory": str(inventory), "cmdline": " ".join(flags) or None}
    return ansible_runner.run(**args)


# --- Playbooks ----------------------------------------------------------------------


def playbook_args(
    playbook: str, tmp_path: Path, extravars: dict | None = None, inventory: str = "local"
) -> dict:
    """ansible-runner arguments that run one of the project's playbooks as ops would."""
    private_data_dir = tmp_path / f"runner-{uuid.uuid4().hex[:8]}"
    private_data_dir.mkdir()
    return {
        "private_data_dir": str(private_data_dir),
        "project_dir": str(ROOT),
        "playbook": str(ROOT / playbook),
        "inventory": str(ROOT / "inventories" / inventory),
        "extravars": extravars or {},
        "envvars": ANSIBLE_ENV,
        "quiet": True,
    }


def run_playbook(
    playbook: str,
    tmp_path: Path,
    extravars: dict | None = None,
    inventory: str = "local",
    flags: tuple[str, ...] = (),
) -> ansible_runner.Runner:
    """Run one of the project's playbooks through ansible-runner, with ansible-playbook's
    FLAGS (--check, say), and wait for it."""
    args = playbook_args(playbook, tmp_path, extravars, inventory)
    return ansible_runner.run(**args, cmdline=" ".join(flags) or None)


@dataclass
class ModuleRun:
    """One module call made through Ansible: its exit code, its result and what it printed."""

    rc: int
    result: dict
    stdout: str
    event: str

    @property
    def failed(self) -> bool:
        return self.event != "runner_on_ok"


def run_module(
    tmp_path: Path,
    module: str,
    args: dict | str,
    *,
    check: bool = False,
    diff: bool = False,
    become: bool = False,
    host: str = "localhost",
    inventory: Path = ROOT / "inventories" / "local",
) -> ModuleRun:
    """Run a module on HOST of INVENTORY through Ansible itself (ad hoc, like `ansible -m`).

    ARGS: a dict of options, or a free-form string (the command module's).
    """
    private_data_dir = tmp_path / f"module-{uuid.uuid4().hex[:8]}"
    private_data_dir.mkdir()
    wanted_flags = (("--check", check), ("--diff", diff), ("--become", become))
    flags = [flag for flag, wanted in wanted_flags if wanted]
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        project_dir=str(ROOT),
        host_pattern=host,
        inventory=str(inventory),
        module=module,
        module_args=json.dumps(args) if isinstance(args, dict) else args,
        cmdline=" ".join(flags) or None,
        envvars=ANSIBLE_ENV,
        quiet=True,
    )
    results = [
        (event["event"], event["event_data"]["res"])
        for event in runner.events
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")
    ]
    assert len(results) == 1, f"expected one result from {module}, got {len(results)}"
    event, result = results[0]
    return ModuleRun(runner.rc, result, runner.stdout.read(), event)


def host_stats(runner: ansible_runner.Runner, host: str = "localhost") -> dict[str, int]:
    """Per-host play recap counters: ok, changed, failures, ..."""
    return {key: (value or {}).get(host, 0) for key, value in (runner.stats or {}).items()}


@dataclass
class IsolatedStack:
    """Names and ports of one test's own copy of the local stack."""

    prefix: str
    extravars: dict


def isolated_extravars(prefix: str, base: Path) -> dict:
    """Extra vars of one stack named by PREFIX: own network and ports, state under BASE."""
    return {
        "prosaas_container_prefix": prefix,
        "prosaas_network": f"{prefix}net",
        "prosaas_api_port": free_loopback_port(),
        "prosaas_calls_port": free_loopback_port(),
        "prosaas_database_port_from_deployer": free_loopback_port(),
        "prosaas_state_dir": str(base / "state"),
        "prosaas_reports_dir": str(base / "reports"),
    }


@pytest.fixture
def isolated_stack(
    docker_engine: docker.DockerClient, demo_images: list[str], tmp_path: Path
) -> Iterator[IsolatedStack]:
    """Extra vars that give the local stack its own containers, network, volume and ports.

    Everything carrying the prefix is removed afterwards, so a demo stack already running on
    the machine is never touched.
    """
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    extravars = isolated_extravars(prefix, tmp_path)
    try:
        yield IsolatedStack(prefix, extravars)
    finally:
        remove_stack(docker_engine, prefix)


def remove_stack(client: docker.DockerClient, prefix: str) -> None:
    for container in client.containers.list(all=True, filters={"name": f"^{prefix}"}):
        container.remove(force=True)
    for network in client.networks.list(names=[f"{prefix}net"]):
        network.remove()
    for volume in client.volumes.list(filters={"name": prefix}):
        volume.remove(force=True)
