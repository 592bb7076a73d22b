"""What the benchmarks share: the server and its databases, the Docker engine and the base
image, the migrator, v1 rows in call_log, latency figures, machine information, the command
line and the JSON file.

A benchmark script imports this as ``common`` (Python puts the script's folder, bench/, on
the path). Progress goes to stderr; results go to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import psycopg
from docker.errors import DockerException
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_cluster import ClusterError, ThrowawayCluster  # noqa: E402

MIGRATIONS = ROOT / "migrations"
RESULTS = ROOT / "bench" / "results"

LOAD_LEGACY_ROWS = """
    INSERT INTO call_log (call_sid, direction, from_number, to_number, status,
                          created_at, answered_at, updated_at, duration)
    SELECT 'legacy-' || g,
           CASE WHEN mod(g, 4) = 0 THEN 'outbound' ELSE 'inbound' END,
           '+1555' || lpad(mod(g, 10000000)::text, 7, '0'),
           '+1666' || lpad(mod(g * 7, 10000000)::text, 7, '0'),
           CASE WHEN mod(g, 3) = 0 THEN 'no-answer' ELSE 'completed' END,
           now() - g * interval '1 minute',
           CASE WHEN mod(g, 3) = 0 THEN NULL
                ELSE now() - g * interval '1 minute' + interval '5 s' END,
           now() - g * interval '1 minute' + interval '10 minutes',
           CASE WHEN mod(g, 7) = 0 THEN NULL WHEN mod(g, 11) = 0 THEN 0 ELSE mod(g, 600) END
    FROM generate_series(1, %s) AS g
"""
UPDATE_STATUS_BY_ID = "UPDATE call_log SET status = %s, updated_at = now() WHERE id = %s"


class BenchError(RuntimeError):
    """The benchmark could not run; the message says why, in one line."""


def note(message: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the server and its databases -------------------------------------------------


@contextmanager
def postgres_server(dsn: str | None) -> Iterator[str]:
    """DSN when given; else a throwaway cluster with fsync on, removed at the end."""
    if dsn:
        yield dsn
        return
    cluster = ThrowawayCluster(fsync=True)
    note("starting a throwaway PostgreSQL cluster (fsync=on)")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def dsn_for(server_dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(server_dsn, dbname=dbname)


def recreate_database(server_dsn: str, dbname: str) -> str:
    """An empty database DBNAME (dropped first if a previous run left it); its DSN."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return dsn_for(server_dsn, dbname)


def drop_database(server_dsn: str, dbname: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def server_settings(server_dsn: str) -> dict[str, str]:
    """The server settings that decide how fast a fill can commit."""
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_wal_size")
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (list(names),),
        ).fetchall()
    return dict(rows)


# --- the Docker engine ------------------------------------------------------------


def docker_client() -> docker.DockerClient:
    """The engine at DOCKER_HOST (default socket); one that does not answer raises."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        raise BenchError(f"no Docker engine answers ({exc})") from None
    return client


def base_image(client: docker.DockerClient) -> str:
    """BASE_IMAGE when set, else the newest offline base image scripts/test.sh built."""
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    tags = [tag for image in client.images.list(name="prosaas-deploy/base") for tag in image.tags]
    if not tags:
        raise BenchError("no prosaas-deploy/base image: run scripts/test.sh, or set BASE_IMAGE")
    return sorted(tags)[-1]


# --- the migrator -----------------------------------------------------------------


def migrator_env(dsn: str) -> dict[str, str]:
    """The environment ops run the migrator with: the repository's migrations, DSN."""
    env = {k: v for k, v in os.environ.items() if k not in ("MIGRATIONS_DIR", "BACKFILLS_DIR")}
    env.update(PYTHONPATH=str(MIGRATIONS), PYTHONUNBUFFERED="1", DATABASE_URL=dsn)
    return env


def migrator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrator", *args]


def run_migrator(dsn: str, *args: str, timeout_s: float) -> dict[str, Any]:
    """`python -m migrator ARGS` on DSN; its closing JSON summary. A failure raises."""
    try:
        result = subprocess.run(
            migrator_command(*args),
            cwd=ROOT,
            env=migrator_env(dsn),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"migrator {args[0]} still running after {timeout_s:g} s") from None
    summary = json_summary(result.stdout)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        reason = summary.get("error") or last_line
        raise BenchError(f"migrator {args[0]} failed (exit {result.returncode}): {reason}")
    return summary


def json_summary(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}


# --- the data ---------------------------------------------------------------------


@dataclass(frozen=True)
class IdRange:
    low: int
    high: int


def load_legacy_rows(dsn: str, rows: int) -> IdRange:
    """ROWS rows in call_log as v1 wrote them, vacuumed, analyzed, checkpointed; their ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LOAD_LEGACY_ROWS, (rows,))
        conn.execute("VACUUM ANALYZE call_log")
        conn.execute("CHECKPOINT")  # what is measured does not pay for writing out the load
        row = conn.execute("SELECT min(id), max(id) FROM call_log").fetchone()
    if row is None or row[0] is None:
        raise BenchError("call_log is empty after the load")
    return IdRange(row[0], row[1])


# --- the figures ------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    ops: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, latencies_ms: list[float]) -> LatencyStats:
        ordered = sorted(latencies_ms)
        return cls(
            ops=len(ordered),
            p50_ms=round(percentile(ordered, 0.50), 2),
            p99_ms=round(percentile(ordered, 0.99), 2),
            max_ms=round(ordered[-1] if ordered else 0.0, 2),
        )


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Spread:
    """The median of a few runs' figures, with the lowest and the highest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float], ndigits: int = 1) -> Spread | None:
        """None for no values; the median rounded to NDIGITS."""
        if not values:
            return None
        return cls(round(statistics.median(values), ndigits), min(values), max(values))

    def text(self, digits: int = 1) -> str:
        if self.low == self.high:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


@dataclass(frozen=True)
class Target:
    name: str
    met: bool
    figures: str


def target_lines(goals: list[Target]) -> list[str]:
    return [f"- {t.name}: {'met' if t.met else 'NOT met'}: {t.figures}" for t in goals]


# --- the record -------------------------------------------------------------------


def host_info() -> dict[str, Any]:
    """The machine: cores, platform, Python, memory, and the load average now."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
    }


def machine_info(settings: dict[str, str], own_cluster: bool) -> dict[str, Any]:
    return {
        **host_info(),
        "postgres": settings,
        "fsync_on": settings["fsync"] == "on",
        "server": "throwaway cluster (tests/pg_cluster.py)" if own_cluster else "given DSN",
    }


def command_line(argv: list[str]) -> str:
    """The command as run, with any DSN value hidden (it may carry a password)."""
    shown = []
    for before, arg in zip(["", *argv], argv, strict=False):
        if before == "--dsn":
            shown.append("DSN")
        elif arg.startswith("--dsn="):
            shown.append("--dsn=DSN")
        else:
            shown.append(arg)
    return shlex.join(["python", *shown])


def add_server_options(parser: argparse.ArgumentParser, name: str) -> None:
    """--dsn and --out; NAME names the databases (bench_NAME_*) and the JSON file."""
    parser.add_argument(
        "--dsn",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="a server to use instead of a throwaway cluster (env BENCH_DATABASE_URL); its role"
        " must be allowed CREATE DATABASE and CHECKPOINT; it gets databases"
        f" bench_{name.replace('-', '_')}_*",
    )
    parser.add_argument(
        "--out", type=Path, help=f"JSON file (default bench/results/{name}-<UTC stamp>.json)"
    )


def default_out(name: str, started: datetime) -> Path:
    return RESULTS / f"{name}-{started:%Y%m%dT%H%M%SZ}.json"


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def write_results(run: Callable[[], dict[str, Any]], out: Path) -> int:
    """RUN the benchmark and write its record to OUT; the exit code (1, with one line on
    stderr, only when the benchmark itself could not run)."""
    try:
        write_json(out, run())
    except (BenchError, ClusterError, psycopg.Error, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"\nJSON: {out}")
    return 0
