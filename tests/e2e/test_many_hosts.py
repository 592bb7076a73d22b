"""deploy.yml on three servers reached over SSH, the release pulled from the test registry, and
the faults only many hosts have: a host that stops answering mid-deploy, a partition, an
infra host rebooted.

- infra1: postgres and redis (published on its address on the test network), prosaas-api and
  the proxy in front of it.
- calls1: prosaas-calls and its proxy; the state host (deploy lock and release history), which
  no row takes away.
- worker1: the worker; the migration host.
Each is a test host of tests/ssh_hosts.py (its own sshd and Docker engine, reached as the
deploy user) prepared by playbooks/prepare.yml, on the test registry's network. The app and
migrate images, redis and the proxy come from the registry and run by digest; postgres, which
the registry does not carry, is loaded on infra1. Everything a deploy needs is in the
inventory, so the command a failure line gives runs as written. Hosts start one batch at a time.

The fault rows check what tests/e2e/faults.py promises for every row, on every host: one
line naming the cause, v1 healthy everywhere at the end (by the flow, or by the command the
line gives), call_log's rows unchanged, the lock released, the failure in the history.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import docker
import psycopg
import pytest
import yaml

from tests.conftest import (
    ANSIBLE_ENV,
    HOST_WHEELS,
    ROOT,
    host_wheels,
    playbook_args,
    start_test_host,
)
from tests.e2e.conftest import (
    DB_PASSWORD,
    RESET_109_SQL,
    DeployRun,
    Failpoints,
    Hold,
    met_a_holder,
    run_held,
    wait_until,
)
from tests.e2e.faults import CHECKSUM_SQL, assert_plain_failure_line, seed_call_log
from tests.e2e.reliability import RECORD, Observed
from tests.pg_cluster import free_loopback_port
from tests.registry import Registry
from tests.ssh_hosts import SessionKeys, SshHost, remove_host
from tests.ssh_stack import load_images, read_remote

HOSTS = ("infra1", "calls1", "worker1")
STATE_HOST = "calls1"
MIGRATION_HOST = "worker1"
STATE_DIR = "/var/lib/prosaas-deploy"
SERVICES_ON = {  # a host that runs the api or calls runs the proxy in front of them
    "infra1": {"postgres", "redis", "prosaas-api", "proxy"},
    "calls1": {"prosaas-calls", "proxy"},
    "worker1": {"worker"},
}
APP_ON = {"infra1": "prosaas-api", "calls1": "prosaas-calls", "worker1": "worker"}
START_TASK = (
    "Bring the services up, wait until all are healthy and in the proxy's rotation (or only"
    " compare, when asked)"
)
MIGRATE_TASK = "Run the migrate image to completion"
RESCUE_TASK = "Note why the deploy failed"
JOBS = "prosaas:jobs"


@dataclass
class Cluster:
    """Three prepared servers, the inventory that deploys to them, and what they run."""

    hosts: dict[str, SshHost]
    inventory: Path
    base: Path
    address: str  # infra1's address on the test network: postgres and redis are there
    registry: Registry
    runs: list[DeployRun] = field(default_factory=list)

    def args(self, playbook: str, flags: tuple[str, ...] = (), **extravars: Any) -> dict:
        args = playbook_args(playbook, self.base, extravars)
        return args | {"inventory": str(self.inventory), "cmdline": " ".join(flags) or None}

    def play(self, playbook: str, *flags: str, **extravars: Any) -> DeployRun:
        return DeployRun.of(ansible_runner.run(**self.args(playbook, flags, **extravars)))

    def deploy(self, version: str, **extra: Any) -> DeployRun:
        return self.play("deploy.yml", prosaas_app_version=version, **extra)

    def failpoints(self) -> Failpoints:
        """A failpoint folder on this machine and at the same path on every server."""
        return Failpoints.under(self.base, {name: h.container for name, h in self.hosts.items()})

    def deploy_held(
        self, holds: list[Hold], failpoints: Failpoints | None = None, **extra: Any
    ) -> DeployRun:
        """deploy.yml of v2 held at each failpoint of HOLDS (on a server, for a hold that
        names one) for its action."""
        args = self.args("deploy.yml", prosaas_app_version="v2", **extra)
        return run_held(args, failpoints or self.failpoints(), holds)

    def docker(self, host: str, *args: str) -> str:
        """What the docker CLI prints on HOST's own engine."""
        code, output = self.hosts[host].container.exec_run(["docker", *args])
        assert code == 0, output.decode()
        return output.decode().strip()

    def services(self, host: str) -> set[str]:
        names = self.docker(host, "ps", "--format", "{{.Names}}").split()
        return {name for name in names if not name.endswith(("-next", "-previous"))}

    def app_state(self) -> dict[str, tuple[str, str]]:
        """(version by image digest, health) of each host's app service."""
        app = f"{self.registry.address}/prosaas-demo/app"
        versions = {
            f"{app}@{self.registry.digests[f'prosaas-demo/app:{v}']}": v for v in ("v1", "v2")
        }
        state = {}
        for host, service in APP_ON.items():
            code, output = self.hosts[host].container.exec_run([
                "docker", "inspect", "--format",
                "{{.Config.Image}} {{.State.Status}}"
                " {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                service,
            ])  # fmt: skip
            image, status, health = [*output.decode().split(), ""][:3]
            # A stopped container keeps its last health status: only a running one's counts.
            health = (health or status) if status == "running" else status
            state[host] = (versions.get(image, image), health) if code == 0 else ("", "missing")
        return state

    def all_on(self, version: str) -> dict[str, tuple[str, str]]:
        return dict.fromkeys(HOSTS, (version, "healthy"))

    def history(self) -> list[dict]:
        """The release history, on the state host; none on the others."""
        for host in HOSTS:
            if host != STATE_HOST:
                assert read_remote(self.hosts[host], f"{STATE_DIR}/releases.json") is None, host
        text = read_remote(self.hosts[STATE_HOST], f"{STATE_DIR}/releases.json")
        return json.loads(text)["releases"] if text else []

    def lock(self) -> str | None:
        return read_remote(self.hosts[STATE_HOST], f"{STATE_DIR}/deploy.lock")

    def connect(self) -> psycopg.Connection:
        dsn = f"postgresql://prosaas:{DB_PASSWORD}@{self.address}:5432/prosaas"
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True)

    def checksum(self) -> tuple[int, str]:
        with self.connect() as conn:
            count, digest = conn.execute(CHECKSUM_SQL).fetchone()
        return int(count), str(digest)

    def push_job(self, call_sid: str, work_seconds: float) -> None:
        job = json.dumps({"call_sid": call_sid, "work_seconds": work_seconds})
        self.docker("infra1", "exec", "redis", "redis-cli", "LPUSH", JOBS, job)

    def jobs_waiting(self) -> int:
        return int(self.docker("infra1", "exec", "redis", "redis-cli", "LLEN", JOBS))

    def run_on(self, host: str, command: str) -> None:
        """COMMAND as root on HOST's own system (not over SSH)."""
        code, output = self.hosts[host].container.exec_run(["sh", "-c", command])
        assert code == 0, output.decode()

    def stop_answering(self, host: str) -> None:
        """HOST's sshd and every SSH session to it die; its engine and services run on."""
        self.run_on(host, "systemctl stop ssh.service; pkill -KILL sshd; true")

    def answer_again(self, host: str) -> None:
        self.run_on(host, "systemctl start ssh.service")

    def cut_off_from_infra(self, host: str) -> None:
        """HOST's containers can no longer reach infra1's address (postgres, redis)."""
        self.run_on(host, f"iptables -I DOCKER-USER -d {self.address} -j DROP")

    def reconnect_to_infra(self, host: str) -> None:
        self.run_on(host, f"iptables -D DOCKER-USER -d {self.address} -j DROP")

    def reset_to_v1(self) -> None:
        """v1 healthy everywhere, 109 not applied: the starting state of every row."""
        with self.connect() as conn:
            conn.execute(RESET_109_SQL)
        if self.app_state() != self.all_on("v1"):
            back = self.deploy("v1")
            assert back.rc == 0, back.describe()
        assert self.app_state() == self.all_on("v1")


def host_address(host: SshHost, network: str) -> str:
    host.container.reload()
    return host.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def write_inventory(
    folder: Path, hosts: dict[str, SshHost], keys: SessionKeys, address: str, registry: Registry
) -> Path:
    """A production-shaped inventory of the three servers over the local inventory's
    group_vars, the registry's settings and the deploy user's password included."""
    (folder / "group_vars").mkdir(parents=True)
    (folder / "group_vars" / "all").symlink_to(ROOT / "inventories/local/group_vars/all")
    reach = {name: host.inventory_vars(keys) for name, host in hosts.items()}
    inventory = {
        "prosaas": {
            "children": {
                "prosaas_infra": {"hosts": {"infra1": reach["infra1"]}},
                "prosaas_api": {"hosts": {"infra1": None}},
                "prosaas_calls": {"hosts": {"calls1": reach["calls1"]}},
                "prosaas_worker": {"hosts": {"worker1": reach["worker1"]}},
            }
        }
    }
    local = yaml.safe_load((ROOT / "inventories/local/group_vars/all/main.yml").read_text())
    postgres = next(s for s in local["prosaas_infra_services"] if s["name"] == "postgres")
    from_registry = registry.release_vars()
    group_vars = {
        "prosaas_service_groups": {
            "postgres": "prosaas_infra",
            "redis": "prosaas_infra",
            "prosaas-api": "prosaas_api",
            "prosaas-calls": "prosaas_calls",
            "worker": "prosaas_worker",
        },
        "prosaas_migration_host": MIGRATION_HOST,
        "prosaas_state_host": STATE_HOST,
        "prosaas_start_batch_size": 1,
        "prosaas_infra_services": [
            postgres | {"ports": ["5432:5432"]},
            {
                "name": "redis",
                "image": f"{registry.address}/prosaas-demo/redis:7",
                "ports": ["6379:6379"],
            },
        ],
        "prosaas_database_host": address,
        "prosaas_database_host_from_deployer": address,
        "prosaas_database_port_from_deployer": 5432,
        "prosaas_app_env": {
            "RUN_MIGRATIONS_ON_START": "0",
            "RUN_MIGRATIONS": "0",
            "REDIS_URL": f"redis://{address}:6379/0",
        },
        "prosaas_proxy_image": f"{registry.address}/prosaas-deploy/proxy:1",
        "prosaas_app_image": from_registry["prosaas_app_image"],
        "prosaas_migrate_image": (
            f"{registry.address}/prosaas-demo/migrate:{{{{ prosaas_app_version }}}}"
        ),
        "prosaas_registry": from_registry["prosaas_registry"],
        "prosaas_registry_ca": registry.ca.cert.read_text(),
        "vault_prosaas_registry_password": registry.password,
        "prosaas_python_packages_from": "controller",
        "prosaas_python_wheels_dir": str(HOST_WHEELS),
        "prosaas_reports_dir": str(folder.parent / "reports"),
        "prosaas_health_timeout": 60,
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (folder / "group_vars" / "prosaas.yml").write_text(yaml.safe_dump(group_vars))
    return folder


@pytest.fixture(scope="module")
def cluster(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    registry: Registry,
    *,
    prepared_host_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """The three servers prepared (of the prepared host image: prepare.yml only adds the
    registry's CA), postgres loaded on infra1, v1 deployed and call_log seeded."""
    host_wheels()
    hosts: dict[str, SshHost] = {}
    try:
        for name in HOSTS:
            # A fixed SSH port: infra1's reboot row restarts its container.
            hosts[name] = start_test_host(
                docker_engine, base_image, ssh_keys, f"pd{name}", registry.network,
                ssh_port=free_loopback_port(), image=prepared_host_image,
            )  # fmt: skip
        base = tmp_path_factory.mktemp("many-hosts")
        address = host_address(hosts["infra1"], registry.network)
        inventory = write_inventory(base / "inventory", hosts, ssh_keys, address, registry)
        cluster = Cluster(hosts, inventory, base, address, registry)
        prepared = cluster.play("playbooks/prepare.yml")
        assert prepared.rc == 0, prepared.describe()
        load_images(hosts["infra1"], ["prosaas-demo/postgres:15"])
        first = cluster.deploy("v1")
        assert first.rc == 0, first.describe()
        with cluster.connect() as conn:
            seed_call_log(conn)
        yield cluster
    finally:
        for host in hosts.values():
            remove_host(docker_engine, host)


def changed_per_host(run: DeployRun) -> dict[str, int]:
    """The play recap's changed count of each host, from the run's stats event."""
    recap = next(e for e in run.events if e.get("event") == "playbook_on_stats")["event_data"]
    return {host: recap.get("changed", {}).get(host, 0) for host in HOSTS}


def phase_runs(run: DeployRun, phase: str, task: str) -> list[dict]:
    """event_data of every host's result of TASK in PHASE of deploy.yml, in the order they
    ended (skipped hosts left out), each with "failed" set."""
    runs, inside = [], False
    for event in run.events:
        data = event.get("event_data", {})
        if event.get("event") == "playbook_on_task_start":
            name = data.get("task", "")
            if name == f"Enter the {phase} phase":
                inside = True
            elif name.startswith("Enter the ") or name == RESCUE_TASK:
                inside = False
        elif (
            inside
            and event.get("event") in ("runner_on_ok", "runner_on_failed")
            and data.get("task") == task
            and not data.get("res", {}).get("skipped")
        ):
            runs.append({**data, "failed": event["event"] == "runner_on_failed"})
    return runs


# --- The deploy over three servers ----------------------------------------------------


def test_v1_runs_each_service_only_on_its_hosts_by_digest_from_the_registry(
    cluster: Cluster,
) -> None:
    for host, services in SERVICES_ON.items():
        assert cluster.services(host) == services, host
    assert cluster.app_state() == cluster.all_on("v1")
    record = cluster.history()[-1]
    assert record["status"] == "succeeded" and record["version"] == "v1", record


# --- Fault rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class HostFault:
    name: str
    phase: str
    cause: tuple[str, ...]  # words the failure line must contain
    inject: Callable[[Cluster], DeployRun]
    lost: str = ""  # the host the line must name as lost and give the command for
    runbook: str = ""  # the RUNBOOK.md entry whose command the line gives
    # Failed releases the row records: the deploy's, and those of the deploys it refuses.
    records: int = 1


def recovery_command(line: str) -> list[str]:
    """The command a failure line gives an operator, as words."""
    found = re.search(r"run (ansible-playbook .+? --limit \S+)", line)
    assert found, f"no command in {line!r}"
    return shlex.split(found.group(1))


def run_as_written(command: list[str]) -> subprocess.CompletedProcess:
    """COMMAND in the project's folder, as an operator types it there."""
    env = {**ANSIBLE_ENV, "PATH": os.environ["PATH"]}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def lost_in_stop(c: Cluster) -> DeployRun:
    """worker1's sshd dies in the stop phase, as worker1 is about to stop its worker, busy
    with a 10 s job: the stop it was told goes on there, the worker draining its job."""

    def busy_worker_then_vanish() -> None:
        c.push_job("e2e-stop-job", 10)
        wait_until(lambda: c.jobs_waiting() == 0, 30, "the worker to take the job")
        c.stop_answering("worker1")

    try:
        return c.deploy_held([Hold("services-stopping", busy_worker_then_vanish, "worker1", True)])
    finally:
        c.answer_again("worker1")


def lost_while_migrating(c: Cluster) -> DeployRun:
    """worker1's sshd dies while its migrate container waits for a lock on call_log; the
    container is left running. Then: a deploy refused while it runs, naming it; the holder
    lets go and it ends."""
    holder = c.connect()
    holder.autocommit = False
    holder.execute("SELECT * FROM call_log LIMIT 1").fetchall()
    failpoints = c.failpoints()

    def vanish() -> None:
        wait_until(
            lambda: met_a_holder(c.docker("worker1", "logs", "migrate")),
            60,
            "the migrator's lock wait on worker1",
        )
        c.stop_answering("worker1")

    try:
        run = c.deploy_held([Hold("migrate-running", vanish, "worker1")], failpoints)
        c.answer_again("worker1")
        assert "migrate" in c.docker("worker1", "ps", "--format", "{{.Names}}").split()
        before = {host: c.docker(host, "ps", "-q", "--no-trunc") for host in HOSTS}
        refused = c.deploy("v2", prosaas_leftover_migrate_wait=3)
        assert refused.rc != 0, refused.describe()
        assert "container migrate of an earlier run is still running" in refused.failure
        assert "after waiting 3 s; no second one starts beside it" in refused.failure
        assert {host: c.docker(host, "ps", "-q", "--no-trunc") for host in HOSTS} == before
        assert c.lock() is None
    finally:
        holder.rollback()
        holder.close()
    wait_until(
        lambda: "migrate" not in c.docker("worker1", "ps", "--format", "{{.Names}}").split(),
        60,
        "the left migrate container to end",
    )
    # The module the lost SSH session orphaned there ends with it.
    wait_until(
        lambda: failpoints.ended("migrate-running", "worker1"), 60, "the orphaned module to end"
    )
    return run


def lost_in_start(c: Cluster) -> DeployRun:
    """worker1's sshd dies once its v2 worker runs healthy, in the third batch of the start."""
    vanish = Hold("services-healthy", lambda: c.stop_answering("worker1"), "worker1", True)
    try:
        return c.deploy_held([vanish])
    finally:
        c.answer_again("worker1")


def partitioned_in_start(c: Cluster) -> DeployRun:
    """calls1's containers cannot reach the database or redis from the start phase's
    beginning until the rescue begins."""
    return c.deploy_held(
        [
            Hold("phase-start", lambda: c.cut_off_from_infra("calls1")),
            Hold("rescue", lambda: c.reconnect_to_infra("calls1")),
        ],
        prosaas_health_timeout=20,
    )


def infra_rebooted(c: Cluster) -> DeployRun:
    """infra1 (postgres, redis, the api) goes down as the migration begins, its SSH, engine
    and database with it, and is back up, postgres healthy, when the rescue begins."""
    infra1 = c.hosts["infra1"].container

    def back_up() -> None:
        infra1.start()
        wait_until(lambda: infra_answers(c), 120, "infra1's SSH and postgres after its restart")

    run = c.deploy_held(
        [Hold("phase-migrate", lambda: infra1.stop(timeout=10)), Hold("rescue", back_up)]
    )
    # The restart keeps infra1's address, which the inventory names for postgres and redis.
    assert host_address(c.hosts["infra1"], c.registry.network) == c.address
    return run


def infra_answers(c: Cluster) -> bool:
    """Whether infra1's sshd runs and its postgres is healthy."""
    code, output = c.hosts["infra1"].container.exec_run([
        "sh", "-c",
        "systemctl is-active --quiet ssh.service"
        " && docker inspect --format '{{.State.Health.Status}}' postgres",
    ])  # fmt: skip
    return code == 0 and output.decode().strip() == "healthy"


HOST_FAULTS = [
    HostFault(
        "a host stops answering (sshd killed as its worker, busy with a job, is to be stopped)",
        "stop",
        (
            "worker1 (in phase stop) stopped answering over SSH",
            "playbooks/start.yml --limit worker1",
        ),
        lost_in_stop,
        lost="worker1",
        runbook="A host stopped answering mid-deploy",
    ),
    HostFault(
        "the migration host stops answering while its migrate container waits for a lock;"
        " the next deploy refuses while that container runs",
        "migrate",
        ("worker1 (in phase migrate) stopped answering", "the migrate container may still run"),
        lost_while_migrating,
        lost="worker1",
        runbook="A migrate container was left running",
        records=2,
    ),
    HostFault(
        "a host stops answering once its new worker runs (third start batch)",
        "start",
        ("worker1 (in phase start) stopped answering", "playbooks/start.yml --limit worker1"),
        lost_in_start,
        lost="worker1",
        runbook="A host stopped answering mid-deploy",
    ),
    HostFault(
        "partition: calls1 cannot reach the database or redis during the start",
        "start",
        ("on calls1: ", "not healthy"),
        partitioned_in_start,
    ),
    HostFault(
        "the infra host (postgres, redis) is rebooted as the migration begins",
        "migrate",
        ("on worker1: migrate: exited with code 3", "cannot connect to postgresql"),
        infra_rebooted,
    ),
]


def fault_id(fault: HostFault) -> str:
    return f"{fault.phase}: many hosts: {fault.name}"


@pytest.mark.parametrize("fault", HOST_FAULTS, ids=fault_id)
def test_host_fault(cluster: Cluster, fault: HostFault) -> None:
    cluster.reset_to_v1()
    rows_before = cluster.checksum()
    history_before = len(cluster.history())

    run = fault.inject(cluster)

    assert "Traceback" not in run.output
    observed = failed_and_recovered(run, cluster, fault, history_before)
    assert cluster.lock() is None
    rows_after = cluster.checksum()
    assert rows_after == rows_before, "call_log changed"
    RECORD.faults[fault_id(fault)] = Observed(
        fault=f"many hosts: {fault.name}",
        phase=fault.phase,
        rows_lost=rows_before[0] - rows_after[0],
        **observed,
    )


def failed_and_recovered(
    run: DeployRun, cluster: Cluster, fault: HostFault, history_before: int
) -> dict[str, str]:
    """The checks of a row whose deploy failed: its line, the rollback of every host that
    answered, the history; then the command the line gives, run as written."""
    assert run.rc != 0, run.describe()
    line = run.failure
    assert line and "\n" not in line.strip(), run.describe()
    assert_plain_failure_line(line)
    for word in fault.cause:
        assert word in line, f"{word!r} not in the failure line {line!r}"
    lost = set(re.findall(r"(\w+) \(in phase \w+\)", line))
    assert lost == ({fault.lost} if fault.lost else set()), line
    answered = {h: s for h, s in cluster.app_state().items() if h not in lost}
    assert answered == {h: ("v1", "healthy") for h in answered}, run.describe()
    failed = [r for r in cluster.history()[history_before:] if r["status"] == "failed"]
    assert len(failed) == fault.records, cluster.history()
    assert all(record["version"] == "v2" for record in failed), failed
    if fault.lost:
        assert fault.lost in failed[0]["reason"], failed[0]
    assert cluster.lock() is None

    by_runbook = "run ansible-playbook" in line
    if by_runbook:
        recovered = run_as_written(recovery_command(line))
        assert recovered.returncode == 0, recovered.stdout[-6000:]
    assert cluster.app_state() == cluster.all_on("v1")
    return {
        # The test's own inventory folder, as an operator's would read: -i inventories/<env>
        "failure": line.strip().replace(str(cluster.inventory), "<inventory>"),
        "recovered_by": f"runbook: {fault.runbook}" if by_runbook else "flow",
        "history": f"failed: {failed[0]['reason']}",
    }


RECORD.fault_suites["test_many_hosts"] = len(HOST_FAULTS)


# --- v2 over three servers: after the fault rows, which all begin on v1 ----------------


def test_deploy_migrates_once_and_starts_batch_by_batch_then_changes_nothing(
    cluster: Cluster,
) -> None:
    cluster.reset_to_v1()
    run = cluster.deploy("v2")
    assert run.rc == 0, run.describe()
    assert cluster.app_state() == cluster.all_on("v2")
    # The migration ran once, on the migration host.
    assert [data["host"] for data in phase_runs(run, "migrate", MIGRATE_TASK)] == [MIGRATION_HOST]
    with cluster.connect() as conn:
        rows = conn.execute("SELECT count(*) FROM prosaas_schema_history WHERE version = 109")
        assert rows.fetchone()[0] == 1
    # One batch after the other: each host's start began after the one before it was healthy.
    starts = phase_runs(run, "start", START_TASK)
    assert [data["host"] for data in starts] == list(HOSTS)
    for before, after in itertools.pairwise(starts):
        assert after["start"] >= before["end"], (before["host"], after["host"])
    record = cluster.history()[-1]
    assert record["status"] == "succeeded" and record["version"] == "v2", record
    reports = sorted(path.name for path in (cluster.base / "reports").glob(f"{record['id']}*"))
    assert reports == sorted(f"{record['id']}.{host}.json" for host in HOSTS)

    again = cluster.deploy("v2")
    assert again.rc == 0, again.describe()
    assert changed_per_host(again) == dict.fromkeys(HOSTS, 0)
    assert cluster.lock() is None


def test_status_reads_the_migrations_once_and_changes_nothing(cluster: Cluster) -> None:
    run = cluster.play("playbooks/status.yml", prosaas_app_version="v2")
    assert run.rc == 0, run.describe()
    assert changed_per_host(run) == dict.fromkeys(HOSTS, 0)
    assert run.output.count("migrations applied: ") == 1, run.output[-6000:]
    assert run.output.count("migrations: read on the migration host") == 2, run.output[-6000:]


# A client on a server: GET URL every 50 ms until /run/probe-stop exists, then one JSON line
# of the answers counted (200: ok; anything else, or no answer: failed).
PROBE = """
import json, os, sys, time, urllib.request
ok = failed = 0
while not os.path.exists("/run/probe-stop"):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
            ok += 1
    except Exception:
        failed += 1
    time.sleep(0.05)
print(json.dumps({"ok": ok, "failed": failed}))
"""


@dataclass
class Probe:
    """PROBE on HOST's own system, through the proxy it runs: start it, then stop it and
    read its counts."""

    host: SshHost
    url: str
    counts: dict[str, int] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.host.container.exec_run(["rm", "-f", "/run/probe-stop"])

        def run() -> None:
            _, output = self.host.container.exec_run(["python3", "-c", PROBE, self.url])
            self.counts = json.loads(output.decode().strip().splitlines()[-1])

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> dict[str, int]:
        assert self.thread is not None
        self.host.container.exec_run(["touch", "/run/probe-stop"])
        self.thread.join(timeout=30)
        return self.counts


def test_an_online_deploy_switches_host_by_host_with_no_failed_request(cluster: Cluster) -> None:
    """v1 -> v2 (109 applied) online over the three servers while a client on infra1 and one
    on calls1 call their api and calls through the local proxy: every request answered."""
    cluster.reset_to_v1()
    probes = [
        Probe(cluster.hosts["infra1"], "http://127.0.0.1:8080/health"),
        Probe(cluster.hosts["calls1"], "http://127.0.0.1:8081/health"),
    ]
    for probe in probes:
        probe.start()
    try:
        run = cluster.deploy("v2", prosaas_deploy_strategy="online")
    finally:
        counts = [probe.stop() for probe in probes]
    assert run.rc == 0, run.describe()
    assert "strategy: online" in run.output
    assert cluster.app_state() == cluster.all_on("v2")
    starts = phase_runs(run, "start", START_TASK)
    assert [data["host"] for data in starts] == list(HOSTS)
    assert [data["host"] for data in phase_runs(run, "migrate", MIGRATE_TASK)] == [MIGRATION_HOST]
    for host in HOSTS:  # the replaced containers are gone once the release is recorded
        names = cluster.docker(host, "ps", "-a", "--format", "{{.Names}}").split()
        assert not [name for name in names if name.endswith(("-next", "-previous"))], names
    print(f"online over three servers: probes {counts}")
    assert all(count["ok"] > 20 and count["failed"] == 0 for count in counts), counts
