"""The test hosts are real servers: Ansible reaches them over SSH as the non-root deploy user,
with host key checking on, and finds a bare Debian host (no Docker engine, no deploy state)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import ansible_runner
import docker
import yaml

from tests.conftest import host_stats, playbook_args, run_module, start_test_host
from tests.ssh_hosts import SessionKeys, SshHost, remove_host

# A server booted without systemd: sshd itself is PID 1 (as in many containers and chroots).
SSHD_AS_PID_1 = ["bash", "-c", "ssh-keygen -A && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]


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


def test_prepare_refuses_a_host_without_systemd_in_one_line_before_changing_anything(
    docker_engine: docker.DockerClient, base_image: str, ssh_keys: SessionKeys, tmp_path: Path
) -> None:
    host = start_test_host(docker_engine, base_image, ssh_keys, "pdnosysd", command=SSHD_AS_PID_1)
    try:
        inventory = tmp_path / "hosts.yml"
        hosts = {"prosaas": {"hosts": {host.name: host.inventory_vars(ssh_keys)}}}
        inventory.write_text(yaml.safe_dump(hosts))
        args = playbook_args("playbooks/prepare.yml", tmp_path) | {"inventory": str(inventory)}

        run = ansible_runner.run(**args)

        failures = [
            event["event_data"]["res"]["msg"]
            for event in run.events
            if event["event"] == "runner_on_failed"
        ]
        assert run.rc != 0
        assert failures == [
            f"host {host.name} cannot be prepared: it needs systemd as PID 1 (PID 1 is sshd);"
            ' see README.md "What a host needs"'
        ]
        assert host_stats(run, host.name)["changed"] == 0
        assert host.container.exec_run(["sh", "-c", "command -v dockerd"]).exit_code != 0
    finally:
        remove_host(docker_engine, host)
