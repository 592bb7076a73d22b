"""deploy.yml against the real engine: the local stack comes up healthy, and a re-run is a no-op."""

import docker

from tests.conftest import IsolatedStack, host_stats, run_playbook

APP_SERVICES = ("prosaas-api", "prosaas-calls", "worker")
INFRA_SERVICES = ("postgres", "redis")


def health_of(client: docker.DockerClient, name: str) -> str:
    container = client.containers.get(name)
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def test_deploy_brings_the_stack_up_healthy_and_rerun_changes_nothing(
    docker_engine: docker.DockerClient, isolated_stack: IsolatedStack, tmp_path
) -> None:
    first = run_playbook("deploy.yml", tmp_path, isolated_stack.extravars)
    stats = host_stats(first)
    assert first.rc == 0, first.stdout.read()
    assert stats["failures"] == 0
    assert stats["changed"] > 0

    for service in INFRA_SERVICES + APP_SERVICES:
        name = f"{isolated_stack.prefix}{service}"
        assert health_of(docker_engine, name) == "healthy", name
        labels = docker_engine.containers.get(name).labels
        assert labels["prosaas.service"] == service
        assert labels["prosaas.project"] == "prosaas"

    second = run_playbook("deploy.yml", tmp_path, isolated_stack.extravars)
    assert second.rc == 0
    assert host_stats(second)["changed"] == 0


def test_deploy_fails_in_preflight_on_a_missing_image_and_starts_nothing(
    docker_engine: docker.DockerClient, isolated_stack: IsolatedStack, tmp_path
) -> None:
    extravars = {**isolated_stack.extravars, "prosaas_app_version": "no-such-tag"}
    result = run_playbook("deploy.yml", tmp_path, extravars)
    output = result.stdout.read()
    assert result.rc != 0
    assert "images not found on the engine" in output
    assert "prosaas-demo/app:no-such-tag" in output
    assert (
        docker_engine.containers.list(all=True, filters={"name": f"^{isolated_stack.prefix}"}) == []
    )
