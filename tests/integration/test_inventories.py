"""Inventories: staging/production secrets only in vault, resolved the way CI passes them."""

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

EXAMPLE_VAULT_PASSWORD = "prosaas-example-vault"  # noqa: S105 - the documented example key
REMOTE = ("staging", "production")


def ansible_inventory(name: str, vault_password: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    env.pop("PROSAAS_VAULT_PASSWORD", None)
    if vault_password is not None:
        env["PROSAAS_VAULT_PASSWORD"] = vault_password
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(ROOT / "scripts" / "vault-password.sh")
    return subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / "inventories" / name), "--list"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip


def resolved(name: str, expression: str) -> object:
    """The value of a Jinja expression on the inventory's first host, vault decrypted."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PROSAAS_VAULT_PASSWORD": EXAMPLE_VAULT_PASSWORD,
        "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "scripts" / "vault-password.sh"),
    }
    result = subprocess.run(
        ["ansible", "-i", str(ROOT / "inventories" / name), "all", "-o",
         "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {expression} | to_json }}}}"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first_host = result.stdout.splitlines()[0]
    return json.loads(json.loads(first_host.split("=>", 1)[1])["msg"])


@pytest.mark.parametrize("name", REMOTE)
def test_remote_vault_files_are_encrypted_with_their_vault_id(name: str) -> None:
    vault = ROOT / "inventories" / name / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith(f"$ANSIBLE_VAULT;1.2;AES256;{name}\n")


@pytest.mark.parametrize("name", REMOTE)
def test_remote_plain_files_hold_no_password(name: str) -> None:
    for path in (ROOT / "inventories" / name).rglob("*.yml"):
        if path.name == "vault.yml":
            continue
        for line in path.read_text().splitlines():
            if "password:" in line:
                assert "{{ vault_" in line, f"{path}: {line.strip()}"


@pytest.mark.parametrize("name", REMOTE)
def test_remote_inventory_needs_the_vault_password(name: str) -> None:
    result = ansible_inventory(name, vault_password=None)
    assert result.returncode != 0
    assert "vault" in result.stderr.lower()


@pytest.mark.parametrize("name", REMOTE)
def test_remote_secrets_resolve_with_the_password_from_the_environment(name: str) -> None:
    assert ansible_inventory(name, EXAMPLE_VAULT_PASSWORD).returncode == 0
    assert resolved(name, "prosaas_database_password") == f"example-{name}-password-replace-me"


@pytest.mark.parametrize("name", ("local", *REMOTE))
def test_every_app_service_has_migrations_turned_off(name: str) -> None:
    services = resolved(name, "prosaas_app_services")
    assert [service["name"] for service in services] == ["prosaas-api", "prosaas-calls", "worker"]
    for service in services:
        assert service["env"]["RUN_MIGRATIONS_ON_START"] == "0", service["name"]
        assert service["env"]["RUN_MIGRATIONS"] == "0", service["name"]


def test_local_is_the_default_inventory() -> None:
    assert "inventory = inventories/local" in (ROOT / "ansible.cfg").read_text()
    assert (ROOT / "inventories" / "local" / "hosts.yml").exists()
