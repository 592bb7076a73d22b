"""The unattended staging deploy: roles/schedule writes units systemd accepts (or a
cron file), and scripts/scheduled-deploy.sh never prompts, skips when a deploy runs and
fails loudly on the lock of one that died."""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, host_stats, run_playbook
from tests.webhook import Webhook

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


def lock_of_another_control_node(state_dir: Path, lease_left: timedelta) -> None:
    """A lock taken from bastion2, whose pid cannot be checked here, with LEASE_LEFT to run."""
    now = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    lock = {"user": "ops", "host": "bastion2", "pid": 4242, "release": "20261124T060000Z-v1",
            "started_at": (now - timedelta(minutes=10)).strftime(stamp),
            "renewed_at": (now - timedelta(minutes=1)).strftime(stamp),
            "expires_at": (now + lease_left).strftime(stamp)}  # fmt: skip
    state_dir.mkdir(mode=0o700)
    (state_dir / "deploy.lock").write_text(json.dumps(lock))


def run_against_lock(tmp_path: Path, lease_left: timedelta, webhook_url: str = "") -> str:
    """The scheduled deploy, local inventory, against a lock from another control node."""
    state_dir = tmp_path / "state"
    lock_of_another_control_node(state_dir, lease_left)
    vault_file = tmp_path / "vault-password"
    vault_file.write_text("not used by the local inventory\n")
    args = [
        "-e",
        f"prosaas_state_dir={state_dir}",
        "-e",
        f"prosaas_notify_webhook_url={webhook_url}",
    ]
    result = run_script(tmp_path, vault_file, {"PROSAAS_INVENTORY": "inventories/local"}, args)
    assert json.loads((state_dir / "deploy.lock").read_text())["host"] == "bastion2", "left alone"
    return f"{result.returncode}\n{result.stdout}"


def test_a_run_that_finds_a_live_deploy_lock_is_skipped_naming_the_holder(
    tmp_path: Path, demo_images: list[str]
) -> None:
    output = run_against_lock(tmp_path, timedelta(minutes=5))

    assert output.startswith("0\n"), output[-3000:]
    assert "scheduled-deploy: skipped: deploy lock held by ops@bastion2 pid 4242 since " in output


def test_a_run_that_finds_a_stale_deploy_lock_fails_loudly(
    tmp_path: Path, demo_images: list[str], webhook: Webhook
) -> None:
    """A deploy that died may have left the app stopped: not a skip, a failure that notifies."""
    output = run_against_lock(tmp_path, timedelta(seconds=-30), webhook.url)

    assert output.startswith("2\n"), output[-3000:]
    assert (
        "scheduled-deploy: failed: stale deploy lock left by ops@bastion2 pid 4242 "
        "(lease ran out " in output
    ), output[-3000:]
    assert webhook.events() == ["failure"]
    assert "stale deploy lock left by ops@bastion2" in json.dumps(webhook.posts[0])
