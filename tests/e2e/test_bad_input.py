"""Bad input: each stops before anything is touched, with one line naming it.

One stack with v1 deployed serves every case; after each, the same v1 containers still run
healthy, no lock is left and no release was recorded as started.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import APP_SERVICES, Stack
from tests.e2e.faults import assert_plain_failure_line
from tests.e2e.reliability import RECORD
from tests.tls import DAY, Issued, ThrowawayCa


def local_app_services() -> list[dict]:
    # Shared by every inventory: the local one does not override them.
    shared = ROOT / "inventories" / "common.yml"
    return yaml.safe_load(shared.read_text())["prosaas_app_services"]


CA = ThrowawayCa.make()
NOW = datetime.now(UTC)


def tls_settings(issued: Issued, key_of: Issued | None = None) -> dict[str, Any]:
    """The proxy's TLS settings with ISSUED's certificate and the key of KEY_OF (its own by
    default), the HTTP redirect on."""
    return {
        "prosaas_proxy_tls_certificate": issued.certificate,
        "vault_prosaas_proxy_tls_key": (key_of or issued).key,
        "prosaas_proxy_http_redirect_port": 8082,
    }


def with_worker(change: Callable[[dict], None]) -> list[dict]:
    services = local_app_services()
    change(next(service for service in services if service["name"] == "worker"))
    return services


@dataclass(frozen=True)
class BadInput:
    name: str
    extravars: Callable[[Path], dict[str, Any]]
    names: tuple[str, ...]  # what the failure line must name
    migrate_image: str = ""  # a fixture giving the case's migrate image, if it has one


CASES = [
    BadInput(
        "wrong type: a service's env is a list",
        lambda _: {"prosaas_app_services": with_worker(lambda s: s.update(env=["A=1"]))},
        ("env",),
    ),
    BadInput(
        "unknown key in a service",
        lambda _: {"prosaas_app_services": with_worker(lambda s: s.update(imgae="x"))},
        ("imgae",),
    ),
    BadInput(
        "a service without an image",
        lambda _: {"prosaas_app_services": with_worker(lambda s: s.pop("image"))},
        ("image",),
    ),
    BadInput(
        "unknown top-level option value: a pin for a service that does not exist",
        lambda _: {"prosaas_app_pins": {"wrker": "v2"}},
        ("wrker",),
    ),
    BadInput(
        "placement: a service on a group the inventory does not have",
        lambda _: {
            "prosaas_service_groups": {
                "postgres": "prosaas_infra",
                "redis": "prosaas_infra",
                "prosaas-api": "prosaas_api",
                "prosaas-calls": "prosaas_api",
                "worker": "prosaas_wrker",
            }
        },
        ("prosaas_service_groups", "prosaas_wrker"),
    ),
    BadInput(
        "placement: a migration host outside the run",
        lambda _: {"prosaas_migration_host": "db9"},
        ("prosaas_migration_host", "db9"),
    ),
    BadInput(
        "image retention: keep the images of no release",
        lambda _: {"prosaas_image_retention": 0},
        ("prosaas_image_retention", "at least 1"),
    ),
    BadInput(
        "TLS: a certificate that does not match its key",
        lambda _: tls_settings(CA.issue("api.example.internal"), CA.issue("other")),
        ("prosaas_proxy_tls_certificate", "does not match", "prosaas_proxy_tls_key"),
    ),
    BadInput(
        "TLS: a certificate that expired",
        lambda _: tls_settings(CA.issue(not_before=NOW - 30 * DAY, not_after=NOW - DAY)),
        ("prosaas_proxy_tls_certificate", "expired on", "renew it"),
    ),
    *(
        BadInput(
            f"the app version {version!r} is not an image tag",
            lambda _, version=version: {"prosaas_app_version": version},
            (
                f"inventory: prosaas_app_version {version!r} is not a valid image tag:",
                "e.g. v2 or 2026.12.07-1",
            ),
        )
        for version in ("v2;id", "../v1", "")
    ),
    BadInput(
        "a migrate image whose lint refused a pending migration",
        lambda _: {},
        ("0109_call_log_timing.sql", "refused by the lint", "column-type-change"),
        migrate_image="unvouched_migrate_image",
    ),
]


RECORD.bad_input_cases = len(CASES) + 1  # and the wrong vault password


def not_failed(history: list[dict]) -> list[dict]:
    return [record for record in history if record["status"] != "failed"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_stops_before_anything_is_touched(
    v1_stack: Stack, case: BadInput, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stack = v1_stack
    before = {service: stack.container(service).id for service in APP_SERVICES}
    history = stack.history()
    extra = case.extravars(tmp_path)
    if case.migrate_image:
        extra["prosaas_migrate_image"] = request.getfixturevalue(case.migrate_image)

    run = stack.deploy("v2", **extra)

    assert run.rc != 0, run.describe()
    line = run.failure.strip()
    assert line and "\n" not in line, run.describe()
    assert_plain_failure_line(line)
    assert "Traceback" not in run.output
    for name in case.names:
        assert name in line, f"{name!r} not in {line!r}"
    assert {service: stack.container(service).id for service in APP_SERVICES} == before
    stack.assert_app_healthy_on("v1")
    assert not stack.lock_path.exists(), stack.lock()
    assert not_failed(stack.history()) == not_failed(history)  # no release started or done
    RECORD.bad_inputs[case.name] = line


def test_a_wrong_vault_password_stops_before_any_task() -> None:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PROSAAS_VAULT_PASSWORD": "not-the-password",
        "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "scripts" / "vault-password.sh"),
    }
    result = subprocess.run(
        ["ansible-playbook", "-i", "inventories/staging", "deploy.yml"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=120,
    )  # fmt: skip

    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert result.returncode != 0
    assert "TASK [" not in result.stdout  # nothing ran on any host
    assert errors, result.stderr
    assert "Decryption failed" in errors[0], result.stderr
    assert_plain_failure_line(errors[0])
    assert "Traceback" not in result.stderr
    RECORD.bad_inputs["a wrong vault password (staging inventory)"] = errors[0].strip()
