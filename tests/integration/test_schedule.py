"""The unattended staging deploy: roles/schedule writes units systemd accepts (or a
cron file), and scripts/scheduled-deploy.sh never prompts and skips when a deploy runs."""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, host_stats, run_playbook

SCRIPT = ROOT / "scripts" / "scheduled-deploy.sh"
NAME = "prosaas-deploy-staging"


def schedule(tmp_path: Path, **extra: object) -> dict[str, int]:
    extravars = {
        "schedule_checkout": str(ROOT),
        "schedule_unit_dir": str(tmp_path),
        "schedule_cron_dir": str(tmp_path),
        "schedule_activate": False,
        **extra,
    }
    runner = run_playbook("playbooks/schedule.yml", tmp_path, extravars)
    assert runner.rc == 0, runner.stdout.read()[-3000:]
    return host_stats(runner)


def test_the_units_pass_systemd_verification_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    first = schedule(tmp_path)
    second = schedule(tmp_path)
    units = [tmp_path / f"{NAME}.service", tmp_path / f"{NAME}.timer"]

    assert first["changed"] == 1 and second["changed"] == 0, (first, second)
    if shutil.which("systemd-analyze"):
        verified = subprocess.run(
            ["systemd-analyze", "verify", *map(str, units)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stderr
        assert NAME not in verified.stderr, verified.stderr  # no warning about our units
    service, timer = (configparser.ConfigParser(strict=False) for _ in units)
    service.read(units[0])
    timer.read(units[1])
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"] == str(SCRIPT)
    assert service["Service"]["StandardInput"] == "null"
    assert service["Service"]["StandardOutput"] == "journal"
    assert "PROSAAS_VAULT_PASSWORD_FILE=" in service["Service"]["Environment"]
    assert timer["Timer"]["OnCalendar"] == "Mon..Fri *-*-* 06:00:00 UTC"
    assert timer["Timer"]["Unit"] == f"{NAME}.service"


def test_the_cron_alternative_is_one_line_that_logs_to_a_file(tmp_path: Path) -> None:
    schedule(tmp_path, schedule_method="cron", schedule_log_file="/var/log/x.log")

    lines = [line for line in (tmp_path / NAME).read_text().splitlines() if line[:1].isdigit()]

    assert len(lines) == 1, lines
    fields = lines[0].split()
    assert fields[:6] == ["0", "6", "*", "*", "1-5", "root"]
    assert "scripts/scheduled-deploy.sh >> /var/log/x.log 2>&1" in lines[0]
    assert not (tmp_path / f"{NAME}.timer").exists()


def run_script(
    tmp_path: Path,
    vault_file: Path | None,
    env_extra: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROSAAS_")}
    env["PROSAAS_SCHEDULE_LOCK"] = str(tmp_path / "schedule.lock")
    env.update(env_extra or {})
    if vault_file is not None:
        env["PROSAAS_VAULT_PASSWORD_FILE"] = str(vault_file)
    return subprocess.run(
        [str(SCRIPT), *(args or [])], capture_output=True, text=True, env=env,
        stdin=subprocess.DEVNULL, timeout=300, check=False,
    )  # fmt: skip


def test_a_run_while_another_scheduled_run_holds_the_lock_is_skipped(tmp_path: Path) -> None:
    vault_file = tmp_path / "vault-password"
    vault_file.write_text("not used\n")
    with (tmp_path / "schedule.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_script(tmp_path, vault_file)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "scheduled-deploy: skipped: a scheduled deploy is still running" in result.stdout
    assert "starting" not in result.stdout  # ansible-playbook never ran


@pytest.mark.parametrize("vault_file", [None, Path("/nonexistent/vault-password")])
def test_a_run_without_a_readable_vault_password_file_fails_on_one_line(
    tmp_path: Path, vault_file: Path | None
) -> None:
    result = run_script(tmp_path, vault_file)

    assert result.returncode == 2
    assert result.stdout.count("\n") == 1, result.stdout
    assert "PROSAAS_VAULT_PASSWORD_FILE must name a readable file" in result.stdout


def test_a_run_that_finds_a_deploy_running_on_the_host_is_skipped(
    tmp_path: Path, demo_images: list[str]
) -> None:
    """The deploy lock on the host is held by a live deploy: logged as skipped, exit 0."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    # A live process whose command line looks like a deploy's, holding the lock.
    holder = subprocess.Popen(["python3", "-c", "import time; time.sleep(120)", "ansible-playbook"])
    try:
        lock = {"user": "ops", "host": socket.gethostname(), "pid": holder.pid,
                "release": "20261124T060000Z-v1", "started_at": "2026-11-24T06:00:00Z"}  # fmt: skip
        (state_dir / "deploy.lock").write_text(json.dumps(lock))
        vault_file = tmp_path / "vault-password"
        vault_file.write_text("not used by the local inventory\n")
        env_extra = {"PROSAAS_INVENTORY": "inventories/local"}
        result = run_script(
            tmp_path, vault_file, env_extra, ["-e", f"prosaas_state_dir={state_dir}"]
        )
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 0, result.stdout[-3000:]
    assert f"pid {holder.pid}" in result.stdout
    assert "scheduled-deploy: skipped: another deploy is running on the host" in result.stdout
