"""Image retention logic (module_utils/prosaas_retention.py): what the history keeps, and the
verdict on each image of the engine."""

from __future__ import annotations

from typing import Any

import pytest
from prosaas_retention import image_users, judge_all, repository, retained_images

REGISTRY = "registry.example.internal:5000"
APP = f"{REGISTRY}/prosaas/app"
MIGRATE = f"{REGISTRY}/prosaas/migrate"


def release(number: int, status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r{number}",
        "status": status,
        "images": {"prosaas-api": f"{APP}@sha256:{number}", "worker": f"{APP}@sha256:{number}"},
        "migrate_image": f"{MIGRATE}@sha256:{number}",
        **extra,
    }


def image(image_id: str, tags: list[str] | None = None, digests: list[str] | None = None) -> dict:
    """An image as the engine lists it (RepoTags is null for an untagged image)."""
    return {"Id": image_id, "RepoTags": tags, "RepoDigests": digests or []}


# --- What the history keeps -------------------------------------------------------------


def test_retained_images_are_those_of_the_newest_succeeded_releases_newest_first() -> None:
    releases = [
        release(1),
        release(2),
        release(3, "failed"),
        release(4),
        release(5, "in_progress"),
    ]
    assert retained_images(releases, 2) == [
        f"{APP}@sha256:4",
        f"{MIGRATE}@sha256:4",
        f"{APP}@sha256:2",
        f"{MIGRATE}@sha256:2",
    ]


def test_a_rollback_record_keeps_what_it_runs_and_each_image_is_named_once() -> None:
    rollback = {**release(1), "id": "r3-rollback", "kind": "rollback", "restores": "r1"}
    assert retained_images([release(1), release(2), rollback], 2) == [
        f"{APP}@sha256:1",
        f"{MIGRATE}@sha256:1",
        f"{APP}@sha256:2",
        f"{MIGRATE}@sha256:2",
    ]


def test_retained_images_take_what_there_is_and_skip_a_missing_migrate_image() -> None:
    assert retained_images([release(1, migrate_image=None)], 5) == [f"{APP}@sha256:1"]
    assert retained_images([], 5) == []


def test_keeping_no_release_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        retained_images([release(1)], 0)


# --- The verdict on each image ------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (f"{APP}:v2", APP),
        (f"{APP}@sha256:abc", APP),
        ("prosaas-demo/app:v1", "prosaas-demo/app"),
    ],
)
def test_repository_keeps_the_registry_port(reference: str, expected: str) -> None:
    assert repository(reference) == expected


def test_an_image_stays_when_a_kept_tag_digest_or_id_names_it() -> None:
    images = [
        image("sha256:a", [f"{APP}:v1"], [f"{APP}@sha256:1"]),
        image("sha256:b", None, [f"{APP}@sha256:2"]),
        image("sha256:c", [f"{APP}:v3"]),
        image("sha256:d", [f"{APP}:v4"], [f"{APP}@sha256:4"]),
    ]
    keep = [f"{APP}:v1", f"{APP}@sha256:2", "sha256:c"]
    verdicts = {verdict.image_id: verdict for verdict in judge_all(images, keep, [APP], {})}

    assert verdicts["sha256:a"].kept_because == f"named by the kept reference {APP}:v1"
    assert verdicts["sha256:b"].kept_because == f"named by the kept reference {APP}@sha256:2"
    assert verdicts["sha256:c"].kept_because == "named by the kept reference sha256:c"
    assert verdicts["sha256:d"].removed
    assert verdicts["sha256:d"].references == (f"{APP}:v4", f"{APP}@sha256:4")


def test_an_image_a_container_uses_stays_even_when_stopped() -> None:
    users = image_users(
        [
            {"Id": "1" * 64, "ImageID": "sha256:a", "Names": ["/prosaas-api"]},
            {"Id": "2" * 64, "ImageID": "sha256:a", "Names": ["/old-worker"]},
        ]
    )
    (verdict,) = judge_all([image("sha256:a", [f"{APP}:v1"])], [], [APP], users)
    assert verdict.kept_because == "used by container old-worker, prosaas-api"


def test_only_images_of_the_repositories_are_judged_and_only_their_references_go() -> None:
    images = [
        image("sha256:a", [f"{APP}:v1", "prosaas-demo/app:v1"], [f"{APP}@sha256:1"]),
        image("sha256:b", ["prosaas-demo/app:v2"]),
        image("sha256:c", [f"{APP}-extra:v1"]),
        image("sha256:d", None, None),
    ]
    verdicts = judge_all(images, [], [APP, MIGRATE], {})

    assert [(verdict.image_id, verdict.references) for verdict in verdicts] == [
        ("sha256:a", (f"{APP}:v1", f"{APP}@sha256:1"))
    ]


def test_a_kept_reference_in_another_repository_keeps_the_whole_image() -> None:
    (verdict,) = judge_all(
        [image("sha256:a", [f"{APP}:v1", "prosaas-demo/app:v1"])],
        ["prosaas-demo/app:v1"],
        [APP],
        {},
    )
    assert not verdict.removed
