"""docker_services through Ansible against the real engine: several services in one call."""

import contextlib
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import NotFound

from tests.conftest import run_module

IMAGE = "prosaas-demo/app:v1"
SECRET = "s3cret-" + uuid.uuid4().hex[:8]
PASSING_CHECK = {"test": ["CMD", "true"], "interval": 0.5, "retries": 1}
FAILING_CHECK = {"test": ["CMD", "false"], "interval": 0.5, "retries": 1}


@pytest.fixture
def batch(docker_engine: docker.DockerClient, demo_images: list[str]) -> Iterator[dict]:
    """Arguments for two small services (demo workers, no port) under a test prefix; cleanup."""
    prefix = f"t-svcs-{uuid.uuid4().hex[:8]}-"
    network = f"{prefix}net"
    entries = [
        {
            "name": name,
            "image": IMAGE,
            "command": ["worker"],
            "secret_env": {"DATABASE_URL": f"postgresql://u:{SECRET}@nowhere/db"},
            "healthcheck": PASSING_CHECK,
        }
        for name in ("one", "two")
    ]
    yield {
        "services": entries,
        "name_prefix": prefix,
        "network": network,
        "labels": {"prosaas.project": "t"},
        "create_labels": {"prosaas.release": "r1"},
        "wait_timeout": 30,
        "stop_timeout": 5,
    }
    for name in ("one", "two"):
        with contextlib.suppress(NotFound):
            docker_engine.containers.get(prefix + name).remove(force=True)
    with contextlib.suppress(NotFound):
        docker_engine.networks.get(network).remove()


def test_starts_every_service_waits_for_all_then_a_rerun_changes_nothing(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    first = run_module(tmp_path, "docker_services", batch)

    assert first.rc == 0, first.result
    assert first.result["changed"] is True
    assert [s["service"] for s in first.result["services"]] == ["one", "two"]
    assert [s["actions"] for s in first.result["services"]] == [
        [f"created network {batch['network']}", "created", "started"],
        ["created", "started"],
    ]
    assert sorted(first.result["waited"]) == [batch["name_prefix"] + n for n in ("one", "two")]
    for name in ("one", "two"):
        container = docker_engine.containers.get(batch["name_prefix"] + name)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.labels["prosaas.service"] == name
        assert container.labels["prosaas.release"] == "r1"
        aliases = container.attrs["NetworkSettings"]["Networks"][batch["network"]]["Aliases"]
        assert name in aliases
    assert SECRET not in first.stdout + str(first.result)

    second = run_module(tmp_path, "docker_services", {**batch, "create_labels": {"x": "r2"}})
    assert second.result["changed"] is False
    assert all(s["actions"] == [] for s in second.result["services"])


def test_containers_match_what_docker_service_makes(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    """A service first made by docker_service is found unchanged by docker_services."""
    entry = batch["services"][0]
    single = {
        **{key: entry[key] for key in ("image", "command", "secret_env", "healthcheck")},
        "name": batch["name_prefix"] + entry["name"],
        "network": batch["network"],
        "network_aliases": [entry["name"]],
        "labels": {**batch["labels"], "prosaas.service": entry["name"]},
        "wait": "running",
    }
    assert run_module(tmp_path, "docker_service", single).rc == 0

    run = run_module(tmp_path, "docker_services", {**batch, "services": [entry]})

    assert run.rc == 0, run.result
    assert run.result["services"][0]["actions"] == []


def test_check_mode_compares_and_creates_nothing(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    run = run_module(tmp_path, "docker_services", batch, check=True)

    assert run.rc == 0, run.result
    assert [s["actions"] for s in run.result["services"]] == [
        [f"would have created network {batch['network']}", "would have created"],
        ["would have created network " + batch["network"], "would have created"],
    ]
    assert "waited" not in run.result
    with pytest.raises(NotFound):
        docker_engine.containers.get(batch["name_prefix"] + "one")


def test_one_service_never_healthy_fails_naming_it_with_its_check_output(
    batch: dict, tmp_path
) -> None:
    batch["services"][1]["healthcheck"] = FAILING_CHECK
    batch["wait_timeout"] = 5

    run = run_module(tmp_path, "docker_services", batch)

    assert run.failed
    message = run.result["msg"]
    assert message.startswith(f"service {batch['name_prefix']}two: not healthy after 5 s")
    assert f"{batch['name_prefix']}one" not in message
    assert len(message.splitlines()) == 1
    assert [s["name"] for s in run.result["services"]] == [
        batch["name_prefix"] + n for n in ("one", "two")
    ]


def test_an_unknown_key_in_a_service_fails_before_anything_starts(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    batch["services"][0]["imgae"] = IMAGE

    run = run_module(tmp_path, "docker_services", batch)

    assert run.failed
    assert "imgae" in run.result["msg"]
    with pytest.raises(NotFound):
        docker_engine.containers.get(batch["name_prefix"] + "two")
