"""The session's private registry (tests/registry.py): HTTPS with a certificate of the session
CA and htpasswd auth; the demo images pushed (with the docker_release module's push) and
served at the digests the pushes returned; a tag re-pushed with another image and put back.
A test host on the registry's network trusts the CA through the prepare role's registry
tasks (idempotent, check mode) and then reaches the registry by its name, over TLS checked
against that CA."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import ModuleRun, host_stats, registry_images, run_module, trust_registry
from tests.pg_cluster import free_loopback_port
from tests.registry import (
    ENGINE_CERTS_DIR,
    Registry,
    RegistryError,
    engine_trusts,
    push_images,
    repushed,
)
from tests.ssh_hosts import SessionKeys, SshHost, host_image, remove_host, start_host

DEMO_REPOSITORIES = [  # every image a deploy pulls: the demo's and the proxy
    "prosaas-demo/app",
    "prosaas-demo/migrate",
    "prosaas-demo/redis",
    "prosaas-deploy/proxy",
]
# What the host's python3 makes of https://<registry>:5000/v2/: an HTTP status, or the
# reason the connection failed. CA file: argv[2], none for the system's CAs only.
FETCH_V2 = """
import ssl, sys, urllib.error, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2] if len(sys.argv) > 2 else None)
try:
    urllib.request.urlopen(f"https://{sys.argv[1]}/v2/", context=context, timeout=10)
except urllib.error.HTTPError as error:
    print(error.code)
except urllib.error.URLError as error:
    print(type(error.reason).__name__)
"""


def test_the_registry_refuses_requests_without_the_right_password(registry: Registry) -> None:
    status, headers, _ = registry.get("/v2/", auth=False)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="prosaas-registry"'

    wrong = dataclasses.replace(registry, password=f"not-{registry.password}")
    assert wrong.get("/v2/")[0] == 401
    assert registry.get("/v2/")[0] == 200


def test_the_registry_serves_the_demo_images_at_the_digests_the_push_printed(
    registry: Registry, demo_images: list[str]
) -> None:
    # Other tests of the session may push more tags; the demo's are there, as pushed.
    pushed = registry_images(demo_images)
    assert set(pushed) <= set(registry.digests)
    assert all(registry.digests[ref].startswith("sha256:") for ref in pushed)

    status, _, body = registry.get("/v2/_catalog")
    assert status == 200
    assert json.loads(body)["repositories"] == DEMO_REPOSITORIES
    status, _, body = registry.get("/v2/prosaas-demo/app/tags/list")
    assert {"v1", "v2"} <= set(json.loads(body)["tags"])
    served = {ref: registry.manifest_digest(ref) for ref in pushed}
    assert served == {ref: registry.digests[ref] for ref in pushed}


def test_a_tag_pushed_with_another_image_moves_and_comes_back(registry: Registry) -> None:
    v1, v2 = registry.digests["prosaas-demo/app:v1"], registry.digests["prosaas-demo/app:v2"]
    assert v1 != v2

    with repushed(registry, "prosaas-demo/app:v1", "prosaas-demo/app:v2") as digest:
        assert digest == v1
        assert registry.manifest_digest("prosaas-demo/app:v2") == v1

    assert registry.manifest_digest("prosaas-demo/app:v2") == v2
    assert registry.digests["prosaas-demo/app:v2"] == v2


def test_the_engine_here_trusts_the_ca_only_while_asked(registry: Registry, tmp_path: Path) -> None:
    session_file = ENGINE_CERTS_DIR / registry.loopback / "ca.crt"
    assert session_file.read_text() == registry.ca_path.read_text()

    certs_dir = tmp_path / "certs.d"
    with engine_trusts(registry, certs_dir) as trusted:
        assert trusted == certs_dir / registry.loopback / "ca.crt"
        assert trusted.read_text() == registry.ca_path.read_text()
        assert trusted.stat().st_mode & 0o777 == 0o644
    assert not certs_dir.exists()


def test_a_push_keeps_no_login_behind(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    digest = registry.digests["prosaas-demo/redis:7"]

    assert push_images(registry, ["prosaas-demo/redis:7"]) == {"prosaas-demo/redis:7": digest}
    assert list(tmp_path.iterdir()) == []


def test_a_push_the_registry_refuses_says_why_without_the_password(registry: Registry) -> None:
    wrong = dataclasses.replace(registry, password=f"not-{registry.password}", digests={})
    with pytest.raises(RegistryError) as refused:
        push_images(wrong, ["prosaas-demo/redis:7"])

    message = str(refused.value)
    assert "the registry refused the credentials of prosaas-ci" in message
    assert "\n" not in message
    assert registry.password not in message
    assert wrong.password not in message


# --- A test host on the registry's network --------------------------------------------


@pytest.fixture(scope="module")
def registry_host(
    docker_engine: docker.DockerClient, base_image: str, ssh_keys: SessionKeys, registry: Registry
) -> Iterator[SshHost]:
    """A bare test host of this module on the registry's network, removed after it."""
    image = host_image(docker_engine, base_image)
    name = f"pdtrust-{uuid.uuid4().hex[:6]}"
    host = start_host(docker_engine, image, name, ssh_keys, network=registry.network)
    try:
        yield host
    finally:
        remove_host(docker_engine, host)


def host_output(host: SshHost, *command: str) -> str:
    result = host.container.exec_run(list(command))
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


def test_a_host_trusts_the_registry_ca_through_the_prepare_role(
    registry_host: SshHost, ssh_keys: SessionKeys, registry: Registry, tmp_path: Path
) -> None:
    ca_file = f"/etc/docker/certs.d/{registry.address}/ca.crt"
    trust = registry.inventory_vars()

    check = trust_registry(registry_host, ssh_keys, trust, tmp_path, "--check")
    assert check.rc == 0
    assert host_stats(check, registry_host.name)["changed"] == 2
    assert registry_host.container.exec_run(["test", "-e", ca_file]).exit_code == 1

    first = trust_registry(registry_host, ssh_keys, trust, tmp_path)
    assert first.rc == 0
    assert host_stats(first, registry_host.name)["changed"] == 2
    assert host_output(registry_host, "stat", "-c", "%U:%G %a", ca_file) == "root:root 644"
    assert host_output(registry_host, "cat", ca_file) == registry.ca_path.read_text().strip()

    again = trust_registry(registry_host, ssh_keys, trust, tmp_path)
    assert again.rc == 0
    assert host_stats(again, registry_host.name)["changed"] == 0

    fetch = ["python3", "-c", FETCH_V2, registry.address]
    assert host_output(registry_host, *fetch, ca_file) == "401"
    assert host_output(registry_host, *fetch) == "SSLCertVerificationError"


def test_a_registry_without_a_ca_writes_nothing_and_one_without_a_host_is_refused(
    registry_host: SshHost, ssh_keys: SessionKeys, registry: Registry, tmp_path: Path
) -> None:
    public = f"{registry.name}-public.example:443"
    system_cas = {"prosaas_registry": {"host": public}, "prosaas_registry_ca": ""}
    run = trust_registry(registry_host, ssh_keys, system_cas, tmp_path)
    assert run.rc == 0
    assert host_stats(run, registry_host.name)["changed"] == 0
    folder = f"/etc/docker/certs.d/{public}"
    assert registry_host.container.exec_run(["test", "-e", folder]).exit_code == 1

    no_host = {**registry.inventory_vars(), "prosaas_registry": {"user": registry.user}}
    run = trust_registry(registry_host, ssh_keys, no_host, tmp_path)
    assert run.rc != 0
    assert "prosaas_registry needs a host" in run.stdout.read()


# --- docker_pull against the registry ---------------------------------------------------


def pull(tmp_path: Path, registry: Registry, images: list[str], **options: object) -> ModuleRun:
    """docker_pull through Ansible on this machine's engine, from the registry's loopback
    address, with the registry's user and OPTIONS (registry_password, check, ...)."""
    check = bool(options.pop("check", False))
    args = {
        "images": images,
        "registry": {"host": registry.loopback, "user": registry.user},
        "registry_password": registry.password,
        **options,
    }
    return run_module(tmp_path, "docker_pull", args, check=check)


def test_docker_pull_pins_each_image_at_the_digest_the_registry_serves(
    registry: Registry, tmp_path: Path
) -> None:
    reference = f"{registry.loopback}/prosaas-demo/redis:7"
    pinned = f"{registry.loopback}/prosaas-demo/redis@{registry.digests['prosaas-demo/redis:7']}"

    looked_up = pull(tmp_path, registry, [reference], check=True)
    assert not looked_up.failed, looked_up.result
    assert looked_up.result["digests"] == {reference: pinned}
    assert not looked_up.result["changed"]

    first = pull(tmp_path, registry, [reference])
    assert not first.failed, first.result
    assert first.result["digests"] == {reference: pinned}
    again = pull(tmp_path, registry, [reference])
    assert again.result["pulls"][0]["layers_pulled"] == 0
    assert not again.result["changed"]
    # Everything is on the engine: no login, so not even a wrong password matters.
    wrong = f"not-{registry.password}"
    present = pull(tmp_path, registry, [pinned], only_missing=True, registry_password=wrong)
    assert not present.failed, present.result
    assert present.result["actions"] == [f"{pinned} already on the engine"], present.result
    for run in (looked_up, first, again):
        assert registry.password not in json.dumps(run.result) + run.stdout


@pytest.mark.parametrize(
    ("case", "advice"),
    [
        ("wrong password", "the registry refused the credentials of prosaas-ci"),
        ("tag not pushed", "prosaas-demo/app:v9 is not in the registry"),
        ("registry down", "unreachable from the host"),
    ],
)
def test_docker_pull_fails_on_one_line_that_says_what_to_do(
    registry: Registry, tmp_path: Path, case: str, advice: str
) -> None:
    wrong = f"not-{registry.password}"
    image, password, at = "prosaas-demo/app:v2", registry.password, registry
    if case == "wrong password":
        password = wrong
    elif case == "tag not pushed":
        image = "prosaas-demo/app:v9"
    else:
        at = dataclasses.replace(registry, port=free_loopback_port())
    run = pull(tmp_path, at, [f"{at.loopback}/{image}"], registry_password=password)

    assert run.failed
    message = run.result["msg"]
    assert message.startswith("pull of "), message
    assert advice in message, message
    assert "\n" not in message
    assert registry.password not in json.dumps(run.result) + run.stdout
    assert wrong not in json.dumps(run.result) + run.stdout
