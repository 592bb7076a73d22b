"""docker_oneshot through Ansible itself, against the real Docker engine."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from tests.conftest import ModuleRun, engine_events, run_module

ENGINE = "unix:///var/run/docker.sock"
BASE_REPOSITORY = "prosaas-deploy/base"


@pytest.fixture(scope="module")
def base_image(docker_engine: docker.DockerClient) -> str:
    """The base image the set-up chose (BASE_IMAGE, exported by scripts/test.sh), else the
    newest offline base it built."""
    chosen = os.environ.get("BASE_IMAGE")
    if chosen and docker_engine.images.list(name=chosen):
        return chosen
    images = sorted(
        docker_engine.images.list(name=BASE_REPOSITORY), key=lambda image: image.attrs["Created"]
    )
    tags = [tag for image in images for tag in image.tags if tag.startswith(BASE_REPOSITORY)]
    if not tags:
        pytest.fail("no base image on the engine (BASE_IMAGE unset); run scripts/test.sh")
    return tags[-1]


@pytest.fixture
def name(docker_engine: docker.DockerClient) -> Iterator[str]:
    """A unique container name; whatever bears it is removed afterwards."""
    container_name = f"t-oneshot-{uuid.uuid4().hex[:10]}"
    try:
        yield container_name
    finally:
        remove_container(docker_engine, container_name)


def remove_container(client: docker.DockerClient, container_name: str) -> None:
    with contextlib.suppress(NotFound):
        client.containers.get(container_name).remove(force=True)


def container_exists(client: docker.DockerClient, container_name: str) -> bool:
    try:
        client.containers.get(container_name)
    except NotFound:
        return False
    return True


def oneshot(tmp_path: Path, **args: object) -> ModuleRun:
    return run_module(tmp_path, "docker_oneshot", args)


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def assert_one_line_failure(run: ModuleRun) -> str:
    assert run.failed, run.result
    assert run.rc != 0
    msg = run.result["msg"]
    assert "\n" not in msg
    assert "Traceback" not in run.stdout
    return msg


# --- runs to completion -------------------------------------------------------------


def test_success_returns_code_log_and_tail_and_removes_the_container(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    script = "echo to-stderr >&2; sleep 0.2; for i in $(seq 1 50); do echo line $i; done"
    run = oneshot(
        tmp_path, name=name, image=base_image, command=sh(script), log_tail_lines=10, timeout=60
    )

    assert run.rc == 0, run.result
    result = run.result
    assert result["changed"] is True
    assert result["exit_code"] == 0
    assert result["msg"].startswith(f"{name}: exited with code 0 after ")
    assert result["log"].startswith("to-stderr\nline 1\nline 2\n")
    assert result["log"].endswith("line 50\n")
    assert result["log_lines"] == [f"line {i}" for i in range(41, 51)]
    assert result["summary"] == {}  # no line of the log is a JSON object
    assert isinstance(result["duration"], float)
    assert 0 <= result["duration"] < 60
    assert result["image_id"] == docker_engine.images.get(base_image).id
    assert result["actions"][0] == f"created container {name}"
    assert result["actions"][1].startswith(f"ran {base_image} /bin/sh -c ")
    assert "exit code 0" in result["actions"][1]
    assert result["actions"][-1] == f"removed container {name}"
    assert not container_exists(docker_engine, name)


def test_the_summary_is_the_last_json_object_line_of_the_log_on_success_and_failure(
    tmp_path: Path, base_image: str, name: str
) -> None:
    lines = ['{"command": "up", "applied": []}', "applying 0109 ... done", '["not", "it"]']
    summary = {"command": "up", "applied": ["0109"], "exit_code": 0}
    script = "; ".join(f"echo '{line}'" for line in [*lines[:2], json.dumps(summary), lines[2]])
    run = oneshot(tmp_path, name=name, image=base_image, command=sh(script), timeout=60)
    assert run.rc == 0, run.result
    assert run.result["summary"] == summary

    failing = {"command": "up", "error": "lock timeout", "exit_code": 4}
    script = f"echo applying 0109 >&2; echo '{json.dumps(failing)}'; exit 4"
    run = oneshot(tmp_path, name=name, image=base_image, command=sh(script), timeout=60)
    assert run.failed, run.result
    assert run.result["summary"] == failing


def test_non_zero_exit_fails_with_code_and_log_tail_and_removes_the_container(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    script = "echo applying 0109; sleep 0.2; echo 'ERROR:  column \"x\" does not exist' >&2; exit 3"
    run = oneshot(tmp_path, name=name, image=base_image, command=sh(script))

    msg = assert_one_line_failure(run)
    assert msg == (
        f'{name}: exited with code 3; last log lines: applying 0109 | ERROR: column "x" does '
        "not exist"
    )
    assert run.result["exit_code"] == 3
    assert run.result["log_lines"][-1] == 'ERROR:  column "x" does not exist'
    assert run.result["actions"][-1] == f"removed container {name}"
    assert not container_exists(docker_engine, name)


def test_timeout_kills_and_removes_the_container_and_fails_quickly(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    started = time.monotonic()
    run = oneshot(
        tmp_path, name=name, image=base_image, command=sh("echo waiting; exec sleep 30"), timeout=2
    )
    elapsed = time.monotonic() - started

    msg = assert_one_line_failure(run)
    assert msg == f"{name}: timed out after 2 s (killed); last log lines: waiting"
    assert "exit_code" not in run.result
    assert 2 <= run.result["duration"] < 10
    assert elapsed < 20, f"the module took {elapsed:.1f} s to give up on a 2 s timeout"
    assert any("killed after" in action for action in run.result["actions"])
    assert not container_exists(docker_engine, name)


def test_wait_outlasts_the_api_timeout(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    """The known trap: the wait must not be one API call bounded by the API timeout."""
    run = oneshot(
        tmp_path,
        name=name,
        image=base_image,
        command=sh("sleep 3; echo done"),
        api_timeout=1,
        timeout=30,
    )

    assert run.rc == 0, run.result
    assert run.result["exit_code"] == 0
    assert run.result["log_lines"] == ["done"]
    assert run.result["duration"] >= 3
    assert not container_exists(docker_engine, name)


def test_container_that_cannot_start_fails_and_is_removed(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    run = oneshot(tmp_path, name=name, image=base_image, entrypoint=["/nonexistent/tool"])

    msg = assert_one_line_failure(run)
    assert msg.startswith(f"{name}: could not start: ")
    assert "/nonexistent/tool" in msg
    assert not container_exists(docker_engine, name)


def test_a_leftover_container_that_ended_is_replaced(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    leftover = docker_engine.containers.create(base_image, ["true"], name=name)

    run = oneshot(tmp_path, name=name, image=base_image, command=sh("echo fresh run"))

    assert run.rc == 0, run.result
    assert run.result["actions"][0] == f"removed leftover container {name} (created)"
    assert run.result["log"] == "fresh run\n"
    with pytest.raises(NotFound):
        leftover.reload()
    assert not container_exists(docker_engine, name)


def test_a_running_leftover_is_never_stopped_nor_run_beside(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    leftover = docker_engine.containers.create(
        base_image, ["sleep", "300"], name=name, labels={"prosaas.release": "r-lost"}
    )
    leftover.start()
    try:
        run = oneshot(
            tmp_path, name=name, image=base_image, command=sh("echo second"), await_timeout=1
        )
        msg = assert_one_line_failure(run)
        assert msg.startswith(f"{name}: container {name} of an earlier run is still running")
        assert "release r-lost) after waiting 1 s" in msg and f"docker wait {name}" in msg
        leftover.reload()
        assert leftover.status == "running"
        assert run.result["actions"] == []
    finally:
        leftover.remove(force=True)


def test_a_running_container_named_to_await_is_waited_for_until_it_ends(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    # Still running when the module looks: Ansible alone takes seconds to get there on a busy
    # machine.
    earlier = docker_engine.containers.create(base_image, ["sleep", "8"], name=f"{name}-earlier")
    earlier.start()
    try:
        run = oneshot(
            tmp_path,
            name=name,
            image=base_image,
            command=sh("echo after it"),
            await_containers=[f"{name}-earlier"],
            await_timeout=30,
        )
        assert run.rc == 0, run.result
        waited = run.result["actions"][0]
        assert waited.startswith("waited ") and waited.endswith(
            f"s for {name}-earlier, left running by an earlier run, to end: exit code 0"
        ), waited
        assert run.result["log"] == "after it\n"
    finally:
        earlier.remove(force=True)


def test_keep_container_keeps_a_container_without_restart_policy_or_ports(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    network = docker_engine.networks.create(f"{name}-net", driver="bridge")
    try:
        run = oneshot(
            tmp_path,
            name=name,
            image=base_image,
            command=sh("id -u"),
            user="1234:1234",
            network=network.name,
            labels={"prosaas.release": "r1"},
            keep_container=True,
        )
        assert run.rc == 0, run.result
        assert run.result["log_lines"] == ["1234"]
        assert run.result["actions"][-1] == f"kept container {name}"
        attrs = docker_engine.containers.get(name).attrs
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
        assert not attrs["HostConfig"].get("PortBindings")
        assert attrs["Config"]["Labels"]["prosaas.release"] == "r1"
        assert attrs["Config"]["Labels"]["prosaas.managed-by"] == "prosaas-deploy"
        assert list(attrs["NetworkSettings"]["Networks"]) == [network.name]
    finally:
        remove_container(docker_engine, name)
        network.remove()


def test_network_mode_host_runs_on_the_host_network(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    run = oneshot(
        tmp_path,
        name=name,
        image=base_image,
        command=sh("echo on the host network"),
        network_mode="host",
        keep_container=True,
    )

    assert run.rc == 0, run.result
    assert run.result["log_lines"] == ["on the host network"]
    assert docker_engine.containers.get(name).attrs["HostConfig"]["NetworkMode"] == "host"


# --- check mode ---------------------------------------------------------------------


def test_check_mode_runs_nothing(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    with engine_events(docker_engine, type="container") as events:
        run = run_module(
            tmp_path,
            "docker_oneshot",
            {"name": name, "image": base_image, "command": sh("echo should not run")},
            check=True,
        )

    assert run.rc == 0, run.result
    assert run.result["changed"] is True
    assert run.result["actions"] == [
        f"would have run {base_image} /bin/sh -c 'echo should not run'"
    ]
    assert "would have run" in run.result["msg"]
    assert "exit_code" not in run.result
    assert "log" not in run.result
    seen = [event for event in events if event["Actor"]["Attributes"].get("name") == name]
    assert seen == [], "check mode touched a container"
    assert not container_exists(docker_engine, name)


def test_check_mode_still_reports_a_missing_image(tmp_path: Path, name: str) -> None:
    run = run_module(
        tmp_path, "docker_oneshot", {"name": name, "image": "prosaas-demo/nope:v0"}, check=True
    )

    assert "image prosaas-demo/nope:v0 not found" in assert_one_line_failure(run)


# --- failures before anything runs --------------------------------------------------


def test_unknown_image_fails_with_one_line_naming_it(tmp_path: Path, name: str) -> None:
    run = oneshot(tmp_path, name=name, image="prosaas-demo/nope:v0", command=["true"])

    assert assert_one_line_failure(run) == (
        f"{name}: image prosaas-demo/nope:v0 not found on the engine at {ENGINE}: "
        "build or pull it first"
    )


def test_unreachable_engine_fails_with_one_line_naming_the_host(
    tmp_path: Path, base_image: str, name: str
) -> None:
    host = "unix:///nonexistent.sock"
    run = oneshot(tmp_path, name=name, image=base_image, docker_host=host)

    assert assert_one_line_failure(run).startswith(f"cannot reach the Docker engine at {host}: ")


def test_missing_network_fails_with_one_line_naming_it(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    network = f"{name}-no-such-net"
    run = oneshot(tmp_path, name=name, image=base_image, command=["true"], network=network)

    assert assert_one_line_failure(run) == (
        f"{name}: network {network} not found on the engine at {ENGINE}: create it first"
    )
    assert not container_exists(docker_engine, name)


def test_a_missing_network_is_created_when_asked(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    network = f"{name}-net"
    try:
        run = oneshot(
            tmp_path, name=name, image=base_image, command=sh("echo joined"),
            network=network, create_network=True,
        )  # fmt: skip
        assert run.rc == 0, run.result
        assert run.result["actions"][0] == f"created network {network}"
        assert run.result["log"] == "joined\n"
        assert docker_engine.networks.list(names=[network])
    finally:
        for found in docker_engine.networks.list(names=[network]):
            found.remove()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"timeout": "abc"}, "timeout"),
        ({"log_tail_lines": "many"}, "log_tail_lines"),
        ({"env": ["A=1"]}, "env"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"network": "a", "network_mode": "host"}, "mutually exclusive: network|network_mode"),
    ],
)
def test_bad_parameters_fail_naming_the_parameter(
    tmp_path: Path, base_image: str, name: str, args: dict, expected: str
) -> None:
    run = oneshot(tmp_path, name=name, image=base_image, command=["true"], **args)

    assert expected in assert_one_line_failure(run)


# --- secrets ------------------------------------------------------------------------


def test_secret_env_reaches_the_container_but_never_the_result(
    tmp_path: Path, docker_engine: docker.DockerClient, base_image: str, name: str
) -> None:
    secret = secrets.token_hex(16)
    # (no "{#" in the script: Ansible templates module arguments)
    script = 'echo "length $(printf %s "$DB_PASSWORD" | wc -c), visible=$VISIBLE"'
    run = oneshot(
        tmp_path,
        name=name,
        image=base_image,
        command=sh(script),
        env={"VISIBLE": "yes"},
        secret_env={"DB_PASSWORD": secret},
    )

    assert run.rc == 0, run.result
    assert run.result["log_lines"] == ["length 32, visible=yes"]
    assert secret not in json.dumps(run.result)
    assert secret not in run.stdout
    assert not container_exists(docker_engine, name)
