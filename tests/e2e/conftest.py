"""Helpers for the deploy-flow e2e tests: one stack per test, deploy runs, state and images.

A `Stack` wraps the extra vars of one isolated copy of the local stack and reads back what
the flow leaves behind: containers, the release history, the deploy lock, the reports and
the database. The session fixtures build the test-only images (a migrate image whose 0109
fails, one whose 0110 declares a column it does not create, an app image that never turns
healthy) from the project's own Dockerfiles, and remove them at the end of the session.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import docker
import psycopg
import pytest
from psycopg import sql

from tests.conftest import (
    ROOT,
    IsolatedStack,
    host_stats,
    isolated_extravars,
    playbook_args,
    remove_stack,
    run_playbook,
)
from tests.engines import Engine, EngineError

APP_SERVICES = ("prosaas-api", "prosaas-calls", "worker")
INFRA_SERVICES = ("postgres", "redis", "proxy")
V2_COLUMNS = ("started_at", "ended_at", "duration_sec")
# Migration 109 undone: pending again, so a v1 migrate image finds the schema it knows.
RESET_109_SQL = """
    ALTER TABLE call_log DROP COLUMN IF EXISTS started_at, DROP COLUMN IF EXISTS ended_at,
        DROP COLUMN IF EXISTS duration_sec;
    DELETE FROM prosaas_schema_history WHERE version = 109;
"""
DB_PASSWORD = "prosaas-local-only"  # noqa: S105 - the local inventory's demo password
# The seed's check: how many of 109's columns call_log has.
SQL_V2_COLUMNS = """
    SELECT column_name FROM information_schema.columns
    WHERE table_name = 'call_log' AND column_name IN ('started_at', 'ended_at', 'duration_sec')
"""


# --- Playbook runs --------------------------------------------------------------------


@dataclass
class DeployRun:
    """The outcome of one ansible-playbook run: exit code, recap, output, failure line."""

    rc: int
    stats: dict[str, int]
    output: str
    failure: str  # msg of the last failed task; "" when nothing failed
    events: list[dict] = field(repr=False, default_factory=list)

    @classmethod
    def of(cls, runner: ansible_runner.Runner) -> DeployRun:
        events = list(runner.events)
        failed = [
            event["event_data"].get("res", {})
            for event in events
            if event.get("event") == "runner_on_failed"
            and not event["event_data"].get("ignore_errors")
        ]
        failure = failure_message(failed[-1]) if failed else ""
        return cls(runner.rc, host_stats(runner), runner.stdout.read(), failure, events)

    def plan(self) -> list[str]:
        """The lines of preflight's "Show the plan" task, every host's."""
        return [
            line
            for event in self.events
            if event.get("event") == "runner_on_ok"
            and event["event_data"].get("task", "").startswith("Show the plan")
            for line in event["event_data"]["res"]["msg"]
        ]

    def describe(self) -> str:
        """What to show when an assertion on this run fails."""
        return f"rc={self.rc} stats={self.stats} failure={self.failure!r}\n{self.output[-6000:]}"


def failure_message(result: dict) -> str:
    """A failed task's msg; for a loop, the msg of its last failed item."""
    items = [item for item in result.get("results", []) if item.get("failed")]
    return str((items[-1] if items else result).get("msg", ""))


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll CONDITION until it returns something truthy; fail the test after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Runs held at failpoints ---------------------------------------------------------


@dataclass
class Failpoints:
    """The failpoint folder of one run (module_utils/prosaas_failpoint.py): FOLDER on this
    machine, where the controller's plugins and the local inventory's modules look, and the
    same path inside the container of each test host of HOSTS (name -> container), where the
    modules of a host reached over SSH look (deploy.yml passes PROSAAS_FAILPOINTS on)."""

    folder: Path
    hosts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def under(cls, base: Path, hosts: dict[str, Any] | None = None) -> Failpoints:
        failpoints = cls(base / f"failpoints-{uuid.uuid4().hex[:8]}", hosts or {})
        failpoints.folder.mkdir()
        folder = shlex.quote(str(failpoints.folder))
        for host in failpoints.hosts:  # the deploy user's modules write there too
            failpoints.sh(host, f"mkdir -p {folder} && chmod 0777 {folder}")
        return failpoints

    @property
    def env(self) -> dict[str, str]:
        return {"PROSAAS_FAILPOINTS": str(self.folder)}

    def sh(self, host: str, command: str) -> str:
        """What the shell COMMAND prints where HOST's modules run: here, or in its container."""
        if not host:
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
            return done.stdout
        code, output = self.hosts[host].exec_run(["sh", "-c", command])
        assert code == 0, output.decode()
        return output.decode()

    def path(self, name: str) -> str:
        return shlex.quote(str(self.folder / name))

    def arm(self, name: str, host: str = "") -> None:
        self.sh(host, f"touch {self.path(name)}")

    def release(self, name: str, host: str = "") -> None:
        self.sh(host, f"rm -f {self.path(name)}")

    def held(self, name: str, host: str = "") -> list[int]:
        """The pids of the processes that reached NAME: none until one has."""
        reached = self.sh(host, f"cat {self.path(name + '.reached')} 2>/dev/null || true")
        return [int(pid) for pid in reached.split()]

    def ended(self, name: str, host: str = "") -> bool:
        """Whether every process that reached NAME has ended (a zombie has)."""
        alive = self.sh(
            host,
            f"for pid in $(cat {self.path(name + '.reached')}); do"
            " grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status && echo $pid; done; true",
        )
        return not alive.split()


@dataclass
class HeldRun:
    """A playbook run under way with failpoints armed: the test waits until the flow is held
    at one, does there what it must, and releases it."""

    failpoints: Failpoints
    thread: threading.Thread
    runner: ansible_runner.Runner

    @classmethod
    def start(cls, args: dict, failpoints: Failpoints, armed: list[tuple[str, str]]) -> HeldRun:
        """The run of ARGS (ansible-runner's) with each failpoint (name, host) of ARMED armed."""
        for name, host in armed:
            failpoints.arm(name, host)
        args = {**args, "envvars": {**args["envvars"], **failpoints.env}}
        thread, runner = ansible_runner.run_async(**args)
        return cls(failpoints, thread, runner)

    def wait_at(self, name: str, host: str = "") -> None:
        """Until the flow is held at NAME; the test fails when the run ended first."""
        wait_until(
            lambda: self.failpoints.held(name, host) or not self.thread.is_alive(),
            600,
            f"failpoint {name}",
            0.05,
        )
        assert self.failpoints.held(name, host), f"the run ended before failpoint {name}"

    def release(self, name: str, host: str = "") -> None:
        self.failpoints.release(name, host)

    def result(self) -> DeployRun:
        self.thread.join(timeout=600)
        assert not self.thread.is_alive(), "the run did not end"
        return DeployRun.of(self.runner)


@dataclass(frozen=True)
class Hold:
    """At the failpoint NAME (in the container of the test host HOST, when given) ACTION is
    done before the flow goes on. With KILLS, ACTION kills the run (ansible-playbook, or the
    host's SSH): the process held there is orphaned and, once released, ends what it was
    doing, as it would have without the hold; the test waits until it has ended."""

    name: str
    action: Callable[[], Any]
    host: str = ""
    kills: bool = False


def run_held(args: dict, failpoints: Failpoints, holds: list[Hold]) -> DeployRun:
    """The run of ARGS held at each failpoint of HOLDS in turn (the order the flow reaches
    them), each for its action."""
    run = HeldRun.start(args, failpoints, [(hold.name, hold.host) for hold in holds])
    try:
        for hold in holds:
            run.wait_at(hold.name, hold.host)
            hold.action()
            run.release(hold.name, hold.host)
            if hold.kills:
                wait_until(
                    functools.partial(failpoints.ended, hold.name, hold.host),
                    600,
                    f"the process held at {hold.name} to end",
                )
    finally:
        for hold in holds:
            failpoints.release(hold.name, hold.host)
        run.thread.join(timeout=600)
    return run.result()


def deploy_held_at(
    stack: Stack,
    holds: list[Hold],
    version: str = "v2",
    failpoints: Failpoints | None = None,
    **extra: Any,
) -> DeployRun:
    """deploy.yml of VERSION on STACK, held at each failpoint of HOLDS for its action (in
    FAILPOINTS, for a test that looks at them after the run)."""
    failpoints = failpoints or Failpoints.under(stack.tmp_path)
    return run_held(stack.deploy_args(version, **extra), failpoints, holds)


def meet_at(name: str, runs: list[HeldRun]) -> None:
    """A barrier: every run of RUNS held at the failpoint NAME until all of them are there,
    then released together, so that what comes next races for real."""
    for run in runs:
        run.wait_at(name)
    for run in runs:
        run.release(name)


# What the migrator logs when a session holding a lock on a table it alters is in its way.
MIGRATOR_MET_A_HOLDER = ("not queueing behind", "gave up")


def met_a_holder(log: str) -> bool:
    """Whether the migrate container's LOG says it waits for a lock another session holds."""
    return any(words in log for words in MIGRATOR_MET_A_HOLDER)


def deploy_pid(stack: Stack) -> int:
    """The pid of the running ansible-playbook, from the deploy lock it holds."""
    lock = wait_until(stack.lock, 30, "the deploy lock")
    return int(lock["pid"])


def signal_until_gone(group: int, signum: int, presses: int = 20) -> None:
    """Send SIGNUM to GROUP every half second until no process of it is left, as an operator
    presses Ctrl-C again: Python drops a KeyboardInterrupt raised inside a weakref callback
    ("Exception ignored in ..."), so one SIGINT does not always stop ansible-playbook."""
    for _ in range(presses):
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            return
        time.sleep(0.5)


# --- One stack ------------------------------------------------------------------------


@dataclass
class Stack:
    """One isolated local stack: deploy it, and read back what the deploy left."""

    client: docker.DockerClient
    prefix: str
    extravars: dict
    tmp_path: Path
    # The project's inventory name, or the path of a test's own.
    inventory: str = "local"

    # deploy runs
    def vars_for(self, version: str, **extra: Any) -> dict:
        return {
            **self.extravars,
            "prosaas_app_version": version,
            **extra,
        }

    def play(self, playbook: str, version: str, *flags: str, **extra: Any) -> DeployRun:
        """Run PLAYBOOK (deploy.yml or a runbook one) on this stack with VERSION's images and
        ansible-playbook's FLAGS."""
        extravars = self.vars_for(version, **extra)
        runner = run_playbook(playbook, self.tmp_path, extravars, self.inventory, flags)
        return DeployRun.of(runner)

    def deploy(self, version: str, **extra: Any) -> DeployRun:
        return self.play("deploy.yml", version, **extra)

    def deploy_args(self, version: str, **extra: Any) -> dict:
        """ansible-runner's arguments of deploy.yml with VERSION on this stack."""
        return playbook_args(
            "deploy.yml", self.tmp_path, self.vars_for(version, **extra), self.inventory
        )

    def deploy_ok(self, version: str, **extra: Any) -> DeployRun:
        run = self.deploy(version, **extra)
        assert run.rc == 0, run.describe()
        return run

    # state and reports
    @property
    def state_dir(self) -> Path:
        return Path(self.extravars["prosaas_state_dir"])

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "deploy.lock"

    def lock(self) -> dict | None:
        try:
            return json.loads(self.lock_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def history(self) -> list[dict]:
        path = self.state_dir / "releases.json"
        return json.loads(path.read_text())["releases"] if path.exists() else []

    def release(self, version: str) -> dict:
        """The only history record of VERSION."""
        records = [record for record in self.history() if record["version"] == version]
        assert len(records) == 1, f"expected one record of {version}: {self.history()}"
        return records[0]

    @property
    def reports_dir(self) -> Path:
        return Path(self.extravars["prosaas_reports_dir"])

    def reports(self) -> dict[str, dict]:
        folder = self.reports_dir
        return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}

    # containers
    def container(self, service: str) -> Any:
        return self.client.containers.get(f"{self.prefix}{service}")

    def health(self, service: str) -> str:
        return self.container(service).attrs["State"].get("Health", {}).get("Status", "none")

    def image(self, service: str) -> str:
        return self.container(service).attrs["Config"]["Image"]

    def runs_healthy(self, version: str) -> bool:
        """assert_app_healthy_on as a question: False where it would fail."""
        try:
            self.assert_app_healthy_on(version)
        except (AssertionError, docker.errors.NotFound):
            return False
        return True

    def container_ids(self) -> dict[str, str]:
        return {service: self.container(service).id for service in INFRA_SERVICES + APP_SERVICES}

    def assert_app_healthy_on(self, version: str) -> None:
        for service in APP_SERVICES:
            assert self.image(service) == f"prosaas-demo/app:{version}", service
            assert self.health(service) == "healthy", service
        for service in INFRA_SERVICES:
            assert self.health(service) == "healthy", service

    # database
    @property
    def dsn(self) -> str:
        port = self.extravars["prosaas_database_port_from_deployer"]
        return f"postgresql://prosaas:{DB_PASSWORD}@127.0.0.1:{port}/prosaas"

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.dsn, connect_timeout=10, **kwargs)

    def v2_columns(self) -> set[str]:
        with self.connect(autocommit=True) as conn:
            return {row[0] for row in conn.execute(SQL_V2_COLUMNS)}

    def applied_versions(self) -> list[int]:
        """Versions in the migrator's history table."""
        with self.connect(autocommit=True) as conn:
            rows = conn.execute("SELECT version FROM prosaas_schema_history ORDER BY version")
            return [int(row[0]) for row in rows]


def make_stack(client: docker.DockerClient, base: Path) -> IsolatedStack:
    """The same extra vars as tests.conftest.isolated_stack, for fixtures of wider scope."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    return IsolatedStack(prefix, isolated_extravars(prefix, base))


@pytest.fixture
def stack(
    docker_engine: docker.DockerClient, isolated_stack: IsolatedStack, tmp_path: Path
) -> Stack:
    """This test's own stack, nothing deployed yet."""
    return Stack(docker_engine, isolated_stack.prefix, isolated_stack.extravars, tmp_path)


# --- The v1 baseline: one v1 deploy shared by the tests that start from v1 ---------------

SCHEMA_SQL = {
    "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    "columns": """
        SELECT table_name || '.' || column_name FROM information_schema.columns
        WHERE table_schema = 'public'""",
    "indexes": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'",
}


@dataclass
class Snapshot:
    """What a stack looked like right after its v1 deploy: its state and report files, its
    schema and applied migrations, and v1's release record."""

    state: dict[str, bytes]
    reports: dict[str, bytes]
    schema: dict[str, set[str]]
    versions: list[int]
    release: dict


def read_schema(conn: psycopg.Connection) -> dict[str, set[str]]:
    return {kind: {row[0] for row in conn.execute(query)} for kind, query in SCHEMA_SQL.items()}


def take_snapshot(stack: Stack) -> Snapshot:
    with stack.connect(autocommit=True) as conn:
        schema = read_schema(conn)
    return Snapshot(
        files_in(stack.state_dir),
        files_in(stack.reports_dir),
        schema,
        stack.applied_versions(),
        stack.release("v1"),
    )


def files_in(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def restore_files(folder: Path, files: dict[str, bytes]) -> None:
    """FOLDER holding FILES and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.name not in files:
            path.unlink()
    for name, content in files.items():
        (folder / name).write_bytes(content)


def restore_state_dir(stack: Stack, snapshot: Snapshot) -> None:
    """The state and reports folders as v1 left them: one release, its report, no lock."""
    restore_files(stack.state_dir, snapshot.state)
    restore_files(stack.reports_dir, snapshot.reports)


def restore_schema(stack: Stack, snapshot: Snapshot) -> None:
    """Drop what the test added to the schema, forget migrations after v1's, empty call_log."""
    wanted = snapshot.schema
    with stack.connect(autocommit=True) as conn:
        found = read_schema(conn)
        for table in sorted(found["tables"] - wanted["tables"]):
            conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(table)))
        for index in sorted(found["indexes"] - wanted["indexes"]):
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
        for column in sorted(found["columns"] - wanted["columns"]):
            table, name = column.split(".", 1)
            if table in wanted["tables"]:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
        conn.execute(
            "DELETE FROM prosaas_schema_history WHERE NOT version = ANY(%s)", (snapshot.versions,)
        )
        conn.execute("TRUNCATE call_log RESTART IDENTITY")
        assert read_schema(conn) == wanted, "the v1 schema could not be restored"


def runs_release(stack: Stack, release: dict) -> bool:
    """Whether the app services run RELEASE healthy, and the infra services are healthy."""
    return stack.runs_healthy(release["version"]) and all(
        stack.container(s).labels.get("prosaas.release") == release["id"] for s in APP_SERVICES
    )


def restore_containers(stack: Stack, snapshot: Snapshot) -> None:
    """v1's containers running healthy: what the test left is put back by the runbook's start."""
    services = {stack.prefix + service for service in APP_SERVICES + INFRA_SERVICES}
    for container in stack.client.containers.list(all=True, filters={"name": f"^{stack.prefix}"}):
        if container.name not in services:
            container.remove(force=True)
    if not runs_release(stack, snapshot.release):
        started = stack.play("playbooks/start.yml", "v1")
        assert started.rc == 0, started.describe()
    assert runs_release(stack, snapshot.release), "v1 could not be restored"


@pytest.fixture(scope="session")
def v1_baseline(
    docker_engine: docker.DockerClient, demo_images: list[str], tmp_path_factory
) -> Iterator[tuple[Stack, Snapshot]]:
    """One stack with v1 deployed (migrations up to 0002), for every test that starts there."""
    base = tmp_path_factory.mktemp("v1-baseline")
    isolated = make_stack(docker_engine, base)
    stack = Stack(docker_engine, isolated.prefix, isolated.extravars, base)
    try:
        run = stack.deploy_ok("v1")
        assert run.stats["failures"] == 0, run.describe()
        stack.assert_app_healthy_on("v1")
        yield stack, take_snapshot(stack)
    finally:
        remove_stack(docker_engine, isolated.prefix)


@pytest.fixture
def v1_stack(v1_baseline: tuple[Stack, Snapshot], tmp_path: Path) -> Stack:
    """The shared stack as its v1 deploy left it: v1 healthy, one release and its report, no
    lock, the v1 schema with an empty call_log.

    The reset costs a few SQL statements and file writes; a test that left other containers
    running costs a run of playbooks/start.yml on top.
    """
    shared, snapshot = v1_baseline
    stack = Stack(shared.client, shared.prefix, shared.extravars, tmp_path)
    restore_state_dir(stack, snapshot)
    restore_containers(stack, snapshot)
    restore_schema(stack, snapshot)
    assert stack.history() == [snapshot.release]
    return stack


@pytest.fixture(scope="module")
def module_stack(
    docker_engine: docker.DockerClient, demo_images: list[str], tmp_path_factory
) -> Iterator[Stack]:
    """A stack shared by the tests of one module (nothing deployed yet)."""
    base = tmp_path_factory.mktemp("stack")
    isolated = make_stack(docker_engine, base)
    try:
        yield Stack(docker_engine, isolated.prefix, isolated.extravars, base)
    finally:
        remove_stack(docker_engine, isolated.prefix)


# --- A second engine ----------------------------------------------------------------

# What a stack on another engine needs: the demo images (copied, never pulled).
STACK_IMAGES = [
    "prosaas-demo/app:v1",
    "prosaas-demo/app:v2",
    "prosaas-demo/migrate:v1",
    "prosaas-demo/migrate:v2",
    "prosaas-demo/postgres:15",
    "prosaas-demo/redis:7",
    "prosaas-deploy/proxy:1",
]


def running_engine(engine: Engine, images: list[str]) -> Engine:
    """ENGINE started, its containers let through, IMAGES copied in; a failure fails the test."""
    try:
        engine.start()
        engine.allow_forwarding()
        engine.load_images(images)
    except (EngineError, OSError, subprocess.CalledProcessError) as exc:
        engine.remove()
        pytest.fail(f"could not run a Docker engine of its own at {engine.host}: {exc}")
    return engine


def worker_number() -> int:
    """This test process's number among pytest-xdist's workers (gw0, gw1, ...); 0 without."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def second_engine(demo_images: list[str], tmp_path_factory) -> Iterator[Engine]:
    """A dockerd of its own (socket, data root, address pool, bridge) with the demo images.
    Each test worker's session has one: its bridge and addresses are the worker's own, or
    the first worker to end would delete the bridge the other's engine runs on."""
    root = tmp_path_factory.mktemp("engine")
    n = worker_number()
    engine = Engine(root, f"10.{213 + 2 * n}.0.0/16", f"pdtest{n}", f"10.{214 + 2 * n}.0.1/24")
    engine = running_engine(engine, STACK_IMAGES)
    yield engine
    engine.remove()


def stack_on(engine: Engine, base: Path) -> Stack:
    """An isolated stack (as make_stack) whose containers run on ENGINE."""
    client = engine.client()
    isolated = make_stack(client, base)
    extravars = {**isolated.extravars, "prosaas_docker_host": engine.host}
    return Stack(client, isolated.prefix, extravars, base)


# --- Test-only images -----------------------------------------------------------------


@pytest.fixture(scope="session")
def build_image(docker_engine: docker.DockerClient) -> Iterator[Callable[..., str]]:
    """Build an image from a folder; every image built is removed at the end of the session.

    Each tag gets a suffix of this session's own, so two test sessions on one engine never
    remove each other's images.
    """
    built: list[str] = []
    session = uuid.uuid4().hex[:8]

    def build(path: Path, name: str, buildargs: dict | None = None) -> str:
        tag = f"{name}-{session}"
        docker_engine.images.build(path=str(path), tag=tag, buildargs=buildargs or {}, rm=True)
        built.append(tag)
        return tag

    yield build
    for tag in built:
        with contextlib.suppress(docker.errors.NotFound):
            docker_engine.images.remove(tag, force=True)


def copy_migrations(target: Path) -> Path:
    """A copy of migrations/ (runner, Dockerfile, versions) to change and build from."""
    shutil.copytree(
        ROOT / "migrations", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


@pytest.fixture(scope="session")
def broken_migrate_image(build_image, base_image: str, tmp_path_factory) -> str:
    """migrate:v2 whose 0109 fails after its ALTERs (division by zero)."""
    folder = copy_migrations(tmp_path_factory.mktemp("broken") / "migrations")
    migration = folder / "versions" / "0109_call_log_timing.sql"
    migration.write_text(migration.read_text() + "SELECT 1/0;\n")
    return build_image(folder, "prosaas-demo/migrate:v2-broken", {"BASE_IMAGE": base_image})


GHOST_DECLARATION = "-- adds-column: call_log.ghost integer\n"


@pytest.fixture(scope="session")
def ghost_migrate_image(build_image, base_image: str, tmp_path_factory) -> str:
    """A migrate image whose 0109 header also declares call_log.ghost, which 0109 never
    creates; the checkout's copy of 0109 does not declare it."""
    folder = copy_migrations(tmp_path_factory.mktemp("ghost") / "migrations")
    migration = folder / "versions" / "0109_call_log_timing.sql"
    migration.write_text(GHOST_DECLARATION + migration.read_text())
    return build_image(folder, "prosaas-demo/migrate:v2-ghost", {"BASE_IMAGE": base_image})


@pytest.fixture(scope="session")
def unvouched_migrate_image(build_image, tmp_path_factory) -> str:
    """migrate:v2 with a lint record that refuses 0109: an image built some other way."""
    folder = tmp_path_factory.mktemp("unvouched")
    record = subprocess.run(
        [sys.executable, "-m", "migrator", "lint", "--all", "--json"],
        cwd=ROOT / "migrations",
        env={**os.environ, "PYTHONPATH": str(ROOT / "migrations")},
        capture_output=True,
        text=True,
        check=True,
    )
    linted = json.loads(record.stdout.splitlines()[-1])
    for entry in linted["files"]:
        if entry["version"] == 109:
            entry["verdict"] = "refused"
            entry["findings"] = [
                {"line": 6, "rule": "column-type-change", "message": "rewrites call_log"}
            ]
    (folder / "lint.json").write_text(json.dumps(linted))
    (folder / "Dockerfile").write_text(
        "FROM prosaas-demo/migrate:v2\nCOPY lint.json /app/lint.json\n"
    )
    return build_image(folder, "prosaas-demo/migrate:v2-unvouched")


@pytest.fixture(scope="session")
def unhealthy_app_image(build_image, tmp_path_factory) -> str:
    """app:v2 forced unhealthy."""
    folder = tmp_path_factory.mktemp("unhealthy")
    (folder / "Dockerfile").write_text("FROM prosaas-demo/app:v2\nENV DEMO_FAIL_HEALTH=1\n")
    return build_image(folder, "prosaas-demo/app:v2-unhealthy")


def status_table(run: DeployRun) -> list[str]:
    """The lines of status.yml's table, as the task returned them."""
    tables = [
        event["event_data"]["res"]["msg"]
        for event in run.events
        if event.get("event") == "runner_on_ok"
        and event["event_data"].get("task") == "Show the status"
    ]
    assert len(tables) == 1, run.describe()
    return tables[0]
