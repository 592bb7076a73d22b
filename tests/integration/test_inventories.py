"""Inventories: staging/production secrets only in vault, resolved the way CI passes them;
the shared settings written once (inventories/common.yml), each inventory only its differences."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.tls import ThrowawayCa

EXAMPLE_VAULT_PASSWORD = "prosaas-example-vault"  # noqa: S105 - the documented example key
REMOTE = ("staging", "production")
INVENTORIES = ("local", *REMOTE)
COMMON = ROOT / "inventories" / "common.yml"
# Set in every inventory even while equal: promoting a release changes them one at a time.
PER_ENVIRONMENT = {"prosaas_app_version"}


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


def resolved(
    name: str,
    expression: str,
    inventories: Path = ROOT / "inventories",
) -> object:
    """The value of a Jinja expression on the inventory's first host, vault decrypted."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PROSAAS_VAULT_PASSWORD": EXAMPLE_VAULT_PASSWORD,
        "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "scripts" / "vault-password.sh"),
    }
    result = subprocess.run(
        ["ansible", "-i", str(inventories / name), "all", "-o",
         "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {expression} | to_json }}}}"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first_host = result.stdout.splitlines()[0]
    return json.loads(json.loads(first_host.split("=>", 1)[1])["msg"])


CONTEXT_PLAYBOOK = ROOT / "tests" / "playbooks" / "context.yml"


def placed(name: str, expression: str, inventories: Path = ROOT / "inventories") -> object:
    """The value of a Jinja expression over `deployment`, the deployment context of the
    inventory's first host as deploy.yml places it (tests/playbooks/context.yml)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "oneline",
        "PROSAAS_VAULT_PASSWORD": EXAMPLE_VAULT_PASSWORD,
        "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "scripts" / "vault-password.sh"),
    }
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventories / name), str(CONTEXT_PLAYBOOK),
         "-e", json.dumps({"shown": f"{{{{ {expression} }}}}"})],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    shown = [line for line in result.stdout.splitlines() if '"msg"' in line][-1]
    return json.loads(json.loads(shown.split("=>", 1)[1])["msg"])


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


@pytest.mark.parametrize("name", INVENTORIES)
def test_every_app_service_has_migrations_turned_off(name: str) -> None:
    services = resolved(name, "prosaas_app_services")
    assert [service["name"] for service in services] == ["prosaas-api", "prosaas-calls", "worker"]
    for service in services:
        assert service["env"]["RUN_MIGRATIONS_ON_START"] == "0", service["name"]
        assert service["env"]["RUN_MIGRATIONS"] == "0", service["name"]


def test_local_is_the_default_inventory() -> None:
    assert "inventory = inventories/local" in (ROOT / "ansible.cfg").read_text()
    assert (ROOT / "inventories" / "local" / "hosts.yml").exists()


# --- Layers: inventories/common.yml, then each inventory's own group_vars/all ----------


def app_services(image: str, redis_url: str, database_url: str) -> list[dict]:
    """The three app services as the playbooks receive them, all on release v1; they publish
    no port (the proxy does)."""
    env = {"RUN_MIGRATIONS_ON_START": "0", "RUN_MIGRATIONS": "0", "REDIS_URL": redis_url}
    services = []
    for name, command in (("prosaas-api", "api"), ("prosaas-calls", "calls"), ("worker", "worker")):
        service = {"name": name, "image": f"{image}:v1", "command": [command], "env": env}
        service["secret_env"] = {"DATABASE_URL": database_url}
        services.append(service)
    return services


def external_url(name: str) -> str:
    password = f"example-{name}-password-replace-me"
    return (
        f"postgresql://prosaas:{password}@db.{name}.example.internal:5432/prosaas?sslmode=require"
    )


LOCAL_URL = "postgresql://prosaas:prosaas-local-only@postgres:5432/prosaas"
REGISTRY = "registry.example.internal/prosaas"
PRODUCTION_GROUPS = {
    "redis": "prosaas_infra",
    "prosaas-api": "prosaas_api",
    "prosaas-calls": "prosaas_calls",
    "worker": "prosaas_worker",
}
# What each inventory resolved to before the shared settings moved to inventories/common.yml;
# prosaas_infra_services as (name, image, ports).
RESOLVED = {
    "local": {
        "prosaas_app_services": app_services("prosaas-demo/app", "redis://redis:6379/0", LOCAL_URL),
        "prosaas_migrate_image": "prosaas-demo/migrate:v1",
        "prosaas_proxy_image": "prosaas-deploy/proxy:1",
        "prosaas_database_url": LOCAL_URL,
        "prosaas_database_url_from_deployer": LOCAL_URL.replace("postgres:5432", "127.0.0.1:55432"),
        "prosaas_database_services": ["postgres"],
        "prosaas_infra_services": [
            ("postgres", "prosaas-demo/postgres:15", ["127.0.0.1:55432:5432"]),
            ("redis", "prosaas-demo/redis:7", []),
        ],
        "prosaas_service_groups": {},
        "prosaas_start_batch_size": 0,
    },
    "staging": {
        "prosaas_app_services": app_services(
            f"{REGISTRY}/app", "redis://redis:6379/0", external_url("staging")
        ),
        "prosaas_migrate_image": f"{REGISTRY}/migrate:v1",
        "prosaas_proxy_image": f"{REGISTRY}/proxy:1",
        "prosaas_database_url": external_url("staging"),
        "prosaas_database_url_from_deployer": external_url("staging"),
        "prosaas_database_services": [],
        "prosaas_infra_services": [("redis", f"{REGISTRY}/redis:7", [])],
        "prosaas_service_groups": {},
        "prosaas_start_batch_size": 0,
    },
    "production": {
        "prosaas_app_services": app_services(
            f"{REGISTRY}/app",
            "redis://prod-infra1.example.internal:6379/0",
            external_url("production"),
        ),
        "prosaas_migrate_image": f"{REGISTRY}/migrate:v1",
        "prosaas_proxy_image": f"{REGISTRY}/proxy:1",
        "prosaas_database_url": external_url("production"),
        "prosaas_database_url_from_deployer": external_url("production"),
        "prosaas_database_services": [],
        "prosaas_infra_services": [("redis", f"{REGISTRY}/redis:7", ["6379:6379"])],
        "prosaas_service_groups": PRODUCTION_GROUPS,
        "prosaas_start_batch_size": 2,
    },
}


def own_settings(name: str) -> dict:
    """What an inventory writes itself: its plain group_vars/all files, the shared link aside."""
    settings: dict = {}
    for path in sorted((ROOT / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        if path.name not in ("00-common.yml", "vault.yml"):
            settings |= yaml.safe_load(path.read_text())
    return settings


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_resolves_the_shared_settings_and_its_own(name: str) -> None:
    names = list(RESOLVED[name])
    got = resolved(name, f"dict({names} | zip(query('vars', *{names})))")
    got["prosaas_infra_services"] = [
        (service["name"], service["image"], service.get("ports", []))
        for service in got["prosaas_infra_services"]
    ]
    assert got == RESOLVED[name]


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_links_the_shared_file_first(name: str) -> None:
    folder = ROOT / "inventories" / name / "group_vars" / "all"
    link = folder / "00-common.yml"
    assert link.is_symlink()
    assert not Path(os.readlink(link)).is_absolute()  # holds in a clone anywhere
    assert link.resolve() == COMMON
    # group_vars/all files load in name order: the inventory's own ones come after, and win.
    assert min(path.name for path in folder.glob("*.yml")) == "00-common.yml"


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_repeats_no_shared_value(name: str) -> None:
    common = yaml.safe_load(COMMON.read_text())
    own = own_settings(name)
    repeated = [key for key, value in own.items() if key in common and common[key] == value]
    assert repeated == [], f"{name} repeats inventories/common.yml: drop {repeated}"


def test_a_value_every_inventory_sets_alike_is_shared() -> None:
    first, *others = (own_settings(name) for name in INVENTORIES)
    alike = {key for key, value in first.items() if all(o.get(key) == value for o in others)}
    assert sorted(alike - PER_ENVIRONMENT) == [], "write these once, in inventories/common.yml"


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_overrides_a_shared_value(name: str, tmp_path: Path) -> None:
    copy = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories", copy, symlinks=True)
    with (copy / name / "group_vars" / "all" / "main.yml").open("a") as own:
        own.write("prosaas_api_port: 9090\n")
    api_route = "prosaas_proxy_routes | selectattr('service', '==', 'prosaas-api') | first"
    bind = PROXY[name]["prosaas_proxy_bind"]
    assert resolved(name, f"({api_route}).publish", inventories=copy) == f"{bind}:9090"
    other = next(other for other in INVENTORIES if other != name)
    other_port = int(PROXY[other]["publish"][0].rsplit(":", 1)[1])  # its own, unchanged
    assert resolved(other, "prosaas_api_port", inventories=copy) == other_port


# --- The proxy: where it listens, and TLS -------------------------------------------------


def placeholder_certificate(name: str) -> str:
    """The placeholder the operator replaces, as the inventory reads it."""
    return (ROOT / "inventories" / name / "files" / "proxy-tls.crt").read_text().strip()


# What each inventory's proxy settings resolve to (its key aside: the vault's): local is
# plain HTTP on loopback, as it was before these settings existed; staging and production
# HTTPS on every address, with the certificate of their files/proxy-tls.crt.
PROXY = {
    "local": {
        "prosaas_proxy_bind": "127.0.0.1",
        "publish": ["127.0.0.1:8080", "127.0.0.1:8081"],
        "prosaas_proxy_http_redirect_port": 0,
        "prosaas_proxy_tls_certificate": "",
    },
    **{
        name: {
            "prosaas_proxy_bind": "0.0.0.0",  # noqa: S104 - what the inventory says
            "publish": ["0.0.0.0:443", "0.0.0.0:8443"],
            "prosaas_proxy_http_redirect_port": 80,
            "prosaas_proxy_tls_certificate": placeholder_certificate(name),
        }
        for name in REMOTE
    },
}
PROXY_SETTINGS = ["prosaas_proxy_bind", "prosaas_proxy_http_redirect_port",
                  "prosaas_proxy_tls_certificate", "prosaas_proxy_tls_key"]  # fmt: skip
PROXY_ENTRY = "deployment.infra_services | selectattr('name', 'eq', 'proxy') | list"
CHECK = (
    "prosaas_proxy_bind | proxy_problems(prosaas_proxy_tls_certificate, prosaas_proxy_tls_key,"
    " prosaas_proxy_http_redirect_port)"
)


@pytest.mark.parametrize("name", INVENTORIES)
def test_the_proxy_publishes_on_the_bind_address_of_the_inventory(name: str) -> None:
    got = resolved(name, f"dict({PROXY_SETTINGS} | zip(query('vars', *{PROXY_SETTINGS})))")
    got["publish"] = resolved(name, "prosaas_proxy_routes | map(attribute='publish') | list")
    # the key comes from the vault, under the one name the vault files use
    assert got.pop("prosaas_proxy_tls_key") == resolved(
        name, "vault_prosaas_proxy_tls_key | default('')"
    )
    assert got == PROXY[name]


def test_the_local_proxy_is_plain_http_on_loopback() -> None:
    (proxy,) = placed("local", PROXY_ENTRY)
    assert proxy["ports"] == ["127.0.0.1:8080:8000", "127.0.0.1:8081:8001"]
    assert "secret_files" not in proxy
    assert " ssl " not in proxy["env"]["HAPROXY_CONFIG"]
    assert resolved("local", CHECK) == []


@pytest.mark.parametrize("name", REMOTE)
def test_a_remote_inventory_refuses_to_deploy_until_its_certificate_is_put_in(name: str) -> None:
    problems = resolved(name, CHECK)
    assert problems, "the placeholder certificate must not pass the inventory check"
    assert all(problem.startswith("prosaas_proxy_tls_") for problem in problems), problems


def test_staging_with_its_certificate_and_key_serves_https_and_redirects_80(
    tmp_path: Path,
) -> None:
    issued = ThrowawayCa.make().issue("staging-app1.example.internal")
    copy = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories", copy, symlinks=True)
    (copy / "staging" / "files" / "proxy-tls.crt").write_text(issued.certificate)
    # after vault.yml in name order: stands for the key the operator puts in the vault
    (copy / "staging" / "group_vars" / "all" / "zz-test-key.yml").write_text(
        yaml.safe_dump({"vault_prosaas_proxy_tls_key": issued.key})
    )

    assert resolved("staging", CHECK, inventories=copy) == []
    (proxy,) = placed("staging", PROXY_ENTRY, inventories=copy)
    assert proxy["ports"] == ["0.0.0.0:443:8000", "0.0.0.0:8443:8001", "0.0.0.0:80:8480"]
    assert proxy["secret_files"] == {
        "/run/haproxy/tls.pem": f"{issued.certificate.strip()}\n{issued.key.strip()}\n"
    }
    config = proxy["env"]["HAPROXY_CONFIG"]
    assert "    bind :8000 ssl crt /run/haproxy/tls.pem\n" in config
    assert "    bind :8001 ssl crt /run/haproxy/tls.pem\n" in config
    assert "regsub(:[0-9]+$,)]%[pathq] code 308" in config  # to the api, on 443


# --- Where the modules run: prepare's virtualenv on the hosts, this Python locally ---------


@pytest.mark.parametrize("name", REMOTE)
def test_remote_hosts_run_the_modules_in_the_prepared_virtualenv(name: str) -> None:
    assert resolved(name, "ansible_python_interpreter") == "/opt/prosaas-deploy/venv/bin/python"


def test_the_local_inventory_runs_the_modules_in_the_control_nodes_python() -> None:
    interpreter = Path(resolved("local", "ansible_python_interpreter"))
    assert interpreter.resolve() == Path(sys.executable).resolve()


def test_an_inventory_without_the_shared_settings_fails_on_one_line_naming_one(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "bare"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "prosaas:\n  hosts:\n    app1:\n      ansible_connection: local\n"
    )
    (inventory / "group_vars" / "all" / "main.yml").write_text(
        yaml.safe_dump({"prosaas_network": "prosaas", "prosaas_infra_services": []})
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(CONTEXT_PLAYBOOK), "-e", "shown=1"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    # The callback folds a long message where its version does (ansible-core 2.16 inside it).
    said = " ".join(result.stdout.split())
    assert (
        "is not set: the inventory must include inventories/common.yml"
        " (as group_vars/all/00-common.yml) or set it" in said
    ), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
