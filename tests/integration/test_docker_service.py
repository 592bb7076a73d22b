"""docker_service through Ansible against the real engine: create, change, re-run, fail."""

import contextlib
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import NotFound

from tests.conftest import ModuleRun, run_module

IMAGE = "prosaas-demo/app:v1"
SECRET = "s3cret-" + uuid.uuid4().hex[:8]
# A health check the container can pass without a database.
PASSING_CHECK = {"test": ["CMD", "true"], "interval": 0.5, "retries": 1}


@pytest.fixture
def service(docker_engine: docker.DockerClient, demo_images: list[str]) -> Iterator[dict]:
    """Arguments of a small service (the demo worker, which needs no port) and its cleanup."""
    name = f"t-svc-{uuid.uuid4().hex[:8]}"
    yield {
        "name": name,
        "image": IMAGE,
        "command": ["worker"],
        "env": {"LOG_LEVEL": "info"},
        "secret_env": {"DATABASE_URL": f"postgresql://u:{SECRET}@nowhere/db"},
        "healthcheck": PASSING_CHECK,
        "labels": {"prosaas.project": "t"},
        "wait": "healthy",
        "wait_timeout": 30,
        "stop_timeout": 5,
    }
    with contextlib.suppress(NotFound):
        docker_engine.containers.get(name).remove(force=True)


def container_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return client.containers.get(name).id
    except NotFound:
        return None


def assert_no_secret(run: ModuleRun) -> None:
    assert SECRET not in run.stdout
    assert SECRET not in str(run.result)


def test_create_then_rerun_reports_no_change(
    docker_engine: docker.DockerClient, service: dict, tmp_path
) -> None:
    first = run_module(tmp_path, "docker_service", service)
    assert first.rc == 0, first.result
    assert first.result["changed"] is True
    assert first.result["actions"][0] == "created"
    assert first.result["container"]["health"] == "healthy"
    assert_no_secret(first)

    second = run_module(tmp_path, "docker_service", service)
    assert second.result["changed"] is False
    assert second.result["differences"] == []
    assert container_id(docker_engine, service["name"]) is not None


def test_changed_env_recreates_and_names_the_difference(
    docker_engine: docker.DockerClient, service: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_service", service)
    before = container_id(docker_engine, service["name"])

    changed = run_module(tmp_path, "docker_service", {**service, "env": {"LOG_LEVEL": "debug"}})

    assert changed.result["changed"] is True
    assert changed.result["differences"] == ["env (LOG_LEVEL)"]
    assert container_id(docker_engine, service["name"]) != before
    env = docker_engine.containers.get(service["name"]).attrs["Config"]["Env"]
    assert "LOG_LEVEL=debug" in env


def test_changed_secret_recreates_without_showing_the_value(
    docker_engine: docker.DockerClient, service: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_service", service)
    rotated = {"DATABASE_URL": f"postgresql://u:{SECRET}-rotated@nowhere/db"}

    changed = run_module(tmp_path, "docker_service", {**service, "secret_env": rotated}, diff=True)

    assert changed.result["differences"] == ["secret_env (DATABASE_URL)"]
    assert_no_secret(changed)
    labels = docker_engine.containers.get(service["name"]).labels
    assert SECRET not in str(labels)


def test_check_mode_changes_nothing_and_diff_shows_the_change(
    docker_engine: docker.DockerClient, service: dict, tmp_path
) -> None:
    planned = run_module(tmp_path, "docker_service", service, check=True)
    assert planned.result["changed"] is True
    assert planned.result["actions"] == ["would have created"]
    assert container_id(docker_engine, service["name"]) is None

    run_module(tmp_path, "docker_service", service)
    before = container_id(docker_engine, service["name"])
    new_env = {**service, "env": {"LOG_LEVEL": "debug"}}
    diffed = run_module(tmp_path, "docker_service", new_env, check=True, diff=True)

    assert diffed.result["changed"] is True
    assert diffed.result["diff"]["before"]["env"] == {"LOG_LEVEL": "info"}
    assert diffed.result["diff"]["after"]["env"] == {"LOG_LEVEL": "debug"}
    assert "LOG_LEVEL" in diffed.stdout
    assert container_id(docker_engine, service["name"]) == before


def test_stop_is_graceful_and_absent_removes(
    docker_engine: docker.DockerClient, service: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_service", service)

    stopped = run_module(tmp_path, "docker_service", {**service, "state": "stopped"})
    assert stopped.result["actions"] == ["stopped"]
    state = docker_engine.containers.get(service["name"]).attrs["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0  # stopped by SIGTERM, not killed
    assert (
        run_module(tmp_path, "docker_service", {**service, "state": "stopped"}).result["changed"]
        is False
    )

    removed = run_module(tmp_path, "docker_service", {**service, "state": "absent"})
    assert removed.result["changed"] is True
    assert container_id(docker_engine, service["name"]) is None


def test_never_healthy_fails_with_the_last_health_check_output(service: dict, tmp_path) -> None:
    never = {**service, "env": {"DEMO_FAIL_HEALTH": "1"}, "wait_timeout": 8, "healthcheck": None}
    run = run_module(tmp_path, "docker_service", never)
    assert run.failed
    message = run.result["msg"]
    assert message.startswith(f"service {service['name']}: not healthy after 8 s")
    assert "forced unhealthy (DEMO_FAIL_HEALTH=1)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"image": "prosaas-demo/app:no-such-tag"}, "image prosaas-demo/app:no-such-tag not found"),
        ({"docker_host": "unix:///nonexistent.sock"}, "cannot reach the Docker engine at unix:///"),
        ({"ports": ["not-a-port"]}, "port 'not-a-port' is not"),
        ({"wait_timeout": "soon"}, "wait_timeout"),
        ({"state": "running"}, "state"),
    ],
)
def test_failures_are_one_line_naming_what_is_wrong(
    service: dict, tmp_path, override: dict, expected: str
) -> None:
    run = run_module(tmp_path, "docker_service", {**service, **override})
    assert run.failed
    assert expected in run.result["msg"]
    assert "\n" not in run.result["msg"]
    assert "Traceback" not in run.stdout
    assert_no_secret(run)
