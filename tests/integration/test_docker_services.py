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
FAILING_CHECK = {
    "test": ["CMD-SHELL", "echo sick-check-output; exit 1"],
    "interval": 0.5,
    "retries": 1,
}


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


def container_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return client.containers.get(name).id
    except NotFound:
        return None


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


def test_a_changed_setting_recreates_only_that_service_and_names_it(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_services", batch)
    prefix = batch["name_prefix"]
    before = {name: container_id(docker_engine, prefix + name) for name in ("one", "two")}
    batch["services"][0]["env"] = {"LOG_LEVEL": "debug"}

    run = run_module(tmp_path, "docker_services", batch)

    assert run.rc == 0, run.result
    one, two = run.result["services"]
    assert one["differences"] == ["env (LOG_LEVEL)"]
    assert "recreated (differences: env (LOG_LEVEL))" in one["actions"]
    assert container_id(docker_engine, prefix + "one") != before["one"]
    assert "LOG_LEVEL=debug" in docker_engine.containers.get(prefix + "one").attrs["Config"]["Env"]
    assert (two["changed"], two["differences"]) == (False, [])
    assert container_id(docker_engine, prefix + "two") == before["two"]


def test_a_rotated_secret_recreates_without_showing_the_value(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_services", batch)
    rotated = f"postgresql://u:{SECRET}-rotated@nowhere/db"
    for entry in batch["services"]:
        entry["secret_env"] = {"DATABASE_URL": rotated}

    run = run_module(tmp_path, "docker_services", batch, diff=True)

    assert run.rc == 0, run.result
    assert [s["differences"] for s in run.result["services"]] == [
        ["secret_env (DATABASE_URL)"],
        ["secret_env (DATABASE_URL)"],
    ]
    assert SECRET not in run.stdout + str(run.result)
    container = docker_engine.containers.get(batch["name_prefix"] + "one")
    assert f"DATABASE_URL={rotated}" in container.attrs["Config"]["Env"]
    assert SECRET not in str(container.labels)


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


def test_check_mode_diff_shows_the_change_and_keeps_the_container(
    docker_engine: docker.DockerClient, batch: dict, tmp_path
) -> None:
    run_module(tmp_path, "docker_services", batch)
    name = batch["name_prefix"] + "one"
    before = container_id(docker_engine, name)
    batch["services"][0]["env"] = {"LOG_LEVEL": "debug"}

    run = run_module(tmp_path, "docker_services", batch, check=True, diff=True)

    assert run.rc == 0, run.result
    assert run.result["changed"] is True
    assert run.result["diff"][0]["before"]["env"] == {}
    assert run.result["diff"][0]["after"]["env"] == {"LOG_LEVEL": "debug"}
    assert "LOG_LEVEL" in run.stdout
    assert container_id(docker_engine, name) == before


def test_one_service_never_healthy_fails_naming_it_with_its_check_output(
    batch: dict, tmp_path
) -> None:
    batch["services"][1]["healthcheck"] = FAILING_CHECK
    batch["wait_timeout"] = 5

    run = run_module(tmp_path, "docker_services", batch)

    assert run.failed
    message = run.result["msg"]
    assert message.startswith(f"service {batch['name_prefix']}two: not healthy after 5 s")
    assert "sick-check-output" in message
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


@pytest.mark.parametrize(
    ("entry", "module", "expected"),
    [
        (
            {"image": "prosaas-demo/app:no-such-tag"},
            {},
            "image prosaas-demo/app:no-such-tag not found",
        ),
        ({"ports": ["not-a-port"]}, {}, "port 'not-a-port' is not"),
        ({"restart_policy": "sometimes"}, {}, "restart_policy"),
        (
            {},
            {"docker_host": "unix:///nonexistent.sock"},
            "cannot reach the Docker engine at unix:///",
        ),
        ({}, {"wait_timeout": "soon"}, "wait_timeout"),
    ],
)
def test_failures_are_one_line_naming_what_is_wrong(
    batch: dict, tmp_path, entry: dict, module: dict, expected: str
) -> None:
    batch["services"][0].update(entry)

    run = run_module(tmp_path, "docker_services", {**batch, **module})

    assert run.failed
    assert expected in run.result["msg"]
    assert "\n" not in run.result["msg"]
    assert "Traceback" not in run.stdout
    assert SECRET not in run.stdout + str(run.result)
