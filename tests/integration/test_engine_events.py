"""tests.conftest.engine_events, which the tests that assert what the engine did not do
(no container created, none touched) rely on: it sees what happens inside its block."""

from __future__ import annotations

import uuid

import docker

from tests.conftest import engine_events


def test_the_events_of_the_block_are_seen_and_those_after_it_are_not(
    docker_engine: docker.DockerClient, base_image: str
) -> None:
    name = f"t-events-{uuid.uuid4().hex[:8]}"  # a name scripts/setup.sh knows
    try:
        with engine_events(docker_engine, type="container", event="create") as created:
            docker_engine.containers.create(base_image, ["true"], name=name)
        docker_engine.containers.get(name).remove()
        docker_engine.containers.create(base_image, ["true"], name=name)
        names = [event["Actor"]["Attributes"]["name"] for event in created]
        assert [seen for seen in names if seen == name] == [name]
    finally:
        for container in docker_engine.containers.list(all=True, filters={"name": name}):
            container.remove(force=True)
