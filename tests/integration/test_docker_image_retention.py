"""docker_image_retention through Ansible against the real engine: the images of one
throwaway repository that nothing keeps go, those kept by tag or id and the one a stopped
container uses stay, another repository is left as it was; check mode removes nothing, and
a second run has nothing left to do."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from tests.conftest import run_module


@dataclass
class Images:
    """The test's images: tag name -> image id, in REPO (under retention) and OTHER (not)."""

    repo: str
    other: str
    ids: dict[str, str]
    container: str


def build(client: docker.DockerClient, base_image: str, tag: str) -> str:
    """A tiny image of its own id (a label tells it apart), FROM the base image; its id."""
    dockerfile = io.BytesIO(f"FROM {base_image}\nLABEL prosaas.test={tag}\n".encode())
    image, _ = client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    return image.id


@pytest.fixture
def images(docker_engine: docker.DockerClient, base_image: str) -> Iterator[Images]:
    """r1..r5 in a repository of this test's own, r5 used by a stopped container; r1 also
    tagged in a second repository, which has an image of its own; all removed afterwards."""
    unique = uuid.uuid4().hex[:8]
    repo, other = f"t-retain-{unique}/app", f"t-retain-{unique}/other"
    tags = [f"{repo}:r{number}" for number in range(1, 6)] + [f"{other}:own"]
    ids = {tag: build(docker_engine, base_image, tag) for tag in tags}
    docker_engine.images.get(f"{repo}:r1").tag(other, "r1")
    container = docker_engine.containers.create(f"{repo}:r5", ["true"], name=f"t-retain-{unique}")
    try:
        yield Images(repo, other, ids, container.name)
    finally:
        container.remove(force=True)
        for tag in [*tags, f"{other}:r1"]:
            with contextlib.suppress(ImageNotFound):  # removed by the test
                docker_engine.images.remove(tag)


def tags_of(client: docker.DockerClient, repository: str) -> set[str]:
    """The tags of REPOSITORY on the engine (its images' tags in other repositories aside)."""
    images = client.images.list(name=repository)
    return {tag for image in images for tag in image.tags if tag.startswith(f"{repository}:")}


def test_removes_what_nothing_keeps_or_uses_and_leaves_other_repositories(
    docker_engine: docker.DockerClient, images: Images, tmp_path: Path
) -> None:
    repo, other = images.repo, images.other
    args = {"keep": [f"{repo}:r2", images.ids[f"{repo}:r3"]], "repositories": [repo]}
    before = {repo: tags_of(docker_engine, repo), other: tags_of(docker_engine, other)}

    planned = run_module(tmp_path, "docker_image_retention", args, check=True)
    assert planned.rc == 0, planned.result
    assert planned.result["changed"] is True
    assert sorted(planned.result["removed"]) == [f"{repo}:r1", f"{repo}:r4"]
    assert {repo: tags_of(docker_engine, repo), other: tags_of(docker_engine, other)} == before

    first = run_module(tmp_path, "docker_image_retention", args)
    assert first.rc == 0, first.result
    assert first.result["changed"] is True
    assert sorted(first.result["removed"]) == [f"{repo}:r1", f"{repo}:r4"]
    assert sorted(first.result["kept"]) == [f"{repo}:r2", f"{repo}:r3", f"{repo}:r5"]
    assert tags_of(docker_engine, repo) == {f"{repo}:r2", f"{repo}:r3", f"{repo}:r5"}
    short = {tag: image_id.removeprefix("sha256:")[:12] for tag, image_id in images.ids.items()}
    assert f"removed {repo}:r4 (image {short[f'{repo}:r4']} deleted)" in first.result["actions"]
    assert (
        f"removed {repo}:r1 (image {short[f'{repo}:r1']} left: named in another repository,"
        " or a parent image)"
    ) in first.result["actions"]
    assert (
        f"kept {short[f'{repo}:r5']} ({repo}:r5): used by container {images.container}"
    ) in first.result["actions"]
    with pytest.raises(ImageNotFound):
        docker_engine.images.get(images.ids[f"{repo}:r4"])
    # r1's image stays under the other repository's tag, which is left alone.
    assert tags_of(docker_engine, other) == before[other]
    assert docker_engine.images.get(f"{other}:r1").id == images.ids[f"{repo}:r1"]

    second = run_module(tmp_path, "docker_image_retention", args)
    assert second.rc == 0, second.result
    assert second.result["changed"] is False
    assert second.result["removed"] == []
