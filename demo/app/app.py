"""Stand-in for the prosaas application images.

Roles (first argument): ``api``, ``calls`` or ``worker``; the image's health check is
``health.sh``, beside this file: it asks the api and calls roles ``GET /health`` and reads
the worker's heartbeat file (HEARTBEAT).
The demo never creates tables and never runs migrations: it only uses ``call_log``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import redis
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

V2_COLUMNS = ("started_at", "ended_at", "duration_sec")
JOB_QUEUE = "prosaas:jobs"
FORCED_REASON = "forced unhealthy (DEMO_FAIL_HEALTH=1)"
SERVING_ROLES = ("api", "calls", "worker")
# The worker's heartbeat, as health.sh reads it: "ok EPOCH" or "fail REASON".
HEARTBEAT = Path("/tmp/worker-heartbeat")  # noqa: S108 - private to the container
# A call in progress (POST /calls/<sid>/hold) and a slow job (work_seconds) last this long at most.
MAX_HOLD_SECONDS = 60.0
LISTEN_ALL = "0.0.0.0"  # noqa: S104 - the service must be reachable from other containers

log = logging.getLogger("prosaas-demo")

Row = dict[str, Any]
Response = tuple[int, dict[str, Any]]

SQL_COUNT = "SELECT count(*) AS count FROM call_log"
SQL_GET = "SELECT * FROM call_log WHERE call_sid = %s"
SQL_COLUMNS = """
    SELECT column_name::text AS name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'call_log'
      AND column_name::text = ANY(%s)
"""
SQL_INSERT_V1 = """
    INSERT INTO call_log (call_sid, from_number, to_number, duration)
    VALUES (%(call_sid)s, %(from_number)s, %(to_number)s, %(duration)s::integer)
    RETURNING id, call_sid
"""
SQL_INSERT_V2 = """
    INSERT INTO call_log (call_sid, from_number, to_number, duration,
                          started_at, ended_at, duration_sec)
    VALUES (%(call_sid)s, %(from_number)s, %(to_number)s, %(duration)s::integer,
            LOCALTIMESTAMP, LOCALTIMESTAMP + make_interval(secs => %(duration)s::integer),
            %(duration)s::integer)
    RETURNING id, call_sid
"""
SQL_END_V1 = """
    UPDATE call_log
    SET status = 'completed', updated_at = now(),
        duration = EXTRACT(EPOCH FROM now() - created_at)::integer
    WHERE call_sid = %s
    RETURNING call_sid, status, duration
"""
SQL_END_V2 = """
    UPDATE call_log AS c
    SET status = 'completed', updated_at = now(), ended_at = LOCALTIMESTAMP,
        duration = d.secs, duration_sec = d.secs
    FROM (SELECT id, EXTRACT(EPOCH FROM LOCALTIMESTAMP
                 - COALESCE(started_at, created_at::timestamp))::integer AS secs
          FROM call_log WHERE call_sid = %s) AS d
    WHERE c.id = d.id
    RETURNING c.call_sid, c.status, c.duration
"""
SQL_ANSWER = """
    UPDATE call_log SET answered_at = now(), status = 'answered', updated_at = now()
    WHERE call_sid = %s
"""


class Unhealthy(Exception):
    """A dependency is unusable. The message is safe to show: it never holds the DSN."""


class BadRequest(Exception):
    """The client sent something the API cannot accept."""


@dataclass(frozen=True)
class Config:
    role: str
    version: str
    database_url: str
    redis_url: str
    port: int
    fail_health: bool
    run_migrations_on_start: str
    run_migrations: str

    @classmethod
    def from_env(cls, role: str) -> Config:
        env = os.environ
        return cls(
            role=role,
            version=env.get("DEMO_VERSION", "1"),
            database_url=env.get("DATABASE_URL", ""),
            redis_url=env.get("REDIS_URL", "redis://redis:6379/0"),
            port=int(env.get("PORT", "8000")),
            fail_health=env.get("DEMO_FAIL_HEALTH") == "1",
            run_migrations_on_start=env.get("RUN_MIGRATIONS_ON_START", "<unset>"),
            run_migrations=env.get("RUN_MIGRATIONS", "<unset>"),
        )

    @property
    def v2(self) -> bool:
        return self.version == "2"


@dataclass(frozen=True)
class NewCall:
    call_sid: str
    from_number: str | None
    to_number: str | None
    duration: int | None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> NewCall:
        call_sid = body.get("call_sid")
        if not isinstance(call_sid, str) or not call_sid:
            raise BadRequest("call_sid must be a non-empty string")
        for key in ("from_number", "to_number"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise BadRequest(f"{key} must be a string")
        duration = body.get("duration")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int) or duration < 0
        ):
            raise BadRequest("duration must be a non-negative integer")
        return cls(call_sid, body.get("from_number"), body.get("to_number"), duration)


# --- database -------------------------------------------------------------------------------


def db_target(dsn: str) -> str:
    """Describe the database without credentials: host, port and dbname only."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable DATABASE_URL>"
    host, port, dbname = (params.get(k, "?") for k in ("host", "port", "dbname"))
    return f"host={host} port={port} dbname={dbname}"


def safe_error(exc: psycopg.Error) -> str:
    """First line of a server or connection error; only the class name otherwise.

    Client-side errors (such as a malformed connection string) may echo the DSN.
    """
    text = str(exc).strip()
    if text and (exc.sqlstate or isinstance(exc, psycopg.OperationalError)):
        return text.splitlines()[0][:200]
    return type(exc).__name__


@contextmanager
def database(cfg: Config) -> Iterator[psycopg.Connection[Row]]:
    """One autocommit connection; any database error becomes Unhealthy with a safe message."""
    if not cfg.database_url:
        raise Unhealthy("DATABASE_URL is not set")
    try:
        with psycopg.connect(
            cfg.database_url, connect_timeout=2, autocommit=True, row_factory=dict_row
        ) as conn:
            yield conn
    except psycopg.Error as exc:
        raise Unhealthy(f"database error: {safe_error(exc)}") from None


def check_schema(cfg: Config, conn: psycopg.Connection[Row]) -> None:
    conn.execute("SELECT 1")
    if not cfg.v2:
        return
    rows = conn.execute(SQL_COLUMNS, [list(V2_COLUMNS)]).fetchall()
    missing = sorted(set(V2_COLUMNS) - {row["name"] for row in rows})
    if missing:
        raise Unhealthy("call_log is missing columns: " + ", ".join(missing))


def db_reason(cfg: Config) -> str | None:
    """None when the database answers (and, for v2, has the 109 columns); else why not."""
    try:
        with database(cfg) as conn:
            check_schema(cfg, conn)
    except Unhealthy as exc:
        return str(exc)
    return None


def health_reason(cfg: Config) -> str | None:
    return FORCED_REASON if cfg.fail_health else db_reason(cfg)


# --- HTTP roles (api, calls) -----------------------------------------------------------------


def json_default(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def route_health(cfg: Config, _match: re.Match[str], _body: bytes) -> Response:
    reason = health_reason(cfg)
    if reason:
        return 503, {
            "status": "unhealthy",
            "role": cfg.role,
            "version": cfg.version,
            "reason": reason,
        }
    return 200, {"status": "ok", "role": cfg.role, "version": cfg.version}


def route_count(cfg: Config, _match: re.Match[str], _body: bytes) -> Response:
    with database(cfg) as conn:
        row = conn.execute(SQL_COUNT).fetchone()
    return 200, {"count": row["count"] if row else 0}


def route_create(cfg: Config, _match: re.Match[str], body: bytes) -> Response:
    call = NewCall.from_body(parse_json(body))
    with database(cfg) as conn:
        try:
            row = conn.execute(SQL_INSERT_V2 if cfg.v2 else SQL_INSERT_V1, vars(call)).fetchone()
        except errors.UniqueViolation:
            return 409, {"error": f"call_sid {call.call_sid!r} already exists"}
    return 201, dict(row or {})


def route_get(cfg: Config, match: re.Match[str], _body: bytes) -> Response:
    with database(cfg) as conn:
        row = conn.execute(SQL_GET, [unquote(match[1])]).fetchone()
    return (200, row) if row else (404, {"error": "unknown call_sid"})


def route_end(cfg: Config, match: re.Match[str], _body: bytes) -> Response:
    with database(cfg) as conn:
        row = conn.execute(SQL_END_V2 if cfg.v2 else SQL_END_V1, [unquote(match[1])]).fetchone()
    return (200, row) if row else (404, {"error": "unknown call_sid"})


def seconds_from(data: dict[str, Any], key: str) -> float:
    """DATA[KEY] as a number of seconds between 0 and MAX_HOLD_SECONDS."""
    value = data.get(key, 0)
    if not isinstance(value, int | float) or not 0 <= value <= MAX_HOLD_SECONDS:
        raise BadRequest(f"{key} must be a number of seconds from 0 to {MAX_HOLD_SECONDS:g}")
    return float(value)


def route_hold(cfg: Config, match: re.Match[str], body: bytes) -> Response:
    """A call in progress: answers once it has lasted `seconds`, even when the service is
    stopped meanwhile (a graceful stop lets it finish)."""
    seconds = seconds_from(parse_json(body), "seconds")
    time.sleep(seconds)
    return 200, {"call_sid": unquote(match[1]), "held_s": seconds, "version": cfg.version}


Handler = Callable[[Config, re.Match[str], bytes], Response]
Route = tuple[str, re.Pattern[str], Handler]

COMMON_ROUTES: list[Route] = [
    ("GET", re.compile(r"/health"), route_health),
    ("GET", re.compile(r"/calls"), route_count),
    ("POST", re.compile(r"/calls"), route_create),
    ("GET", re.compile(r"/calls/([^/]+)"), route_get),
]
CALLS_ROUTES: list[Route] = [
    ("POST", re.compile(r"/calls/([^/]+)/end"), route_end),
    ("POST", re.compile(r"/calls/([^/]+)/hold"), route_hold),
]


def dispatch(cfg: Config, method: str, path: str, body: bytes) -> Response:
    routes = COMMON_ROUTES + (CALLS_ROUTES if cfg.role == "calls" else [])
    for route_method, pattern, handler in routes:
        match = pattern.fullmatch(urlsplit(path).path)
        if match and route_method == method:
            try:
                return handler(cfg, match, body)
            except BadRequest as exc:
                return 400, {"error": str(exc)}
            except Unhealthy as exc:
                log.warning("%s %s failed: %s", method, path, exc)
                return 503, {"error": str(exc)}
    return 404, {"error": "not found"}


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "prosaas-demo"

    def __init__(self, cfg: Config, *args: Any) -> None:
        self.cfg = cfg
        super().__init__(*args)

    def do_GET(self) -> None:
        self.send_json(*dispatch(self.cfg, "GET", self.path, b""))

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_json(400, {"error": "bad Content-Length"})
            return
        self.send_json(*dispatch(self.cfg, "POST", self.path, self.rfile.read(length)))

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, default=json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Per-request logging is not wanted; errors are logged where they happen."""


class GracefulHTTPServer(ThreadingHTTPServer):
    """On stop, the requests in flight finish before the process exits (a call in progress
    is not cut): their threads are joined by server_close()."""

    daemon_threads = False
    block_on_close = True


def serve(cfg: Config, stop: threading.Event) -> None:
    server = GracefulHTTPServer((LISTEN_ALL, cfg.port), partial(DemoHandler, cfg))
    thread = threading.Thread(target=server.serve_forever, args=(0.2,), name="http")
    thread.start()
    log.info("listening on %s:%d", LISTEN_ALL, cfg.port)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join()


# --- worker role ----------------------------------------------------------------------------


def write_heartbeat(text: str) -> None:
    tmp = HEARTBEAT.with_suffix(".tmp")
    tmp.write_text(" ".join(text.split()) + "\n", encoding="utf-8")
    tmp.replace(HEARTBEAT)


def worker_reason(cfg: Config, client: redis.Redis) -> str | None:
    if cfg.fail_health:
        return FORCED_REASON
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"redis unavailable: {exc}"
    return db_reason(cfg)


def mark_answered(cfg: Config, call_sid: str) -> bool:
    with database(cfg) as conn:
        return conn.execute(SQL_ANSWER, [call_sid]).rowcount > 0


def parse_job(raw: str) -> tuple[str, float] | None:
    """The job's call_sid and the seconds its work takes (work_seconds, 0 by default);
    None for a malformed job."""
    try:
        job = json.loads(raw)
    except ValueError:
        return None
    call_sid = job.get("call_sid") if isinstance(job, dict) else None
    if not isinstance(call_sid, str) or not call_sid:
        return None
    try:
        return call_sid, seconds_from(job, "work_seconds")
    except BadRequest:
        return None


def process_next_job(cfg: Config, client: redis.Redis) -> None:
    item = client.brpop([JOB_QUEUE], timeout=1)
    if item is None:
        return
    raw = item[1]
    job = parse_job(raw)
    if job is None:
        log.warning("dropping malformed job (%d bytes)", len(raw))
        return
    call_sid, work_seconds = job
    # The job's work; a stop signal meanwhile waits for it (the loop checks between jobs).
    time.sleep(work_seconds)
    try:
        answered = mark_answered(cfg, call_sid)
    except Unhealthy:
        client.rpush(JOB_QUEUE, raw)  # back on the consuming end: retried first
        raise
    if not answered:
        log.warning("job for unknown call_sid %r dropped", call_sid)


def run_worker(cfg: Config, stop: threading.Event) -> None:
    client = redis.Redis.from_url(
        cfg.redis_url, socket_timeout=3, socket_connect_timeout=2, decode_responses=True
    )
    last_reason: str | None = ""
    while not stop.is_set():
        reason = worker_reason(cfg, client)
        write_heartbeat(f"fail {reason}" if reason else f"ok {time.time():.0f}")
        if reason != last_reason:
            if reason:
                log.warning("worker unhealthy: %s; retrying every 1 s", reason)
            else:
                log.info("worker healthy")
            last_reason = reason
        if reason:
            stop.wait(1)
            continue
        try:
            process_next_job(cfg, client)
        except (redis.RedisError, Unhealthy) as exc:
            log.warning("job processing failed: %s; retrying in 1 s", exc)
            stop.wait(1)


# --- healthcheck role -----------------------------------------------------------------------


# --- entry point ----------------------------------------------------------------------------


def redis_target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def log_startup(cfg: Config) -> None:
    log.info(
        "starting role=%s version=%s database=[%s] redis=%s",
        cfg.role,
        cfg.version,
        db_target(cfg.database_url),
        redis_target(cfg.redis_url),
    )
    log.info(
        "RUN_MIGRATIONS_ON_START=%s RUN_MIGRATIONS=%s (the demo never migrates)",
        cfg.run_migrations_on_start,
        cfg.run_migrations,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SERVING_ROLES:
        print(f"usage: app.py {{{'|'.join(SERVING_ROLES)}}}", file=sys.stderr)
        return 2
    cfg = Config.from_env(argv[1])
    if cfg.version not in ("1", "2"):
        print(f"DEMO_VERSION must be 1 or 2, not {cfg.version!r}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {cfg.role} v{cfg.version}: %(message)s",
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log_startup(cfg)
    if cfg.role == "worker":
        run_worker(cfg, stop)
    else:
        serve(cfg, stop)
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
