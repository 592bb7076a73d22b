#!/usr/bin/python
"""Ansible module: report the sessions that hold or wait for locks on given tables."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_lock_report
short_description: Report the sessions that hold or wait for locks on given tables
description:
  - Read-only preflight check. Lists every other session that holds or waits for a lock on
    one of O(tables), with its state, transaction age and (truncated) query, so an operator
    sees before the deploy what the migration would wait for.
  - Never fails because of what it finds; it reports.
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  tables:
    description: Tables (in the connection's search path) to look at.
    type: list
    elements: str
    required: true
  query_chars:
    description: How much of each session's query to show.
    type: int
    default: 120
extends_documentation_fragment:
  - prosaas_read_only
  - prosaas_pg
"""

EXAMPLES = r"""
- name: Report who holds locks on the tables the pending migrations touch
  pg_lock_report:
    dsn: "{{ prosaas_database_url_from_deployer }}"
    tables: [call_log]
  register: preflight_locks
"""

RETURN = r"""
sessions:
  description: One entry per session and lock on the tables.
  returned: always
  type: list
  elements: dict
  sample:
    - pid: 4242
      table: call_log
      mode: AccessShareLock
      granted: true
      state: idle in transaction
      xact_age_s: 312.4
      application: psql
      query: "SELECT count(*) FROM call_log"
holders:
  description: How many sessions hold a lock on the tables.
  returned: always
  type: int
  sample: 1
waiters:
  description: How many sessions wait for one.
  returned: always
  type: int
  sample: 0
oldest_xact_age_s:
  description: Age in seconds of the oldest transaction among them; null when none.
  returned: always
  type: float
  sample: 312.4
summary:
  description: One line for the play output.
  returned: always
  type: str
  sample: >-
    1 session(s) hold and 0 wait for locks on call_log; oldest: pid 4242
    (idle in transaction, transaction 312.4 s): SELECT count(*) FROM call_log
"""

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_pg import error_text, pg_argument_spec, pg_connect

with contextlib.suppress(ImportError):  # reported by pg_connect() via missing_required_lib
    import psycopg

LOCKS_QUERY = """
SELECT l.pid, c.relname, l.mode, l.granted, a.state,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8, a.application_name,
       left(a.query, %(chars)s)
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.pid <> pg_backend_pid() AND c.oid = ANY(%(tables)s::regclass[])
ORDER BY a.xact_start NULLS LAST, l.pid
"""
EXISTING_TABLES = "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL"
FIELDS = ("pid", "table", "mode", "granted", "state", "xact_age_s", "application", "query")


def read_sessions(conn: Any, tables: list[str], chars: int) -> list[dict[str, Any]]:
    existing = [row[0] for row in conn.execute(EXISTING_TABLES, (tables,)).fetchall()]
    if not existing:
        return []
    rows = conn.execute(LOCKS_QUERY, {"tables": existing, "chars": chars}).fetchall()
    sessions = [dict(zip(FIELDS, row, strict=True)) for row in rows]
    for session in sessions:
        age = session["xact_age_s"]
        session["xact_age_s"] = round(age, 1) if age is not None else None
        session["query"] = " ".join((session["query"] or "").split())
    return sessions


def summarize(sessions: list[dict[str, Any]]) -> str:
    if not sessions:
        return "no other session holds or waits for a lock on these tables"
    holders = [s for s in sessions if s["granted"]]
    waiters = [s for s in sessions if not s["granted"]]
    oldest = sessions[0]
    return (
        f"{len({s['pid'] for s in holders})} session(s) hold and "
        f"{len({s['pid'] for s in waiters})} wait for locks on "
        f"{', '.join(sorted({s['table'] for s in sessions}))}; oldest: pid {oldest['pid']} "
        f"({oldest['state']}, transaction {oldest['xact_age_s']} s): {oldest['query'][:60]}"
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=pg_argument_spec(
            tables={"type": "list", "elements": "str", "required": True},
            query_chars={"type": "int", "default": 120},
        ),
        supports_check_mode=True,
    )
    conn = pg_connect(module)
    try:
        sessions = read_sessions(conn, module.params["tables"], module.params["query_chars"])
    except psycopg.Error as exc:
        module.fail_json(msg=f"lock report failed: {error_text(exc, module.params['dsn'])}")
    finally:
        conn.close()
    ages = [s["xact_age_s"] for s in sessions if s["xact_age_s"] is not None]
    module.exit_json(
        changed=False,
        sessions=sessions,
        holders=len({s["pid"] for s in sessions if s["granted"]}),
        waiters=len({s["pid"] for s in sessions if not s["granted"]}),
        oldest_xact_age_s=max(ages) if ages else None,
        summary=summarize(sessions),
    )


if __name__ == "__main__":
    main()
