"""The migrate image: builds with the rest, runs `up` once against the test PostgreSQL."""

import json
import shutil
import uuid
from pathlib import Path

import docker
import psycopg
import pytest

from tests.conftest import ROOT

MIGRATIONS = ROOT / "migrations"

SEED_CHECK = """
    SELECT column_name FROM information_schema.columns
    WHERE table_name = 'call_log' AND column_name IN ('started_at', 'ended_at', 'duration_sec')
"""


def run_migrate(client: docker.DockerClient, image: str, database: str) -> tuple[int, str]:
    container = client.containers.run(
        image, environment={"DATABASE_URL": database}, network_mode="host", detach=True
    )
    try:
        exit_code = container.wait(timeout=120)["StatusCode"]
        return exit_code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_migrate_image_applies_109_as_a_non_root_user(
    docker_engine: docker.DockerClient, demo_images: list[str], database: str
) -> None:
    image = docker_engine.images.get("prosaas-demo/migrate:v2")
    assert image.attrs["Config"]["User"] not in ("", "0", "root")
    assert image.attrs["Config"]["Cmd"] == ["up"]

    exit_code, logs = run_migrate(docker_engine, "prosaas-demo/migrate:v2", database)

    assert exit_code == 0, logs
    assert "✅ Migration 109 complete" in logs
    with psycopg.connect(database) as conn:
        assert len(conn.execute(SEED_CHECK).fetchall()) == 3
    password = psycopg.conninfo.conninfo_to_dict(database)["password"]
    assert password not in logs


def test_release_v1_migrate_image_stops_before_109(
    docker_engine: docker.DockerClient, demo_images: list[str], database: str
) -> None:
    exit_code, logs = run_migrate(docker_engine, "prosaas-demo/migrate:v1", database)

    assert exit_code == 0, logs
    assert "✅ Migration 2 complete" in logs
    assert "Migration 109" not in logs
    with psycopg.connect(database) as conn:
        assert conn.execute(SEED_CHECK).fetchall() == []
        assert conn.execute("SELECT count(*) FROM call_log").fetchone() == (0,)


# --- the image's lint: its build refuses, its plan reports --------------------------------

DO_BLOCK = """\
-- description: creates the call kind type when missing (test-only)
-- allow: do-block because it only creates a type, guarded by the exception
DO $$ BEGIN CREATE TYPE call_kind AS ENUM ('in', 'out');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
"""
DROP_COLUMN = "-- description: drops a column (test-only)\nALTER TABLE call_log DROP COLUMN note;\n"


def build_migrate_image(
    client: docker.DockerClient, base_image: str, folder: Path, extra: dict[str, str]
) -> str:
    """migrations/ as it is, plus EXTRA version files, built under a throwaway tag."""
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, sql in extra.items():
        (folder / "versions" / name).write_text(sql)
    tag = f"prosaas-demo/migrate:lint-test-{uuid.uuid4().hex[:8]}"
    # forcerm: a build that fails (as one test wants) leaves no intermediate container
    client.images.build(
        path=str(folder), tag=tag, buildargs={"BASE_IMAGE": base_image}, rm=True, forcerm=True
    )
    return tag


def test_the_build_fails_on_a_migration_the_lint_refuses(
    docker_engine: docker.DockerClient, base_image: str, demo_images: list[str], tmp_path: Path
) -> None:
    with pytest.raises(docker.errors.BuildError) as failed:
        build_migrate_image(
            docker_engine, base_image, tmp_path / "m", {"0110_drop_note.sql": DROP_COLUMN}
        )
    log = "".join(str(chunk.get("stream", "")) for chunk in failed.value.build_log)
    assert "0110_drop_note.sql:2: drop-column: drops column note of call_log" in log
    assert "the lint refuses a migration above" in log


def test_the_image_plan_reports_the_lint_verdict_and_each_opt_in(
    docker_engine: docker.DockerClient,
    base_image: str,
    demo_images: list[str],
    database: str,
    tmp_path: Path,
) -> None:
    image = build_migrate_image(
        docker_engine, base_image, tmp_path / "m", {"0110_call_kind.sql": DO_BLOCK}
    )
    try:
        assert image_has_no_squawk(docker_engine, image)
        container = docker_engine.containers.run(
            image,
            ["plan"],
            environment={"DATABASE_URL": database},
            network_mode="host",
            detach=True,
        )
        try:
            assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()
            logs = container.logs().decode()
        finally:
            container.remove(force=True)
    finally:
        docker_engine.images.remove(image, force=True)
    plan = json.loads(logs.strip().splitlines()[-1])
    entry = next(m for m in plan["migrations"] if m["version"] == 110)
    assert entry["verdict"] == "accepted"
    reason = "it only creates a type, guarded by the exception"
    assert entry["allows"] == [{"line": 2, "rule": "do-block", "reason": reason}]
    assert entry["class"] == "offline"  # the lint cannot see into the block
    assert "allows do-block because it only creates a type" in logs


def image_has_no_squawk(client: docker.DockerClient, image: str) -> bool:
    output = client.containers.run(
        image,
        ["-c", "import shutil; print(shutil.which('squawk'))"],
        entrypoint="/usr/bin/python3",
        remove=True,
    )
    return output.decode().strip() == "None"
