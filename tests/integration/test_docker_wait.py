"""docker_wait through Ansible against the real engine: all healthy together, or one line each."""

import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.conftest import run_module

IMAGE = "prosaas-demo/app:v1"


@pytest.fixture
def start_worker(docker_engine: docker.DockerClient, demo_images: list[str]) -> Iterator:
    """Start a demo worker container with the given health check and environment."""
    started = []

    def start(
        healthcheck: dict | None = None, env: dict | None = None, exit_code: int | None = None
    ) -> str:
        name = f"t-wait-{uuid.uuid4().hex[:8]}"
        exits = ["python3", "-c", f"raise SystemExit({exit_code})"]
        entrypoint = None if exit_code is None else exits
        docker_engine.containers.run(
            IMAGE, ["worker"], name=name, detach=True, environment=env or {},
            healthcheck=healthcheck, entrypoint=entrypoint,
        )  # fmt: skip
        started.append(name)
        return name

    yield start
    for name in started:
        docker_engine.containers.get(name).remove(force=True)


PASSING = {"test": ["CMD", "true"], "interval": 500_000_000, "retries": 1}


def test_waits_for_every_container_and_reports_each_time(start_worker, tmp_path) -> None:
    names = [start_worker(PASSING), start_worker(PASSING)]

    run = run_module(tmp_path, "docker_wait", {"names": names, "timeout": 30})

    assert run.rc == 0, run.result
    assert run.result["changed"] is False
    assert sorted(run.result["waited"]) == sorted(names)
    assert all(0 <= seconds < 30 for seconds in run.result["waited"].values())


def test_one_never_healthy_fails_naming_it_with_its_health_output(start_worker, tmp_path) -> None:
    healthy = start_worker(PASSING)
    sick = start_worker(env={"DEMO_FAIL_HEALTH": "1"})

    run = run_module(tmp_path, "docker_wait", {"names": [healthy, sick], "timeout": 8})

    assert run.failed
    message = run.result["msg"]
    assert message.startswith(f"service {sick}: not healthy after 8 s")
    assert "forced unhealthy (DEMO_FAIL_HEALTH=1)" in message
    assert healthy not in message
    assert "\n" not in message


def test_exited_container_fails_before_the_timeout(start_worker, tmp_path) -> None:
    gone = start_worker(PASSING, exit_code=3)

    run = run_module(tmp_path, "docker_wait", {"names": [gone], "timeout": 60})

    assert run.failed
    assert run.result["msg"].startswith(f"service {gone}: ")
    assert "exited with code 3" in run.result["msg"]


def test_unknown_container_is_named(tmp_path, docker_engine) -> None:
    run = run_module(tmp_path, "docker_wait", {"names": ["t-wait-no-such"], "timeout": 5})

    assert run.failed
    assert run.result["msg"] == "no such container: t-wait-no-such"
