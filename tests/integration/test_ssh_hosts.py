"""The test hosts are real servers: Ansible reaches them over SSH as the non-root deploy user,
with host key checking on, and finds a bare Debian host (no Docker engine, no deploy state)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml

from tests.conftest import run_module
from tests.ssh_hosts import SessionKeys, SshHost


def ad_hoc(
    tmp_path: Path,
    host: SshHost,
    keys: SessionKeys,
    module: str,
    args: str,
    *,
    become: bool,
    fresh_connection: bool = False,
) -> tuple[str, dict]:
    """Run MODULE on HOST over SSH as `ansible -m` would: (event, result).

    FRESH_CONNECTION: never reuse a master connection an earlier test left open.
    """
    inventory = tmp_path / f"hosts-{uuid.uuid4().hex[:8]}.yml"
    host_vars = host.inventory_vars(keys)
    if fresh_connection:
        host_vars["ansible_ssh_common_args"] += " -o ControlPath=none"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {host.name: host_vars}}}))
    run = run_module(tmp_path, module, args, become=become, host=host.name, inventory=inventory)
    return run.event, run.result


def test_ansible_reaches_the_host_as_deploy_and_becomes_root_with_sudo(
    ssh_host: SshHost, ssh_keys: SessionKeys, tmp_path: Path
) -> None:
    event, result = ad_hoc(tmp_path, ssh_host, ssh_keys, "command", "id -un", become=False)
    assert event == "runner_on_ok", result
    assert result["stdout"] == "deploy"

    event, result = ad_hoc(tmp_path, ssh_host, ssh_keys, "command", "id -u", become=True)
    assert event == "runner_on_ok", result
    assert result["stdout"] == "0"


def test_the_host_is_bare_with_its_own_name(
    ssh_host: SshHost, ssh_keys: SessionKeys, tmp_path: Path
) -> None:
    script = (
        "import json, shutil, socket, os;"
        " print(json.dumps({'hostname': socket.gethostname(),"
        " 'docker': bool(shutil.which('docker') or shutil.which('dockerd')),"
        " 'state_dir': os.path.exists('/var/lib/prosaas-deploy')}))"
    )
    event, result = ad_hoc(
        tmp_path, ssh_host, ssh_keys, "command", f'python3 -c "{script}"', become=False
    )
    assert event == "runner_on_ok", result
    assert json.loads(result["stdout"]) == {
        "hostname": ssh_host.name,
        "docker": False,
        "state_dir": False,
    }


def test_a_host_key_that_is_not_known_is_refused(
    ssh_host: SshHost, ssh_keys: SessionKeys, tmp_path: Path
) -> None:
    strangers = tmp_path / "ssh"
    strangers.mkdir()
    (strangers / "known_hosts").write_text("")
    other = SessionKeys(strangers)
    (strangers / "deploy_ed25519").symlink_to(ssh_keys.private_key)

    event, result = ad_hoc(
        tmp_path, ssh_host, other, "ping", "", become=False, fresh_connection=True
    )

    assert event == "runner_on_unreachable", result
    assert "Host key verification failed" in result["msg"], result
