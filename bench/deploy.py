"""Benchmark: the v1 -> v2 deploy (migration 109) of the demo stack, five ways.

    python bench/deploy.py [--runs 5] [--ways compose,ansible,online,floor,ssh]
                           [--baseline COMMIT] [--out FILE.json]

- compose: the seed's way, bench/deploy/docker-compose.yml + docker-compose.prod.yml:
  `docker-compose ... down`, then `up -d` with VERSION=v2; done when the three app
  containers report healthy (docker-compose 1.x has no --wait, so this script polls);
- ansible: `ansible-playbook deploy.yml -e prosaas_app_version=v2` on an isolated copy of
  the local stack (own prefix, network, ports, state and reports), as the tests run it;
- online: the ansible way with prosaas_deploy_strategy=online: 109 applied while v1 serves,
  then each v2 container started beside the v1 one and switched to behind the proxy;
- floor: bench/deploy/floor.sh, the same steps as bare docker CLI calls;
- ssh: the ansible way over SSH, as the deploy user, to a server the benchmark starts once
  (a test host of tests/ssh_hosts.py, prepared by playbooks/prepare.yml, the demo images
  loaded on its engine); its engine and ports are reached through one `ssh -L` tunnel.

Every run of every way starts from the same state: that way's stack removed, database
volume included, then v1 brought up the same way (not timed), healthy, 109 not applied,
a few rows written through the API. Only one stack runs at a time, and the order of the
ways rotates from run to run. A prober calls the API's /health on loopback every 50 ms
(one request at a time), from before the deploy until v2 has answered healthy for 2 s
after the deploy ended; downtime is from the first failed request to the answer of the
first success after which nothing failed.
A steady load runs beside the prober: LOAD_CLIENTS clients, each sending GET /calls (a
database read) on a new connection every LOAD_INTERVAL_S, every request logged. It runs
QUIET_S before the deploy with nothing else going on (its p99 latency there is the
reference), then through the deploy. The switch window is the start phase and what
follows it (from the deploy's report); its p99 is compared with the quiet one.
It prints a markdown table of medians and the targets, and writes every figure to a JSON
file. Everything it creates is named bench-<id>-... and removed at the end, even on
failure. A missed target is a result: the exit code is non-zero only when the benchmark
itself could not run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import docker
from common import (
    ROOT,
    BenchError,
    Spread,
    Target,
    base_image,
    command_line,
    default_out,
    docker_client,
    host_info,
    note,
    target_lines,
    write_results,
)
from docker.errors import DockerException, NotFound

from tests.pg_cluster import free_loopback_port
from tests.ssh_hosts import SessionKeys, SshHost, host_image, remove_host, start_host
from tests.ssh_stack import Tunnel, load_images, write_stack_inventory

HERE = ROOT / "bench" / "deploy"
COMPOSE_FILES = (HERE / "docker-compose.yml", HERE / "docker-compose.prod.yml")
FLOOR_SCRIPT = HERE / "floor.sh"
WAY_NAMES = ("compose", "ansible", "online", "floor", "ssh")
APP_SERVICES = ("prosaas-api", "prosaas-calls", "worker")
IMAGES = (
    "prosaas-demo/postgres:15",
    "prosaas-demo/redis:7",
    "prosaas-demo/app:v1",
    "prosaas-demo/app:v2",
    "prosaas-demo/migrate:v1",
    "prosaas-demo/migrate:v2",
)
DB_PASSWORD = "prosaas-local-only"  # noqa: S105 - the local inventory's demo password
COUNT_109_COLUMNS = (
    "SELECT count(*) FROM information_schema.columns WHERE table_name = 'call_log'"
    " AND column_name IN ('started_at', 'ended_at', 'duration_sec')"
)
# What deploy.yml runs: the benchmark records their commit and uncommitted changes.
DEPLOY_CODE = (
    "deploy.yml",
    "playbooks",
    "roles",
    "library",
    "module_utils",
    "plugins",
    "inventories",
    "ansible.cfg",
)
SEED_ROWS = 20  # written through the v1 API before each deploy; still there after it

COMMAND_TIMEOUT_S = 600  # any one docker-compose, ansible-playbook or floor.sh call
HEALTHY_TIMEOUT_S = 180
HEALTH_POLL_S = 0.1
PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 2.0  # a request not answered by then failed
PROBE_LEAD_S = 0.5  # the prober starts this long before the deploy
STEADY_S = 2.0  # v2 must answer healthy this long after the deploy ends
SETTLE_LIMIT_S = 60.0  # the prober gives up this long after the deploy ends
MAX_PROBES = int((COMMAND_TIMEOUT_S + SETTLE_LIMIT_S + PROBE_LEAD_S) / PROBE_INTERVAL_S)

WALL_RATIO_TARGET = 2.0  # ansible's median wall time at most this many times the floor's
SSH_RATIO_TARGET = 1.3  # ssh's median wall time at most this many times ansible's (local)
DOWNTIME_SLACK_S = 1.0  # ansible's median downtime at most the floor's plus this
P99_SLACK_MS = 50.0  # online: p99 during the switch at most the quiet p99 plus this

LOAD_CLIENTS = 4
LOAD_INTERVAL_S = 0.05
QUIET_S = 5.0  # the load alone, before the deploy: the reference p99
SWITCH_TAIL_S = 3.0  # after the record phase: housekeeping, report, unlock


# --- commands and containers -------------------------------------------------------


def run_command(
    args: list[str], what: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> str:
    """Run ARGS from CWD (the repository root); its stdout. A failure raises with one line."""
    try:
        result = subprocess.run(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: still running after {COMMAND_TIMEOUT_S} s") from None
    if result.returncode != 0:
        reason = failure_line(result.stdout + "\n" + result.stderr)
        raise BenchError(f"{what}: exit {result.returncode}: {reason}")
    return result.stdout


def failure_line(output: str) -> str:
    """The line of OUTPUT that says why a command failed, as well as it can be told."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    starts = ("msg:", "fatal:", "ERROR", "Error", "docker:", "floor:")
    telling = [line for line in lines if line.startswith(starts)]
    return (telling or lines or ["no output"])[-1]


def health(client: docker.DockerClient, name: str) -> str:
    """The health status of container NAME: healthy, starting, unhealthy, exited, missing."""
    try:
        state = client.api.inspect_container(name)["State"]
    except NotFound:
        return "missing"
    if not state.get("Running"):
        return "exited"
    return state.get("Health", {}).get("Status", "none")


def wait_healthy(client: docker.DockerClient, names: list[str]) -> None:
    """Poll every HEALTH_POLL_S until each container of NAMES has reported healthy (as
    deploy.yml's docker_wait does: one that turns unhealthy again is not waited for twice)."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    pending = list(names)
    while True:
        pending = [name for name in pending if health(client, name) != "healthy"]
        if not pending:
            return
        if time.monotonic() >= deadline:
            states = {name: health(client, name) for name in pending}
            raise BenchError(f"not healthy after {HEALTHY_TIMEOUT_S} s: {states}")
        time.sleep(HEALTH_POLL_S)


def remove_by_prefix(client: docker.DockerClient, prefix: str) -> None:
    """Remove every container, network and volume whose name starts with PREFIX."""
    for container in client.containers.list(all=True, filters={"name": prefix}):
        if container.name.startswith(prefix):
            container.remove(force=True, v=True)
    for network in client.networks.list(names=[prefix]):
        if network.name.startswith(prefix):
            network.remove()
    for volume in client.volumes.list(filters={"name": prefix}):
        if volume.name.startswith(prefix):
            volume.remove(force=True)


# --- the three ways ----------------------------------------------------------------


class Way(ABC):
    """One way of deploying: bring v1 up, deploy v2; every name starts with PREFIX, files
    go under WORKDIR."""

    name: str

    def __init__(self, client: docker.DockerClient, prefix: str, workdir: Path) -> None:
        self.client = client
        self.prefix = prefix
        self.workdir = workdir
        self.api_port = 0  # set by allocate_ports() before every bring-up
        self.calls_port = 0

    def allocate_ports(self) -> None:
        """Loopback ports free now: taken again for every run, as other stacks come and go."""
        self.api_port = free_loopback_port()
        self.calls_port = free_loopback_port()

    def container(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def app_containers(self) -> list[str]:
        return [self.container(service) for service in APP_SERVICES]

    def teardown(self) -> None:
        remove_by_prefix(self.client, self.prefix)

    def close(self) -> None:  # noqa: B027 - most ways set nothing up once for all runs
        """Remove what the way set up once for all its runs."""

    @abstractmethod
    def bring_up_v1(self) -> None:
        """Start the whole stack on v1; return when the app services are healthy."""

    @abstractmethod
    def deploy_v2(self) -> dict[str, Any]:
        """Deploy v2; return when it is done, with what the way tells of its phases."""


class ComposeWay(Way):
    """The seed's Production commands: `down`, then `up -d`, on both compose files."""

    name = "compose"

    @property
    def project(self) -> str:
        return self.prefix.rstrip("-")

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def teardown(self) -> None:
        remove_by_prefix(self.client, f"{self.project}_")

    def compose(self, version: str, *args: str) -> None:
        files = [option for path in COMPOSE_FILES for option in ("-f", str(path))]
        env = {
            "VERSION": version,
            "API_PORT": str(self.api_port),
            "CALLS_PORT": str(self.calls_port),
            "DB_PASSWORD": DB_PASSWORD,
        }
        command = ["docker-compose", *files, "-p", self.project, *args]
        run_command(command, f"docker-compose {args[0]} ({version})", env)

    def bring_up_v1(self) -> None:
        self.compose("v1", "up", "-d")
        wait_healthy(self.client, self.app_containers())

    def deploy_v2(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.compose("v2", "down")
        down = time.perf_counter()
        self.compose("v2", "up", "-d")
        up = time.perf_counter()
        wait_healthy(self.client, self.app_containers())
        healthy = time.perf_counter()
        return {
            "phases": rounded({"down": down - started, "up": up - down, "healthy": healthy - up})
        }


class AnsibleWay(Way):
    """deploy.yml with the tests' isolation extra vars (tests.conftest.isolated_extravars),
    from the checkout (ROOT) or from another tree of the project (a baseline commit's)."""

    name = "ansible"
    deploy_args: tuple[str, ...] = ()  # ansible-playbook's extra arguments for v2

    def __init__(
        self, client: docker.DockerClient, prefix: str, workdir: Path, root: Path = ROOT
    ) -> None:
        super().__init__(client, prefix, workdir)
        self.root = root
        self.playbook_command = ansible_playbook()
        self.state_dir = self.workdir / "state"
        self.reports_dir = self.workdir / "reports"
        self.vars_file = self.workdir / "extravars.json"

    def allocate_ports(self) -> None:
        super().allocate_ports()
        extravars = {
            "prosaas_container_prefix": self.prefix,
            "prosaas_network": f"{self.prefix}net",
            "prosaas_api_port": self.api_port,
            "prosaas_calls_port": self.calls_port,
            "prosaas_database_port_from_deployer": free_loopback_port(),
            "prosaas_state_dir": str(self.state_dir),
            "prosaas_reports_dir": str(self.reports_dir),
        }
        self.vars_file.write_text(json.dumps(extravars), encoding="utf-8")

    def playbook(self, version: str, *extra: str, task_times: Path | None = None) -> None:
        command = [
            self.playbook_command,
            *self.inventory_args(),
            "deploy.yml",
            "-e",
            f"@{self.vars_file}",
            "-e",
            f"prosaas_app_version={version}",
            *extra,
        ]
        env = {"ANSIBLE_CONFIG": str(self.root / "ansible.cfg")}
        if task_times:
            env |= {
                "ANSIBLE_CALLBACK_PLUGINS": str(TASK_TIMES_PLUGINS),
                "ANSIBLE_CALLBACKS_ENABLED": "task_times",
                "PROSAAS_TASK_TIMES": str(task_times),
            }
        what = f"{self.name}: ansible-playbook deploy.yml ({version})"
        run_command(command, what, env, self.root)

    def inventory_args(self) -> list[str]:
        return []  # ansible.cfg's: the local inventory

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        shutil.rmtree(self.reports_dir, ignore_errors=True)

    def bring_up_v1(self) -> None:
        self.playbook("v1")

    def deploy_v2(self) -> dict[str, Any]:
        times = self.workdir / "task-times.jsonl"
        times.unlink(missing_ok=True)
        self.playbook("v2", *self.deploy_args, task_times=times)
        report = self.v2_report()
        return {
            "phases": report.get("phases", {}),
            "report_downtime_s": report.get("downtime_s"),
            "window_tasks": window_tasks(read_task_times(times)),
        }

    def v2_report(self) -> dict[str, Any]:
        """The deploy report of the v2 release (reports/<release>.json)."""
        paths = sorted(self.reports_dir.glob("*-v2.json"))
        return json.loads(paths[-1].read_text(encoding="utf-8")) if paths else {}


class OnlineWay(AnsibleWay):
    """The ansible way, v2 deployed with the online strategy (v1 the usual way)."""

    name = "online"

    deploy_args = ("-e", "prosaas_deploy_strategy=online")


class SshWay(AnsibleWay):
    """The ansible way over SSH: deploy.yml as the deploy user to a prepared server.

    The server runs the same stack (the local inventory's group_vars, PostgreSQL included)
    on its own engine; its api, calls and database ports stay on its loopback and are
    forwarded here, with its engine's socket, by one `ssh -L` tunnel.
    """

    name = "ssh"
    REMOTE_PORTS = (8080, 8081, 55432)  # the local inventory's api, calls and database

    def __init__(self, client: docker.DockerClient, prefix: str, workdir: Path) -> None:
        super().__init__(client, prefix, workdir)
        self.outer = client
        self.keys = SessionKeys.make(workdir / "ssh")
        self.server = self.start_server()
        self.tunnel = Tunnel(
            self.server,
            self.keys,
            workdir,
            {port: free_loopback_port() for port in self.REMOTE_PORTS},
        )
        self.tunnel.start()
        self.client = docker.DockerClient(base_url=self.tunnel.docker_host, timeout=120)
        self.state_dir = Path("/home/deploy") / f"{prefix}state"

    def start_server(self) -> SshHost:
        note(f"{self.name}: starting and preparing the server")
        image = host_image(self.outer, base_image(self.outer))
        server = start_host(self.outer, image, f"{self.prefix}host", self.keys)
        self.inventory = self.workdir / "inventory"
        write_stack_inventory(self.inventory, server, self.keys)
        run_command(
            [self.playbook_command, "-i", str(self.inventory), "playbooks/prepare.yml",
             "-e", "prosaas_python_packages_from=controller"],
            f"{self.name}: ansible-playbook prepare.yml",
            {"ANSIBLE_CONFIG": str(self.root / "ansible.cfg")},
        )  # fmt: skip
        load_images(server, list(IMAGES))
        return server

    def inventory_args(self) -> list[str]:
        return ["-i", str(self.inventory)]

    def allocate_ports(self) -> None:
        self.api_port = self.tunnel.ports[8080]
        self.calls_port = self.tunnel.ports[8081]
        extravars = {
            "prosaas_container_prefix": self.prefix,
            "prosaas_network": f"{self.prefix}net",
            "prosaas_state_dir": str(self.state_dir),
            "prosaas_reports_dir": str(self.reports_dir),
        }
        self.vars_file.write_text(json.dumps(extravars), encoding="utf-8")

    def teardown(self) -> None:
        remove_by_prefix(self.client, self.prefix)
        self.server.container.exec_run(["rm", "-rf", str(self.state_dir)])
        shutil.rmtree(self.reports_dir, ignore_errors=True)

    def close(self) -> None:
        self.tunnel.stop()
        remove_host(self.outer, self.server)


class FloorWay(Way):
    """bench/deploy/floor.sh: the same steps as bare docker CLI calls."""

    name = "floor"

    def floor(self, *args: str) -> str:
        env = {
            "FLOOR_PREFIX": self.prefix,
            "FLOOR_API_PORT": str(self.api_port),
            "FLOOR_CALLS_PORT": str(self.calls_port),
            "FLOOR_DB_PASSWORD": DB_PASSWORD,
            "FLOOR_WAIT_S": str(HEALTHY_TIMEOUT_S),
        }
        return run_command([str(FLOOR_SCRIPT), *args], f"floor.sh {' '.join(args)}", env)

    def bring_up_v1(self) -> None:
        self.floor("up", "v1")

    def deploy_v2(self) -> dict[str, Any]:
        return {"phases": phases_from_marks(self.floor("deploy", "v2"))}


def phases_from_marks(output: str) -> dict[str, float]:
    """Seconds per phase from floor.sh's `mark PHASE EPOCH` lines (the last one is `end`)."""
    marks = [line.split()[1:] for line in output.splitlines() if line.startswith("mark ")]
    return rounded({name: float(after[1]) - float(at) for (name, at), after in pairwise(marks)})


def rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in seconds.items()}


TASK_TIMES_PLUGINS = Path(__file__).resolve().parent / "callback_plugins"
BETWEEN_TASKS = "(between tasks: Ansible's own time)"


def read_task_times(path: Path) -> list[dict[str, Any]]:
    """The lines bench/callback_plugins/task_times.py wrote, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def window_tasks(lines: list[dict[str, Any]]) -> dict[str, float]:
    """What the stop flow's window is made of: the seconds of each task from the end of
    "Enter the stop phase" to the start of "Enter the record phase" (a task run more than
    once summed), and BETWEEN_TASKS for the rest. Empty for a deploy with no stop phase."""
    begin = next((t["end"] for t in lines if t["task"] == "Enter the stop phase"), None)
    end = next((t["start"] for t in lines if t["task"] == "Enter the record phase"), None)
    if begin is None or end is None:
        return {}
    seconds: dict[str, float] = {}
    for task in lines:
        if task["start"] >= begin and task["end"] <= end and task["status"] != "skipped":
            seconds[task["task"]] = seconds.get(task["task"], 0.0) + task["end"] - task["start"]
    seconds[BETWEEN_TASKS] = end - begin - sum(seconds.values())
    return rounded(seconds)


WAY_CLASSES: dict[str, type[Way]] = {
    "compose": ComposeWay,
    "ansible": AnsibleWay,
    "online": OnlineWay,
    "floor": FloorWay,
    "ssh": SshWay,
}


# --- the prober --------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    at: float  # time.perf_counter() when the request was sent
    answered: float  # ... when its answer (or failure) came
    ok: bool  # 200 from /health
    state: str  # "v1" or "v2" when ok; else "HTTP 503", "ConnectionRefusedError", ...


@dataclass(frozen=True)
class Answer:
    sent: float  # time.perf_counter() when the request was sent
    answered: float  # ... when its answer (or failure) came
    status: int  # 0 when no answer came
    body: bytes
    error: str  # the exception's name when no answer came


def http_get(port: int, path: str) -> Answer:
    """One GET of PATH on a new connection, as a client without keep-alive would."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
    sent = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Answer(sent, time.perf_counter(), 0, b"", type(exc).__name__)
    finally:
        conn.close()
    return Answer(sent, time.perf_counter(), response.status, body, "")


def probe(port: int) -> Probe:
    """One GET /health: which version answered it healthy, or how it failed."""
    answer = http_get(port, "/health")
    at, answered = answer.sent, answer.answered
    if answer.error:
        return Probe(at, answered, False, answer.error)
    if answer.status != 200:
        return Probe(at, answered, False, f"HTTP {answer.status}")
    try:
        version = json.loads(answer.body).get("version")
    except (ValueError, AttributeError):
        return Probe(at, answered, False, "bad body")
    return Probe(at, answered, True, f"v{version}")


class Prober:
    """Calls /health on its own thread, one request at a time (a client that waits for
    its answer), PROBE_INTERVAL_S apart or at once after a slower answer, until v2 has
    answered healthy for STEADY_S after the deploy ended (or SETTLE_LIMIT_S after it, or
    stop())."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.probes: list[Probe] = []
        self.deploy_ended_at: float | None = None
        self.v2_since: float | None = None  # first probe of the current run of v2 answers
        self.steady = False  # v2 answered for STEADY_S after the deploy ended
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="prober", daemon=True)

    def start(self) -> None:
        self.thread.start()
        time.sleep(PROBE_LEAD_S)

    def run(self) -> None:
        next_at = time.perf_counter()
        for _ in range(MAX_PROBES):
            if self.stopping.is_set() or self.settled():
                break
            self.record(probe(self.port))
            next_at = max(next_at + PROBE_INTERVAL_S, time.perf_counter())
            self.stopping.wait(next_at - time.perf_counter())

    def record(self, result: Probe) -> None:
        self.probes.append(result)
        if result.state != "v2":
            self.v2_since = None
        elif self.v2_since is None:
            self.v2_since = result.at

    def settled(self) -> bool:
        """Whether v2 has answered steadily since the deploy ended, or it is time to give up."""
        ended = self.deploy_ended_at
        if ended is None:
            return False
        now = time.perf_counter()
        since = self.v2_since
        self.steady = since is not None and now - max(since, ended) >= STEADY_S
        return self.steady or now - ended >= SETTLE_LIMIT_S

    def wait_settled(self, deploy_ended_at: float) -> bool:
        """Let the prober run until it settles; whether v2 answered steadily."""
        self.deploy_ended_at = deploy_ended_at
        self.thread.join(SETTLE_LIMIT_S + STEADY_S + PROBE_TIMEOUT_S)
        return self.steady

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(PROBE_TIMEOUT_S * 2)


# --- the steady load ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    at: float  # time.perf_counter() when it was sent
    latency_s: float
    ok: bool  # 200


def read_calls(port: int) -> Request:
    """One GET /calls (a count of call_log)."""
    answer = http_get(port, "/calls")
    return Request(answer.sent, answer.answered - answer.sent, answer.status == 200)


class Load:
    """LOAD_CLIENTS clients on their own threads, each one request at a time,
    LOAD_INTERVAL_S apart; every request is kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self.client, name=f"load-{n}", daemon=True)
            for n in range(LOAD_CLIENTS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def client(self) -> None:
        while not self.stopping.is_set():
            request = read_calls(self.port)
            with self.lock:
                self.requests.append(request)
            self.stopping.wait(LOAD_INTERVAL_S)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(PROBE_TIMEOUT_S * 2)


def p99_ms(requests: list[Request]) -> float | None:
    latencies = sorted(r.latency_s for r in requests)
    if len(latencies) < 2:
        return None
    return round(statistics.quantiles(latencies, n=100)[98] * 1000, 1)


def load_figures(
    requests: list[Request], started: float, ended: float, switch_s: float | None
) -> dict[str, Any]:
    """Failed requests and p99 latencies: quiet (before the deploy), through the deploy,
    and in the switch window (the deploy's last SWITCH_S seconds; all of it when None)."""
    quiet = [r for r in requests if r.at < started]
    during = [r for r in requests if r.at >= started]
    switch_from = started if switch_s is None else max(started, ended - switch_s)
    switch = [r for r in during if switch_from <= r.at <= ended]
    quiet_p99, switch_p99 = p99_ms(quiet), p99_ms(switch)
    return {
        "clients": LOAD_CLIENTS,
        "requests": len(during),
        "failed": sum(not r.ok for r in during),
        "quiet_requests": len(quiet),
        "quiet_failed": sum(not r.ok for r in quiet),
        "p99_quiet_ms": quiet_p99,
        "p99_deploy_ms": p99_ms(during),
        "switch_window_s": round(ended - switch_from, 2),
        "p99_switch_ms": switch_p99,
        "p99_switch_over_quiet_ms": (
            round(switch_p99 - quiet_p99, 1)
            if switch_p99 is not None and quiet_p99 is not None
            else None
        ),
    }


def switch_seconds(details: dict[str, Any]) -> float | None:
    """How long the switch window is: the start and record phases and the tail after."""
    phases = details.get("phases") or {}
    if "start" not in phases:
        return None
    return phases["start"] + phases.get("record", 0.0) + SWITCH_TAIL_S


# --- what the prober saw -----------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """Failed requests during one deploy, times in seconds from the deploy's start.

    downtime_s: first failed request (sent) -> first success after which nothing failed
    (answered: a request sent while the new container was still coming up may wait for
    it, and is counted as served only when its answer came).
    The window of failures counted "inside" is the longest stretch of consecutive failed
    requests (from its first failure to the answer of the success after it); failed
    requests of any other stretch are "outside". With one stretch, the window is the
    downtime.
    """

    downtime_s: float
    window_s: float
    failed: int
    failed_inside: int
    failed_outside: int
    stretches: int
    probes: int
    first_failure_s: float | None
    recovered_s: float | None
    first_v2_s: float | None


@dataclass(frozen=True)
class Stretch:
    start: float
    end: float  # the answer of the first success after it (the last probe when none came)
    failed: int


def failure_stretches(probes: list[Probe]) -> list[Stretch]:
    stretches: list[Stretch] = []
    index = 0
    for ok, group in groupby(probes, key=lambda p: p.ok):
        size = len(list(group))
        if not ok:
            end = probes[min(index + size, len(probes) - 1)].answered
            stretches.append(Stretch(probes[index].at, end, size))
        index += size
    return stretches


def outage(probes: list[Probe], started: float) -> Outage:
    stretches = failure_stretches(probes)
    failed = sum(s.failed for s in stretches)
    first_v2 = next((p.answered - started for p in probes if p.state == "v2"), None)
    if not stretches:
        return Outage(0.0, 0.0, 0, 0, 0, 0, len(probes), None, None, rounded_or_none(first_v2))
    longest = max(stretches, key=lambda s: s.end - s.start)
    first, last = stretches[0], stretches[-1]
    return Outage(
        downtime_s=round(last.end - first.start, 3),
        window_s=round(longest.end - longest.start, 3),
        failed=failed,
        failed_inside=longest.failed,
        failed_outside=failed - longest.failed,
        stretches=len(stretches),
        probes=len(probes),
        first_failure_s=round(first.start - started, 3),
        recovered_s=round(last.end - started, 3),
        first_v2_s=rounded_or_none(first_v2),
    )


def rounded_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def timeline(probes: list[Probe], started: float) -> list[dict[str, Any]]:
    """The probes as runs of the same answer: [{state, from_s, to_s, probes, slowest_s}],
    from and to being when the first and the last of them were sent."""
    segments = []
    for state, group in groupby(probes, key=lambda p: p.state):
        members = list(group)
        segments.append(
            {
                "state": state,
                "from_s": round(members[0].at - started, 3),
                "to_s": round(members[-1].at - started, 3),
                "probes": len(members),
                "slowest_s": round(max(p.answered - p.at for p in members), 3),
            }
        )
    return segments


# --- one run -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    way: str
    run: int
    wall_s: float
    outage: Outage
    settled: bool
    setup_s: float
    details: dict[str, Any]
    load_average: tuple[float, float, float]
    timeline: list[dict[str, Any]]
    load: dict[str, Any]


def count_109_columns(way: Way) -> int:
    postgres = way.client.containers.get(way.container("postgres"))
    command = ["psql", "-U", "prosaas", "-d", "prosaas", "-tAc", COUNT_109_COLUMNS]
    code, output = postgres.exec_run(command)
    if code != 0:
        raise BenchError(f"{way.name}: psql in {postgres.name} failed: {output.decode().strip()}")
    return int(output.decode().strip())


def api(way: Way, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", way.api_port, timeout=10)
    try:
        conn.request(method, path, json.dumps(body) if body else None)
        response = conn.getresponse()
        data = json.loads(response.read())
    finally:
        conn.close()
    if response.status >= 300:
        raise BenchError(f"{way.name}: {method} {path} answered {response.status}: {data}")
    return data


def seed_rows(way: Way) -> None:
    for number in range(SEED_ROWS):
        call = {"call_sid": f"bench-{number}", "from_number": "+15550001", "duration": number}
        api(way, "POST", "/calls", call)


def prepare(way: Way) -> float:
    """The starting state: v1 healthy, 109 not applied, SEED_ROWS rows; seconds it took."""
    started = time.perf_counter()
    way.teardown()
    way.allocate_ports()
    way.bring_up_v1()
    wait_healthy(way.client, way.app_containers())
    columns = count_109_columns(way)
    if columns:
        raise BenchError(f"{way.name}: {columns} of 109's columns exist before the deploy")
    seed_rows(way)
    return time.perf_counter() - started


def check_deployed(way: Way) -> None:
    """v2 on every app service, healthy; 109's 3 columns; the v1 rows kept."""
    wait_healthy(way.client, way.app_containers())
    for name in way.app_containers():
        image = way.client.containers.get(name).attrs["Config"]["Image"]
        if image != "prosaas-demo/app:v2":
            raise BenchError(f"{way.name}: {name} runs {image} after the deploy")
    if (columns := count_109_columns(way)) != 3:
        raise BenchError(f"{way.name}: {columns} of 109's 3 columns after the deploy")
    if (count := api(way, "GET", "/calls")["count"]) != SEED_ROWS:
        raise BenchError(f"{way.name}: {count} rows after the deploy, {SEED_ROWS} before")


@dataclass(frozen=True)
class FailedRun:
    way: str
    run: int
    error: str


def measure(way: Way, run: int) -> RunResult:
    note(f"run {run}, {way.name}: bringing v1 up")
    setup_s = prepare(way)
    note(f"run {run}, {way.name}: deploying v2")
    load = Load(way.api_port)
    load.start()
    try:
        time.sleep(QUIET_S)
        load_average = os.getloadavg()
        prober = Prober(way.api_port)
        prober.start()
        try:
            started = time.perf_counter()
            details = way.deploy_v2()
            ended = time.perf_counter()
            settled = prober.wait_settled(ended)
        finally:
            prober.stop()
    finally:
        load.stop()
    check_deployed(way)
    seen = outage(prober.probes, started)
    figures = load_figures(load.requests, started, ended, switch_seconds(details))
    note(
        f"run {run}, {way.name}: {ended - started:.1f} s, downtime {seen.downtime_s:.2f} s,"
        f" load: {figures['failed']} of {figures['requests']} failed, p99 switch"
        f" {figures['p99_switch_ms']} ms vs quiet {figures['p99_quiet_ms']} ms"
    )
    return RunResult(
        way=way.name,
        run=run,
        wall_s=round(ended - started, 3),
        outage=seen,
        settled=settled,
        setup_s=round(setup_s, 2),
        details=details,
        load_average=load_average,
        timeline=timeline(prober.probes, started),
        load=figures,
    )


# --- the summary -------------------------------------------------------------------


@dataclass(frozen=True)
class WaySummary:
    """The figures of one way over its runs that succeeded (None when none did)."""

    way: str
    runs: int
    runs_failed: int
    wall_s: Spread | None
    downtime_s: Spread | None
    failed: Spread | None
    failed_inside: int  # over all runs
    failed_outside: int  # over all runs
    unsettled_runs: int
    phases_median_s: dict[str, float]
    window_median_s: dict[str, float]  # the stop flow's window, task by task
    wall_to_floor: float | None
    downtime_to_floor: float | None
    load_failed: Spread | None  # failed requests of the steady load, per run
    p99_quiet_ms: Spread | None
    p99_switch_ms: Spread | None
    p99_over_quiet_ms: Spread | None  # the switch's p99 minus the quiet one, per run


def spread_text(spread: Spread | None, digits: int = 1) -> str:
    return "-" if spread is None else spread.text(digits)


def medians_by_name(results: list[RunResult], key: str) -> dict[str, float]:
    """The median of each name in the runs' details[KEY] (0 in a run without it)."""
    runs = [r.details.get(key) or {} for r in results]
    names = list(dict.fromkeys(name for seconds in runs for name in seconds))
    return {
        name: round(statistics.median(seconds.get(name, 0.0) for seconds in runs), 2)
        for name in names
    }


def median_phases(results: list[RunResult]) -> dict[str, float]:
    """The median of each phase a way reports (0 in a run that did not report it)."""
    return medians_by_name(results, "phases")


def median_window(results: list[RunResult]) -> dict[str, float]:
    """The median seconds of each task in the stop flow's window, longest first."""
    medians = medians_by_name(results, "window_tasks")
    return dict(sorted(medians.items(), key=lambda item: -item[1]))


def ratio(value: Spread | None, floor: Spread | None) -> float | None:
    return round(value.median / floor.median, 2) if value and floor and floor.median else None


def spread_of(values: list[float]) -> Spread | None:
    return Spread.of(values, ndigits=3)


def load_spread(runs: list[RunResult], key: str) -> Spread | None:
    values = [r.load[key] for r in runs if r.load.get(key) is not None]
    return spread_of([float(value) for value in values]) if values else None


def summarise_way(way: str, runs: list[RunResult], failures: int) -> WaySummary:
    return WaySummary(
        way=way,
        runs=len(runs),
        runs_failed=failures,
        wall_s=spread_of([r.wall_s for r in runs]),
        downtime_s=spread_of([r.outage.downtime_s for r in runs]),
        failed=spread_of([float(r.outage.failed) for r in runs]),
        failed_inside=sum(r.outage.failed_inside for r in runs),
        failed_outside=sum(r.outage.failed_outside for r in runs),
        unsettled_runs=sum(not r.settled for r in runs),
        phases_median_s=median_phases(runs) if runs else {},
        window_median_s=median_window(runs),
        wall_to_floor=None,
        downtime_to_floor=None,
        load_failed=load_spread(runs, "failed"),
        p99_quiet_ms=load_spread(runs, "p99_quiet_ms"),
        p99_switch_ms=load_spread(runs, "p99_switch_ms"),
        p99_over_quiet_ms=load_spread(runs, "p99_switch_over_quiet_ms"),
    )


def summarise(
    results: list[RunResult], failures: list[FailedRun], ways: list[str]
) -> list[WaySummary]:
    summaries = [
        summarise_way(
            way, [r for r in results if r.way == way], sum(f.way == way for f in failures)
        )
        for way in ways
    ]
    floor = next((s for s in summaries if s.way == "floor"), None)
    return [
        replace(
            s,
            wall_to_floor=ratio(s.wall_s, floor and floor.wall_s),
            downtime_to_floor=ratio(s.downtime_s, floor and floor.downtime_s),
        )
        for s in summaries
    ]


def ssh_target(by_way: dict[str, WaySummary]) -> list[Target]:
    """The deploy over SSH against the same deploy over the local connection."""
    ssh, local = by_way.get("ssh"), by_way.get("ansible")
    if not (ssh and local and ssh.wall_s and local.wall_s):
        return []
    ratio_to_local = ssh.wall_s.median / local.wall_s.median
    return [
        Target(
            f"ssh wall time <= {SSH_RATIO_TARGET:g}x ansible's over the local connection",
            ratio_to_local <= SSH_RATIO_TARGET,
            f"{ratio_to_local:.2f}x ({ssh.wall_s.median:.1f} s vs"
            f" {local.wall_s.median:.1f} s, medians)",
        )
    ]


def online_targets(by_way: dict[str, WaySummary]) -> list[Target]:
    """Online: no failed request in any run, under the prober and the load; the switch's
    p99 within P99_SLACK_MS of the quiet p99 in every run."""
    online = by_way.get("online")
    if not (online and online.runs and online.failed and online.load_failed):
        return []
    over = online.p99_over_quiet_ms
    return [
        Target(
            "online: 0 failed requests in every run (prober and steady load)",
            online.failed.high == 0 and online.load_failed.high == 0 and not online.runs_failed,
            f"prober {online.failed.high:.0f}, load {online.load_failed.high:.0f} at most,"
            f" over {online.runs} of {online.runs + online.runs_failed} runs",
        ),
        Target(
            f"online: p99 during the switch <= the quiet p99 + {P99_SLACK_MS:g} ms, every run",
            over is not None and over.high <= P99_SLACK_MS,
            "-" if over is None else f"{over.text(1)} ms above (median, min-max)",
        ),
    ]


def targets(summaries: list[WaySummary]) -> list[Target]:
    by_way = {s.way: s for s in summaries}
    return floor_targets(by_way) + online_targets(by_way) + ssh_target(by_way)


def floor_targets(by_way: dict[str, WaySummary]) -> list[Target]:
    ansible, floor = by_way.get("ansible"), by_way.get("floor")
    if not (ansible and floor):
        return []
    a_wall, a_down = ansible.wall_s, ansible.downtime_s
    f_wall, f_down = floor.wall_s, floor.downtime_s
    if not (a_wall and a_down and f_wall and f_down):
        return []
    extra = a_down.median - f_down.median
    return [
        Target(
            f"ansible wall time <= {WALL_RATIO_TARGET:g}x the floor's",
            a_wall.median <= WALL_RATIO_TARGET * f_wall.median,
            f"{ansible.wall_to_floor:.2f}x ({a_wall.median:.1f} s vs"
            f" {f_wall.median:.1f} s, medians)",
        ),
        Target(
            f"ansible downtime <= the floor's + {DOWNTIME_SLACK_S:g} s",
            extra <= DOWNTIME_SLACK_S,
            f"{a_down.median:.2f} s vs {f_down.median:.2f} s ({extra:+.2f} s, medians)",
        ),
        Target(
            "no failed request outside the downtime window (ansible)",
            ansible.failed_outside == 0,
            f"{ansible.failed_outside} outside, {ansible.failed_inside} inside,"
            f" over {ansible.runs} runs",
        ),
    ]


def ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown_table(summaries: list[WaySummary]) -> str:
    lines = [
        "| way | runs ok | wall s, median (min-max) | downtime s, median (min-max) |"
        " failed requests, median (min-max) | failed outside the window, all runs |"
        " wall / floor | downtime / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s.way} | {s.runs} of {s.runs + s.runs_failed} | {spread_text(s.wall_s)} |"
        f" {spread_text(s.downtime_s, 2)} | {spread_text(s.failed, 0)} | {s.failed_outside} |"
        f" {ratio_text(s.wall_to_floor)} |"
        f" {ratio_text(s.downtime_to_floor)} |"
        for s in summaries
    ]
    return "\n".join(lines)


def load_table(summaries: list[WaySummary]) -> str:
    lines = [
        "| way | load: failed requests, median (min-max) | p99 quiet ms | p99 switch ms |"
        " switch over quiet ms |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s.way} | {spread_text(s.load_failed, 0)} | {spread_text(s.p99_quiet_ms)} |"
        f" {spread_text(s.p99_switch_ms)} | {spread_text(s.p99_over_quiet_ms)} |"
        for s in summaries
    ]
    return "\n".join(lines)


def phase_lines(summaries: list[WaySummary]) -> list[str]:
    return [
        f"- {s.way}: "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in s.phases_median_s.items())
        for s in summaries
    ]


def window_lines(summaries: list[WaySummary]) -> list[str]:
    return [
        f"- {s.way}: "
        + "; ".join(f"{name} {seconds:.2f}" for name, seconds in s.window_median_s.items())
        for s in summaries
        if s.window_median_s
    ]


def report_text(summaries: list[WaySummary], goals: list[Target], failures: list[FailedRun]) -> str:
    lines = [markdown_table(summaries), "", load_table(summaries), ""]
    lines += ["Phase medians (s):", *phase_lines(summaries), ""]
    lines += ["The stop flow's window, task by task (medians, s):", *window_lines(summaries), ""]
    lines += target_lines(goals) or ["- targets: not judged (they need ansible and floor)"]
    lines += [
        f"- warning: {s.way}: v2 did not answer steadily after {s.unsettled_runs} deploy(s)"
        for s in summaries
        if s.unsettled_runs
    ]
    lines += [f"- run {f.run} of {f.way} failed: {f.error}" for f in failures]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------


def ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise BenchError("ansible-playbook not found: run `. .venv/bin/activate` first")
    return found


def check_prerequisites(client: docker.DockerClient, ways: list[str]) -> None:
    missing = [ref for ref in IMAGES if not client.images.list(name=ref)]
    if missing:
        raise BenchError(f"images missing: {', '.join(missing)}; run scripts/test.sh")
    if "compose" in ways and not shutil.which("docker-compose"):
        raise BenchError("docker-compose not found: apt-get install -y docker-compose")


def tool_versions(client: docker.DockerClient, ways: list[str]) -> dict[str, str]:
    versions = {"docker": client.version()["Version"]}
    if "compose" in ways:
        command = ["docker-compose", "version", "--short"]
        versions["docker-compose"] = run_command(command, "docker-compose version")
    if "ansible" in ways:
        output = run_command([ansible_playbook(), "--version"], "ansible-playbook --version")
        versions["ansible"] = output.splitlines()[0]
    return {tool: version.strip() for tool, version in versions.items()}


def checkout() -> dict[str, Any]:
    """The commit the deploy code was measured at, and its files changed since."""
    if not shutil.which("git"):
        return {}
    head = run_command(["git", "rev-parse", "--short", "HEAD"], "git rev-parse").strip()
    status = run_command(["git", "status", "--porcelain", "--", *DEPLOY_CODE], "git status")
    return {"commit": head, "uncommitted": [line[3:] for line in status.splitlines()]}


def machine_info(client: docker.DockerClient, ways: list[str]) -> dict[str, Any]:
    return {**host_info(), "tools": tool_versions(client, ways)}


def attempt(way: Way, run: int) -> RunResult | FailedRun:
    """One run of WAY; a deploy (or set-up) that fails is a result, not the end."""
    try:
        return measure(way, run)
    except BenchError as exc:
        note(f"run {run}, {way.name}: failed: {exc}")
        return FailedRun(way.name, run, str(exc))
    finally:
        way.teardown()


def baseline_way(client: docker.DockerClient, session: str, base: Path, ref: str) -> AnsibleWay:
    """deploy.yml as it was at commit REF (git archive into BASE), named ansible@REF."""
    tree = base / "baseline-tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise BenchError(f"--baseline {ref}: {failure_line(archive.stderr.decode())}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    (base / "baseline").mkdir()
    way = AnsibleWay(client, f"{session}baseline-", base / "baseline", root=tree)
    way.name = f"ansible@{ref}"
    return way


def run_all(
    client: docker.DockerClient, args: argparse.Namespace, base: Path
) -> list[RunResult | FailedRun]:
    """The runs of every way, the order of the ways rotating; everything removed after."""
    session = f"bench-{uuid.uuid4().hex[:6]}-"
    instances: list[Way] = []
    for name in args.ways:
        (base / name).mkdir()
        instances.append(WAY_CLASSES[name](client, f"{session}{name}-", base / name))
    if args.baseline:
        instances.append(baseline_way(client, session, base, args.baseline))
    runs = args.runs
    results = []
    try:
        for run in range(1, runs + 1):
            shift = (run - 1) % len(instances)
            for way in instances[shift:] + instances[:shift]:
                results.append(attempt(way, run))
    finally:
        for way in instances:
            way.close()
        remove_by_prefix(client, session)
    return results


def run_benchmark(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    client = docker_client()
    try:
        check_prerequisites(client, args.ways)
        machine = machine_info(client, args.ways)
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
            outcomes = run_all(client, args, Path(tmp))
    except DockerException as exc:
        raise BenchError(f"Docker: {exc}") from None
    results = [r for r in outcomes if isinstance(r, RunResult)]
    failures = [r for r in outcomes if isinstance(r, FailedRun)]
    ways = args.ways + ([f"ansible@{args.baseline}"] if args.baseline else [])
    summaries = summarise(results, failures, ways)
    goals = targets(summaries)
    print(report_text(summaries, goals, failures), flush=True)
    machine["load_average_at_end"] = os.getloadavg()
    return {
        "benchmark": (
            "deploy v1 -> v2 (migration 109): compose vs ansible (stop, online; local, ssh)"
            " vs bare docker"
        ),
        "command": command_line(sys.argv),
        "started_at": started.isoformat(timespec="seconds"),
        "runs": args.runs,
        "machine": machine,
        "deploy_code": checkout(),
        "baseline_commit": args.baseline,
        "probe": {
            "endpoint": "GET /health on the api's loopback port, new connection each time",
            "interval_s": PROBE_INTERVAL_S,
            "timeout_s": PROBE_TIMEOUT_S,
            "lead_s": PROBE_LEAD_S,
            "steady_after_deploy_s": STEADY_S,
            "definitions": Outage.__doc__,
        },
        "load": {
            "endpoint": "GET /calls on the api's loopback port, new connection each time",
            "clients": LOAD_CLIENTS,
            "interval_s": LOAD_INTERVAL_S,
            "quiet_s": QUIET_S,
            "switch_window": "the start and record phases and SWITCH_TAIL_S after them",
            "switch_tail_s": SWITCH_TAIL_S,
        },
        "summary": [asdict(s) for s in summaries],
        "targets": [asdict(t) for t in goals],
        "results": [asdict(r) for r in results],
        "failed_runs": [asdict(f) for f in failures],
    }


def way_list(text: str) -> list[str]:
    ways = [way.strip() for way in text.split(",") if way.strip()]
    unknown = sorted(set(ways) - set(WAY_NAMES))
    if unknown or not ways or len(set(ways)) != len(ways):
        raise argparse.ArgumentTypeError(f"a comma-separated subset of {','.join(WAY_NAMES)}")
    return ways


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=5, help="runs of each way (default 5)")
    parser.add_argument(
        "--ways", type=way_list, default=list(WAY_NAMES), help="default compose,ansible,floor,ssh"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/deploy-<UTC stamp>.json)"
    )
    parser.add_argument(
        "--baseline",
        metavar="COMMIT",
        help="also run deploy.yml as it was at COMMIT (way ansible@COMMIT): before/after",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or default_out("deploy", started)
    return write_results(lambda: run_benchmark(args, started), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
