"""Real servers over SSH: playbooks/prepare.yml turns a bare Debian server, reached as deploy,
into a deploy target; the deploy's host check (roles/preflight/tasks/host.yml) refuses the
host before and lets it through after; then deploy.yml and the runbook playbooks run there
as deploy, without sudo: v1, v2 (109), a v3 that never turns healthy and rolls back, status,
and a deploy killed in its stop phase whose lock another control node finds stale once its
lease ran out.

The module starts a test host of its own (the session's must stay bare) and walks it once:
the deploy on the bare host, prepare twice (the second run must change nothing), then what
the prepared host offers. The libraries come from the control node's wheel folder, which
scripts/setup.sh fills, so neither the host nor the tests reach a package index. The deploys
run the local inventory's whole stack, PostgreSQL included, on the server's engine, and look
at it as an operator would: through one SSH connection of the deploy user (the engine's
socket and the database port forwarded here), and at the state files on the server.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ansible_runner
import docker
import pytest

from tests.conftest import (
    HOST_WHEELS,
    host_stats,
    host_wheels,
    playbook_args,
    run_module,
    start_test_host,
)
from tests.e2e.conftest import (
    APP_SERVICES,
    RESET_109_SQL,
    DeployRun,
    Hold,
    Stack,
    deploy_held_at,
    signal_until_gone,
    wait_until,
)
from tests.pg_cluster import free_loopback_port
from tests.registry import Registry, repushed
from tests.ssh_hosts import SessionKeys, SshHost, remove_host
from tests.ssh_stack import (
    Tunnel,
    load_images,
    read_remote,
    write_host_inventory,
    write_stack_inventory,
)

VENV_PYTHON = "/opt/prosaas-deploy/venv/bin/python"
STATE_DIR = "/var/lib/prosaas-deploy"
DATABASE_PORT = 55432  # the local inventory's, on the server's own loopback
HOST_CHECK_TASK = "Check that the host is prepared for a deploy"
IMAGE_CHECK_TASK = "Check that the engine answers and every image of the release exists"


@dataclass
class TestHost:
    """The module's own host and an inventory for it over inventories/common.yml."""

    __test__ = False  # not a test class

    host: SshHost
    inventory: Path
    base: Path
    registry_vars: dict[str, Any]

    def play(self, playbook: str, *flags: str) -> ansible_runner.Runner:
        # prepare.yml also makes the host's engine trust the registry's CA.
        extravars = self.registry_vars if playbook == "playbooks/prepare.yml" else None
        args = playbook_args(playbook, self.base, extravars)
        args |= {"inventory": str(self.inventory), "cmdline": " ".join(flags) or None}
        return ansible_runner.run(**args)

    def as_deploy(self, tmp_path: Path, command: str) -> str:
        """The output of COMMAND, run on the host by deploy without become."""
        run = run_module(
            tmp_path, "command", command, host=self.host.name, inventory=self.inventory
        )
        assert run.event == "runner_on_ok", run.result
        return run.result["stdout"]


@dataclass
class Walk:
    """The deploy and a check of prepare.yml on the bare host, then each prepare.yml run with
    its wall time (s)."""

    bare_deploy: DeployRun
    bare_check: ansible_runner.Runner
    prepares: list[tuple[ansible_runner.Runner, float]]


@pytest.fixture(scope="module")
def test_host(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestHost]:
    """A fresh bare host for this module, removed after it."""
    host_wheels()
    host = start_test_host(docker_engine, base_image, ssh_keys, "pdprep", registry.network)
    try:
        base = tmp_path_factory.mktemp("prepare")
        inventory = write_host_inventory(base / "inventory", host, ssh_keys, HOST_WHEELS)
        yield TestHost(host, inventory, base, registry.inventory_vars())
    finally:
        remove_host(docker_engine, host)


@pytest.fixture(scope="module")
def walk(test_host: TestHost) -> Walk:
    """The deploy and a check tried on the bare host, then prepare.yml run twice (the second
    time limited to the host, as an operator prepares one new host of many)."""
    bare_deploy = DeployRun.of(test_host.play("deploy.yml"))
    bare_check = test_host.play("playbooks/prepare.yml", "--check")
    prepares = []
    for flags in ((), ("--limit", test_host.host.name)):
        started = time.monotonic()
        runner = test_host.play("playbooks/prepare.yml", *flags)
        prepares.append((runner, time.monotonic() - started))
    return Walk(bare_deploy, bare_check, prepares)


def task_results(events: list[dict], task: str) -> list[str]:
    """The result events of TASK: runner_on_ok, _failed or _skipped."""
    return [
        event["event"]
        for event in events
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")
        and event["event_data"].get("task") == task
    ]


def test_the_deploy_refuses_a_bare_host_on_one_line_naming_prepare(
    test_host: TestHost, walk: Walk
) -> None:
    run, name = walk.bare_deploy, test_host.host.name
    assert run.rc != 0, run.describe()
    assert task_results(run.events, HOST_CHECK_TASK) == ["runner_on_failed"], run.describe()
    assert run.failure == (
        f"host {name} is not prepared (no Python at {VENV_PYTHON}): run ansible-playbook"
        f" -i {test_host.inventory} playbooks/prepare.yml --limit {name}"
    )
    assert "Traceback" not in run.output


def test_a_check_of_a_bare_host_skips_what_is_not_installed_yet(
    test_host: TestHost, walk: Walk
) -> None:
    stats = host_stats(walk.bare_check, test_host.host.name)
    assert walk.bare_check.rc == 0 and stats["failures"] == 0, walk.bare_check.stdout.read()[-6000:]
    assert stats["changed"] > 0  # the virtualenv and the folders it would make


def test_prepare_changes_a_bare_host_then_nothing(test_host: TestHost, walk: Walk) -> None:
    (first, first_s), (second, second_s) = walk.prepares
    print(f"prepare.yml wall time: first run {first_s:.1f} s, second run {second_s:.1f} s")
    first_stats = host_stats(first, test_host.host.name)
    assert first.rc == 0 and first_stats["failures"] == 0, first.stdout.read()[-6000:]
    assert first_stats["changed"] > 0
    second_stats = host_stats(second, test_host.host.name)
    assert second.rc == 0 and second_stats["failures"] == 0, second.stdout.read()[-6000:]
    assert second_stats["changed"] == 0, second.stdout.read()[-6000:]


def test_a_check_of_the_prepared_host_changes_nothing(test_host: TestHost, walk: Walk) -> None:
    assert walk.prepares[-1][0].rc == 0
    check = test_host.play("playbooks/prepare.yml", "--check")
    stats = host_stats(check, test_host.host.name)
    assert check.rc == 0 and stats["failures"] == 0, check.stdout.read()[-6000:]
    assert stats["changed"] == 0, check.stdout.read()[-6000:]


def test_deploy_uses_the_engine_and_the_venv_without_become(
    test_host: TestHost, walk: Walk, tmp_path: Path
) -> None:
    assert walk.prepares[-1][0].rc == 0
    # The modules run in the venv: so does this command module, as the inventory says.
    assert "docker" in test_host.as_deploy(tmp_path, "id -Gn").split()
    assert test_host.as_deploy(tmp_path, "docker ps --quiet") == ""
    versions = "import docker, psycopg; print(docker.__version__, psycopg.__version__)"
    assert test_host.as_deploy(tmp_path, f'{VENV_PYTHON} -c "{versions}"') == "7.1.0 3.3.9"
    assert test_host.as_deploy(tmp_path, f"stat -c '%U %a' {STATE_DIR}") == "deploy 700"
    assert test_host.as_deploy(tmp_path, "systemctl is-enabled docker") == "enabled"


def test_the_deploy_gets_past_the_host_check_on_the_prepared_host(
    test_host: TestHost, walk: Walk
) -> None:
    assert walk.prepares[-1][0].rc == 0
    run = DeployRun.of(test_host.play("deploy.yml"))
    assert task_results(run.events, HOST_CHECK_TASK) == ["runner_on_ok"], run.describe()
    # The next check runs a module in the venv, as deploy, against the host's own engine,
    # which has none of the demo images.
    assert task_results(run.events, IMAGE_CHECK_TASK) == ["runner_on_failed"], run.describe()
    assert run.failure.startswith("images not found on the engine at unix:///var/run/docker.sock")


# --- Deploys over SSH, on the prepared host ------------------------------------------


@dataclass
class SshStack(Stack):
    """The stack on the server: its engine and database reached through the SSH tunnel."""

    server: SshHost | None = None
    tunnel: Tunnel | None = None

    @property
    def state_dir(self) -> Path:
        return Path(STATE_DIR)

    def lock(self) -> dict | None:
        assert self.server is not None
        text = read_remote(self.server, str(self.lock_path))
        return json.loads(text) if text else None

    def history(self) -> list[dict]:
        assert self.server is not None
        text = read_remote(self.server, f"{STATE_DIR}/releases.json")
        return json.loads(text)["releases"] if text else []

    @property
    def dsn(self) -> str:
        assert self.tunnel is not None
        port = self.tunnel.ports[DATABASE_PORT]
        return f"postgresql://prosaas:prosaas-local-only@127.0.0.1:{port}/prosaas"


@pytest.fixture(scope="module")
def ssh_stack(
    test_host: TestHost,
    walk: Walk,
    ssh_keys: SessionKeys,
    *,
    demo_images: list[str],
    unhealthy_app_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SshStack]:
    """The prepared server with the demo images on its engine, nothing deployed yet."""
    assert walk.prepares[-1][0].rc == 0, "prepare.yml failed: nothing to deploy to"
    server = test_host.host
    base = tmp_path_factory.mktemp("ssh-stack")
    load_images(server, [*demo_images, unhealthy_app_image])
    tunnel = Tunnel(server, ssh_keys, base, {DATABASE_PORT: free_loopback_port()})
    tunnel.start()
    try:
        stack = SshStack(
            client=docker.DockerClient(base_url=tunnel.docker_host),
            prefix="",
            extravars={"prosaas_reports_dir": str(base / "reports")},
            tmp_path=base,
            inventory=str(write_stack_inventory(base / "inventory", server, ssh_keys)),
            server=server,
            tunnel=tunnel,
        )
        yield stack
    finally:
        tunnel.stop()


def test_v1_then_v2_deploy_over_ssh_as_the_deploy_user(ssh_stack: SshStack) -> None:
    v1 = ssh_stack.deploy_ok("v1")
    assert v1.stats["failures"] == 0, v1.describe()
    ssh_stack.assert_app_healthy_on("v1")

    ssh_stack.deploy_ok("v2")
    ssh_stack.assert_app_healthy_on("v2")
    assert ssh_stack.applied_versions()[-1] == 109
    assert ssh_stack.v2_columns() == {"started_at", "ended_at", "duration_sec"}
    assert [record["status"] for record in ssh_stack.history()] == ["succeeded", "succeeded"]
    # Every module ran as deploy, without sudo: the lock and history belong to deploy.
    owners = ssh_stack.server.container.exec_run(["stat", "-c", "%U %a", STATE_DIR]).output
    assert owners.decode().split() == ["deploy", "700"]
    assert ssh_stack.lock() is None


def test_a_v3_that_never_turns_healthy_rolls_back_to_v2(
    ssh_stack: SshStack, unhealthy_app_image: str
) -> None:
    v2 = ssh_stack.history()[-1]
    version = unhealthy_app_image.split(":")[1]
    run = ssh_stack.deploy(
        version, prosaas_migrate_image="prosaas-demo/migrate:v2", services_wait_timeout=15
    )

    assert run.rc != 0, run.describe()
    assert "failed in phase start:" in run.failure, run.describe()
    assert f"rolled back to release {v2['id']} (healthy)" in run.failure, run.describe()
    ssh_stack.assert_app_healthy_on("v2")
    assert ssh_stack.history()[-1]["status"] == "failed"
    assert ssh_stack.lock() is None


def test_the_runbook_playbooks_and_the_backfill_run_over_ssh(ssh_stack: SshStack) -> None:
    stopped = ssh_stack.play("playbooks/stop.yml", "v2")
    assert stopped.rc == 0, stopped.describe()
    assert {ssh_stack.container(name).status for name in APP_SERVICES} == {"exited"}

    started = ssh_stack.play("playbooks/start.yml", "v2")
    assert started.rc == 0, started.describe()
    ssh_stack.assert_app_healthy_on("v2")

    backfill = ssh_stack.play("playbooks/backfill.yml", "v2", prosaas_backfill_poll_seconds=1)
    assert backfill.rc == 0, backfill.describe()
    assert "✅ backfill call_log_timing complete" in backfill.output, backfill.describe()
    current = [record for record in ssh_stack.history() if record["status"] == "succeeded"][-1]
    assert [job["outcome"] for job in current["jobs"]] == ["succeeded"], current
    assert ssh_stack.lock() is None


def test_status_over_ssh_reads_the_server_and_changes_nothing(ssh_stack: SshStack) -> None:
    run = ssh_stack.play("playbooks/status.yml", "v2")

    assert run.rc == 0, run.describe()
    assert run.stats["changed"] == 0, run.describe()
    assert "status: OK" in run.output, run.describe()
    assert f"state host: {ssh_stack.server.name} ({STATE_DIR})" in run.output


def test_a_killed_deploy_is_seen_stale_from_another_control_node_once_its_lease_ran_out(
    ssh_stack: SshStack, unhealthy_app_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy from control node A is SIGKILLed as it enters its stop phase. From control
    node B the lock reads as held until its lease runs out, then as stale; rollback.yml
    breaking it brings v2 back. The lease renewed as the release is recorded, here: 5 + 2 +
    3 + 4 + (3 + 2) s (lease, stop, health, migrate, one start batch)."""
    short = {
        "prosaas_lock_lease_seconds": 5,
        "prosaas_stop_timeout": 2,
        "prosaas_health_timeout": 3,
        "prosaas_migrate_timeout": 4,
    }

    def kill() -> None:
        group = os.getpgid(int(wait_until(ssh_stack.lock, 30, "the deploy lock")["pid"]))
        signal_until_gone(group, signal.SIGKILL)

    monkeypatch.setenv("PROSAAS_CONTROL_NODE", "control-node-a")
    # Any release other than what runs goes through the stop phase; this one never starts.
    version = unhealthy_app_image.split(":")[1]
    killed = deploy_held_at(
        ssh_stack,
        [Hold("phase-stop", kill, kills=True)],
        version=version,
        prosaas_migrate_image="prosaas-demo/migrate:v2",
        **short,
    )
    killed_at = time.monotonic()
    assert killed.rc != 0, killed.describe()
    lock = ssh_stack.lock()
    assert lock is not None and lock["host"] == "control-node-a", lock

    monkeypatch.setenv("PROSAAS_CONTROL_NODE", "control-node-b")
    seen: list[tuple[float, str]] = []
    while not seen or "another deploy is running" in seen[-1][1]:
        assert time.monotonic() - killed_at < 90, seen
        run = ssh_stack.play("playbooks/rollback.yml", "v2")
        seen.append((round(time.monotonic() - killed_at, 1), run.failure))
    print(f"control node B, seconds after the kill: {[(at, line[:60]) for at, line in seen]}")
    assert (
        seen[-1][1].startswith("stale deploy lock left by ")
        and "@control-node-a pid " in seen[-1][1]
    ), seen
    assert "(lease ran out " in seen[-1][1], seen
    expires = datetime.fromisoformat(lock["expires_at"].replace("Z", "+00:00"))
    renewed = datetime.fromisoformat(lock["renewed_at"].replace("Z", "+00:00"))
    assert (expires - renewed).total_seconds() == 19, lock

    recovered = ssh_stack.play("playbooks/rollback.yml", "v2", prosaas_break_stale_lock=True)
    assert recovered.rc == 0, recovered.describe()
    ssh_stack.assert_app_healthy_on("v2")
    assert ssh_stack.lock() is None


# --- Images from the registry, by digest ----------------------------------------------


def build_retired_image(client: docker.DockerClient, tag: str) -> str:
    """An image of an older release under TAG on the server's engine (FROM the local v1, a
    label of its own): its id."""
    dockerfile = io.BytesIO(b"FROM prosaas-demo/app:v1\nLABEL prosaas.test=retired\n")
    image, _ = client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    return image.id


def registry_digests(client: docker.DockerClient, registry: str) -> set[str]:
    """The digest references of the server's images pulled from REGISTRY."""
    return {
        reference
        for image in client.images.list()
        for reference in image.attrs.get("RepoDigests") or []
        if reference.startswith(f"{registry}/")
    }


def test_a_release_from_the_registry_runs_and_rolls_back_by_digest(
    ssh_stack: SshStack, registry: Registry, unhealthy_app_image: str
) -> None:
    """v1 then v2 pulled from the registry run by digest; v2's tag re-pushed with a broken image,
    --check shows per service the digest that runs and the new one, deploying v2 again pulls
    the new digest, never turns healthy and rolls back to the recorded one, and start.yml
    starts the recorded one too. No output shows the password. Keeping one release's images,
    the first deploy removes an older image of the registry's app repository from the server
    and leaves what the release names, and the local tags."""
    retired = build_retired_image(ssh_stack.client, f"{registry.address}/prosaas-demo/app:v0")
    from_registry = registry.release_vars()
    good = f"{registry.address}/prosaas-demo/app@{registry.digests['prosaas-demo/app:v2']}"
    if ssh_stack.history():  # the earlier tests left v2, 109 applied: v1 knows no 109
        with ssh_stack.connect(autocommit=True) as conn:
            conn.execute(RESET_109_SQL)
    v1 = ssh_stack.deploy("v1", **registry.release_vars(migrate="v1"))
    assert v1.rc == 0, v1.describe()
    v1_app = f"{registry.address}/prosaas-demo/app@{registry.digests['prosaas-demo/app:v1']}"
    assert {ssh_stack.image(name) for name in APP_SERVICES} == {v1_app}

    first = ssh_stack.deploy("v2", prosaas_image_retention=1, **from_registry)
    assert first.rc == 0, first.describe()
    assert {ssh_stack.image(name) for name in APP_SERVICES} == {good}
    record = ssh_stack.history()[-1]
    assert record["status"] == "succeeded" and set(record["images"].values()) == {good}, record
    assert record["migrate_image"].startswith(f"{registry.address}/prosaas-demo/migrate@sha256:")
    with pytest.raises(docker.errors.ImageNotFound):
        ssh_stack.client.images.get(retired)
    assert registry_digests(ssh_stack.client, registry.address) == {good, record["migrate_image"]}
    assert ssh_stack.client.images.get("prosaas-demo/app:v1")  # its parent, under a local tag

    with repushed(registry, unhealthy_app_image, "prosaas-demo/app:v2") as bad:
        moved = f"{registry.address}/prosaas-demo/app@{bad}"
        checked = ssh_stack.play("deploy.yml", "v2", "--check", **from_registry)
        assert checked.rc == 0, checked.describe()
        plan = checked.plan()
        for name in APP_SERVICES:
            assert f"{name}: runs {good}, would run {moved}" in plan, "\n".join(plan)
        assert {ssh_stack.image(name) for name in APP_SERVICES} == {good}

        again = ssh_stack.deploy("v2", services_wait_timeout=10, **from_registry)
        assert again.rc != 0, again.describe()
        assert f"rolled back to release {record['id']} (healthy)" in again.failure, again.describe()
        failed = ssh_stack.history()[-1]
        assert set(failed["images"].values()) == {moved}
        assert {ssh_stack.image(name) for name in APP_SERVICES} == {good}

        started = ssh_stack.play("playbooks/start.yml", "v2", **from_registry)
        assert started.rc == 0, started.describe()
        assert started.stats["changed"] == 0, started.describe()
        assert {ssh_stack.image(name) for name in APP_SERVICES} == {good}
        assert {ssh_stack.health(name) for name in APP_SERVICES} == {"healthy"}

    for run in (v1, first, checked, again, started):
        assert registry.password not in run.output
    assert registry.password not in json.dumps(ssh_stack.reports())
