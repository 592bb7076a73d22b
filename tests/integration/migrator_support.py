"""Helpers for the migrator tests: run ``python -m migrator`` as ops would, read the catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
VERSIONS = MIGRATIONS / "versions"
TIMING_COLUMNS = ("started_at", "ended_at", "duration_sec")
SEED_QUERY = (
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'call_log'"
    " AND column_name IN ('started_at','ended_at','duration_sec')"
)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def summary(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


def migrator_env(dsn: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRATIONS_DIR")}
    env["PYTHONPATH"] = str(MIGRATIONS)
    env["PYTHONUNBUFFERED"] = "1"
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    """``python -m migrator``; MIGRATOR_TEST_PYTHON picks another interpreter (e.g. one with
    the psycopg 3.1 of Debian bookworm) to check the runner against it."""
    python = os.environ.get("MIGRATOR_TEST_PYTHON") or sys.executable
    return [python, "-m", "migrator", *args]


def run_migrator(dsn: str | None, *args: str, timeout: float = 60, **extra: str) -> Run:
    result = subprocess.run(
        command(*args),
        env=migrator_env(dsn, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def start_migrator(dsn: str, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(*args),
        env=migrator_env(dsn, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def password_of(dsn: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["password"]


def assert_no_secret(run: Run, dsn: str) -> None:
    assert password_of(dsn) not in run.output
    assert dsn not in run.output


def scalar(dsn: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def applied_versions(dsn: str) -> list[int] | None:
    """Versions in the history table; None when the table does not exist."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('prosaas_schema_history')").fetchone()[0]:
            return None
        rows = conn.execute("SELECT version FROM prosaas_schema_history ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def call_log_columns(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(SEED_QUERY).fetchall()
    return {row[0] for row in rows}


def user_tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def copy_versions(target: Path, versions: tuple[int, ...] | None = None) -> Path:
    """A private copy of the project's version files (all, or the given versions)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(VERSIONS.glob("*.sql")):
        if versions is None or int(path.name[:4]) in versions:
            shutil.copy(path, target / path.name)
    return target


def insert_calls(dsn: str, count: int, prefix: str = "CA") -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO call_log (call_sid, from_number, to_number, status, duration)"
            " SELECT %s || g, '+1555' || g, '+1666' || g, 'completed', g %% 600"
            " FROM generate_series(1, %s) AS g",
            (prefix, count),
        )


def call_log_fingerprint(dsn: str) -> tuple[int, str]:
    """Row count and an md5 of every original column of every row, in id order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(row(id, call_sid, direction, from_number,"
            " to_number, status, created_at, answered_at, updated_at, duration)::text, ','"
            " ORDER BY id), '')) FROM call_log"
        ).fetchone()
    return row[0], row[1]
