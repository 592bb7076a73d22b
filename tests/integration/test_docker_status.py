"""docker_status through Ansible against the real engine: what runs, what is absent."""

import time
import uuid

import docker

from tests.conftest import run_module


def test_reports_running_stopped_and_absent_containers(
    docker_engine: docker.DockerClient, demo_images: list[str], tmp_path
) -> None:
    prefix = f"t-status-{uuid.uuid4().hex[:8]}-"
    labels = {"prosaas.service": "worker", "prosaas.release": "r1", "prosaas.version": "v1"}
    running = docker_engine.containers.run(
        "prosaas-demo/app:v1", ["worker"], name=f"{prefix}up", detach=True, labels=labels
    )
    stopped = docker_engine.containers.create("prosaas-demo/app:v1", name=f"{prefix}down")
    try:
        names = [f"{prefix}up", f"{prefix}down", f"{prefix}gone"]
        run = run_module(tmp_path, "docker_status", {"names": names}, check=True)
    finally:
        running.remove(force=True)
        stopped.remove(force=True)

    assert run.rc == 0, run.result
    assert run.result["changed"] is False
    up, down, gone = run.result["containers"]
    assert (up["status"], up["image"], up["release"], up["version"]) == (
        "running", "prosaas-demo/app:v1", "r1", "v1",
    )  # fmt: skip
    assert up["service"] == "worker"
    assert down["status"] == "created"
    assert (gone["status"], gone["id"]) == ("absent", "")
    assert run.result["running"] == [f"{prefix}up"]
    assert run.result["engine_version"]


def test_unreachable_engine_is_one_line(tmp_path) -> None:
    run = run_module(
        tmp_path, "docker_status", {"names": ["x"], "docker_host": "unix:///nonexistent.sock"}
    )
    assert run.failed
    assert run.result["msg"].startswith(
        "cannot reach the Docker engine at unix:///nonexistent.sock"
    )
    assert "\n" not in run.result["msg"]


def test_log_lines_returns_the_last_lines_of_each_log(
    docker_engine: docker.DockerClient, demo_images: list[str], tmp_path
) -> None:
    name = f"t-status-{uuid.uuid4().hex[:8]}-log"
    script = "import time; print('one'); print('two'); print('three', flush=True); time.sleep(60)"
    container = docker_engine.containers.run(
        "prosaas-demo/app:v1", name=name, detach=True, entrypoint=["python3", "-c", script]
    )
    try:
        deadline = time.monotonic() + 20
        while b"three" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        run = run_module(tmp_path, "docker_status", {"names": [name, "t-no-such"], "log_lines": 2})
    finally:
        container.remove(force=True)

    assert run.rc == 0, run.result
    assert [entry["log"] for entry in run.result["containers"]] == [["two", "three"], []]
