"""The execution environment (ee/Dockerfile) runs the deploy as AWX and ansible-navigator
would: `ansible-navigator run`, with the checkout's settings file (ansible-navigator.yml), runs
prepare.yml, then deploy.yml v1 and v2 inside the image against a Debian server reached over
SSH, and migration 109 lands on the server's database. The server starts from the prepared
host image (tests/conftest.py), so prepare.yml run from the image finds nothing to change.

The image is built by `scripts/ee.sh build` from the wheels scripts/test.sh staged (a build
with the same inputs is skipped). The operator is played by a home of its own: its ~/.ssh
holds the deploy key and known_hosts, its ~/.config/prosaas-deploy the vault password that
decrypts the inventory's database password, and PROSAAS_REPORTS_DIR names a folder outside
the checkout: the settings file mounts all three into the container at the same paths. One
host; each step's wall time is printed and saved in
tests/.artifacts/execution-environment.json.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import psycopg
import pytest
import yaml

from tests.conftest import HOST_WHEELS, ROOT, host_wheels, start_test_host
from tests.e2e.conftest import APP_SERVICES, DB_PASSWORD, SQL_V2_COLUMNS
from tests.pg_cluster import free_loopback_port
from tests.ssh_hosts import SessionKeys, SshHost, remove_host
from tests.ssh_stack import Tunnel, load_images, read_remote

EE_SCRIPT = ROOT / "scripts" / "ee.sh"
NAVIGATOR = Path(sys.executable).parent / "ansible-navigator"
LOCAL_VARS = ROOT / "inventories" / "local" / "group_vars" / "all"
STATE_DIR = "/var/lib/prosaas-deploy"
ARTIFACT = ROOT / "tests" / ".artifacts" / "execution-environment.json"
STEP_TIMEOUT_S = 1500
# ansible-runner marks each event in the output with an escape sequence a terminal erases
# (ESC[K <base64> ESC[<n>D ESC[K); what is left may hold colours.
RUNNER_EVENT_MARK = re.compile(r"\x1b\[K[A-Za-z0-9+/=]*\x1b\[\d+D\x1b\[K")
ANSI_SEQUENCE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


@dataclass
class NavigatorRun:
    """One `ansible-navigator run`: its exit code, Ansible's output, the recap per host and
    navigator's own log."""

    rc: int
    output: str
    recap: dict[str, dict[str, int]]
    log: str

    def describe(self) -> str:
        return f"rc={self.rc} recap={self.recap}\n{self.output[-6000:]}"


def readable(output: str) -> str:
    return ANSI_SEQUENCE.sub("", RUNNER_EVENT_MARK.sub("", output))


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP's counters per host (ok, changed, failed, ...)."""
    recap: dict[str, dict[str, int]] = {}
    _, _, tail = output.rpartition("PLAY RECAP")
    for line in tail.splitlines():
        match = RECAP_LINE.match(line.strip())
        if match:
            pairs = (pair.split("=") for pair in match.group("counts").split())
            recap[match.group("host")] = {key: int(value) for key, value in pairs}
    return recap


@dataclass
class Operator:
    """An operator's control node: a home, a reports folder outside the checkout, and an
    inventory naming one server."""

    home: Path
    reports: Path
    inventory: Path
    logs: Path
    image: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def vault_password_file(self) -> Path:
        return self.home / ".config" / "prosaas-deploy" / "vault-password"

    def environment(self) -> dict[str, str]:
        """This process's environment as the operator's shell has it: no ANSIBLE_* of the
        tests', no SSH agent."""
        kept = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("ANSIBLE_") and name != "SSH_AUTH_SOCK"
        }
        return kept | {
            "HOME": str(self.home),
            "PROSAAS_REPORTS_DIR": str(self.reports),
            "ANSIBLE_VAULT_PASSWORD_FILE": str(self.vault_password_file),
        }

    def navigator(self, step: str, playbook: str, *args: str) -> NavigatorRun:
        """`ansible-navigator run PLAYBOOK` from the checkout's root, in the image under test."""
        log = self.logs / f"{step}.log"
        command = [
            str(NAVIGATOR), "run", playbook, "-i", str(self.inventory),
            "--eei", self.image, "--ll", "debug", "--lf", str(log), *args,
        ]  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(
            command, cwd=ROOT, env=self.environment(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False,
        )  # fmt: skip
        self.timings[step] = round(time.monotonic() - started, 1)
        output = readable(result.stdout + result.stderr)
        text = log.read_text() if log.exists() else ""
        return NavigatorRun(result.returncode, output, play_recap(output), text)


def build_image(base_image: str) -> tuple[str, float]:
    """The image's tag from `scripts/ee.sh build`, and the build's wall time (s)."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(EE_SCRIPT), "build"], env={**os.environ, "BASE_IMAGE": base_image},
        capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"scripts/ee.sh build failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip().splitlines()[-1], time.monotonic() - started


def make_home(operator: Operator, keys: SessionKeys) -> None:
    """The operator's ~/.ssh (the deploy key, known_hosts), vault password file and reports
    folder."""
    home = operator.home
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copy(keys.private_key, ssh / "id_ed25519")
    (ssh / "id_ed25519").chmod(0o600)
    shutil.copy(keys.known_hosts, ssh / "known_hosts")
    operator.vault_password_file.parent.mkdir(parents=True, mode=0o700)
    operator.vault_password_file.write_text(secrets.token_urlsafe(24) + "\n")
    operator.vault_password_file.chmod(0o600)
    operator.reports.mkdir()


def encrypted(name: str, value: str, password_file: Path) -> str:
    """`name: !vault |...`, VALUE encrypted with the password in PASSWORD_FILE."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string",
         "--vault-password-file", str(password_file), "--name", name, value],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout


def write_inventory(operator: Operator, server: SshHost) -> None:
    """The server alone in the prosaas group over the local inventory's settings (the whole
    stack on the server's engine), reached with the operator's key and known_hosts; its
    libraries from the checkout's wheel folder; the database password from the vault."""
    folder, home = operator.inventory, operator.home
    group = folder / "group_vars" / "prosaas"
    group.mkdir(parents=True)
    (folder / "group_vars" / "all").symlink_to(LOCAL_VARS)
    own = {
        "prosaas_python_packages_from": "controller",
        "prosaas_python_wheels_dir": str(HOST_WHEELS),
    }
    (group / "main.yml").write_text(yaml.safe_dump(own))
    (group / "vault.yml").write_text(
        encrypted("vault_prosaas_database_password", DB_PASSWORD, operator.vault_password_file)
    )
    host = {
        "ansible_host": "127.0.0.1",
        "ansible_port": server.port,
        "ansible_user": "deploy",
        "ansible_ssh_private_key_file": str(home / ".ssh" / "id_ed25519"),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={home / '.ssh' / 'known_hosts'}",
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump({"prosaas": {"hosts": {server.name: host}}}))


@dataclass
class Walk:
    """prepare.yml, then deploy.yml of v1 and of v2, each run in the image by navigator."""

    server: SshHost
    operator: Operator
    runs: dict[str, NavigatorRun]


@pytest.fixture(scope="module")
def ee_image(base_image: str) -> str:
    tag, seconds = build_image(base_image)
    print(f"scripts/ee.sh build: {tag} in {seconds:.1f} s")
    return tag


@pytest.fixture(scope="module")
def walk(
    docker_engine: docker.DockerClient,
    base_image: str,
    ssh_keys: SessionKeys,
    *,
    demo_images: list[str],
    ee_image: str,
    prepared_host_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Walk]:
    """A server of the prepared host image (prepare.yml on a bare server is the walkthrough's
    and test_ssh.py's), prepared again and deployed to from the image; each step only after
    the one before it succeeded."""
    host_wheels()
    started = time.monotonic()
    base = tmp_path_factory.mktemp("ee")
    server = start_test_host(docker_engine, base_image, ssh_keys, "pdee", image=prepared_host_image)
    try:
        operator = Operator(
            base / "home", base / "reports", base / "inventory", base / "logs", ee_image
        )
        make_home(operator, ssh_keys)
        operator.logs.mkdir()
        write_inventory(operator, server)
        runs = {"prepare": operator.navigator("prepare", "playbooks/prepare.yml")}
        if runs["prepare"].rc == 0:
            load_images(server, demo_images)
            for version in ("v1", "v2"):
                runs[version] = operator.navigator(
                    version, "deploy.yml", "-e", f"prosaas_app_version={version}"
                )
                if runs[version].rc != 0:
                    break
        operator.timings["walk"] = round(time.monotonic() - started, 1)
        print(f"execution environment walk, wall time (s): {operator.timings}")
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.write_text(json.dumps({"image": ee_image, "seconds": operator.timings}, indent=2))
        yield Walk(server, operator, runs)
    finally:
        remove_host(docker_engine, server)


def assert_succeeded(run: NavigatorRun | None, host: str) -> None:
    assert run is not None, "the step did not run: an earlier one failed"
    assert run.rc == 0, run.describe()
    stats = run.recap.get(host)
    assert stats is not None, run.describe()
    assert stats["failed"] == 0 and stats["unreachable"] == 0 and stats["ok"] > 0, run.describe()


def test_the_image_holds_the_controller_side(
    docker_engine: docker.DockerClient, ee_image: str
) -> None:
    script = (
        "ansible --version | head -n 1; ansible-runner --version; command -v ssh;"
        " ansible-galaxy collection list prosaas.deploy | tail -n 1;"
        " python -c 'import docker, psycopg, cryptography, yaml; print(docker.__version__)';"
        ' id -u; pwd; touch /runner/artifacts/probe "$HOME/probe" && echo writable'
    )
    # As an arbitrary uid of group 0, as OpenShift and AWX run it.
    output = docker_engine.containers.run(
        ee_image, ["bash", "-c", script], user="4321:0", remove=True
    ).decode()
    lines = output.split()
    assert "[core 2.19.14]" in output, output
    assert "2.4.3" in lines and "/usr/bin/ssh" in lines, output
    assert "prosaas.deploy" in lines and "7.1.0" in lines, output
    assert lines[-3:] == ["4321", "/runner", "writable"], output
    labels = docker_engine.images.get(ee_image).labels
    assert labels.get("ansible-execution-environment") == "true"


def test_prepare_runs_from_the_image_with_the_checkouts_wheels(walk: Walk) -> None:
    run = walk.runs["prepare"]
    assert_succeeded(run, walk.server.name)
    assert run.recap[walk.server.name]["changed"] == 0, run.describe()
    # navigator ran ansible-playbook in the image under test, not on this machine.
    assert "container engine invocation: docker run" in run.log
    assert f" {walk.operator.image} ansible-playbook" in run.log


def test_v1_then_v2_deploy_from_the_image(walk: Walk) -> None:
    for version in ("v1", "v2"):
        assert_succeeded(walk.runs.get(version), walk.server.name)
    history = json.loads(read_remote(walk.server, f"{STATE_DIR}/releases.json") or "{}")
    releases = [(record["version"], record["status"]) for record in history.get("releases", [])]
    assert releases == [("v1", "succeeded"), ("v2", "succeeded")], history


@pytest.fixture(scope="module")
def tunnel(
    walk: Walk, ssh_keys: SessionKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tunnel]:
    """The server's engine socket and database port, here, over the deploy user's SSH."""
    database_port = yaml.safe_load((LOCAL_VARS / "main.yml").read_text())[
        "prosaas_database_port_from_deployer"
    ]
    forwards = {database_port: free_loopback_port()}
    opened = Tunnel(walk.server, ssh_keys, tmp_path_factory.mktemp("ee-tunnel"), forwards)
    opened.start()
    try:
        yield opened
    finally:
        opened.stop()


def test_migration_109_is_on_the_servers_database_and_v2_serves(walk: Walk, tunnel: Tunnel) -> None:
    assert walk.runs.get("v2") is not None and walk.runs["v2"].rc == 0, "v2 was not deployed"
    (local_port,) = tunnel.ports.values()
    dsn = f"postgresql://prosaas:{DB_PASSWORD}@127.0.0.1:{local_port}/prosaas"
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        columns = {row[0] for row in conn.execute(SQL_V2_COLUMNS)}
        applied = [row[0] for row in conn.execute("SELECT version FROM prosaas_schema_history")]
    assert columns == {"started_at", "ended_at", "duration_sec"}
    assert 109 in applied, applied
    engine = docker.DockerClient(base_url=tunnel.docker_host)
    for service in APP_SERVICES:
        container = engine.containers.get(service)
        assert container.attrs["Config"]["Image"] == "prosaas-demo/app:v2", service
        assert container.attrs["State"]["Health"]["Status"] == "healthy", service


def test_the_reports_land_in_prosaas_reports_dir(walk: Walk) -> None:
    assert walk.runs.get("v2") is not None and walk.runs["v2"].rc == 0, "v2 was not deployed"
    reports = [
        json.loads(path.read_text()) for path in sorted(walk.operator.reports.glob("*.json"))
    ]
    assert [(report["version"], report["outcome"]) for report in reports] == [
        ("v1", "succeeded"),
        ("v2", "succeeded"),
    ], reports
    assert not list((ROOT / "reports").glob(f"*{reports[-1]['release']}*"))
