"""playbooks/release.yml against this machine's engine and the session's registry
(tests/registry.py): a release of v1 builds the app, migrate, proxy and redis images, pushes
them under the temp inventory's names and prints the digests the registry then serves; a
second release of v1 is refused on one line before anything is pushed; with
prosaas_release_move_tags it moves the tags. The registry's password lives only in the temp
inventory's vault, and is found in nothing the runs print or leave behind. The demo builds
come from the engine's layer cache (the same contexts and BASE_IMAGE as the session's demo
images)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import docker
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.conftest import ANSIBLE_ENV, ROOT, host_stats, playbook_args
from tests.registry import MANIFEST_TYPES, Registry

PLAYBOOK = "playbooks/release.yml"
VAULT_ID = "release-test"
VAULT_PASSWORD = f"vault-{uuid.uuid4().hex}"
SERVER = "release-server.invalid"  # the inventory's one server, which a release never contacts
# `<image>:<tag> sha256:...`, one line each, as the play prints them.
DIGEST_LINE = re.compile(r"^\s*(\S+:\S+) (sha256:[0-9a-f]{64})\b", re.MULTILINE)


@dataclass
class Release:
    """One run of the release playbook: its exit code, what it printed and failed with."""

    rc: int
    stdout: str
    failures: list[str]
    stats: dict[str, int]
    hosts: set[str]

    @property
    def digests(self) -> dict[str, str]:
        """The `<image>:<tag> sha256:...` lines it printed."""
        return dict(DIGEST_LINE.findall(self.stdout))


@dataclass
class ReleaseInventory:
    """A temp inventory whose images are named under the session's registry, and the home
    and client configuration folder the runs get."""

    folder: Path
    registry: Registry
    repository: str  # <registry>/release-<random>: this module's images only
    base_image: str
    tmp_path: Path

    @property
    def home(self) -> Path:
        return self.tmp_path / "home"

    @property
    def docker_config(self) -> Path:
        return self.tmp_path / "docker-config"

    def references(self, version: str) -> dict[str, str]:
        return {
            "app": f"{self.repository}/app:{version}",
            "migrate": f"{self.repository}/migrate:{version}",
            "proxy": f"{self.repository}/proxy:1",
            "redis": f"{self.repository}/redis:7",
        }

    def served(self, version: str) -> dict[str, str | None]:
        """The digest the registry serves for each image of VERSION (None: no such tag)."""
        served: dict[str, str | None] = {}
        for reference in self.references(version).values():
            path = reference.removeprefix(f"{self.registry.loopback}/")
            status, headers, _ = self.registry.get(
                f"/v2/{path.replace(':', '/manifests/')}", method="HEAD", accept=MANIFEST_TYPES
            )
            served[reference] = headers["Docker-Content-Digest"] if status == 200 else None
        return served

    def run(self, extravars: dict, *flags: str) -> Release:
        """The release playbook on this inventory, with the vault password from the
        environment (scripts/vault-password.sh) as CI passes it."""
        args = playbook_args(PLAYBOOK, self.tmp_path, extravars)
        args["inventory"] = str(self.folder)
        args["envvars"] = {
            **ANSIBLE_ENV,
            "ANSIBLE_NOCOLOR": "1",  # the lines as a log or a terminal without colours has them
            "HOME": str(self.home),
            "DOCKER_CONFIG": str(self.docker_config),
            "BASE_IMAGE": self.base_image,
            "PROSAAS_VAULT_PASSWORD": VAULT_PASSWORD,
            "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "scripts" / "vault-password.sh"),
        }
        runner = ansible_runner.run(**args, cmdline=" ".join(flags) or None)
        failures = [
            str(event["event_data"]["res"].get("msg", ""))
            for event in runner.events
            if event.get("event") == "runner_on_failed"
        ]
        hosts = {host for counts in (runner.stats or {}).values() for host in counts or {}}
        return Release(runner.rc, runner.stdout.read(), failures, host_stats(runner), hosts)


def encrypted(settings: dict) -> bytes:
    """SETTINGS as an ansible-vault file of VAULT_ID, encrypted with VAULT_PASSWORD."""
    secret = VaultSecret(VAULT_PASSWORD.encode())
    vault = VaultLib([(VAULT_ID, secret)])
    return vault.encrypt(yaml.safe_dump(settings), secret=secret, vault_id=VAULT_ID)


def write_inventory(folder: Path, registry: Registry, repository: str) -> None:
    """The shared settings, the images named under REPOSITORY of the registry, one server,
    and a vault holding the registry's password."""
    settings = folder / "group_vars" / "all"
    settings.mkdir(parents=True)
    (settings / "00-common.yml").symlink_to(ROOT / "inventories" / "common.yml")
    own = {
        "prosaas_app_version": "v1",
        "prosaas_app_image": f"{repository}/app",
        "prosaas_migrate_image": f"{repository}/migrate:{{{{ prosaas_app_version }}}}",
        "prosaas_proxy_image": f"{repository}/proxy:1",
        "prosaas_infra_services": [{"name": "redis", "image": f"{repository}/redis:7"}],
        "prosaas_registry": {"host": registry.loopback, "user": registry.user},
        "prosaas_database_host": "db.invalid",
    }
    (settings / "main.yml").write_text(yaml.safe_dump(own))
    vault = {
        "vault_prosaas_registry_password": registry.password,
        "vault_prosaas_database_password": "unused",
    }
    (settings / "vault.yml").write_bytes(encrypted(vault))
    hosts = {"prosaas": {"hosts": {SERVER: {"ansible_user": "deploy"}}}}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))


@pytest.fixture(scope="module")
def inventory(
    registry: Registry, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReleaseInventory]:
    tmp_path = tmp_path_factory.mktemp("release")
    repository = f"{registry.loopback}/release-{uuid.uuid4().hex[:6]}"
    write_inventory(tmp_path / "inventory", registry, repository)
    made = ReleaseInventory(tmp_path / "inventory", registry, repository, base_image, tmp_path)
    made.home.mkdir()
    made.docker_config.mkdir()
    yield made


@pytest.fixture(scope="module")
def first_release(inventory: ReleaseInventory) -> Release:
    """v1 released once; the registry had none of its tags."""
    assert set(inventory.served("v1").values()) == {None}
    return inventory.run({"prosaas_app_version": "v1"})


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


def test_a_release_pushes_each_image_and_prints_the_digest_the_registry_serves(
    inventory: ReleaseInventory, first_release: Release
) -> None:
    assert first_release.rc == 0, first_release.stdout[-4000:]
    printed = first_release.digests
    assert sorted(printed) == sorted(inventory.references("v1").values())
    assert printed == inventory.served("v1")
    assert first_release.stats["changed"] == 1
    # On this machine only: the inventory's server is never contacted.
    assert first_release.hosts == {"localhost"}


def test_a_release_again_is_refused_on_one_line_and_pushes_nothing(
    inventory: ReleaseInventory, first_release: Release
) -> None:
    assert first_release.rc == 0
    before = inventory.served("v1")

    again = inventory.run({"prosaas_app_version": "v1"})

    assert again.rc != 0
    assert len(again.failures) == 1
    message = again.failures[0]
    assert "\n" not in message
    app, migrate = inventory.references("v1")["app"], inventory.references("v1")["migrate"]
    assert f"the registry already has {app} (prosaas_app_image) at {before[app]}" in message
    assert f"{migrate} (prosaas_migrate_image) at {before[migrate]}" in message
    assert message.endswith("or move the tag with -e prosaas_release_move_tags=true")
    assert again.digests == {}
    assert inventory.served("v1") == before


def test_move_tags_pushes_over_the_release_tags_and_keeps_the_infra_images(
    inventory: ReleaseInventory, first_release: Release
) -> None:
    assert first_release.rc == 0
    before = inventory.served("v1")
    references = inventory.references("v1")

    moved = inventory.run(
        {
            "prosaas_app_version": "v1",
            "prosaas_release_move_tags": True,
            # Another app build (the demo's v2 code) under the same tag: the tag moves.
            "prosaas_release_build_args": {"DEMO_VERSION": "2"},
        }
    )

    assert moved.rc == 0, moved.stdout[-4000:]
    assert moved.digests == inventory.served("v1")
    assert moved.digests[references["app"]] != before[references["app"]]
    assert f"{references['app']} {moved.digests[references['app']]} (moved from " in moved.stdout
    assert f"{references['migrate']} {before[references['migrate']]} (unchanged)" in moved.stdout
    for infra in ("proxy", "redis"):
        kept = f"{references[infra]} {before[references[infra]]} (kept, already in the registry)"
        assert kept in moved.stdout


def test_check_mode_says_what_a_release_would_push_and_pushes_nothing(
    inventory: ReleaseInventory, first_release: Release
) -> None:
    assert first_release.rc == 0
    check = inventory.run({"prosaas_app_version": "v2"}, "--check")

    assert check.rc == 0, check.stdout[-4000:]
    assert f"{inventory.references('v2')['app']} would be built and pushed" in check.stdout
    assert inventory.served("v2")[inventory.references("v2")["app"]] is None


def test_the_registry_password_is_nowhere_the_release_printed_or_left(
    inventory: ReleaseInventory, first_release: Release
) -> None:
    password = inventory.registry.password
    assert first_release.rc == 0
    assert password not in first_release.stdout
    # The runs' events, stdout and settings, the home and the client configuration folder
    # they got, the inventory (its vault is ciphertext).
    assert files_holding(inventory.tmp_path, password) == []
    assert list(inventory.docker_config.iterdir()) == []
    assert not (inventory.home / ".docker").exists()


@pytest.mark.parametrize(
    ("case", "extravars", "expected"),
    [
        ("empty version", {"prosaas_app_version": ""}, "prosaas_app_version is empty"),
        (
            "no registry",
            {"prosaas_app_version": "v9", "prosaas_registry": {}},
            "the inventory names no registry: set prosaas_registry",
        ),
        (
            "unreadable context",
            {"prosaas_app_version": "v9", "prosaas_release_app_context": "/nonexistent/app"},
            "build context /nonexistent/app of ",
        ),
    ],
)
def test_bad_input_fails_on_one_line_before_anything_is_built(
    inventory: ReleaseInventory,
    docker_engine: docker.DockerClient,
    case: str,
    extravars: dict,
    expected: str,
) -> None:
    run = inventory.run(extravars)

    assert run.rc != 0, case
    assert len(run.failures) == 1, run.stdout[-4000:]
    assert expected in run.failures[0]
    assert "\n" not in run.failures[0]
    assert docker_engine.images.list(name=f"{inventory.repository}/app:v9") == []
