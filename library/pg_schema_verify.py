#!/usr/bin/python
"""Ansible module: check that expected columns exist in PostgreSQL with the expected types."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_schema_verify
short_description: Check that tables have the expected columns, with the expected types
description:
  - Connects with a read-only transaction and looks up each expected column in the catalog
    (C(pg_attribute), C(pg_class), C(pg_namespace); dropped and system columns left out).
  - Types are compared through the catalog, never as text. The expected type name is
    normalised by the server (C(to_regtype), then C(format_type) without modifier), so
    V(timestamp) and V(timestamp without time zone), V(int4) and V(integer), V(varchar) and
    V(character varying) are the same type.
  - When the expected type carries a modifier, for example V(varchar(20\)) or
    V(numeric(10,2\)), the column's full type (C(format_type) of C(atttypid) with
    C(atttypmod)) must match it too; without one, any modifier of the column is accepted.
  - Fails with one line naming every missing or mismatched column. A missing table counts
    as all of its columns missing. An expected type the server does not know is reported as
    mismatched.
  - The expected columns are written once, in the migration files' own headers. The deploy
    takes them from the migrate image's C(plan) (the C(declared_columns) filter), never from
    the control node's checkout.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  columns:
    description:
      - Expected columns, as table name to a mapping of column name to type name.
      - Names are catalog names, so lower case for identifiers created unquoted.
    type: dict
    required: true
  schema:
    description: Schema the tables are in; the connection's C(current_schema()) when omitted.
    type: str
extends_documentation_fragment:
  - prosaas_pg
attributes:
  check_mode:
    support: full
    description: Reads only, in a read-only transaction; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
notes:
  - The module runs where psycopg is installed; the DSN may name a remote server.
  - On PostgreSQL 17 and later the expected modifier is normalised by the server
    (C(to_regtypemod)); before 17 it is compared as written, spaces removed, so write it as
    the server shows it (V(numeric(10,2\)), not V(numeric(10\))).
"""

EXAMPLES = r"""
- name: Check the columns migration 109 adds
  pg_schema_verify:
    dsn: "{{ prosaas_database_url }}"
    columns:
      call_log:
        started_at: timestamp
        ended_at: timestamp
        duration_sec: integer

- name: Check every column the applied migrations declare, as the migrate image's plan says
  pg_schema_verify:
    dsn: "{{ prosaas_database_url }}"
    columns: "{{ preflight_plan.migrations | declared_columns(preflight_plan.applied) }}"
    schema: public
    connect_timeout: 5
"""

RETURN = r"""
present:
  description: Columns found with the expected type, as C(table.column type) (the actual type).
  returned: always
  type: list
  elements: str
  sample: ["call_log.started_at timestamp without time zone", "call_log.duration_sec integer"]
missing:
  description: Expected columns not found, as C(table.column).
  returned: always
  type: list
  elements: str
  sample: ["call_log.ended_at"]
mismatched:
  description:
    - Columns found with another type. C(expected) is the normalised expected type (as
      written when the server does not know it, then C(reason) says so).
  returned: always
  type: list
  elements: dict
  sample: [{"column": "call_log.duration_sec", "expected": "integer", "actual": "text"},
           {"column": "call_log.ended_at", "expected": "timestmp", "actual": "text",
            "reason": "unknown type"}]
checked:
  description: Number of expected columns checked.
  returned: always
  type: int
  sample: 3
schema:
  description: Schema the columns were looked up in.
  returned: always
  type: str
  sample: public
queries:
  description: The SQL statements run, without their values.
  returned: always
  type: list
  elements: str
  sample: ["SELECT current_schema()", "SELECT format_type(to_regtype(%s), NULL)"]
"""

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_pg import (
    error_text,
    pg_argument_spec,
    pg_connect,
    type_modifier,
    with_modifier,
)

with contextlib.suppress(ImportError):  # reported by pg_connect() via missing_required_lib
    import psycopg

CURRENT_SCHEMA = "SELECT current_schema()"
SERVER_VERSION = "SHOW server_version_num"
NORMALISE = "SELECT format_type(to_regtype(%s), NULL)"
NORMALISE_WITH_MODIFIER = (
    "SELECT format_type(to_regtype(%s), NULL), format_type(to_regtype(%s), to_regtypemod(%s))"
)
ACTUAL_COLUMNS = """\
SELECT c.relname, a.attname, format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped"""
TO_REGTYPEMOD_SINCE = 170000


@dataclass(frozen=True)
class ExpectedType:
    """An expected type name as written, and as the server names it (None: unknown type)."""

    written: str
    base: str | None
    full: str | None

    @property
    def shown(self) -> str:
        return self.full or self.written


@dataclass
class Verification:
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict[str, str]] = field(default_factory=list)

    def failure(self) -> str | None:
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        for entry in self.mismatched:
            reason = f" ({entry['reason']})" if entry.get("reason") else ""
            parts.append(
                f"{entry['column']} is {entry['actual']}, expected {entry['expected']}{reason}"
            )
        return "schema check failed: " + "; ".join(parts) if parts else None


class SchemaVerifier:
    def __init__(self, module: AnsibleModule, conn: Any) -> None:
        self.module = module
        self.conn = conn
        self.queries: list[str] = []

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if sql not in self.queries:
            self.queries.append(sql)
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def schema(self) -> str:
        return self.module.params["schema"] or self.query(CURRENT_SCHEMA)[0][0]

    def normalise(self, type_name: str, server_version: int) -> ExpectedType:
        """The server's name for a type, with its modifier; unknown (None) when it has none."""
        modifier = type_modifier(type_name)
        try:
            with self.conn.transaction():  # a savepoint: a syntax error must not end the check
                if modifier and server_version >= TO_REGTYPEMOD_SINCE:
                    base, full = self.query(NORMALISE_WITH_MODIFIER, (type_name,) * 3)[0]
                else:
                    (base,) = self.query(NORMALISE, (type_name,))[0]
                    full = with_modifier(base, modifier) if base else None
        except psycopg.Error:  # a type name the server cannot even parse
            base = full = None
        return ExpectedType(type_name, base, full)

    def actual_columns(self, schema: str, tables: list[str]) -> dict[tuple[str, str], tuple]:
        rows = self.query(ACTUAL_COLUMNS, (schema, tables))
        return {(table, column): (base, full) for table, column, base, full in rows}

    def run(self, expected: dict[str, dict[str, str]]) -> tuple[str, Verification]:
        schema = self.schema()
        server_version = int(self.query(SERVER_VERSION)[0][0])
        written = sorted({kind for columns in expected.values() for kind in columns.values()})
        types = {name: self.normalise(name, server_version) for name in written}
        actual = self.actual_columns(schema, sorted(expected))
        outcome = Verification()
        for table, columns in expected.items():
            for column, type_name in columns.items():
                compare(outcome, f"{table}.{column}", types[type_name], actual.get((table, column)))
        return schema, outcome


def compare(
    outcome: Verification, name: str, expected: ExpectedType, actual: tuple[str, str] | None
) -> None:
    if actual is None:
        outcome.missing.append(name)
        return
    actual_base, actual_full = actual
    if expected.base is None:
        outcome.mismatched.append(
            {
                "column": name,
                "expected": expected.written,
                "actual": actual_full,
                "reason": "unknown type",
            }
        )
    elif expected.base != actual_base or (
        type_modifier(expected.written) and expected.full != actual_full
    ):
        outcome.mismatched.append(
            {"column": name, "expected": expected.shown, "actual": actual_full}
        )
    else:
        outcome.present.append(f"{name} {actual_full}")


def expected_columns(module: AnsibleModule) -> dict[str, dict[str, str]]:
    """The columns parameter, checked to be table -> {column: type name}."""
    columns = module.params["columns"]
    for table, entries in columns.items():
        if not isinstance(entries, dict):
            module.fail_json(
                msg=f"columns: {table!r} must map column names to type names, "
                f"got {type(entries).__name__}"
            )
        for column, type_name in entries.items():
            if not isinstance(type_name, str) or not type_name.strip():
                module.fail_json(msg=f"columns: {table}.{column} needs a type name")
    return {
        str(table): {str(column): " ".join(kind.split()) for column, kind in entries.items()}
        for table, entries in columns.items()
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=pg_argument_spec(
            columns={"type": "dict", "required": True},
            schema={"type": "str"},
        ),
        supports_check_mode=True,
    )
    expected = expected_columns(module)
    conn = pg_connect(module)
    verifier = SchemaVerifier(module, conn)
    try:
        schema, outcome = verifier.run(expected)
    except psycopg.Error as exc:
        module.fail_json(
            msg=f"schema check failed: {error_text(exc, module.params['dsn'])}",
            queries=verifier.queries,
        )
    finally:
        conn.close()  # read only: the transaction is rolled back, nothing to keep
    result = {
        "changed": False,
        "schema": schema,
        "present": outcome.present,
        "missing": outcome.missing,
        "mismatched": outcome.mismatched,
        "checked": sum(len(columns) for columns in expected.values()),
        "queries": verifier.queries,
    }
    failure = outcome.failure()
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
