"""docker_stop through Ansible against the real engine: all at once, gracefully, idempotent."""

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


def test_unreachable_engine_is_one_line(tmp_path) -> None:
    run = run_module(
        tmp_path, "docker_stop", {"names": ["x"], "docker_host": "unix:///nonexistent.sock"}
    )
    assert run.failed
    assert run.result["msg"].startswith(
        "cannot reach the Docker engine at unix:///nonexistent.sock"
    )
