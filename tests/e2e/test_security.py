"""Secrets stay secret: a v1 -> v2 deploy at -vvv with a known database password, v2 pulled
from the test registry with its password, then a search of everything it produced for both;
containers not root; state owner-only."""

from __future__ import annotations

import stat
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import docker
import pytest
import yaml

from tests.conftest import ROOT, playbook_args
from tests.e2e.conftest import Stack
from tests.e2e.reliability import RECORD
from tests.registry import Registry

PASSWORD = f"Sekr3t-{uuid.uuid4().hex[:12]}"
ROOT_USERS = ("", "0", "root", "0:0")


@dataclass
class Deployed:
    stack: Stack
    outputs: dict[str, str]  # what each -vvv run printed
    artifacts: list[Path]  # ansible-runner's files of those runs (events, stdout)
    secrets: tuple[str, ...]  # the database's and the registry's passwords


@pytest.fixture(scope="module")
def deployed(module_stack: Stack, registry: Registry) -> Deployed:
    """v1 then v2 (from the registry) on a fresh stack whose database password is PASSWORD,
    both at -vvv."""
    stack = module_stack
    outputs, artifacts = {}, []
    for version, extra in (("v1", {}), ("v2", registry.release_vars(registry.loopback))):
        extravars = stack.vars_for(version, prosaas_database_password=PASSWORD, **extra)
        args = playbook_args("deploy.yml", stack.tmp_path, extravars)
        runner = ansible_runner.run(**args, verbosity=3)
        assert runner.rc == 0, runner.stdout.read()[-4000:]
        outputs[version] = runner.stdout.read()
        # What the run produced (events, stdout); env/ holds the extra vars the test passed in.
        produced = Path(args["private_data_dir"]) / "artifacts"
        artifacts += [path for path in produced.rglob("*") if path.is_file()]
    return Deployed(stack, outputs, artifacts, (PASSWORD, registry.password))


def places_with_secret(texts: dict[str, str], secrets: tuple[str, ...]) -> list[str]:
    forms = {form for secret in secrets for form in (secret, urllib.parse.quote(secret, safe=""))}
    return [where for where, text in texts.items() if any(form in text for form in forms)]


def stack_containers(stack: Stack) -> list:
    return stack.client.containers.list(all=True, filters={"name": f"^{stack.prefix}"})


def files_under(folder: Path) -> dict[str, str]:
    return {
        str(path): path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file()
    }


def test_the_password_appears_nowhere_the_deploy_wrote(deployed: Deployed) -> None:
    stack = deployed.stack
    texts: dict[str, str] = {
        f"play output at -vvv ({v})": out for v, out in deployed.outputs.items()
    }
    texts |= {str(path): path.read_text(errors="replace") for path in deployed.artifacts}
    texts |= files_under(Path(stack.extravars["prosaas_reports_dir"]))
    texts |= files_under(stack.state_dir)
    for container in stack_containers(stack):
        texts[f"labels of {container.name}"] = str(container.labels)
        texts[f"log of {container.name}"] = container.logs().decode(errors="replace")

    found = places_with_secret(texts, deployed.secrets)

    assert len(texts) > 20, sorted(texts)  # outputs, artifacts, reports, state, containers
    assert found == [], f"the password was found in: {found}"
    RECORD.secrets.update(searched=len(texts), found=len(found))


def test_the_migrator_log_shows_the_dsn_redacted(deployed: Deployed) -> None:
    reports = deployed.stack.reports()
    v2 = next(report for name, report in reports.items() if name.endswith("-v2"))
    log = v2["migrate"]["log"]

    assert "postgresql://prosaas:***@postgres:5432/prosaas" in log, log
    assert PASSWORD not in log


def test_every_container_runs_as_a_non_root_user(deployed: Deployed) -> None:
    containers = stack_containers(deployed.stack)
    users = {container.name: container.attrs["Config"]["User"] for container in containers}

    assert len(users) == 6, users  # postgres, redis, proxy and the three app services
    assert [name for name, user in users.items() if user in ROOT_USERS] == [], users
    migrate_user = deployed.stack.client.images.get("prosaas-demo/migrate:v2").attrs["Config"]
    assert migrate_user["User"] not in ROOT_USERS


def test_the_migrate_container_can_publish_no_port(docker_engine: docker.DockerClient) -> None:
    image = docker_engine.images.get("prosaas-demo/migrate:v2").attrs["Config"]
    source = (ROOT / "library" / "docker_oneshot.py").read_text()
    documentation = yaml.safe_load(source.split('DOCUMENTATION = r"""')[1].split('"""')[0])

    assert not image.get("ExposedPorts"), image.get("ExposedPorts")
    assert "ports" not in documentation["options"]  # docker_oneshot has no way to publish one


def test_the_state_dir_and_its_files_are_for_their_owner_only(deployed: Deployed) -> None:
    state_dir = deployed.stack.state_dir
    paths = [state_dir, *state_dir.rglob("*")]

    open_to_others = {
        str(path): oct(stat.S_IMODE(path.stat().st_mode))
        for path in paths
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }

    assert len(paths) >= 2, paths  # the folder and releases.json at least
    assert open_to_others == {}, open_to_others
