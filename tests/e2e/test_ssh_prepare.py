"""playbooks/prepare.yml turns a bare Debian server, reached over SSH as deploy, into a deploy
target; the deploy's host check (roles/preflight/tasks/host.yml) refuses the host before and
lets it through after.

The module starts a test host of its own (the session's must stay bare) and walks it once:
the deploy on the bare host, prepare twice (the second run must change nothing), then what
the prepared host offers. The libraries come from the control node's wheel folder, which
scripts/setup.sh fills, so neither the host nor the tests reach a package index.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import docker
import pytest
import yaml

from tests.conftest import ROOT, host_stats, playbook_args, run_module
from tests.e2e.conftest import DeployRun
from tests.ssh_hosts import HostError, SessionKeys, SshHost, host_image, remove_host, start_host

WHEELS = ROOT / ".cache" / "wheels"
VENV_PYTHON = "/opt/prosaas-deploy/venv/bin/python"
STATE_DIR = "/var/lib/prosaas-deploy"
HOST_CHECK_TASK = "Check that the host is prepared for a deploy"
IMAGE_CHECK_TASK = "Check that the engine answers and every image of the release exists"


@dataclass
class TestHost:
    """The module's own host and an inventory for it over inventories/common.yml."""

    __test__ = False  # not a test class

    host: SshHost
    inventory: Path
    base: Path

    def play(self, playbook: str, *flags: str) -> ansible_runner.Runner:
        args = playbook_args(playbook, self.base)
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


def write_inventory(folder: Path, host: SshHost, keys: SessionKeys) -> Path:
    """The shared settings (inventories/common.yml), the demo release, and HOST."""
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
        "prosaas_python_wheels_dir": str(WHEELS),
    }
    (settings / "main.yml").write_text(yaml.safe_dump(own))
    hosts = {"prosaas": {"hosts": {host.name: host.inventory_vars(keys)}}}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return folder


@pytest.fixture(scope="module")
def test_host(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestHost]:
    """A fresh bare host for this module, removed after it."""
    if not list(WHEELS.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELS}: scripts/test.sh downloads them (ensure_host_wheels)")
    name = f"pdprep-{uuid.uuid4().hex[:6]}"
    try:
        host = start_host(docker_engine, host_image(docker_engine, base_image), name, ssh_keys)
    except HostError as exc:
        pytest.fail(str(exc))
    try:
        base = tmp_path_factory.mktemp("prepare")
        yield TestHost(host, write_inventory(base / "inventory", host, ssh_keys), base)
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
