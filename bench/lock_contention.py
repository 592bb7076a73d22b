"""Benchmark: migration 109 behind a long transaction, the seed's settings vs `migrator up`.

    python bench/lock_contention.py [--rows 100000] [--hold-s 3 8] [--runs 3] [--dsn DSN]
                                    [--out FILE.json]

For every run, hold time and way, a fresh database (`migrator up --to 2`: call_log as it
was before 109, N v1 rows loaded, VACUUM ANALYZE, CHECKPOINT), then, on one timeline:
- a load of 4 threads on call_log (SELECT, UPDATE and INSERT by id, 10 ms apart), every
  statement timed, from 1 s before the migration until 2 s after it ends;
- a holder: an app transaction that read call_log and stays open (ACCESS SHARE, which
  ALTER TABLE's ACCESS EXCLUSIVE conflicts with) for --hold-s seconds, then commits;
- 0.5 s after the holder took its lock, migration 109, one of two ways:
  seed: `SET statement_timeout = 0; SET lock_timeout = '5s'`, then the ALTERs of
  migrations/versions/0109_call_log_timing.sql in one transaction, one attempt;
  migrator: `python -m migrator up` with its defaults, as a subprocess.
Without --dsn (or BENCH_DATABASE_URL) the server is a throwaway cluster with fsync on,
removed at the end. It prints a markdown table and the targets and writes every figure to
a JSON file. A missed target is a result: the exit code is non-zero only when the
benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Protocol

import common
import psycopg

NAME = "lock-contention"
VERSION_FILE = common.MIGRATIONS / "versions" / "0109_call_log_timing.sql"
NEW_COLUMNS = ("started_at", "ended_at", "duration_sec")
DONE_LINE = "✅ Migration 109 complete"
DEFAULT_ROWS = 100_000
DEFAULT_HOLDS_S = (3.0, 8.0)  # one the seed's 5 s lock_timeout outlasts, one it does not
DEFAULT_RUNS = 3

LOAD_LEAD_S = 1.0  # the load starts this long before the migration
HOLDER_LEAD_S = 0.5  # the migration starts this long after the holder took its lock
LOAD_TAIL_S = 2.0  # the load goes on this long after the migration ends
LOAD_THREADS = 4
LOAD_PAUSE_S = 0.01  # between two rounds of SELECT + UPDATE + INSERT of one thread
LOAD_MAX_ROUNDS = 100_000  # per thread; the time bound below comes first
LOAD_STATEMENT_TIMEOUT_MS = 60_000  # no load statement can hang the benchmark
MIGRATION_TIMEOUT_S = 60.0  # a migration still running this long after the release: error
SETUP_TIMEOUT_S = 300.0

SEED_SETTINGS = ("SET statement_timeout = 0", "SET lock_timeout = '5s'")
HOLDER_QUERY = "SELECT id FROM call_log LIMIT 1"
LOAD_SELECT = "SELECT id, status, duration FROM call_log WHERE id = %s"
LOAD_INSERT = (
    "INSERT INTO call_log (call_sid, status, from_number, to_number)"
    " VALUES (%s, 'ringing', '+15550000001', '+15550000002')"
)
STATUSES = ("completed", "answered", "no-answer")

P99_TARGET_MS = 150.0
COMPLETION_TARGET_MS = 1000.0


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


# --- the load ---------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    kind: str
    started: float  # time.monotonic()
    ms: float
    error: str | None


class Load:
    """The app on call_log: LOAD_THREADS autocommit sessions, each a loop of a SELECT, an
    UPDATE and an INSERT by id, every statement timed. Stops when told, or by itself after
    BOUND_S seconds or LOAD_MAX_ROUNDS rounds."""

    def __init__(self, dsn: str, ids: common.IdRange, tag: str, bound_s: float) -> None:
        self.ids = ids
        self.tag = tag
        self.bound_s = bound_s
        self.statements: list[Statement] = []
        self.stopped_by_bound = False
        self.stopping = threading.Event()
        self.conns = [
            psycopg.connect(
                dsn,
                autocommit=True,
                application_name=f"bench-load-{n}",
                options=f"-c statement_timeout={LOAD_STATEMENT_TIMEOUT_MS}",
            )
            for n in range(LOAD_THREADS)
        ]
        self.threads = [
            threading.Thread(target=self.run, args=(n, conn), name=f"load-{n}", daemon=True)
            for n, conn in enumerate(self.conns)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=LOAD_STATEMENT_TIMEOUT_MS / 1000 + 5)
        for conn in self.conns:
            conn.close()

    def run(self, number: int, conn: psycopg.Connection) -> None:
        pick = random.Random(number)  # noqa: S311 - picks rows, not secrets
        deadline = time.monotonic() + self.bound_s
        for round_number in range(LOAD_MAX_ROUNDS):
            if self.stopping.is_set():
                return
            if time.monotonic() > deadline:
                break
            row_id = pick.randint(self.ids.low, self.ids.high)
            self.timed(conn, "select", LOAD_SELECT, (row_id,))
            self.timed(conn, "update", common.UPDATE_STATUS_BY_ID, (pick.choice(STATUSES), row_id))
            self.timed(conn, "insert", LOAD_INSERT, (f"load-{self.tag}-{number}-{round_number}",))
            self.stopping.wait(LOAD_PAUSE_S)
        self.stopped_by_bound = True

    def timed(
        self, conn: psycopg.Connection, kind: str, query: str, params: tuple[object, ...]
    ) -> None:
        started = time.monotonic()
        error = None
        try:
            conn.execute(query, params)
        except psycopg.Error as exc:
            error = f"{kind}: {one_line(exc)}"
        self.statements.append(Statement(kind, started, (time.monotonic() - started) * 1000, error))

    def started_between(self, start: float, end: float) -> list[Statement]:
        return [s for s in self.statements if start <= s.started < end]


# --- the holder -------------------------------------------------------------------


class Holder:
    """A long app transaction: it read call_log, so it holds ACCESS SHARE until it commits."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, application_name="bench-holder")
        self.conn.execute(HOLDER_QUERY).fetchone()
        self.took = time.monotonic()

    def release(self) -> float:
        """COMMIT; the moment it returned."""
        self.conn.commit()
        return time.monotonic()

    def close(self) -> None:
        self.conn.close()


# --- the two ways -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    ended: float  # time.monotonic() of the completion, or of the failure
    error: str | None
    details: dict[str, Any] = field(default_factory=dict)


class Migration(Protocol):
    started: float

    def finish(self, timeout_s: float) -> Outcome: ...


def seed_statements() -> list[str]:
    """The ALTERs of 0109, as the seed ran them: the file without comments, split at ';'."""
    lines = VERSION_FILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    statements = [part.strip() for part in text.split(";") if part.strip()]
    if not statements:
        raise common.BenchError(f"no statement in {VERSION_FILE}")
    return statements


class SeedAttempt:
    """The seed's way, in a thread: its two SETs, then the ALTERs in one transaction, once."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.statements = seed_statements()
        self.outcome: Outcome | None = None
        self.thread = threading.Thread(target=self.run, name="seed", daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name="bench-seed") as conn:
                for setting in SEED_SETTINGS:
                    conn.execute(setting)
                with conn.transaction():
                    for statement in self.statements:
                        conn.execute(statement)
                self.outcome = Outcome(True, time.monotonic(), None)
        except psycopg.Error as exc:
            self.outcome = Outcome(False, time.monotonic(), one_line(exc))

    def finish(self, timeout_s: float) -> Outcome:
        self.thread.join(timeout=timeout_s)
        if self.outcome is None:
            raise common.BenchError(
                f"the seed's attempt still running {timeout_s:g} s after the release"
            )
        return self.outcome


class StampedLines:
    """Reads a pipe in a thread, stamping each line with time.monotonic() as it arrives."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self.read, args=(pipe,), daemon=True)
        self.thread.start()

    def read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def finish(self) -> list[str]:
        self.thread.join(timeout=10)
        return [line for _, line in self.lines]

    def first(self, text: str) -> float | None:
        return next((stamp for stamp, line in self.lines if text in line), None)


class MigratorRun:
    """`python -m migrator up` with its defaults; done when it prints DONE_LINE."""

    def __init__(self, dsn: str) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            common.migrator_command("up"),
            cwd=common.ROOT,
            env=common.migrator_env(dsn),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = StampedLines(self.process.stdout)
        self.stderr = StampedLines(self.process.stderr)

    def finish(self, timeout_s: float) -> Outcome:
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise common.BenchError(
                f"migrator up still running {timeout_s:g} s after the release"
            ) from None
        exited = time.monotonic()
        stdout, log = self.stdout.finish(), self.stderr.finish()
        done = self.stdout.first(DONE_LINE)
        summary = common.json_summary("\n".join(stdout))
        succeeded = code == 0 and done is not None
        error = None if succeeded else summary.get("error") or (log or ["no output"])[-1]
        details = {
            "exit_code": code,
            "exited_after_done_ms": None if done is None else round((exited - done) * 1000, 1),
            "attempts": summary.get("attempts"),
            "not_queueing_log_lines": sum("not queueing behind" in line for line in log),
            "log": log,
        }
        return Outcome(succeeded, exited if done is None else done, error, details)


WAYS: dict[str, Callable[[str], Migration]] = {"seed": SeedAttempt, "migrator": MigratorRun}


# --- one measurement --------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    migration_started: float
    released: float  # the holder's COMMIT returned
    outcome: Outcome


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def contend(dsn: str, start: Callable[[str], Migration], hold_s: float) -> Timeline:
    """The holder, then the migration 0.5 s later; the holder commits after HOLD_S."""
    holder = Holder(dsn)
    try:
        time.sleep(HOLDER_LEAD_S)
        migration = start(dsn)
        sleep_until(holder.took + hold_s)
        released = holder.release()
    finally:
        holder.close()
    outcome = migration.finish(MIGRATION_TIMEOUT_S)
    return Timeline(migration.started, released, outcome)


@dataclass(frozen=True)
class Measurement:
    way: str
    hold_s: float
    run: int
    succeeded: bool
    error: str | None
    release_to_done_ms: float | None  # None: failed; negative: done before the release
    migration_ms: float  # from its start to its completion or failure
    load_during_wait: common.LatencyStats  # statements started while the migration ran
    load_errors_during_wait: int
    slowest_during_wait: dict[str, Any] | None  # its kind, ms, and start relative to the release
    load_whole: common.LatencyStats
    load_errors: int
    load_error_samples: list[str]
    load_stopped_by_bound: bool
    new_columns_after: int
    details: dict[str, Any]


def count_new_columns(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'call_log' AND column_name = ANY(%s)",
            (list(NEW_COLUMNS),),
        ).fetchone()
    return int(row[0]) if row else -1


def check_schema(way: str, outcome: Outcome, columns: int) -> None:
    """The schema must say what the way reported: all of 109's columns, or none."""
    expected = len(NEW_COLUMNS) if outcome.succeeded else 0
    if columns != expected:
        said = "succeeded" if outcome.succeeded else "failed"
        raise common.BenchError(
            f"{way} {said}, but call_log has {columns} of 109's {len(NEW_COLUMNS)} columns"
        )


def slowest_of(statements: list[Statement], released: float) -> dict[str, Any] | None:
    slowest = max(statements, key=lambda s: s.ms, default=None)
    if slowest is None:
        return None
    return {
        "kind": slowest.kind,
        "ms": round(slowest.ms, 1),
        "started_after_release_ms": round((slowest.started - released) * 1000, 1),
    }


def measure(server_dsn: str, way: str, hold_s: float, rows: int, run: int) -> Measurement:
    """Fresh database at version 2 with ROWS rows; the load, the holder and WAY's migration."""
    dbname = f"bench_lock_contention_{way}"
    dsn = common.recreate_database(server_dsn, dbname)
    try:
        common.run_migrator(dsn, "up", "--to", "2", timeout_s=SETUP_TIMEOUT_S)
        ids = common.load_legacy_rows(dsn, rows)
        bound_s = LOAD_LEAD_S + hold_s + MIGRATION_TIMEOUT_S + LOAD_TAIL_S
        load = Load(dsn, ids, tag=f"{run}-{hold_s:g}-{way}", bound_s=bound_s)
        load.start()
        try:
            time.sleep(LOAD_LEAD_S - HOLDER_LEAD_S)
            timeline = contend(dsn, WAYS[way], hold_s)
            time.sleep(LOAD_TAIL_S)
        finally:
            load.stop()
        columns = count_new_columns(dsn)
    finally:
        common.drop_database(server_dsn, dbname)
    outcome = timeline.outcome
    check_schema(way, outcome, columns)
    during = load.started_between(timeline.migration_started, outcome.ended)
    errors = [s.error for s in load.statements if s.error]
    release_to_done = (outcome.ended - timeline.released) * 1000 if outcome.succeeded else None
    return Measurement(
        way=way,
        hold_s=hold_s,
        run=run,
        succeeded=outcome.succeeded,
        error=outcome.error,
        release_to_done_ms=None if release_to_done is None else round(release_to_done, 1),
        migration_ms=round((outcome.ended - timeline.migration_started) * 1000, 1),
        load_during_wait=common.LatencyStats.of([s.ms for s in during]),
        load_errors_during_wait=sum(s.error is not None for s in during),
        slowest_during_wait=slowest_of(during, timeline.released),
        load_whole=common.LatencyStats.of([s.ms for s in load.statements]),
        load_errors=len(errors),
        load_error_samples=errors[:5],
        load_stopped_by_bound=load.stopped_by_bound,
        new_columns_after=columns,
        details=outcome.details,
    )


def slowest_text(slowest: dict[str, Any] | None) -> str:
    if slowest is None:
        return ""
    return (
        f" (slowest: {slowest['kind']} {slowest['ms']:,.1f} ms, started"
        f" {slowest['started_after_release_ms']:,.0f} ms from the release)"
    )


def describe(m: Measurement) -> str:
    if m.release_to_done_ms is None:
        outcome = f"failed after {m.migration_ms:,.0f} ms ({m.error})"
    else:
        outcome = f"done {m.release_to_done_ms:,.0f} ms after the release"
    return (
        f"run {m.run}, hold {m.hold_s:g} s, {m.way}: {outcome}; load p99"
        f" {m.load_during_wait.p99_ms:,.1f} ms during the wait{slowest_text(m.slowest_during_wait)}"
    )


# --- the report -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One way and hold time over the runs: medians, with min-max where it matters."""

    way: str
    hold_s: float
    runs: int
    succeeded: int
    release_to_done_ms: common.Spread | None  # over the runs that succeeded
    load_p50_ms: common.Spread | None
    load_p99_ms: common.Spread | None
    load_max_ms: common.Spread | None
    load_ops: common.Spread | None
    load_errors: int


def row_of(way: str, hold_s: float, group: list[Measurement]) -> Row:
    waits = [m.load_during_wait for m in group]
    done = [m.release_to_done_ms for m in group if m.release_to_done_ms is not None]
    return Row(
        way=way,
        hold_s=hold_s,
        runs=len(group),
        succeeded=sum(m.succeeded for m in group),
        release_to_done_ms=common.Spread.of(done),
        load_p50_ms=common.Spread.of([w.p50_ms for w in waits]),
        load_p99_ms=common.Spread.of([w.p99_ms for w in waits]),
        load_max_ms=common.Spread.of([w.max_ms for w in waits]),
        load_ops=common.Spread.of([w.ops for w in waits]),
        load_errors=sum(m.load_errors for m in group),
    )


def summary_rows(measurements: list[Measurement], holds_s: list[float]) -> list[Row]:
    return [
        row_of(way, hold_s, [m for m in measurements if m.way == way and m.hold_s == hold_s])
        for way in WAYS
        for hold_s in holds_s
    ]


def shown(spread: common.Spread | None, detail: bool = True) -> str:
    if spread is None:
        return "NA"
    return spread.text() if detail else f"{spread.median:,.1f}"


def worst(spread: common.Spread | None) -> str:
    return "NA" if spread is None else f"{spread.high:,.1f}"


TABLE_NOTE = (
    "Load figures: the statements started while the migration ran (from its start to its"
    " completion or failure). Medians over the runs, (min-max) where they differ."
)


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| way | hold (s) | succeeded | release → done (ms) | load p50 (ms) | load p99 (ms)"
        " | load max (ms) | load ops | load errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ops = "NA" if r.load_ops is None else f"{r.load_ops.median:,.0f}"
        lines.append(
            f"| {r.way} | {r.hold_s:g} | {r.succeeded}/{r.runs} | {shown(r.release_to_done_ms)}"
            f" | {shown(r.load_p50_ms, detail=False)} | {shown(r.load_p99_ms)}"
            f" | {shown(r.load_max_ms)} | {ops} | {r.load_errors} |"
        )
    return "\n".join(lines)


def seed_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.way == "seed"]


def seed_latency(rows: list[Row]) -> str:
    return "seed: " + "; ".join(
        f"hold {r.hold_s:g} s: p99 {shown(r.load_p99_ms)} ms" for r in seed_rows(rows)
    )


def completion_text(row: Row) -> str:
    done = row.release_to_done_ms
    after = "" if done is None else f", release → done {done.text()} ms"
    return f"hold {row.hold_s:g} s: {row.succeeded}/{row.runs} succeeded{after}"


def seed_completion(rows: list[Row]) -> str:
    return "seed: " + "; ".join(completion_text(r) for r in seed_rows(rows))


def targets(measurements: list[Measurement], rows: list[Row]) -> list[common.Target]:
    ours = [m for m in measurements if m.way == "migrator"]
    p99 = common.Spread.of([m.load_during_wait.p99_ms for m in ours])
    done = common.Spread.of(
        [m.release_to_done_ms for m in ours if m.release_to_done_ms is not None]
    )
    succeeded = sum(m.succeeded for m in ours)
    return [
        common.Target(
            f"during a lock wait, p99 latency of the concurrent load <= {P99_TARGET_MS:.0f} ms"
            " (the seed's settings let it reach about 5 s)",
            bool(ours)
            and all(
                m.load_during_wait.ops > 0 and m.load_during_wait.p99_ms <= P99_TARGET_MS
                for m in ours
            ),
            f"migrator: p99 median {shown(p99, detail=False)} ms, worst"
            f" {worst(p99)} ms over {len(ours)} migrations; {seed_latency(rows)}",
        ),
        common.Target(
            f"completion within {COMPLETION_TARGET_MS / 1000:g} s of the holder's release",
            bool(ours)
            and succeeded == len(ours)
            and done is not None
            and done.high <= COMPLETION_TARGET_MS,
            f"migrator: {succeeded}/{len(ours)} succeeded, release → done median"
            f" {shown(done, detail=False)} ms, worst {worst(done)} ms; {seed_completion(rows)}",
        ),
    ]


def report_text(
    rows: list[Row], goals: list[common.Target], measurements: list[Measurement]
) -> str:
    lines = [markdown_table(rows), "", TABLE_NOTE, "", *common.target_lines(goals)]
    lines += [
        f"- warning: the load of run {m.run}, hold {m.hold_s:g} s, {m.way} hit its bound"
        for m in measurements
        if m.load_stopped_by_bound
    ]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument(
        "--rows", type=positive(int), default=DEFAULT_ROWS, help=f"default {DEFAULT_ROWS:,}"
    )
    parser.add_argument(
        "--hold-s",
        type=positive(float),
        nargs="+",
        default=list(DEFAULT_HOLDS_S),
        help="how long the holder keeps its lock; one or more values"
        f" (default {' '.join(f'{h:g}' for h in DEFAULT_HOLDS_S)})",
    )
    parser.add_argument(
        "--runs", type=positive(int), default=DEFAULT_RUNS, help=f"default {DEFAULT_RUNS}"
    )
    common.add_server_options(parser, NAME)
    args = parser.parse_args(argv)
    if min(args.hold_s) <= HOLDER_LEAD_S:
        parser.error(f"--hold-s must be longer than {HOLDER_LEAD_S:g} s (the migration's start)")
    return args


def run_benchmark(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    measurements = []
    with common.postgres_server(args.dsn) as server_dsn:
        settings = common.server_settings(server_dsn)
        machine = common.machine_info(settings, own_cluster=not args.dsn)
        for run in range(1, args.runs + 1):
            for hold_s in args.hold_s:
                for way in WAYS:
                    measurements.append(measure(server_dsn, way, hold_s, args.rows, run))
                    common.note(describe(measurements[-1]))
    rows = summary_rows(measurements, args.hold_s)
    goals = targets(measurements, rows)
    print(report_text(rows, goals, measurements), flush=True)
    return {
        "benchmark": "migration 109 behind a long transaction: the seed's settings vs migrator up",
        "command": common.command_line(sys.argv),
        "started_at": started.isoformat(timespec="seconds"),
        "rows": args.rows,
        "holds_s": args.hold_s,
        "runs": args.runs,
        "machine": machine,
        "timeline": {
            "load_lead_s": LOAD_LEAD_S,
            "migration_after_holder_s": HOLDER_LEAD_S,
            "load_tail_s": LOAD_TAIL_S,
        },
        "holder_query": HOLDER_QUERY,
        "seed": [*SEED_SETTINGS, *seed_statements()],
        "migrator": "python -m migrator up",
        "load": {
            "threads": LOAD_THREADS,
            "pause_between_rounds_s": LOAD_PAUSE_S,
            "statements": [LOAD_SELECT, common.UPDATE_STATUS_BY_ID, LOAD_INSERT],
        },
        "summary": [asdict(r) for r in rows],
        "targets": [asdict(t) for t in goals],
        "measurements": [asdict(m) for m in measurements],
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or common.default_out(NAME, started)
    return common.write_results(lambda: run_benchmark(args, started), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
