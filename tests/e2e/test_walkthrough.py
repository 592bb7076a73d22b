"""The README's "Deploy to your own servers", run as written by a new operator.

Every fenced command of that section runs, in order, in one bash session, from a copy of
this checkout, against what an operator brings: a bare Debian server reached over SSH (a
test host whose deploy user needs a password for sudo), a private registry (HTTPS from a
private CA, htpasswd), and an external PostgreSQL that speaks TLS. It releases and deploys v1,
then v2 (migration 109 applied), and the API is then reached over HTTPS from outside the
server, trusting the test CA.

The only changes to the README's commands are substitutions of host names, ports and file
paths (SUBSTITUTED below names each). The operator's home is a folder of the test (HOME), so
`~/...` paths land there, and the application's checkout the README releases from is a git
repository the test makes at ~/src/prosaas, tagged v1 and v2. Where the README asks for a
file to be edited (`"$EDITOR" FILE`), the test's editor writes what the operator would
(tests/walkthrough.py): the server in hosts.yml, the addresses in main.yml, the secrets in
the vault, the vault and sudo passwords in the files the README names. curl trusts the
test CA through CURL_CA_BUNDLE, as an operator's machine trusts its own CA.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.conftest import HOST_WHEELS, ROOT, host_wheels, start_test_host
from tests.registry import (
    ENGINE_CERTS_DIR,
    REGISTRY_PORT,
    Registry,
    SessionCA,
    registry_image,
    remove_registry,
    start_registry,
)
from tests.ssh_hosts import SessionKeys, SshHost, remove_host
from tests.walkthrough import (
    EDITOR_SCRIPT,
    command_timings,
    section_commands,
    substitute,
    walk_script,
)

ARTIFACTS = ROOT / "tests" / ".artifacts"  # ignored by git
SECTION = "Deploy to your own servers"
# The example inventory's names (inventories/staging) that stand for the operator's own.
EXAMPLE_REGISTRY = "registry.example.internal"
EXAMPLE_DATABASE = "db.staging.example.internal"
EXAMPLE_SERVER = "staging-app1.example.internal"
EXAMPLE_VENV = "~/.local/share/prosaas-deploy/venv"
EXAMPLE_REGISTRY_CA = "/path/to/registry-ca.crt"
EXAMPLE_TLS_CERTIFICATE = "/path/to/tls.crt"
REGISTRY_USER = "deploy-bot"  # the example inventory's registry user
DATABASE_IMAGE = "prosaas-demo/postgres:15"
DATABASE_UID_GID = (100, 102)  # postgres in that image: its key must be the server's own
WALK_TIMEOUT_S = 1500
MIGRATION_109_COLUMNS = ["duration_sec", "ended_at", "started_at"]


@dataclass
class Place:
    """What the operator brings: the server, the registry, the database, and the test's CA."""

    server: SshHost
    server_address: str
    sudo_password: str
    registry: Registry
    database: Any
    database_address: str
    database_password: str
    ca: SessionCA
    tls_certificate: Path
    tls_key: Path


def container_address(container: Any, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def require_sudo_password(server: SshHost, password: str) -> None:
    """The deploy user's sudo asks for PASSWORD, as on most servers."""
    command = (
        f"echo 'deploy:{password}' | chpasswd"
        " && echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy"
    )
    result = server.container.exec_run(["sh", "-c", command])
    assert result.exit_code == 0, result.output.decode()


# Over TCP, TLS or nothing: a connection without it is refused, so a deploy that works
# spoke TLS to the database throughout.
TLS_ONLY_HBA = "local all all trust\nhostssl all all all scram-sha-256\n"


def tls_files_archive(cert: Path, key: Path, owner: tuple[int, int]) -> bytes:
    """A tar of certs/server.crt, certs/server.key (0600) and certs/pg_hba.conf (TLS only),
    all OWNER's (uid, gid)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("certs")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        files = (
            ("server.crt", cert.read_bytes(), 0o644),
            ("server.key", key.read_bytes(), 0o600),
            ("pg_hba.conf", TLS_ONLY_HBA.encode(), 0o644),
        )
        for name, data, mode in files:
            info = tarfile.TarInfo(f"certs/{name}")
            info.size, info.mode = len(data), mode
            info.uid, info.gid = owner
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start_database(
    client: docker.DockerClient, name: str, network: str, ca: SessionCA, password: str
) -> Any:
    """PostgreSQL 15 on NETWORK, TLS on with a certificate of CA, database and user prosaas."""
    cert, key = ca.issue(name)
    container = client.containers.create(
        DATABASE_IMAGE,
        command=["-c", "ssl=on", "-c", "ssl_cert_file=/certs/server.crt",
                 "-c", "ssl_key_file=/certs/server.key", "-c", "hba_file=/certs/pg_hba.conf",
                 "-c", "log_connections=on"],
        name=name,
        network=network,
        environment={"POSTGRES_PASSWORD": password},
        labels={"prosaas-tests": "walkthrough"},
    )  # fmt: skip
    container.put_archive("/", tls_files_archive(cert, key, DATABASE_UID_GID))
    container.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return container
        time.sleep(0.5)
    pytest.fail(f"the walkthrough's database never turned healthy: {container.logs()[-2000:]!r}")


@pytest.fixture(scope="module")
def place(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Place]:
    """A registry, a database and a bare server on one network of their own."""
    host_wheels()
    folder = tmp_path_factory.mktemp("walk-place")
    name = f"pdwalk-{uuid.uuid4().hex[:6]}"
    registry = start_registry(
        docker_engine,
        registry_image(docker_engine, base_image),
        f"{name}-reg",
        network=f"{name}-net",
        ca_folder=folder / "ca",
        user=REGISTRY_USER,
        password=secrets.token_urlsafe(24),
    )
    database = server = None
    try:
        database_password = secrets.token_urlsafe(18)
        database = start_database(
            docker_engine, f"{name}-db", registry.network, registry.ca, database_password
        )
        server = start_test_host(docker_engine, base_image, ssh_keys, name, registry.network)
        sudo_password = secrets.token_urlsafe(12)
        require_sudo_password(server, sudo_password)
        server_address = container_address(server.container, registry.network)
        tls_certificate, tls_key = registry.ca.issue(f"{name}-tls", (server_address,))
        yield Place(
            server, server_address, sudo_password, registry, database,
            container_address(database, registry.network), database_password,
            registry.ca, tls_certificate, tls_key,
        )  # fmt: skip
    finally:
        if server is not None:
            remove_host(docker_engine, server)
        if database is not None:
            database.remove(force=True, v=True)
        forget_registry_address(docker_engine, registry)
        remove_registry(docker_engine, registry)


def forget_registry_address(client: docker.DockerClient, registry: Registry) -> None:
    """What the walk left on this machine for the registry's address: the engine's CA file
    and the images tagged or pulled under it."""
    address = f"{registry.ip_address}:{REGISTRY_PORT}"
    shutil.rmtree(ENGINE_CERTS_DIR / address, ignore_errors=True)
    for image in client.images.list():
        for ref in image.tags + (image.attrs.get("RepoDigests") or []):
            if ref.startswith(f"{address}/"):
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(ref)


def copy_checkout(target: Path) -> Path:
    """This checkout's files as git sees them (tracked, and new ones not ignored), in TARGET."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            destination.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, destination)
    return target


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Walk", "-c", "user.email=walk@example.invalid",
         *args],
        check=True, capture_output=True,
    )  # fmt: skip


def make_application_repository(repo: Path) -> None:
    """The operator's application checkout: the app's build context (the demo stand-in) in
    app/ and its migrations in migrations/, tagged v1 (0001, 0002) and v2 (0109 added, the
    app's version 2)."""
    versions = sorted((ROOT / "migrations" / "versions").glob("*.sql"))
    shutil.copytree(ROOT / "demo" / "app", repo / "app")
    (repo / "migrations").mkdir(parents=True)
    for path in versions:
        if not path.name.startswith("0109"):
            shutil.copy2(path, repo / "migrations" / path.name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "v1")
    dockerfile = repo / "app" / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("ARG DEMO_VERSION=1", "ARG DEMO_VERSION=2")
    )
    for path in versions:
        shutil.copy2(path, repo / "migrations" / path.name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2: call_log timing (109)")
    git(repo, "tag", "v2")


def answers(place: Place, home: Path, keys: SessionKeys) -> dict[str, Any]:
    """What the operator types into the files the README has them edit."""
    config = home / ".config" / "prosaas-deploy"
    hosts = {"prosaas": {"hosts": {place.server.name: place.server.inventory_vars(keys)}}}
    return {
        "files": {
            str(config / "vault-password"): secrets.token_urlsafe(18) + "\n",
            str(config / "become-password"): place.sudo_password + "\n",
        },
        "hosts": "---\n" + yaml.safe_dump(hosts),
        "main": {
            "replace": {
                EXAMPLE_REGISTRY: f"{place.registry.ip_address}:{REGISTRY_PORT}",
                EXAMPLE_DATABASE: place.database_address,
            },
            # The wheels the server's Python libraries come from: this machine's copy.
            "set": {"prosaas_python_wheels_dir": str(HOST_WHEELS)},
        },
        "vault": {
            "vault_prosaas_database_password": place.database_password,
            "vault_prosaas_registry_password": place.registry.password,
            "vault_prosaas_notify_webhook_url": "",
            "vault_prosaas_proxy_tls_key": place.tls_key.read_text(),
        },
    }


def walk_environment(home: Path, editor: Path, answers_file: Path, ca: SessionCA) -> dict:
    """The operator's shell: their HOME and EDITOR, no virtualenv active yet."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    return keep | {
        "HOME": str(home),
        "PATH": path,
        "EDITOR": str(editor),
        "WALK_ANSWERS": str(answers_file),
        "CURL_CA_BUNDLE": str(ca.cert),
    }


@dataclass
class WalkRun:
    checkout: Path
    steps: list[str]
    returncode: int
    output: str
    seconds: list[float | None]


@pytest.fixture(scope="module")
def walk(place: Place, ssh_keys: SessionKeys, tmp_path_factory: pytest.TempPathFactory) -> WalkRun:
    """The README section's commands, substituted, run once in one bash session."""
    base = tmp_path_factory.mktemp("walk")
    home = base / "home"
    make_application_repository(home / "src" / "prosaas")
    checkout = copy_checkout(base / "prosaas-deploy")
    editor = base / "editor"
    editor.write_text(f"#!{sys.executable}\n{EDITOR_SCRIPT}")
    editor.chmod(0o755)
    answers_file = base / "answers.json"
    answers_file.write_text(json.dumps(answers(place, home, ssh_keys)))
    substituted = {
        EXAMPLE_REGISTRY: f"{place.registry.ip_address}:{REGISTRY_PORT}",
        EXAMPLE_SERVER: place.server_address,
        EXAMPLE_VENV: str(Path(sys.executable).parent.parent),
        EXAMPLE_REGISTRY_CA: str(place.ca.cert),
        EXAMPLE_TLS_CERTIFICATE: str(place.tls_certificate),
    }
    readme = (ROOT / "README.md").read_text()
    steps = [substitute(command, substituted) for command in section_commands(readme, SECTION)]
    script = base / "walk.sh"
    script.write_text(walk_script(steps, str(checkout)))
    result = subprocess.run(
        ["bash", str(script)],
        env=walk_environment(home, editor, answers_file, place.ca),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WALK_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    timings = command_timings(result.stdout)
    run = WalkRun(checkout, steps, result.returncode, output, [t.seconds for t in timings])
    save_timings(run)
    return run


def save_timings(run: WalkRun) -> None:
    """Each command and its seconds, for docs and the closing note."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rows = [
        {"command": step, "seconds": run.seconds[i] if i < len(run.seconds) else None}
        for i, step in enumerate(run.steps)
    ]
    (ARTIFACTS / "walkthrough.json").write_text(json.dumps(rows, indent=2))


def test_the_readme_section_runs_as_written_from_an_empty_server_to_v2(walk: WalkRun) -> None:
    assert walk.steps, f"no command found in README section {SECTION!r}"
    failed = next((walk.steps[i] for i, s in enumerate(walk.seconds) if s is None), None)
    assert walk.returncode == 0, f"the walk stopped at: {failed}\n{walk.output[-6000:]}"
    assert len(walk.seconds) == len(walk.steps) and None not in walk.seconds


def report_of(walk: WalkRun, version: str) -> str:
    """The text of the one report the deploy of VERSION wrote into the checkout."""
    reports = sorted((walk.checkout / "reports").glob(f"*-{version}.json"))
    assert len(reports) == 1, reports
    return reports[0].read_text()


def test_v1_was_released_without_109_and_v2_applied_it(walk: WalkRun) -> None:
    assert walk.returncode == 0
    assert "Migration 109 complete" not in report_of(walk, "v1")
    assert "Migration 109 complete" in report_of(walk, "v2")


def https_get(place: Place, path: str) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(place.ca.cert))
    connection = HTTPSConnection(place.server_address, 443, context=context, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_the_api_answers_over_https_from_outside_the_server_on_v2(
    walk: WalkRun, place: Place
) -> None:
    assert walk.returncode == 0
    status, body = https_get(place, "/health")
    assert (status, body.get("status"), body.get("version")) == (200, "ok", "2"), body


def test_plain_http_is_redirected_to_https(walk: WalkRun, place: Place) -> None:
    assert walk.returncode == 0
    connection = HTTPConnection(place.server_address, 80, timeout=10)
    try:
        connection.request("GET", "/health", headers={"Host": place.server_address})
        response = connection.getresponse()
    finally:
        connection.close()
    assert response.status in {301, 302, 307, 308}
    assert response.getheader("Location", "").startswith(f"https://{place.server_address}")


def psql(place: Place, sql: str) -> list[str]:
    result = place.database.exec_run(
        ["psql", "-X", "-At", "-U", "prosaas", "-d", "prosaas", "-c", sql]
    )
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().split()


def test_migration_109_was_applied_on_the_external_database_over_tls(
    walk: WalkRun, place: Place
) -> None:
    assert walk.returncode == 0
    columns = psql(
        place,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'call_log'"
        " AND column_name IN ('started_at', 'ended_at', 'duration_sec') ORDER BY 1",
    )
    assert columns == MIGRATION_109_COLUMNS
    # The database took connections over TCP (its hba_file refuses any without TLS), each
    # with TLS, as its connection log says.
    log = place.database.logs().decode()
    authorized = [
        line for line in log.splitlines() if "connection authorized: user=prosaas" in line
    ]
    assert any("SSL enabled" in line for line in authorized), log[-3000:]


def test_the_server_runs_v2_by_digest_from_the_registry(walk: WalkRun, place: Place) -> None:
    assert walk.returncode == 0
    result = place.server.container.exec_run(
        ["docker", "inspect", "--format", "{{.Config.Image}}", "prosaas-api"]
    )
    assert result.exit_code == 0, result.output.decode()
    image = result.output.decode().strip()
    assert image.startswith(f"{place.registry.ip_address}:{REGISTRY_PORT}/prosaas/app@sha256:")
