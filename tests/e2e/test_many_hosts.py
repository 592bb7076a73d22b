"""deploy.yml on three hosts, each "host" its own dockerd on this machine.

- infra1: the tests' main engine; groups prosaas_infra (postgres, redis) and prosaas_api;
  the migration host.
- calls1: a second engine (tests.e2e.conftest.second_engine); group prosaas_calls.
- worker1: a third engine, started here; group prosaas_worker.
One deploy lock and one release history for the three hosts, kept on infra1 (the state
host); each host is given its own state dir, so a write on the wrong host would show. The
services on calls1 and worker1
reach postgres and redis on infra1 through ports published on the second engine's bridge
address, a test-only bridge on this machine. Hosts start one batch at a time.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import docker
import psycopg
import pytest
import yaml

from tests.conftest import ROOT, host_stats, isolated_extravars, playbook_args, remove_stack
from tests.e2e.conftest import DB_PASSWORD, RESET_109_SQL, running_engine, wait_until
from tests.engines import Engine
from tests.pg_cluster import free_loopback_port

HOSTS = ("infra1", "calls1", "worker1")
# The first host of the inventory keeps the deploy lock and the release history.
STATE_HOST = "infra1"
SERVICES_ON = {  # a host that runs the api or calls runs the proxy in front of them
    "infra1": ("postgres", "redis", "prosaas-api", "proxy"),
    "calls1": ("prosaas-calls", "proxy"),
    "worker1": ("worker",),
}
APP_ON = {"infra1": "prosaas-api", "calls1": "prosaas-calls", "worker1": "worker"}
START_TASK = (
    "Bring the services up, wait until all are healthy and in the proxy's rotation (or only"
    " compare, when asked)"
)
MIGRATE_TASK = "Run the migrate image to completion"


@pytest.fixture(scope="module")
def third_engine(demo_images: list[str], tmp_path_factory) -> Iterator[Engine]:
    """A dockerd for worker1, with the app images only."""
    root = tmp_path_factory.mktemp("engine3")
    engine = Engine(root, "10.215.0.0/16", "pdtest1", "10.216.0.1/24")
    yield running_engine(engine, ["prosaas-demo/app:v1", "prosaas-demo/app:v2"])
    engine.remove()


@dataclass
class ManyHosts:
    """One isolated stack spread over three engines, and what each host's deploy left."""

    clients: dict[str, docker.DockerClient]
    prefix: str
    extravars: dict
    inventory: Path
    base: Path
    reach: str  # the address the hosts' containers reach infra1's published ports on

    def play(self, playbook: str, version: str, **extra: Any) -> ansible_runner.Runner:
        args = playbook_args(
            playbook,
            self.base,
            {**self.extravars, "prosaas_app_version": version, **extra},
        )
        return ansible_runner.run(**{**args, "inventory": str(self.inventory)})

    def deploy(self, version: str, **extra: Any) -> ansible_runner.Runner:
        return self.play("deploy.yml", version, **extra)

    def container(self, host: str, service: str) -> Any:
        return self.clients[host].containers.get(f"{self.prefix}{service}")

    def services(self, host: str) -> set[str]:
        containers = self.clients[host].containers.list(filters={"name": f"^{self.prefix}"})
        return {container.name.removeprefix(self.prefix) for container in containers}

    def app_state(self) -> dict[str, tuple[str, str]]:
        """(image, health) of each host's app service."""
        state = {}
        for host, service in APP_ON.items():
            attrs = self.container(host, service).attrs
            state[host] = (attrs["Config"]["Image"], attrs["State"]["Health"]["Status"])
        return state

    def history(self) -> list[dict]:
        """The release history of the deployment, on the state host; none on the others."""
        assert not any((self.base / f"state-{host}").exists() for host in HOSTS[1:])
        path = self.base / f"state-{STATE_HOST}" / "releases.json"
        return json.loads(path.read_text())["releases"]

    def lock_exists(self) -> bool:
        return (self.base / f"state-{STATE_HOST}" / "deploy.lock").exists()

    def connect(self) -> psycopg.Connection:
        port = self.extravars["prosaas_database_port_from_deployer"]
        dsn = f"postgresql://prosaas:{DB_PASSWORD}@127.0.0.1:{port}/prosaas"
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True)


def infra_services(reach: str, pg_port: int, redis_port: int) -> list[dict]:
    """The local inventory's infra services, also published where the other hosts reach them."""
    inventory = ROOT / "inventories" / "local" / "group_vars" / "all" / "main.yml"
    services = yaml.safe_load(inventory.read_text())["prosaas_infra_services"]
    extra_ports = {"postgres": f"{reach}:{pg_port}:5432", "redis": f"{reach}:{redis_port}:6379"}
    for service in services:
        service["ports"] = [*service.get("ports", []), extra_ports[service["name"]]]
    return services


def write_inventory(folder: Path, engines: dict[str, str], base: Path, reach: str) -> Path:
    """A production-shaped inventory of three hosts over the local inventory's group_vars."""
    folder.mkdir()
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "all").symlink_to(
        ROOT / "inventories" / "local" / "group_vars" / "all"
    )
    pg_port, redis_port = free_loopback_port(), free_loopback_port()
    host_vars = {
        host: {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "prosaas_docker_host": engines[host],
            "prosaas_state_dir": str(base / f"state-{host}"),
        }
        for host in HOSTS
    }
    inventory = {
        "prosaas": {
            "children": {
                "prosaas_infra": {"hosts": {"infra1": host_vars["infra1"]}},
                "prosaas_api": {"hosts": {"infra1": None}},
                "prosaas_calls": {"hosts": {"calls1": host_vars["calls1"]}},
                "prosaas_worker": {"hosts": {"worker1": host_vars["worker1"]}},
            },
        }
    }
    # group_vars/prosaas.yml: above group_vars/all (the local inventory's) in precedence.
    group_vars = {
        "prosaas_service_groups": {
            "postgres": "prosaas_infra",
            "redis": "prosaas_infra",
            "prosaas-api": "prosaas_api",
            "prosaas-calls": "prosaas_calls",
            "worker": "prosaas_worker",
        },
        "prosaas_migration_host": "infra1",
        "prosaas_start_batch_size": 1,
        "prosaas_infra_services": infra_services(reach, pg_port, redis_port),
        "prosaas_database_host": reach,
        "prosaas_database_port": pg_port,
        "prosaas_app_env": {
            "RUN_MIGRATIONS_ON_START": "0",
            "RUN_MIGRATIONS": "0",
            "REDIS_URL": f"redis://{reach}:{redis_port}/0",
        },
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (folder / "group_vars" / "prosaas.yml").write_text(yaml.safe_dump(group_vars))
    return folder


@pytest.fixture(scope="module")
def hosts(
    docker_engine: docker.DockerClient,
    second_engine: Engine,
    third_engine: Engine,
    tmp_path_factory,
) -> Iterator[ManyHosts]:
    """The stack over three hosts, v1 deployed everywhere."""
    base = tmp_path_factory.mktemp("hosts")
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    engines = {
        "infra1": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        "calls1": second_engine.host,
        "worker1": third_engine.host,
    }
    clients = {"infra1": docker_engine, "calls1": second_engine.client()}
    clients["worker1"] = third_engine.client()
    reach = second_engine.bridge_address.split("/")[0]
    extravars = isolated_extravars(prefix, base)
    del extravars["prosaas_state_dir"]  # each host has its own, in the inventory
    many = ManyHosts(
        clients,
        prefix,
        extravars,
        write_inventory(base / "inventory", engines, base, reach),
        base,
        reach,
    )
    try:
        first = many.deploy("v1")
        assert first.rc == 0, first.stdout.read()[-6000:]
        yield many
    finally:
        for client in clients.values():
            remove_stack(client, prefix)


def stats(runner: ansible_runner.Runner) -> dict[str, dict[str, int]]:
    return {host: host_stats(runner, host) for host in HOSTS}


def phase_runs(runner: ansible_runner.Runner, phase: str, task: str) -> list[dict]:
    """event_data of every host's result of TASK in PHASE of deploy.yml, in the order they
    ended (skipped hosts left out), each with "failed" set."""
    runs, inside = [], False
    for event in runner.events:
        data = event.get("event_data", {})
        if event.get("event") == "playbook_on_task_start":
            name = data.get("task", "")
            if name == f"Enter the {phase} phase":
                inside = True
            elif name.startswith("Enter the ") or name == "Note why the deploy failed":
                inside = False
        elif (
            inside
            and event.get("event") in ("runner_on_ok", "runner_on_failed")
            and data.get("task") == task
            and not data.get("res", {}).get("skipped")
        ):
            runs.append({**data, "failed": event["event"] == "runner_on_failed"})
    return runs


def break_v2_health_on(engine: Engine) -> None:
    """On ENGINE only, app:v2 becomes an image whose health check always fails."""
    client = engine.client()
    dockerfile = "FROM prosaas-demo/app:v2\nENV DEMO_FAIL_HEALTH=1\n"
    folder = Path(engine.root) / "broken-v2"
    folder.mkdir(exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    client.images.build(path=str(folder), tag="prosaas-demo/app:v2", rm=True)


def restore_v2_on(engine: Engine) -> None:
    engine.client().images.remove("prosaas-demo/app:v2", force=True)
    engine.load_images(["prosaas-demo/app:v2"])


def test_v1_runs_each_service_only_on_its_hosts(hosts: ManyHosts) -> None:
    for host, services in SERVICES_ON.items():
        assert hosts.services(host) == set(services), host
    assert hosts.app_state() == dict.fromkeys(HOSTS, ("prosaas-demo/app:v1", "healthy"))


def test_a_failure_on_one_host_mid_start_rolls_back_every_host(
    hosts: ManyHosts, third_engine: Engine
) -> None:
    break_v2_health_on(third_engine)
    try:
        run = hosts.deploy("v2", service_up_wait_timeout=15)
    finally:
        restore_v2_on(third_engine)
    output = run.stdout.read()
    assert run.rc != 0, output[-6000:]
    # infra1 and calls1 started v2 healthy in the first two batches; worker1 failed in the third.
    started = [(data["host"], data["failed"]) for data in phase_runs(run, "start", START_TASK)]
    assert started == [("infra1", False), ("calls1", False), ("worker1", True)]
    # Every host is back on v1, healthy; the one history records the release failed.
    assert hosts.app_state() == dict.fromkeys(HOSTS, ("prosaas-demo/app:v1", "healthy"))
    failed = hosts.history()[-1]
    assert failed["status"] == "failed"
    assert "on worker1: " in failed["reason"], failed
    assert not hosts.lock_exists()
    messages = [line for line in output.splitlines() if "deploy of release" in line]
    assert messages and all("failed in phase start: on worker1" in line for line in messages)


def test_deploy_migrates_once_and_starts_batch_by_batch(hosts: ManyHosts) -> None:
    with hosts.connect() as conn:
        conn.execute(RESET_109_SQL)  # 109 pending again, whatever an earlier test left
    run = hosts.deploy("v2")
    assert run.rc == 0, run.stdout.read()[-6000:]
    assert all(host_stats["failures"] == 0 for host_stats in stats(run).values())
    assert hosts.app_state() == dict.fromkeys(HOSTS, ("prosaas-demo/app:v2", "healthy"))
    # The migration ran once, on infra1.
    assert [data["host"] for data in phase_runs(run, "migrate", MIGRATE_TASK)] == ["infra1"]
    with hosts.connect() as conn:
        rows = conn.execute("SELECT count(*) FROM prosaas_schema_history WHERE version = 109")
        assert rows.fetchone()[0] == 1
    # One batch after the other: each host's start began after the one before it was healthy.
    starts = phase_runs(run, "start", START_TASK)
    assert [data["host"] for data in starts] == list(HOSTS)
    for before, after in itertools.pairwise(starts):
        assert after["start"] >= before["end"], (before["host"], after["host"])
    # One release, succeeded, in the one history.
    record = hosts.history()[-1]
    assert record["status"] == "succeeded"
    reports = sorted(path.name for path in (hosts.base / "reports").glob("*.json"))
    release = record["id"]
    assert [name for name in reports if name.startswith(release)] == sorted(
        f"{release}.{host}.json" for host in HOSTS
    )
    # Run again: nothing to do on any host.
    again = hosts.deploy("v2")
    assert again.rc == 0, again.stdout.read()[-6000:]
    assert {host: counts["changed"] for host, counts in stats(again).items()} == dict.fromkeys(
        HOSTS, 0
    )
    wait_until(lambda: not hosts.lock_exists(), 5, "lock released")


def test_status_reads_the_migrations_once_and_changes_nothing(hosts: ManyHosts) -> None:
    run = hosts.play("playbooks/status.yml", "v2")
    output = run.stdout.read()
    assert run.rc == 0, output[-6000:]
    assert {host: counts["changed"] for host, counts in stats(run).items()} == dict.fromkeys(
        HOSTS, 0
    )
    assert output.count("migrations applied: ") == 1, output[-6000:]
    assert output.count("migrations: read on the migration host") == 2, output[-6000:]
