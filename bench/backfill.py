"""Benchmark: the batched `migrator backfill call_log_timing` job vs one plain UPDATE.

    python bench/backfill.py [--rows 1000000 | --big] [--dsn DSN] [--out FILE.json]

Both ways run in one process, on the same data: each gets a fresh database (migrated with
`migrator up`, N legacy call_log rows loaded, VACUUM ANALYZE, CHECKPOINT) and fills the
timing columns while a writer thread updates random rows and inserts new ones as v2 would,
timing every statement. Without --dsn (or BENCH_DATABASE_URL) the server is a throwaway
cluster with fsync on, removed at the end. It prints a markdown table and the targets, and
writes every figure to a JSON file. A missed target is a result, not an error: the exit
code is non-zero only when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from common import (
    MIGRATIONS,
    BenchError,
    IdRange,
    LatencyStats,
    Target,
    add_server_options,
    command_line,
    default_out,
    drop_database,
    load_legacy_rows,
    machine_info,
    note,
    postgres_server,
    recreate_database,
    run_migrator,
    server_settings,
    target_lines,
    write_results,
)
from common import UPDATE_STATUS_BY_ID as WRITER_UPDATE
from psycopg import sql

JOB = "call_log_timing"
DEFINITION = MIGRATIONS / "backfills" / f"{JOB}.toml"
DEFAULT_ROWS = 1_000_000
BIG_ROWS = 10_000_000
# The longest a fill may take before the benchmark gives up on it (the --big single UPDATE
# on a slow disk stays well below this); the writer thread is bounded by it as well.
LONGEST_FILL_S = 4 * 3600
WRITER_LEAD_S = 0.5  # the writer starts this long before the fill and stops this long after
WRITER_PAUSE_S = 0.005  # between two UPDATE + INSERT pairs: an app's steady write load
WRITER_MAX_OPS = 5_000_000
THROUGHPUT_TARGET = 0.5  # the job's rows/s at least this fraction of the single UPDATE's
SLOW_WRITE_MS = 200.0  # no concurrent write during the job may take longer than this

WRITER_INSERT = """
    INSERT INTO call_log (call_sid, status, from_number, to_number, answered_at, duration,
                          started_at, ended_at, duration_sec)
    VALUES (%s, 'completed', '+15550000001', '+15550000002', now(), 30,
            now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' + interval '30 s', 30)
"""


# --- the data ---------------------------------------------------------------------


def prepare_legacy_table(dsn: str, rows: int) -> IdRange:
    """Schema by `migrator up`, ROWS rows as v1 wrote them, vacuumed, analyzed, checkpointed."""
    run_migrator(dsn, "up", timeout_s=LONGEST_FILL_S)
    return load_legacy_rows(dsn, rows)


def count_unfilled(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM call_log WHERE started_at IS NULL").fetchone()
    return int(row[0]) if row else -1


# --- the concurrent writer --------------------------------------------------------


class Writer:
    """The app writing to call_log on its own autocommit connection: every pair of statements
    UPDATEs one random existing row and INSERTs one new row as v2 would; each is timed.

    Runs from ``WRITER_LEAD_S`` before the fill until ``WRITER_LEAD_S`` after it, and stops by
    itself after ``LONGEST_FILL_S`` or ``WRITER_MAX_OPS`` statements.
    """

    def __init__(self, dsn: str, ids: IdRange, tag: str) -> None:
        self.ids = ids
        self.tag = tag
        self.latencies_ms: dict[str, list[float]] = {"update": [], "insert": []}
        self.errors: list[str] = []
        self.stopped_by_bound = False
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.pick = random.Random(109)  # noqa: S311 - picks rows, not secrets
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="writer", daemon=True)

    def __enter__(self) -> Writer:
        self.thread.start()
        time.sleep(WRITER_LEAD_S)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(WRITER_LEAD_S)
        self.stopping.set()
        self.thread.join(timeout=60)
        self.conn.close()

    def run(self) -> None:
        deadline = time.monotonic() + LONGEST_FILL_S
        for pair in range(WRITER_MAX_OPS // 2):
            if self.stopping.is_set():
                return
            if time.monotonic() > deadline:
                break
            status = self.pick.choice(("completed", "answered", "no-answer"))
            self.timed(
                "update", WRITER_UPDATE, (status, self.pick.randint(self.ids.low, self.ids.high))
            )
            self.timed("insert", WRITER_INSERT, (f"v2-{self.tag}-{pair}",))
            self.stopping.wait(WRITER_PAUSE_S)
        self.stopped_by_bound = True

    def timed(self, kind: str, query: str, params: tuple[object, ...]) -> None:
        started = time.perf_counter()
        try:
            self.conn.execute(query, params)
        except psycopg.Error as exc:
            self.errors.append(f"{kind}: {' '.join(str(exc).split())}")
        self.latencies_ms[kind].append((time.perf_counter() - started) * 1000)

    def stats(self) -> dict[str, LatencyStats]:
        every = [ms for values in self.latencies_ms.values() for ms in values]
        return {
            "all": LatencyStats.of(every),
            **{kind: LatencyStats.of(values) for kind, values in self.latencies_ms.items()},
        }

    def slower_than(self, limit_ms: float) -> int:
        return sum(ms > limit_ms for values in self.latencies_ms.values() for ms in values)


# --- the two ways -----------------------------------------------------------------


@dataclass(frozen=True)
class Fill:
    """What one way did: rows filled, wall seconds, the longest any row stayed locked."""

    rows: int
    seconds: float
    longest_lock_ms: float
    details: dict[str, Any]


def fill_with_job(dsn: str) -> Fill:
    """`migrator backfill call_log_timing` with its defaults; a row is locked for one batch."""
    started = time.perf_counter()
    summary = run_migrator(dsn, "backfill", JOB, timeout_s=LONGEST_FILL_S)
    seconds = time.perf_counter() - started
    if not summary.get("finished"):
        raise BenchError(f"migrator backfill {JOB} ended unfinished: {summary}")
    return Fill(int(summary["rows"]), seconds, float(summary["longest_batch_ms"]), summary)


def single_update() -> sql.Composed:
    """UPDATE <table> SET <set> WHERE <pending>, all three from the job's own definition."""
    definition = tomllib.loads(DEFINITION.read_text(encoding="utf-8"))
    return sql.SQL("UPDATE {table} SET {set} WHERE {pending}").format(
        table=sql.Identifier(definition["table"]),
        set=sql.SQL(definition["set"].strip()),
        pending=sql.SQL(definition["pending"]),
    )


def fill_with_one_update(dsn: str) -> Fill:
    """One UPDATE statement (autocommit); every row it touches stays locked until it ends."""
    statement = single_update()
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        rows = conn.execute(statement).rowcount
        seconds = time.perf_counter() - started
        text = statement.as_string(conn)
    return Fill(rows, seconds, seconds * 1000, {"statement": " ".join(text.split())})


WAYS: dict[str, Callable[[str], Fill]] = {
    "job": fill_with_job,
    "single UPDATE": fill_with_one_update,
}


@dataclass(frozen=True)
class WayResult:
    way: str
    rows: int
    seconds: float
    rows_per_s: float
    longest_row_lock_ms: float
    writer: dict[str, LatencyStats]
    writer_errors: int
    writer_slow_writes: int
    writer_stopped_by_bound: bool
    writer_error_samples: list[str]
    details: dict[str, Any]


def measure(server_dsn: str, way: str, fill_with: Callable[[str], Fill], rows: int) -> WayResult:
    """Fresh database, ROWS legacy rows, then WAY's fill with the writer running around it."""
    dbname = "bench_backfill_" + way.replace(" ", "_").lower()
    note(f"{way}: preparing {dbname} with {rows:,} legacy rows")
    dsn = recreate_database(server_dsn, dbname)
    try:
        ids = prepare_legacy_table(dsn, rows)
        note(f"{way}: filling, with the concurrent writer running")
        with Writer(dsn, ids, tag=f"{dbname}-{time.time_ns()}") as writer:
            fill = fill_with(dsn)
        left = count_unfilled(dsn)
    finally:
        drop_database(server_dsn, dbname)
    if left:
        raise BenchError(f"{way}: {left:,} legacy rows still have no started_at after the fill")
    note(f"{way}: {fill.rows:,} rows in {fill.seconds:.1f} s")
    return WayResult(
        way=way,
        rows=fill.rows,
        seconds=round(fill.seconds, 2),
        rows_per_s=round(fill.rows / fill.seconds) if fill.seconds > 0 else 0.0,
        longest_row_lock_ms=round(fill.longest_lock_ms, 1),
        writer=writer.stats(),
        writer_errors=len(writer.errors),
        writer_slow_writes=writer.slower_than(SLOW_WRITE_MS),
        writer_stopped_by_bound=writer.stopped_by_bound,
        writer_error_samples=writer.errors[:5],
        details=fill.details,
    )


# --- the report -------------------------------------------------------------------


def throughput_ratio(job: WayResult, single: WayResult) -> float:
    """The job's rows/s as a fraction of the single UPDATE's."""
    return job.rows_per_s / single.rows_per_s if single.rows_per_s else 0.0


def targets(job: WayResult, single: WayResult, ratio: float) -> list[Target]:
    worst = job.writer["all"]
    errors = f"; {job.writer_errors} writes failed" if job.writer_errors else ""
    return [
        Target(
            f"job throughput >= {THROUGHPUT_TARGET}x the single UPDATE",
            ratio >= THROUGHPUT_TARGET,
            f"{ratio:.2f}x ({job.rows_per_s:,.0f} vs {single.rows_per_s:,.0f} rows/s)",
        ),
        Target(
            f"no concurrent write slower than {SLOW_WRITE_MS:.0f} ms during the job",
            worst.max_ms <= SLOW_WRITE_MS,
            f"slowest {worst.max_ms:,.1f} ms, {job.writer_slow_writes} of {worst.ops:,} writes"
            f" over {SLOW_WRITE_MS:.0f} ms{errors}",
        ),
    ]


def markdown_table(results: list[WayResult]) -> str:
    header = (
        "| way | rows | seconds | rows/s | longest row lock (ms) | writer p50 (ms) |"
        " writer p99 (ms) | writer max (ms) | writer ops | writer errors |"
    )
    lines = [header, "|---|" + "---:|" * 9]
    for r in results:
        w = r.writer["all"]
        lines.append(
            f"| {r.way} | {r.rows:,} | {r.seconds:,.1f} | {r.rows_per_s:,.0f} |"
            f" {r.longest_row_lock_ms:,.1f} | {w.p50_ms:,.1f} | {w.p99_ms:,.1f} |"
            f" {w.max_ms:,.1f} | {w.ops:,} | {r.writer_errors} |"
        )
    return "\n".join(lines)


def report_text(results: list[WayResult], goals: list[Target], ratio: float) -> str:
    lines = [markdown_table(results), "", f"Throughput job / single UPDATE: {ratio:.2f}x", ""]
    lines += target_lines(goals)
    lines += [
        f"- warning: the writer of {r.way} hit its bound before the fill ended"
        for r in results
        if r.writer_stopped_by_bound
    ]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help=f"legacy rows (default {DEFAULT_ROWS:,})"
    )
    size.add_argument("--big", action="store_true", help=f"{BIG_ROWS:,} rows")
    add_server_options(parser, "backfill")
    args = parser.parse_args(argv)
    if args.big:
        args.rows = BIG_ROWS
    if args.rows <= 0:
        parser.error("--rows must be positive")
    return args


def run_benchmark(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    with postgres_server(args.dsn) as server_dsn:
        settings = server_settings(server_dsn)
        machine = machine_info(settings, own_cluster=not args.dsn)
        results = [measure(server_dsn, way, fill, args.rows) for way, fill in WAYS.items()]
    job, single = results
    ratio = throughput_ratio(job, single)
    goals = targets(job, single, ratio)
    print(report_text(results, goals, ratio), flush=True)
    return {
        "benchmark": f"backfill {JOB}: the batched job vs one UPDATE",
        "command": command_line(sys.argv),
        "started_at": started.isoformat(timespec="seconds"),
        "rows": args.rows,
        "machine": machine,
        "writer": {
            "lead_s": WRITER_LEAD_S,
            "pause_between_pairs_s": WRITER_PAUSE_S,
            "statements": [WRITER_UPDATE, " ".join(WRITER_INSERT.split())],
        },
        "ways": [asdict(r) for r in results],
        "throughput_ratio_job_to_single": round(ratio, 3),
        "targets": [asdict(t) for t in goals],
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or default_out("backfill", started)
    return write_results(lambda: run_benchmark(args, started), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
