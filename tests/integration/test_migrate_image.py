"""The migrate image: builds with the rest, runs `up` once against the test PostgreSQL."""

import docker
import psycopg

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
