"""Command line of ``python -m migrator``: up, status, plan, verify, lint."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from . import backfill, db, files, lint, locks, retry
from .exitcodes import ExitCode
from .output import Output
from .redact import redact_dsn, scrub
from .runner import Outcome, Runner, Settings, checksum_problems, pending_of

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "versions"

EXIT_HELP = {
    ExitCode.OK: "applied what was pending, or nothing was pending (up); all good",
    ExitCode.LINT_FINDINGS: "lint found at least one unsafe statement",
    ExitCode.USAGE: "bad command line, or DATABASE_URL missing or malformed",
    ExitCode.CANNOT_CONNECT: "the database did not answer or refused the credentials",
    ExitCode.BAD_MIGRATION_FILE: "misnamed, empty or malformed file, duplicate version",
    ExitCode.CHECKSUM_MISMATCH: "an applied migration file was changed afterwards",
    ExitCode.SQL_ERROR: "a migration failed; its transaction was rolled back",
    ExitCode.LOCK_BUDGET_EXHAUSTED: "the table lock was not obtained within --lock-budget-s",
    ExitCode.VERIFY_FAILED: "a declared column is missing or has another type",
    ExitCode.RUNNER_LOCK_TIMEOUT: "another runner held the runner lock longer than allowed",
    ExitCode.ONLINE_BOUND_EXCEEDED: "up --online: a statement blocked a table past the bound",
}

EPILOG = (
    "exit codes:\n"
    + "\n".join(f"  {int(code):<3} {code.name:<22} {text}" for code, text in EXIT_HELP.items())
    + "\n\nenvironment:\n"
    "  DATABASE_URL         connection string (required except for lint --all / FILES);\n"
    "                       printed only as postgresql://user:***@host:port/db\n"
    "  MIGRATIONS_DIR       folder of NNNN_slug.sql files (default: versions/ by the package)\n"
    "  MIGRATIONS_LINT      the lint record plan reports from (the image's build writes it);\n"
    "                       unset, plan runs the lint itself\n"
    "  MIGRATOR_APPLIED_BY  applied_by recorded in the history (default: migrator@<hostname>)\n"
    "  MIGRATE_ONLINE=1     as up --online\n"
    "  MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS  as up --exclusive-statement-timeout-ms (the flag\n"
    "                       wins)\n"
    "\nlock retries: attempt n waits at most min(LOCK_TIMEOUT_MS * 2**n, MAX_LOCK_TIMEOUT_MS)\n"
    "for its lock (100, 200, 400, 800, 1000, 1000 ... ms by default), 50-150 ms apart; no\n"
    "attempt is made while a transaction older than that timeout holds a lock on a table the\n"
    "migration touches. Waiting and attempts share --lock-budget-s, per migration.\n"
    "\nonline bound (up --online, the app keeps serving): a statement that blocks the app's\n"
    "queries on a table (ALTER TABLE, a plain CREATE INDEX, DROP/TRUNCATE/LOCK/CLUSTER,\n"
    "VACUUM FULL, non-concurrent REINDEX/DROP INDEX, ALTER INDEX) runs under statement_timeout\n"
    "= the bound, and in a transaction so does every statement after it; CONCURRENTLY builds\n"
    "and VALIDATE CONSTRAINT keep none. lock_timeout then stays at or below half the bound.\n"
    "Every command ends with a one-line JSON summary on stdout."
)


def number(kind: Callable[[str], float], *, zero_ok: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of KIND that is positive (or zero, when ZERO_OK)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero_ok):
            wanted = "must not be negative" if zero_ok else "must be positive"
            raise argparse.ArgumentTypeError(f"{wanted}: {text!r}")
        return value

    return parse


def common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the sub-command (defaults applied after parsing)."""
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    parent.add_argument("--dir", type=Path, help="migrations folder (env MIGRATIONS_DIR)")
    parent.add_argument(
        "--lock-timeout-ms",
        type=number(int),
        help=f"lock_timeout of the first attempt, ms (default {retry.DEFAULT_FIRST_MS})",
    )
    parent.add_argument(
        "--max-lock-timeout-ms",
        type=number(int),
        help=f"largest lock_timeout of one attempt, ms (default {retry.DEFAULT_MAX_MS})",
    )
    parent.add_argument(
        "--lock-budget-s",
        type=number(float),
        help="time allowed to get one migration's locks, waits included (default 120)",
    )
    parent.add_argument(
        "--runner-lock-wait-s",
        type=number(float),
        help="how long to wait for another runner to finish (default 600)",
    )
    parent.add_argument(
        "--connect-timeout-s", type=number(float), help="connect timeout (default 10)"
    )
    parent.add_argument(
        "--json",
        action="store_true",
        help="stdout carries only the JSON summary (result lines go to stderr)",
    )
    return parent


DEFAULTS = {
    "dir": None,
    "lock_timeout_ms": retry.DEFAULT_FIRST_MS,
    "max_lock_timeout_ms": retry.DEFAULT_MAX_MS,
    "lock_budget_s": retry.DEFAULT_BUDGET_S,
    "runner_lock_wait_s": 600.0,
    "connect_timeout_s": 10.0,
    "json": False,
    "to": None,
    "online": False,
    "exclusive_statement_timeout_ms": None,
    "all": False,
    "files": [],
}


def build_parser() -> argparse.ArgumentParser:
    parent = common_options()
    parser = argparse.ArgumentParser(
        prog="python -m migrator",
        description="Safe, idempotent PostgreSQL migrations for prosaas (DSN from DATABASE_URL).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[parent],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=text,
            description=text,
            parents=[parent],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    up = add("up", "apply the pending migrations, in order")
    up.add_argument("--to", type=int, metavar="VERSION", help="stop after this version")
    up.add_argument(
        "--online",
        action="store_true",
        help="the previous release keeps serving: bound each statement that blocks a table "
        "(env MIGRATE_ONLINE=1)",
    )
    up.add_argument(
        "--exclusive-statement-timeout-ms",
        type=number(int),
        metavar="MS",
        help="with --online: statement_timeout of a statement that blocks a table "
        f"(env MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS, default {locks.DEFAULT_BOUND_MS})",
    )
    add("status", "applied versions (with applied_at) and pending ones")
    plan = add("plan", "what up would run; changes nothing")
    plan.add_argument("--to", type=int, metavar="VERSION", help="as for up")
    add("verify", "check every declared column of the applied migrations and its type")
    backfill = add(
        "backfill", "fill columns of existing rows in short batches (a job of backfills/)"
    )
    backfill.add_argument("name", metavar="NAME", help="the job: backfills/NAME.toml")
    backfill.add_argument(
        "--dry-run", action="store_true", help="count the rows to fill; change nothing"
    )
    backfill.add_argument(
        "--batch-size", type=number(int), default=1000, help="first batch size (default 1000)"
    )
    backfill.add_argument(
        "--target-batch-ms",
        type=number(float, zero_ok=True),
        default=50.0,
        help="adapt the batch size toward this batch time; 0 keeps it fixed (default 50)",
    )
    backfill.add_argument(
        "--sleep-ms", type=number(float, zero_ok=True), default=0.0, help="pause between batches"
    )
    backfill.add_argument(
        "--max-rows", type=number(int), help="stop after filling this many rows (resumable)"
    )
    backfill.add_argument(
        "--progress-every-s",
        type=number(float),
        default=5.0,
        help="seconds between progress lines when stderr is not a terminal (default 5)",
    )
    lint = add("lint", "check migration files for unsafe statements")
    lint.add_argument("--all", action="store_true", help="every file, not only pending ones")
    lint.add_argument("files", nargs="*", type=Path, metavar="FILES")
    return parser


def migrations_dir(args: argparse.Namespace, env: dict[str, str]) -> Path:
    if args.dir is not None:
        return args.dir
    if env.get("MIGRATIONS_DIR"):
        return Path(env["MIGRATIONS_DIR"])
    return DEFAULT_DIR


def require_dsn(env: dict[str, str]) -> str:
    dsn = env.get("DATABASE_URL", "").strip()
    if not dsn:
        raise db.MigratorError(
            ExitCode.USAGE,
            "DATABASE_URL is not set (e.g. postgresql://user:password@host:5432/db)",
        )
    return dsn


def load(args: argparse.Namespace, env: dict[str, str]) -> list[files.Migration]:
    directory = migrations_dir(args, env)
    try:
        return files.load_migrations(directory)
    except (files.MigrationFileError, OSError, UnicodeDecodeError) as exc:
        raise db.MigratorError(ExitCode.BAD_MIGRATION_FILE, str(exc)) from None


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


def env_flag(env: dict[str, str], name: str) -> bool:
    word = env.get(name, "").strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise db.MigratorError(ExitCode.USAGE, f"{name} must be 1 or 0, not {word!r}")
    return word in TRUE_WORDS


def online_bound_ms(args: argparse.Namespace, env: dict[str, str]) -> int | None:
    """The online bound, None for a stop-first run; a flag wins over the environment."""
    if not (args.online or env_flag(env, "MIGRATE_ONLINE")):
        return None
    if args.exclusive_statement_timeout_ms is not None:
        return args.exclusive_statement_timeout_ms
    text = env.get("MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS", "").strip()
    if not text:
        return locks.DEFAULT_BOUND_MS
    try:
        return int(number(int)(text))
    except argparse.ArgumentTypeError as exc:
        raise db.MigratorError(
            ExitCode.USAGE, f"MIGRATE_EXCLUSIVE_STATEMENT_TIMEOUT_MS {exc}"
        ) from None


def settings_of(args: argparse.Namespace, dsn: str, env: dict[str, str]) -> Settings:
    return Settings(
        dsn=dsn,
        lock_timeout_ms=args.lock_timeout_ms,
        max_lock_timeout_ms=args.max_lock_timeout_ms,
        lock_budget_s=args.lock_budget_s,
        runner_lock_wait_s=args.runner_lock_wait_s,
        connect_timeout_s=args.connect_timeout_s,
        applied_by=db.default_applied_by(env),
        exclusive_statement_timeout_ms=online_bound_ms(args, env),
    )


def read_only(dsn: str, args: argparse.Namespace) -> psycopg.Connection:
    conn = db.connect(dsn, args.connect_timeout_s, "read-only")
    conn.execute("SET default_transaction_read_only = on")
    return conn


# --- commands ------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    dsn = require_dsn(env)
    migrations = load(args, env)
    out.log(f"up: {len(migrations)} migration file(s), database {redact_dsn(dsn)}")
    settings = settings_of(args, dsn, env)
    bound = settings.exclusive_statement_timeout_ms
    summary.update(online=bound is not None, exclusive_statement_timeout_ms=bound)
    runner = Runner(settings, out)
    outcome = Outcome()
    summary.update(applied=outcome.applied, skipped=outcome.skipped)
    try:
        runner.open()
        runner.up(migrations, args.to, outcome)
    finally:
        runner.close()
    summary["attempts"] = {str(k): v for k, v in outcome.attempts.items()}
    if not outcome.applied:
        out.say("nothing to do: every migration is applied")
    return ExitCode.OK


def cmd_status(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    dsn = require_dsn(env)
    migrations = load(args, env)
    with read_only(dsn, args) as conn:
        history = db.read_history(conn)
    by_version = {m.version: m for m in migrations}
    changed = {int(p.split("_", 1)[0]) for p in checksum_problems(migrations, history)}
    applied = []
    for version, row in sorted(history.items()):
        label = by_version[version].label if version in by_version else f"{version:04d}_{row.name}"
        note = " CHANGED SINCE APPLIED" if version in changed else ""
        note += "" if version in by_version else " (no file)"
        out.say(
            f"applied  {label}  {row.applied_at.isoformat()}  {row.duration_ms} ms"
            f"  {row.applied_by}{note}"
        )
        applied.append(
            {"version": version, "name": row.name, "applied_at": row.applied_at.isoformat()}
        )
    pending = pending_of(migrations, history)
    for migration in pending:
        out.say(f"pending  {migration.label}")
    summary.update(applied=applied, pending=[m.version for m in pending], changed=sorted(changed))
    return ExitCode.OK


def cmd_plan(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    dsn = require_dsn(env)
    migrations = load(args, env)
    with read_only(dsn, args) as conn:
        history = db.read_history(conn)
    problems = checksum_problems(migrations, history)
    if problems:
        raise db.MigratorError(ExitCode.CHECKSUM_MISMATCH, "; ".join(problems))
    pending = pending_of(migrations, history, args.to)
    summary["applied"] = sorted(history)
    summary["pending"] = [m.version for m in pending]
    summary["touches"] = sorted({table for m in pending for table in m.touches})
    schema = lint.Schema()  # carried through the files in version order, as classify wants
    verdicts = lint_verdicts(migrations, env, out)
    summary["migrations"] = [
        {
            **declaration(m, m.version in history, lint.classify(m, schema)),
            **verdicts.get((m.path.name, m.checksum), NOT_LINTED),
        }
        for m in migrations
    ]
    if not pending:
        out.say("nothing to do: every migration is applied")
    planned = {m["version"]: m for m in summary["migrations"]}
    for migration in pending:
        mode = "in a transaction" if migration.transactional else "outside a transaction"
        tables = ", ".join(migration.touches) or "-"
        entry = planned[migration.version]
        out.say(
            f"would apply {migration.label} ({entry['class']}; {mode}; touches {tables};"
            f" lint {entry['verdict']})"
        )
        for column in migration.columns:
            out.say(f"    adds {column.table}.{column.name} {column.type}")
        for allow in entry["allows"]:
            out.say(f"    allows {allow['rule']} because {allow['reason']}")
        for finding in entry["findings"]:
            out.say(f"    line {finding['line']}: {finding['rule']}: {finding['message']}")
    return ExitCode.OK


# What plan says of a file that no lint record vouches for (or whose checksum differs).
NOT_LINTED = {"verdict": "not linted", "findings": [], "allows": []}


def lint_verdicts(
    migrations: list[files.Migration], env: dict[str, str], out: Output
) -> dict[tuple[str, str], dict]:
    """(file name, checksum) -> verdict, findings and opt-ins of the lint.

    In the migrate image they come from the record its build wrote (MIGRATIONS_LINT): the
    build lints with squawk, which the image does not carry. Elsewhere the lint runs now;
    where it cannot (an image built without its record, no squawk), every file is reported
    "not linted" and the deploy's preflight refuses the pending ones, naming them.
    """
    record = env.get("MIGRATIONS_LINT")
    if record:
        try:
            linted = json.loads(Path(record).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise db.MigratorError(
                ExitCode.BAD_MIGRATION_FILE,
                f"the lint record {record} cannot be read ({exc}): rebuild the migrate image",
            ) from None
    else:
        try:
            linted = [result.as_dict() for result in lint.lint_results(migrations)]
        except lint.SquawkUnavailable as error:
            out.say(f"{error}; every file is reported as not linted")
            return {}
    return {
        (Path(item["file"]).name, item["checksum"]): {
            key: item[key] for key in ("verdict", "findings", "allows")
        }
        for item in linted
    }


def declaration(
    migration: files.Migration, applied: bool, classification: lint.Classification
) -> dict:
    """What the image says of one migration file: the deploy verifies what it declares."""
    return {
        "version": migration.version,
        "file": migration.path.name,
        "checksum": migration.checksum,
        "status": "applied" if applied else "pending",
        "class": classification.kind,
        "class_reasons": [
            {"line": reason.line, "reason": reason.why} for reason in classification.reasons
        ],
        "class_notes": [{"line": note.line, "note": note.why} for note in classification.notes],
        "columns": [
            {"table": column.table, "column": column.name, "type": column.type}
            for column in migration.columns
        ],
        "touches": list(migration.touches),
    }


def cmd_verify(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    dsn = require_dsn(env)
    migrations = load(args, env)
    problems: list[str] = []
    checked = 0
    with read_only(dsn, args) as conn:
        history = db.read_history(conn)
        for migration in migrations:
            if migration.version not in history:
                continue
            for column in migration.columns:
                checked += 1
                problem = db.type_problem(conn, column)
                if problem:
                    problems.append(f"{migration.path.name}: {problem}")
                else:
                    out.say(f"ok  {column.table}.{column.name} {column.type}")
    summary.update(checked=checked, problems=problems)
    if problems:
        for problem in problems:
            out.say(f"FAILED  {problem}")
        raise db.MigratorError(
            ExitCode.VERIFY_FAILED,
            f"{len(problems)} declared column(s) missing or mistyped: " + "; ".join(problems),
        )
    out.say(f"verified {checked} declared column(s) of {len(history)} applied migration(s)")
    return ExitCode.OK


def cmd_lint(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    if args.files:
        try:
            migrations = [files.load_migration(path) for path in args.files]
        except (files.MigrationFileError, OSError, UnicodeDecodeError) as exc:
            raise db.MigratorError(ExitCode.BAD_MIGRATION_FILE, str(exc)) from None
    else:
        migrations = load(args, env)
        dsn = env.get("DATABASE_URL", "").strip()
        if dsn and not args.all:
            with read_only(dsn, args) as conn:
                history = db.read_history(conn)
            migrations = pending_of(migrations, history)
    summary["files"] = [m.path.name for m in migrations]
    if not args.json:
        return int(lint.run_lint(migrations, sys.stdout))
    try:
        results = lint.lint_results(migrations)
    except lint.SquawkUnavailable as error:
        raise db.MigratorError(ExitCode.LINT_FINDINGS, str(error)) from None
    summary["files"] = [result.as_dict() for result in results]
    return ExitCode.LINT_FINDINGS if any(result.findings for result in results) else ExitCode.OK


def backfills_dir(args: argparse.Namespace, env: dict[str, str]) -> Path:
    if env.get("BACKFILLS_DIR"):
        return Path(env["BACKFILLS_DIR"])
    return migrations_dir(args, env).parent / "backfills"


def cmd_backfill(args: argparse.Namespace, env: dict[str, str], out: Output, summary: dict) -> int:
    definition = backfill.load_definition(backfills_dir(args, env), args.name)
    dsn = require_dsn(env)
    options = backfill.Options(
        batch_size=args.batch_size,
        target_batch_ms=args.target_batch_ms,
        sleep_ms=args.sleep_ms,
        max_rows=args.max_rows,
        lock_timeout_ms=args.lock_timeout_ms,
    )
    reporter = backfill.Reporter(out, args.progress_every_s, tty=out.stderr.isatty())
    with db.connect(dsn, args.connect_timeout_s, f"backfill {args.name}") as conn:
        job = backfill.Job(definition, conn, out=out, options=options, reporter=reporter)
        if args.dry_run:
            job.dry_run(summary)
        else:
            job.run(summary)
    return ExitCode.OK


COMMANDS = {
    "backfill": cmd_backfill,
    "up": cmd_up,
    "status": cmd_status,
    "plan": cmd_plan,
    "verify": cmd_verify,
    "lint": cmd_lint,
}


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser().parse_args(argv)
    for key, value in DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    out = Output(json_only=args.json)
    summary: dict = {"command": args.command}
    started = time.monotonic()
    dsn = env.get("DATABASE_URL")
    try:
        code = COMMANDS[args.command](args, env, out, summary)
    except db.MigratorError as exc:
        message = scrub(exc.message, dsn)
        out.error(message)
        summary.update(exc.details)
        summary["error"] = message
        code = exc.code
    except psycopg.Error as exc:
        lost = isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
        code = ExitCode.CANNOT_CONNECT if lost else ExitCode.SQL_ERROR
        message = scrub(f"database error: {exc.diag.message_primary or exc}", dsn)
        out.error(message)
        summary["error"] = message
    except KeyboardInterrupt:
        out.error("interrupted")
        summary["error"] = "interrupted"
        code = ExitCode.USAGE
    summary["duration_ms"] = int((time.monotonic() - started) * 1000)
    summary["exit_code"] = int(code)
    out.summary(summary)
    return int(code)
