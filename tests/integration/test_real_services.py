"""The test infrastructure itself: a real PostgreSQL round trip and a real container run."""

import docker
import psycopg
import pytest

from tests.conftest import PgServer


def test_postgres_round_trip_through_a_fresh_database(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO probe VALUES (1, 'written')")
        assert conn.execute("SELECT note FROM probe WHERE id = 1").fetchone() == ("written",)


def test_postgres_requires_a_password_over_tcp(postgres: PgServer) -> None:
    wrong = psycopg.conninfo.make_conninfo(postgres.dsn, password="not-" + "the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5).close()


def test_demo_container_reaches_the_test_postgres(
    docker_engine: docker.DockerClient, demo_images: list[str], database: str
) -> None:
    """A real container on the engine talks to the real test database (host network: loopback)."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE call_log_probe (id int)")
    script = (
        "import os, psycopg\n"
        "with psycopg.connect(os.environ['DATABASE_URL']) as c:\n"
        "    print(c.execute(\"SELECT count(*) FROM pg_tables WHERE tablename='call_log_probe'\")"
        ".fetchone()[0])\n"
    )
    output = docker_engine.containers.run(
        "prosaas-demo/app:v1",
        entrypoint=["/usr/bin/python3", "-c", script],
        command=[],
        environment={"DATABASE_URL": database},
        network_mode="host",
        remove=True,
    )
    assert output.decode().strip() == "1"
