"""Fault injection into the stop flow: a v1 -> v2 deploy broken at a named phase, one row
per fault, each checked as tests/e2e/faults.py says (test_online.py has the online rows).

The rows of FAULTS share one stack; those of ENGINE_FAULTS and REGISTRY_FAULTS another,
alone on the second engine, which they restart.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
import yaml

from tests.conftest import ROOT, remove_stack
from tests.e2e.conftest import (
    RESET_109_SQL,
    DeployRun,
    Failpoints,
    HeldRun,
    Hold,
    Stack,
    deploy_held_at,
    met_a_holder,
    stack_on,
    wait_until,
)
from tests.e2e.faults import (
    Fault,
    FaultStack,
    at_v1,
    check_fault,
    fault_id,
    killed_at,
    migrate_running,
    seeded_v1,
    while_holding_call_log,
)
from tests.e2e.reliability import RECORD
from tests.engines import Engine
from tests.pg_cluster import free_loopback_port
from tests.registry import Registry, push_images
from tests.relay import Relay

# --- injection --------------------------------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def faults(
    module_stack: Stack, docker_engine: docker.DockerClient, unhealthy_app_image: str
) -> FaultStack:
    unhealthy_version = unhealthy_app_image.split(":")[1]
    return FaultStack(seeded_v1(module_stack), docker_engine, unhealthy_version=unhealthy_version)


@pytest.fixture(scope="module")
def engine_faults(second_engine: Engine, tmp_path_factory) -> Iterator[FaultStack]:
    """A stack alone on the second engine, which its rows restart."""
    stack = stack_on(second_engine, tmp_path_factory.mktemp("engine-stack"))
    try:
        yield FaultStack(seeded_v1(stack), stack.client, second_engine)
    finally:
        remove_stack(stack.client, stack.prefix)


# --- rows ------------------------------------------------------------------------------


def db_unreachable_in_preflight(s: FaultStack) -> DeployRun:
    closed = free_loopback_port()
    url = f"postgresql://prosaas:{{{{ prosaas_database_password }}}}@127.0.0.1:{closed}/prosaas"
    return s.stack.deploy("v2", prosaas_database_url_from_deployer=url)


def db_unreachable_in_migrate(s: FaultStack) -> DeployRun:
    """postgres off the stack's network from the migrate phase's start until the rescue."""
    network = s.client.networks.get(s.stack.extravars["prosaas_network"])
    postgres = s.container("postgres")
    return deploy_held_at(
        s.stack,
        [
            Hold("phase-migrate", lambda: network.disconnect(postgres)),
            Hold("rescue", lambda: network.connect(postgres, aliases=["postgres"])),
        ],
    )


def db_unreachable_in_verify(s: FaultStack) -> DeployRun:
    # The deploy host reaches the database twice: preflight's lock report, then verify.
    relay = Relay(s.stack.extravars["prosaas_database_port_from_deployer"], max_connections=1)
    url = f"postgresql://prosaas:{{{{ prosaas_database_password }}}}@{relay.address}/prosaas"
    try:
        return s.stack.deploy("v2", prosaas_database_url_from_deployer=url)
    finally:
        relay.close()


def migrate_killed(s: FaultStack) -> DeployRun:
    """The migrate container SIGKILLed once it waits for the lock the test holds."""

    def kill() -> None:
        migrate = s.client.containers.get(f"{s.stack.prefix}migrate")
        wait_until(lambda: met_a_holder(migrate.logs().decode()), 60, "the migrator's lock wait")
        migrate.kill(signal="SIGKILL")

    return while_holding_call_log(s, kill)


def migrate_timeout(s: FaultStack) -> DeployRun:
    return while_holding_call_log(s, migrate_timeout=4)


def image_missing(s: FaultStack) -> DeployRun:
    return s.stack.deploy("v2", prosaas_app_pins={"worker": "v2-missing"})


def service_never_healthy(s: FaultStack) -> DeployRun:
    # app:v2 with its health forced to fail (tests.e2e.conftest.unhealthy_app_image).
    return s.stack.deploy(
        s.unhealthy_version,
        prosaas_migrate_image="prosaas-demo/migrate:v2",
        services_wait_timeout=15,
    )


def local_infra_services() -> list[dict]:
    inventory = ROOT / "inventories" / "local" / "group_vars" / "all" / "main.yml"
    return yaml.safe_load(inventory.read_text())["prosaas_infra_services"]


def redis_never_healthy(s: FaultStack) -> DeployRun:
    infra = local_infra_services()
    for service in infra:
        if service["name"] == "redis":
            service["healthcheck"] = {"test": ["CMD", "false"], "interval": 0.5, "retries": 1}
    return s.stack.deploy("v2", prosaas_infra_services=infra, services_wait_timeout=10)


def redeploy_v1_with_the_inventory(s: FaultStack, _: DeployRun) -> None:
    with s.stack.connect(autocommit=True) as conn:
        conn.execute(RESET_109_SQL)  # so the v1 migrate image finds the schema it knows
    s.stack.deploy_ok("v1")


def sigint_in_migrate(s: FaultStack) -> DeployRun:
    return killed_at(s, migrate_running(s), signal.SIGINT)


def sigkill_in_start(s: FaultStack) -> DeployRun:
    return killed_at(s, "phase-start", signal.SIGKILL)


def engine_restarted_in(phase: str) -> Callable[[FaultStack], DeployRun]:
    """The engine stops as the deploy enters PHASE, before the phase's first engine call,
    and starts again once the deploy has ended: the phase and the rollback find it gone."""

    def inject(s: FaultStack) -> DeployRun:
        engine = s.engine
        assert engine is not None
        try:
            return deploy_held_at(s.stack, [Hold(f"phase-{phase}", engine.stop)])
        finally:
            engine.start()

    return inject


def rollback_by_the_runbook(s: FaultStack, run: DeployRun) -> None:
    """RUNBOOK.md "Rollback failed", as written: the line says the flow's rollback failed
    too; once the engine answers, rollback.yml."""
    assert run.failure.endswith('see RUNBOOK.md "Rollback failed"'), run.failure
    rolled_back = s.stack.play("playbooks/rollback.yml", "v2")
    assert rolled_back.rc == 0, rolled_back.describe()


def rollback_breaking_the_stale_lock(s: FaultStack, _: DeployRun) -> None:
    run = s.stack.play("playbooks/rollback.yml", "v2", prosaas_break_stale_lock=True)
    assert run.rc == 0, run.describe()


def two_deploys(s: FaultStack) -> DeployRun:
    """A second deploy while the first is held just after it took the lock."""
    first = HeldRun.start(
        s.stack.deploy_args("v2"), Failpoints.under(s.stack.tmp_path), [("lock-taken", "")]
    )
    try:
        first.wait_at("lock-taken")
        return s.stack.deploy("v2")
    finally:
        first.release("lock-taken")
        done = first.result()
        assert done.rc == 0, done.describe()  # the first deploy is not disturbed


def back_to_v1_after_the_first_deploy(s: FaultStack, _: DeployRun) -> None:
    """The refused deploy changed nothing; the first one deployed v2. Put v1 back."""
    s.stack.assert_app_healthy_on("v2")
    redeploy_v1_with_the_inventory(s, _)


def stale_lock(s: FaultStack) -> DeployRun:
    lock = {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": dead_pid(),
        "release": "20261124T000000Z-v2",
        "started_at": "2026-11-24T00:00:00Z",
    }
    s.stack.lock_path.write_text(json.dumps(lock))
    return s.stack.deploy("v2")


def deploy_breaking_the_stale_lock(s: FaultStack, _: DeployRun) -> None:
    s.stack.assert_app_healthy_on("v1")  # refused before anything was touched
    s.stack.deploy_ok("v2", prosaas_break_stale_lock=True)
    redeploy_v1_with_the_inventory(s, _)


def corrupted_history(s: FaultStack) -> DeployRun:
    (s.stack.state_dir / "releases.json").write_text('{"releases": [{"id": ')
    return s.stack.deploy("v2")


def restore_history_from_backup(s: FaultStack, _: DeployRun) -> None:
    """RUNBOOK.md "Corrupted release history", as written: check the backup, copy it back."""
    history = s.stack.state_dir / "releases.json"
    backup = s.stack.state_dir / "releases.json.bak"
    subprocess.run(["python3", "-m", "json.tool", str(backup)], check=True, capture_output=True)
    subprocess.run(["cp", str(backup), str(history)], check=True)
    s.stack.assert_app_healthy_on("v1")


def state_dir_not_writable(s: FaultStack) -> DeployRun:
    blocker = s.stack.tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory's parent should be\n")
    return s.stack.deploy("v2", prosaas_state_dir=str(blocker / "state"))


FAULTS = [
    Fault("database unreachable", "preflight", ("preflight", "connect"),
          db_unreachable_in_preflight, touched=False),
    Fault("database unreachable", "migrate", ("migrate",), db_unreachable_in_migrate),
    Fault("database unreachable", "verify", ("verify", "connect"), db_unreachable_in_verify),
    Fault("migrate container killed (SIGKILL)", "migrate", ("migrate", "137"), migrate_killed),
    Fault("migrate exceeds its timeout", "migrate", ("migrate", "timed out after 4 s"),
          migrate_timeout),
    Fault("image missing for one service", "validate",
          ("images not found on the engine", "prosaas-demo/app:v2-missing"),
          image_missing, recorded=False, touched=False),
    Fault("a service never healthy", "start", ("start", "not healthy"), service_never_healthy),
    Fault("redis never healthy", "infra", ("infra", "redis", "not healthy"), redis_never_healthy,
          runbook="An infra service never turns healthy", recover=redeploy_v1_with_the_inventory),
    Fault("SIGINT to ansible-playbook", "migrate", ("stale deploy lock", "not running"),
          sigint_in_migrate,
          runbook="Deploy killed mid-way", recover=rollback_breaking_the_stale_lock),
    Fault("SIGKILL to ansible-playbook", "start", ("stale deploy lock", "not running"),
          sigkill_in_start,
          runbook="Deploy killed mid-way", recover=rollback_breaking_the_stale_lock),
    # The first deploy goes on and replaces the containers: only the refusal is checked.
    Fault("two deploys at once", "lock", ("another deploy",), two_deploys,
          recorded=False,
          recover=back_to_v1_after_the_first_deploy),
    Fault("a stale lock", "lock", ("stale deploy lock",), stale_lock, recorded=False,
          touched=False, runbook="Stale deploy lock", recover=deploy_breaking_the_stale_lock),
    Fault("corrupted release history", "preflight", ("corrupted", "releases.json"),
          corrupted_history, recorded=False, touched=False, runbook="Corrupted release history",
          recover=restore_history_from_backup),
    Fault("state dir that cannot be written", "validate",
          ("not prepared", "cannot make", "prepare.yml"), state_dir_not_writable,
          recorded=False, touched=False),
]  # fmt: skip


# Run on a stack alone on the second engine (tests.engines), which they restart.
ENGINE_FAULTS = [
    Fault("Docker engine restarted", "stop", ("engine",), engine_restarted_in("stop"),
          runbook="Rollback failed", recover=rollback_by_the_runbook),
    Fault("Docker engine restarted", "start", ("engine",), engine_restarted_in("start"),
          runbook="Rollback failed", recover=rollback_by_the_runbook),
]  # fmt: skip

# --- registry rows: the pull of validate, before the lock -------------------------------

BALLAST_TAG = "v2-ballast"  # app:v2 with a layer of random bytes that only the registry has
BALLAST_BYTES = 48_000_000
PULL_CUT_AFTER_BYTES = 4_000_000  # then the relay stalls and the engine restarts
ENGINE_TMP_SIZE = "8m"  # the engine's download folder, too small for the ballast layer


def registry_vars(
    s: FaultStack, address: str = "", password: str | None = None, **pins: str
) -> dict[str, Any]:
    """A v2 deploy from the test registry at ADDRESS (its loopback address by default), with
    PASSWORD and PINS (service -> tag)."""
    assert s.registry is not None, "a registry row on a stack without the registry"
    address = address or s.registry.loopback
    return {**s.registry.release_vars(address, password=password), "prosaas_app_pins": pins}


PULL_TASK = "Pull the images this host runs, pinning each by its digest"


def pulls_stop_at_the_failed_one(run: DeployRun) -> DeployRun:
    """RUN's host pulled nothing after its failed pull: one pull failed, and each image after
    it (the row has at least one) was skipped, not pulled."""
    outcomes = [
        (
            event["event"].removeprefix("runner_item_on_"),
            event["event_data"]["res"].get("deploy_pull_image"),
        )
        for event in run.events
        if event.get("event", "").startswith("runner_item_on_")
        and event["event_data"].get("task") == PULL_TASK
    ]
    failed = [n for n, (outcome, _) in enumerate(outcomes) if outcome == "failed"]
    assert len(failed) == 1, outcomes
    after = {outcome for outcome, _ in outcomes[failed[0] + 1 :]}
    assert after == {"skipped"}, outcomes
    return run


def registry_unreachable(s: FaultStack) -> DeployRun:
    run = s.stack.deploy("v2", **registry_vars(s, f"127.0.0.1:{free_loopback_port()}"))
    return pulls_stop_at_the_failed_one(run)


def registry_credentials_refused(s: FaultStack) -> DeployRun:
    assert s.registry is not None
    right = s.registry.password
    wrong = f"not-{right}"
    run = s.stack.deploy("v2", **registry_vars(s, password=wrong))
    assert right not in run.output and wrong not in run.output, "a password in the output"
    return run


def tag_missing_in_registry(s: FaultStack) -> DeployRun:
    run = s.stack.deploy("v2", **registry_vars(s, worker="v2-never-pushed"))
    return pulls_stop_at_the_failed_one(run)


def pull_cut_off_by_engine_restart(s: FaultStack) -> DeployRun:
    """The registry is reached through a relay that stalls once the pull is well under way
    and then restarts the engine, so the engine goes down in the middle of the pull."""
    engine = s.engine
    assert engine is not None and s.registry is not None
    relay = Relay(
        s.registry.port,
        stall_after=PULL_CUT_AFTER_BYTES,
        on_stall=functools.partial(engine.restart, down_for=2.0),
    )
    try:
        run = s.stack.deploy("v2", **registry_vars(s, relay.address, worker=BALLAST_TAG))
    finally:
        relay.close()
        if relay.stall_thread is not None:
            relay.stall_thread.join(timeout=180)
    assert relay.stall_thread is not None, f"the pull never got under way: {run.describe()}"
    return run


def no_disk_space_for_the_pull(s: FaultStack) -> DeployRun:
    """The engine's download folder on a tmpfs too small for the ballast layer."""
    assert s.engine is not None
    downloads = s.engine.root / "data" / "tmp"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={ENGINE_TMP_SIZE}", "tmpfs", str(downloads)],
        check=True,
    )
    try:
        return s.stack.deploy("v2", **registry_vars(s, worker=BALLAST_TAG))
    finally:
        subprocess.run(["umount", "--lazy", str(downloads)], check=True)


def healthy_again_after_the_engine_restart(s: FaultStack, _: DeployRun) -> bool:
    """The engine's restart stopped the stack; its restart policy brings the same containers
    back. Nothing of the deploy's to undo."""
    wait_until(s.runs_v1, 120, "v1 healthy again after the engine's restart")
    return False


# Nothing is stopped and nothing recorded: each fails in validate, before the lock.
REGISTRY_FAULTS = [
    Fault("registry unreachable", "validate", ("unreachable from the host",),
          registry_unreachable, recorded=False, touched=False),
    Fault("registry credentials refused", "validate",
          ("refused the credentials", "vault_prosaas_registry_password"),
          registry_credentials_refused, recorded=False, touched=False),
    Fault("tag missing in the registry", "validate",
          ("prosaas-demo/app:v2-never-pushed is not in the registry",),
          tag_missing_in_registry, recorded=False, touched=False),
    Fault("pull cut off (Docker engine restarted)", "validate", ("restarted mid-pull",),
          pull_cut_off_by_engine_restart, recorded=False, touched=False,
          recover=healthy_again_after_the_engine_restart),
    Fault("no disk space for the pull", "validate", ("no space left",),
          no_disk_space_for_the_pull, recorded=False, touched=False),
]  # fmt: skip

RECORD.fault_suites["test_faults"] = len(FAULTS) + len(ENGINE_FAULTS) + len(REGISTRY_FAULTS)


@pytest.fixture
def from_v1(faults: FaultStack) -> Iterator[FaultStack]:
    yield from at_v1(faults)


@pytest.fixture
def engine_from_v1(engine_faults: FaultStack) -> Iterator[FaultStack]:
    yield from at_v1(engine_faults)


@pytest.fixture(scope="module")
def ballast_in_registry(
    registry: Registry, build_image: Callable[..., str], tmp_path_factory
) -> str:
    """app:v2 with a layer of random bytes, pushed to the registry only: no engine of the
    rows has it, so pulling it transfers that layer."""
    folder = tmp_path_factory.mktemp("ballast")
    (folder / "Dockerfile").write_text(
        "FROM prosaas-demo/app:v2\nUSER root\n"
        f"RUN head -c {BALLAST_BYTES} /dev/urandom > /ballast\n"
    )
    image = build_image(folder, f"prosaas-demo/app:{BALLAST_TAG}")
    push_images(registry, [f"{image}=prosaas-demo/app:{BALLAST_TAG}"])
    return image


@pytest.fixture
def registry_from_v1(
    engine_faults: FaultStack, registry: Registry, ballast_in_registry: str
) -> Iterator[FaultStack]:
    """The engine stack at v1, pulling from the registry; the ballast is on no engine."""
    engine_faults.registry = registry
    for image in engine_faults.client.images.list():
        for tag in image.tags:
            if tag.endswith(f"/prosaas-demo/app:{BALLAST_TAG}"):
                engine_faults.client.images.remove(tag)
    engine_faults.reset_to_v1()
    yield engine_faults
    engine_faults.registry = None
    with contextlib.suppress(FileNotFoundError):
        engine_faults.stack.lock_path.unlink()


@pytest.mark.parametrize("fault", FAULTS, ids=fault_id)
def test_fault(from_v1: FaultStack, fault: Fault) -> None:
    check_fault(from_v1, fault)


@pytest.mark.parametrize("fault", ENGINE_FAULTS, ids=fault_id)
def test_engine_fault(engine_from_v1: FaultStack, fault: Fault) -> None:
    check_fault(engine_from_v1, fault)


@pytest.mark.parametrize("fault", REGISTRY_FAULTS, ids=fault_id)
def test_registry_fault(registry_from_v1: FaultStack, fault: Fault) -> None:
    check_fault(registry_from_v1, fault)
