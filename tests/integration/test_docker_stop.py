"""docker_stop through Ansible against the real engine: all at once, gracefully, idempotent."""

import contextlib
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.conftest import run_module


@pytest.fixture
def workers(docker_engine: docker.DockerClient, demo_images: list[str]) -> Iterator[list[str]]:
    """Two running demo workers (they exit 0 on SIGTERM)."""
    names = [f"t-stop-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        docker_engine.containers.run("prosaas-demo/app:v1", ["worker"], name=name, detach=True)
    yield names
    for name in names:
        docker_engine.containers.get(name).remove(force=True)


def status(client: docker.DockerClient, name: str) -> str:
    return client.containers.get(name).status


def test_stops_every_container_gracefully_then_reports_no_change(
    docker_engine: docker.DockerClient, workers: list[str], tmp_path
) -> None:
    names = [*workers, "t-stop-no-such"]

    planned = run_module(tmp_path, "docker_stop", {"names": names}, check=True, diff=True)
    assert planned.result["changed"] is True
    assert {status(docker_engine, name) for name in workers} == {"running"}

    first = run_module(tmp_path, "docker_stop", {"names": names, "timeout": 10})
    assert first.rc == 0, first.result
    assert first.result["changed"] is True
    assert first.result["stopped"] == workers
    for name, action in zip(workers, first.result["actions"], strict=False):
        assert action.startswith(f"stopped {name} (exit code 0, ")  # SIGTERM, not SIGKILL
    assert first.result["actions"][-1] == "no container t-stop-no-such"
    assert {status(docker_engine, name) for name in workers} == {"exited"}

    second = run_module(tmp_path, "docker_stop", {"names": names})
    assert second.result["changed"] is False
    assert second.result["actions"][0] == f"{workers[0]} was already exited"


@pytest.fixture
def kept(docker_engine: docker.DockerClient, demo_images: list[str]) -> Iterator[list[str]]:
    """Two running demo workers; the first has a stopped NAME-previous beside it, as a
    replacement beside leaves it, the second none."""
    names = [f"t-stop-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        docker_engine.containers.run("prosaas-demo/app:v1", ["worker"], name=name, detach=True)
    docker_engine.containers.create("prosaas-demo/app:v1", ["worker"], name=f"{names[0]}-previous")
    yield names
    for name in [*names, f"{names[0]}-previous"]:
        with contextlib.suppress(docker.errors.NotFound):
            docker_engine.containers.get(name).remove(force=True)


def test_previous_removes_only_the_containers_a_replacement_kept(
    docker_engine: docker.DockerClient, kept: list[str], tmp_path
) -> None:
    args = {"names": kept, "previous": True, "remove": True}
    kept_one = f"{kept[0]}-previous"

    planned = run_module(tmp_path, "docker_stop", args, check=True)
    assert planned.rc == 0, planned.result
    assert planned.result["removed"] == [kept_one]
    assert status(docker_engine, kept_one) == "created"

    first = run_module(tmp_path, "docker_stop", args)
    assert first.rc == 0, first.result
    assert first.result["changed"] is True
    assert first.result["removed"] == [kept_one]
    assert first.result["stopped"] == []
    assert first.result["actions"] == [
        f"{kept_one} was already created",
        f"no container {kept[1]}-previous",
    ]
    with pytest.raises(docker.errors.NotFound):
        docker_engine.containers.get(kept_one)
    assert {status(docker_engine, name) for name in kept} == {"running"}

    second = run_module(tmp_path, "docker_stop", args)
    assert second.result["changed"] is False
    assert second.result["removed"] == []


def test_unreachable_engine_is_one_line(tmp_path) -> None:
    run = run_module(
        tmp_path, "docker_stop", {"names": ["x"], "docker_host": "unix:///nonexistent.sock"}
    )
    assert run.failed
    assert run.result["msg"].startswith(
        "cannot reach the Docker engine at unix:///nonexistent.sock"
    )
