#!/usr/bin/env python3
"""Write migrations/migrator/volatility_pg15.json from a PostgreSQL 15 server's own catalog.

    python scripts/gen_volatility.py             # a throwaway cluster of /usr/lib/postgresql/15/bin
    python scripts/gen_volatility.py --dsn DSN   # a PostgreSQL 15 server you already have

The table maps each built-in function name (``pg_proc`` rows of ``pg_catalog`` that are not
procedures: functions, aggregates and window functions) to ``provolatile`` of its most
volatile overload (``v`` > ``s`` > ``i``), and lists the reserved and column-name keywords
(``pg_get_keywords()``, catcode R and C): those are never function names unqualified, so
``numeric(10,2)`` or ``coalesce(...)`` is syntax, not a call. Output is sorted: the same
server always gives the same file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "migrations")]

from migrator.redact import error_text  # noqa: E402

from tests.pg_cluster import ClusterError, ThrowawayCluster  # noqa: E402

MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{MAJOR}/bin")
OUTPUT = ROOT / "migrations" / "migrator" / f"volatility_pg{MAJOR}.json"
RANK = {"i": 0, "s": 1, "v": 2}
FUNCTIONS_QUERY = (
    "SELECT proname, provolatile FROM pg_catalog.pg_proc"
    " WHERE pronamespace = 'pg_catalog'::regnamespace AND prokind <> 'p'"
)
KEYWORDS_QUERY = (
    "SELECT word, catcode FROM pg_catalog.pg_get_keywords() WHERE catcode IN ('R', 'C')"
)
ABOUT = (
    "PostgreSQL's built-in functions (pg_catalog; functions, aggregates and window functions)"
    " by name, each with provolatile of its most volatile overload (v volatile > s stable >"
    " i immutable); keywords: pg_get_keywords() of catcode R (reserved) and C (column-name),"
    " never function names unqualified. Generated: do not edit, run the command below."
)


class GenerationError(RuntimeError):
    """The table cannot be made; the message says why and what to do."""


def most_volatile(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Name -> provolatile of its most volatile overload, sorted by name."""
    table: dict[str, str] = {}
    for name, volatility in rows:
        if name not in table or RANK[volatility] > RANK[table[name]]:
            table[name] = volatility
    return dict(sorted(table.items()))


def read_catalog(dsn: str) -> dict:
    """The table's content, read from the server at ``dsn`` (which must run PostgreSQL 15)."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            major = conn.info.server_version // 10000
            functions = conn.execute(FUNCTIONS_QUERY).fetchall()
            keywords = conn.execute(KEYWORDS_QUERY).fetchall()
    except psycopg.Error as exc:
        raise GenerationError(f"cannot read the catalog: {error_text(exc, dsn)}") from None
    if major != MAJOR:
        raise GenerationError(
            f"the server runs PostgreSQL {version}; the table is PostgreSQL {MAJOR}'s:"
            f" give the DSN of a PostgreSQL {MAJOR} server"
        )
    return {
        "about": ABOUT,
        "generated_by": "python scripts/gen_volatility.py",
        "server_version": version,
        "functions": most_volatile(functions),
        "keywords": {
            "reserved": sorted(word for word, code in keywords if code == "R"),
            "column_name": sorted(word for word, code in keywords if code == "C"),
        },
    }


def from_throwaway_cluster(read: Callable[[str], dict]) -> dict:
    """``read`` run against a fresh PostgreSQL 15 cluster, removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        raise GenerationError(
            f"no PostgreSQL {MAJOR} server binaries in {PG_BIN}: install postgresql-{MAJOR}"
            f" or pass --dsn of a PostgreSQL {MAJOR} server"
        )
    cluster = ThrowawayCluster(bin_dir=PG_BIN)
    try:
        dsn = cluster.start()
    except ClusterError as exc:
        shutil.rmtree(cluster.base, ignore_errors=True)
        raise GenerationError(f"cannot start a throwaway cluster: {exc}") from None
    try:
        return read(dsn)
    finally:
        cluster.stop()


def render(table: dict) -> str:
    """The file's text: one function or keyword a line, so a refresh diffs by name."""
    return json.dumps(table, indent=1, ensure_ascii=False) + "\n"


def write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise GenerationError(f"cannot write {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a PostgreSQL 15 server (default: a throwaway cluster)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    try:
        table = read_catalog(args.dsn) if args.dsn else from_throwaway_cluster(read_catalog)
        write(args.output, render(table))
    except GenerationError as exc:
        print(f"gen_volatility: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.output}: {len(table['functions'])} functions"
        f" of PostgreSQL {table['server_version']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
