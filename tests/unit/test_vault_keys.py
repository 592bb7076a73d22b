"""Secrets that add up: every vault_* key an inventory reads is in its example vault.

An inventory reads the settings of its group_vars and host_vars files and of hosts.yml, and
of inventories/common.yml when it links it (group_vars/all/00-common.yml). Its vault is each
ansible-vault file among them (decrypted here with the example password, in-process) and the
plain secrets.yml of the local demo. A key read but missing from the vault would end a
deploy with an undefined variable, or (behind a default) quietly run without the secret."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted

from tests.conftest import ROOT

INVENTORIES_DIR = ROOT / "inventories"
COMMON = "common.yml"
EXAMPLE_VAULT_PASSWORD = "prosaas-example-vault"  # noqa: S105 - the documented example key
PLAIN_VAULT = "secrets.yml"  # the local demo's stand-in for a vault
VAULT_KEY = re.compile(r"\bvault_\w+")


def inventories(folder: Path) -> list[Path]:
    return sorted(path.parent for path in folder.glob("*/hosts.yml"))


def settings_files(inventory: Path) -> list[Path]:
    """The files an inventory's variables come from, inventories/common.yml included when
    one of its group_vars files links it."""
    files = [inventory / "hosts.yml"]
    for folder in ("group_vars", "host_vars"):
        files += sorted(path for path in (inventory / folder).rglob("*.yml"))
    return [path.resolve() if path.is_symlink() else path for path in files]


def is_vault(path: Path) -> bool:
    return path.name == PLAIN_VAULT or is_encrypted(path.read_bytes())


def strings(data: Any) -> Iterator[str]:
    """Every string of a loaded YAML document: keys and values, nested."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from strings(item)


def references(inventory: Path) -> dict[str, set[str]]:
    """Each vault_* key the inventory's settings name (comments aside), with the files."""
    found: dict[str, set[str]] = {}
    for path in settings_files(inventory):
        if is_vault(path):
            continue
        for text in strings(yaml.safe_load(path.read_text())):
            for key in VAULT_KEY.findall(text):
                found.setdefault(key, set()).add(path.name)
    return found


def vault_keys(inventory: Path, password: str) -> set[str]:
    """The keys the inventory's vault files hold, decrypted with PASSWORD."""
    vault = VaultLib([("default", VaultSecret(password.encode()))])
    keys: set[str] = set()
    for path in settings_files(inventory):
        if is_vault(path):
            text = path.read_bytes()
            plain = vault.decrypt(text) if is_encrypted(text) else text
            keys |= set(yaml.safe_load(plain) or {})
    return keys


def missing_vault_keys(inventory: Path, password: str = EXAMPLE_VAULT_PASSWORD) -> list[str]:
    """One line per vault_* key the inventory reads and its vault lacks."""
    held = vault_keys(inventory, password)
    return [
        f"{inventory.name} reads {key} ({', '.join(sorted(files))}), its vault lacks it"
        for key, files in sorted(references(inventory).items())
        if key not in held
    ]


@pytest.mark.parametrize("name", [path.name for path in inventories(INVENTORIES_DIR)])
def test_each_inventory_has_every_vault_key_it_reads(name: str) -> None:
    inventory = INVENTORIES_DIR / name
    assert any(is_vault(path) for path in settings_files(inventory)), f"{name}: no vault"
    assert missing_vault_keys(inventory) == []


def test_the_secrets_the_deploy_needs_are_read_through_the_vault() -> None:
    wanted = {
        "vault_prosaas_database_password",
        "vault_prosaas_registry_password",
        "vault_prosaas_notify_webhook_url",
    }
    for inventory in inventories(INVENTORIES_DIR):
        assert wanted <= set(references(inventory)), inventory.name


def test_a_key_read_but_missing_from_the_vault_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "inventories"
    shutil.copytree(INVENTORIES_DIR, copy, symlinks=True)
    with (copy / "staging" / "group_vars" / "all" / "main.yml").open("a") as own:
        own.write('prosaas_extra_token: "{{ vault_prosaas_extra_token }}"\n')
    with (copy / COMMON).open("a") as common:
        common.write("prosaas_shared_token: \"{{ vault_prosaas_shared_token | default('') }}\"\n")

    assert missing_vault_keys(copy / "staging") == [
        "staging reads vault_prosaas_extra_token (main.yml), its vault lacks it",
        f"staging reads vault_prosaas_shared_token ({COMMON}), its vault lacks it",
    ]
    # common.yml counts for every inventory that links it
    for name in ("local", "production"):
        assert missing_vault_keys(copy / name) == [
            f"{name} reads vault_prosaas_shared_token ({COMMON}), its vault lacks it"
        ]


def test_an_inventory_that_does_not_link_the_shared_file_is_not_held_to_it(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "inventories"
    shutil.copytree(INVENTORIES_DIR, copy, symlinks=True)
    (copy / "local" / "group_vars" / "all" / "00-common.yml").unlink()
    with (copy / COMMON).open("a") as common:
        common.write('prosaas_shared_token: "{{ vault_prosaas_shared_token }}"\n')

    assert missing_vault_keys(copy / "local") == []
    assert missing_vault_keys(copy / "staging") != []
