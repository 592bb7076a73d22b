"""module_utils/prosaas_release: the release's input checks, the refusal to push over a
released tag, the lines it prints, squawk's staging and the engine's streams read."""

from __future__ import annotations

import importlib
from pathlib import Path

import ansible.module_utils
import pytest

from tests.conftest import ROOT

# As Ansible ships it to the module: its siblings importable as ansible.module_utils.*.
if str(ROOT / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(ROOT / "module_utils"))
release = importlib.import_module("ansible.module_utils.prosaas_release")

REGISTRY = "registry.example.internal:5000"
APP = f"{REGISTRY}/prosaas/app:v2"
MIGRATE = f"{REGISTRY}/prosaas/migrate:v2"
PROXY = f"{REGISTRY}/prosaas/proxy:1"
OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def images(context: Path) -> list:
    return [
        release.ReleaseImage(APP, str(context), setting="prosaas_app_image"),
        release.ReleaseImage(MIGRATE, str(context), setting="prosaas_migrate_image"),
        release.ReleaseImage(
            PROXY, str(context), kind=release.INFRA, setting="prosaas_proxy_image"
        ),
    ]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_good_input_has_no_problem(context: Path) -> None:
    registry = {"host": REGISTRY, "user": "deploy-bot"}
    assert release.input_problems(images(context), registry, "secret") == []


def test_no_registry_is_one_problem_that_names_the_setting(context: Path) -> None:
    problems = release.input_problems(images(context), {}, "")
    assert problems == [
        "the inventory names no registry: set prosaas_registry ({host: HOST[:PORT], user: USER})"
        " in its group_vars/all/main.yml"
    ]


def test_each_bad_input_is_named(tmp_path: Path, context: Path) -> None:
    bad = [
        release.ReleaseImage(f"{REGISTRY}/prosaas/app:", str(context), setting="prosaas_app_image"),
        release.ReleaseImage("other.example/prosaas/migrate:v2", str(context), setting="m"),
        release.ReleaseImage(
            f"{REGISTRY}/prosaas/proxy:1", str(tmp_path / "gone"), context_setting="ctx"
        ),
        release.ReleaseImage(f"{REGISTRY}/prosaas/redis", str(tmp_path / "gone" / "..")),
    ]
    problems = release.input_problems(bad, {"host": REGISTRY}, "")
    assert problems == [
        f"prosaas_registry names no user for {REGISTRY}: add its user",
        f"no password for the registry {REGISTRY}: put vault_prosaas_registry_password in the"
        " inventory's vault",
        f"{REGISTRY}/prosaas/app: (prosaas_app_image) names no valid tag: an image of a release"
        " is REPOSITORY:TAG (is prosaas_app_version empty?)",
        f"other.example/prosaas/migrate:v2 (m) is not named under the registry {REGISTRY}:"
        f" name it {REGISTRY}/...",
        f"build context {tmp_path / 'gone'} of {REGISTRY}/prosaas/proxy:1 is not a readable"
        " directory: fix ctx",
        f"{REGISTRY}/prosaas/redis names no valid tag: an image of a release is REPOSITORY:TAG",
        f"build context {tmp_path / 'gone' / '..'} of {REGISTRY}/prosaas/redis is not a"
        " readable directory: fix the path",
    ]


def test_a_context_without_a_dockerfile_is_refused(tmp_path: Path) -> None:
    image = release.ReleaseImage(APP, str(tmp_path), context_setting="prosaas_release_app_context")
    assert release.context_problem(image) == (
        f"build context {tmp_path} of {APP} has no readable Dockerfile:"
        " fix prosaas_release_app_context"
    )


def test_released_tags_the_registry_has_are_refused_on_one_line(context: Path) -> None:
    found = {APP: OLD, MIGRATE: NEW, PROXY: None}
    with pytest.raises(release.ReleaseError) as refused:
        release.plan_steps(images(context), found, move_tags=False)
    assert str(refused.value) == (
        f"the registry already has {APP} (prosaas_app_image) at {OLD}, {MIGRATE}"
        f" (prosaas_migrate_image) at {NEW}: a released tag is never overwritten; release"
        " another prosaas_app_version, or move the tag with -e prosaas_release_move_tags=true"
    )


def test_an_infra_tag_the_registry_has_is_kept_and_never_refused(context: Path) -> None:
    steps = release.plan_steps(images(context), {APP: None, MIGRATE: None, PROXY: OLD}, False)
    assert [(step.action, step.digest) for step in steps] == [
        (release.PUSH, ""),
        (release.PUSH, ""),
        (release.KEEP, OLD),
    ]


def test_move_tags_moves_the_release_tags(context: Path) -> None:
    steps = release.plan_steps(images(context), {APP: OLD, MIGRATE: OLD, PROXY: OLD}, True)
    assert [step.action for step in steps] == [release.MOVE, release.MOVE, release.KEEP]


def test_each_image_is_one_line_starting_with_its_digest(context: Path) -> None:
    app, migrate, proxy = images(context)
    assert release.summary_line(release.Step(app, None, release.PUSH, NEW)) == f"{APP} {NEW}"
    assert release.summary_line(release.Step(app, OLD, release.MOVE, NEW)) == (
        f"{APP} {NEW} (moved from {OLD})"
    )
    assert release.summary_line(release.Step(migrate, NEW, release.MOVE, NEW)) == (
        f"{MIGRATE} {NEW} (unchanged)"
    )
    assert release.summary_line(release.Step(proxy, OLD, release.KEEP, OLD)) == (
        f"{PROXY} {OLD} (kept, already in the registry)"
    )
    assert release.summary_line(release.Step(app, OLD, release.MOVE)) == (
        f"{APP} would be built and pushed over {OLD}"
    )


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("unauthorized: authentication required", "refused the credentials of deploy-bot"),
        ("x509: certificate signed by unknown authority", "does not trust the registry's TLS"),
        ("dial tcp 10.0.0.1:5000: connect: connection refused", f"registry {REGISTRY} unreachable"),
    ],
)
def test_what_the_registry_said_comes_with_what_to_do(text: str, advice: str) -> None:
    line = release.registry_failure(text, APP, "deploy-bot")
    assert advice in line
    assert line.endswith(f"({text})")


def test_squawk_is_found_beside_the_python_first_and_staged_once(tmp_path: Path) -> None:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    squawk = bin_dir / "squawk"
    squawk.write_bytes(b"#!/bin/sh\n")
    squawk.chmod(0o755)
    assert release.find_squawk(str(bin_dir / "python")) == squawk

    context = tmp_path / "migrations"
    context.mkdir()
    assert release.stage_squawk(squawk, str(context)) is True
    staged = context / ".build" / "squawk"
    assert staged.read_bytes() == squawk.read_bytes()
    assert staged.stat().st_mode & 0o777 == 0o755
    assert release.stage_squawk(squawk, str(context)) is False


def test_a_build_stream_keeps_its_last_lines_and_its_error() -> None:
    log = release.BuildLog()
    for number in range(30):
        log.read({"stream": f"Step {number}\n"})
    log.read({"error": "The command '/bin/sh -c false'\n returned a non-zero code: 1"})
    assert list(log.lines) == [f"Step {number}" for number in range(15, 30)]
    assert log.error == "The command '/bin/sh -c false' returned a non-zero code: 1"


def test_a_push_stream_gives_its_digest_or_its_error() -> None:
    pushed = release.PushProgress()
    pushed.read({"status": "Pushed", "id": "abc"})
    pushed.read({"aux": {"Tag": "v2", "Digest": NEW, "Size": 741}})
    assert (pushed.digest, pushed.error) == (NEW, "")

    refused = release.PushProgress()
    refused.read({"error": "unauthorized: authentication required"})
    assert (refused.digest, refused.error) == ("", "unauthorized: authentication required")


def test_a_migrations_folder_replaces_the_contexts_versions_in_a_copy(tmp_path: Path) -> None:
    context, versions = tmp_path / "migrations", tmp_path / "app-migrations"
    (context / "versions").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "versions" / "0001_checkout.sql").write_text("SELECT 1;\n")
    versions.mkdir()
    (versions / "0001_app.sql").write_text("SELECT 2;\n")
    image = release.ReleaseImage("r.example/m:v1", str(context), versions=str(versions))

    with release.build_context(image) as built:
        assert Path(built) != context
        assert (Path(built) / "Dockerfile").is_file()
        assert sorted(p.name for p in (Path(built) / "versions").iterdir()) == ["0001_app.sql"]
    assert not Path(built).exists()
    assert (context / "versions" / "0001_checkout.sql").is_file()


def test_without_a_migrations_folder_the_context_is_built_as_it_is(tmp_path: Path) -> None:
    image = release.ReleaseImage("r.example/m:v1", str(tmp_path))
    with release.build_context(image) as built:
        assert built == str(tmp_path)


def test_a_migrations_folder_that_is_not_there_names_its_setting(tmp_path: Path) -> None:
    image = release.ReleaseImage(
        "r.example/m:v1",
        str(tmp_path),
        versions=str(tmp_path / "missing"),
        versions_setting="prosaas_release_migrations_dir",
    )
    assert release.versions_problem(image) == (
        f"migrations folder {tmp_path / 'missing'} of r.example/m:v1 is not a readable"
        " directory: fix prosaas_release_migrations_dir"
    )
