"""The lock table: what each statement form does to a table that is in use, after
PostgreSQL 15's documentation ("Explicit Locking", the ALTER TABLE reference, each
command's own page).

Every row says which lock the form takes on the table it names, what it does to the rows
(only the catalog, a scan, a rewrite, an index build, a change of data) and whether the
running release can live with it, with the reason. The classifier (``lint.classify``)
finds a statement's row by its pattern; a statement no row knows is ``offline``, with
that reason. ``docs/lint-rules.md`` shows the table, and an integration test runs every
row's example on PostgreSQL 15 and checks the lock it takes (``pg_locks``) and whether it
rewrote the table (``pg_relation_filenode``).

The patterns match the text the lint reads: lower case, whitespace collapsed, comments
and the insides of literals blanked. Statement rows match a whole statement; action rows
match one action of an ``ALTER TABLE`` (what ``split_top_level`` gives). Rows are tried
in order: the first that matches is the statement's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrator.sql import blank

# PostgreSQL's table lock modes, weakest first.
MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
# What a form does to the table's rows.
CATALOG, SCAN, REWRITE, BUILD, DATA = "catalog", "scan", "rewrite", "index build", "data"
ONLINE, OFFLINE = "online", "offline"

NAME = r'(?:"[^"]+"|[a-z_][a-z0-9_$]*)'
QUALIFIED = rf"{NAME}(?:\s*\.\s*{NAME})?"


@dataclass(frozen=True)
class LockRule:
    """One statement form of the lock table."""

    name: str  # the row's id, as reasons and docs name it
    form: str  # the form, as the docs show it
    pattern: str  # regular expression, matched at the start of the statement or action
    lock: str  # the mode taken on the table the statement names; "" for none
    effect: str  # CATALOG, SCAN, REWRITE, BUILD or DATA
    kind: str  # ONLINE or OFFLINE: whether the running release can live with it
    why: str  # why it is in that class
    example: str = ""  # SQL run on PostgreSQL 15 by the ground-truth test ("" for none)
    target: str = "call_log"  # the relation the example's lock and rewrite are read on
    transactional: bool = True  # whether the example can run inside a transaction
    # The row this one refines: the classifier picks it from what it knows (a default's
    # volatility, a varchar's width, a validated NOT NULL check), never by its pattern.
    refines: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


def _rule(*fields: str, **options: str | bool) -> LockRule:
    return LockRule(*fields, **options)  # type: ignore[arg-type]


# --- ALTER TABLE actions ----------------------------------------------------------------

ADD = (
    r"add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?"
    r"(?!(?:constraint|primary|unique|check|foreign|exclude)\b)"
)
ACTIONS: tuple[LockRule, ...] = (
    _rule(
        "add-column-identity",
        "ADD COLUMN ... GENERATED AS IDENTITY / serial",
        rf"{ADD}{NAME}\s+(?:(?:small|big)?serial[248]?\b|.*\bgenerated\s+(?:always|by\s+default)\s+as\s+identity\b)",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "fills every existing row from a sequence: a table rewrite under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD COLUMN seq bigserial",
    ),
    _rule(
        "add-column-generated",
        "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED",
        rf"{ADD}{NAME}\s+.*\bgenerated\s+always\s+as\s*\(.*\)\s*stored\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "computes the column for every existing row: a table rewrite under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD COLUMN twice integer"
        " GENERATED ALWAYS AS (duration * 2) STORED",
    ),
    _rule(
        "add-column-unique",
        "ADD COLUMN ... UNIQUE / PRIMARY KEY",
        rf"{ADD}{NAME}\s+.*\b(?:unique|primary\s+key)\b",
        "ACCESS EXCLUSIVE",
        BUILD,
        OFFLINE,
        "builds an index over every row under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD COLUMN ext_id text UNIQUE",
    ),
    _rule(
        "add-column-constraint",
        "ADD COLUMN ... CHECK / REFERENCES",
        rf"{ADD}{NAME}\s+.*\b(?:check|references)\b",
        "ACCESS EXCLUSIVE",
        SCAN,
        OFFLINE,
        "validates its constraint against every row under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD COLUMN owner_id bigint REFERENCES agent (id)",
    ),
    _rule(
        "add-column-not-null",
        "ADD COLUMN ... NOT NULL without a default",
        rf"{ADD}{NAME}\s+(?!.*\bdefault\b).*\bnot\s+null\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "existing rows have no value, and the running release's inserts do not set it",
        example="ALTER TABLE call_log_archive ADD COLUMN kept_at timestamptz NOT NULL",
        target="call_log_archive",
    ),
    _rule(
        "add-column-volatile-default",
        "ADD COLUMN ... DEFAULT (a volatile expression)",
        rf"{ADD}{NAME}\s+.*\bdefault\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "a volatile default is computed for every existing row: a table rewrite under"
        " ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD COLUMN picked double precision DEFAULT random()",
        refines="add-column",
    ),
    _rule(
        "add-column",
        "ADD COLUMN (nullable, or with a constant or non-volatile default)",
        rf"{ADD}{NAME}\s+",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change: a non-volatile default is stored once in the catalog",
        example="ALTER TABLE call_log ADD COLUMN seen_at timestamptz DEFAULT now()",
    ),
    _rule(
        "add-foreign-key-not-valid",
        "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID",
        r"add\s+(?:constraint\s+\S+\s+)?foreign\s+key\b.*\bnot\s+valid\b",
        "SHARE ROW EXCLUSIVE",
        CATALOG,
        ONLINE,
        "checks new writes only: a catalog change (SHARE ROW EXCLUSIVE on both tables)",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id) NOT VALID",
    ),
    _rule(
        "add-constraint-not-valid",
        "ADD CONSTRAINT ... CHECK ... NOT VALID",
        r"add\s+(?:constraint\s+\S+\s+)?check\b.*\bnot\s+valid\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "checks new writes only: a catalog change",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_caller_check"
        " CHECK (caller <> '') NOT VALID",
    ),
    _rule(
        "add-foreign-key",
        "ADD CONSTRAINT ... FOREIGN KEY",
        r"add\s+(?:constraint\s+\S+\s+)?foreign\s+key\b",
        "SHARE ROW EXCLUSIVE",
        SCAN,
        OFFLINE,
        "checks every row while blocking writes (SHARE ROW EXCLUSIVE on both tables)",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk"
        " FOREIGN KEY (agent_id) REFERENCES agent (id)",
    ),
    _rule(
        "add-check",
        "ADD CONSTRAINT ... CHECK",
        r"add\s+(?:constraint\s+\S+\s+)?check\b",
        "ACCESS EXCLUSIVE",
        SCAN,
        OFFLINE,
        "checks every row under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_id_check CHECK (id > 0)",
    ),
    _rule(
        "add-constraint-using-index",
        "ADD CONSTRAINT ... UNIQUE / PRIMARY KEY USING INDEX",
        r"add\s+(?:constraint\s+\S+\s+)?(?:unique|primary\s+key)\s+using\s+index\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "adopts an index built beforehand (CONCURRENTLY): a catalog change",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_caller_key"
        " UNIQUE USING INDEX call_log_caller_key",
    ),
    _rule(
        "add-unique",
        "ADD CONSTRAINT ... UNIQUE / PRIMARY KEY / EXCLUDE",
        r"add\s+(?:constraint\s+\S+\s+)?(?:unique|primary\s+key|exclude)\b",
        "ACCESS EXCLUSIVE",
        BUILD,
        OFFLINE,
        "builds its index over every row under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_caller_uq UNIQUE (caller)",
    ),
    _rule(
        "validate-constraint",
        "VALIDATE CONSTRAINT",
        r"validate\s+constraint\b",
        "SHARE UPDATE EXCLUSIVE",
        SCAN,
        ONLINE,
        "scans the table under a lock that lets reads and writes go on",
        example="ALTER TABLE call_log VALIDATE CONSTRAINT call_log_duration_check",
    ),
    _rule(
        "validate-in-adding-transaction",
        "VALIDATE CONSTRAINT in the transaction that added it NOT VALID",
        r"validate\s+constraint\b",
        "ACCESS EXCLUSIVE",
        SCAN,
        OFFLINE,
        "the ADD's ACCESS EXCLUSIVE is still held while VALIDATE scans every row",
        refines="validate-constraint",
    ),
    _rule(
        "drop-check",
        "DROP CONSTRAINT of a CHECK constraint",
        r"drop\s+constraint\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a CHECK only refuses writes: dropping it breaks no query",
        refines="drop-constraint",
        example="ALTER TABLE call_log DROP CONSTRAINT call_log_duration_check",
    ),
    _rule(
        "drop-constraint",
        "DROP CONSTRAINT",
        r"drop\s+constraint\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release may rely on the constraint (an ON CONFLICT, a unique key)",
        example="ALTER TABLE call_log DROP CONSTRAINT call_log_duration_check",
    ),
    _rule(
        "rename-constraint",
        "RENAME CONSTRAINT",
        r"rename\s+constraint\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change no query names",
        example="ALTER TABLE call_log RENAME CONSTRAINT call_log_duration_check"
        " TO call_log_duration_ok",
    ),
    _rule(
        "alter-constraint",
        "ALTER CONSTRAINT (deferrability)",
        r"alter\s+constraint\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change",
        example="ALTER TABLE call_log ADD CONSTRAINT call_log_agent_fk FOREIGN KEY (agent_id)"
        " REFERENCES agent (id) NOT VALID;"
        " ALTER TABLE call_log ALTER CONSTRAINT call_log_agent_fk DEFERRABLE",
    ),
    _rule(
        "drop-column",
        "DROP COLUMN",
        r"drop\s+(?:column\s+)?(?!constraint\b)",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release still reads the column",
        example="ALTER TABLE call_log DROP COLUMN note",
    ),
    _rule(
        "rename",
        "RENAME [COLUMN] ... TO / RENAME TO",
        r"rename\s+",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release still uses the old name",
        example="ALTER TABLE call_log RENAME COLUMN note TO remark",
    ),
    _rule(
        "set-schema",
        "SET SCHEMA",
        r"set\s+schema\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release still finds the table by its old name",
        example="ALTER TABLE call_log_archive SET SCHEMA public",
        target="call_log_archive",
    ),
    _rule(
        "alter-column-type-widen",
        "ALTER COLUMN ... TYPE, widening a known varchar (or to text)",
        r"alter\s+(?:column\s+)?\S+\s+(?:set\s+data\s+)?type\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a binary-compatible change: only the catalog changes",
        example="ALTER TABLE call_log ALTER COLUMN agent TYPE varchar(64)",
        refines="alter-column-type",
    ),
    _rule(
        "alter-column-type",
        "ALTER COLUMN ... TYPE",
        r"alter\s+(?:column\s+)?\S+\s+(?:set\s+data\s+)?type\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "rewrites the table and its indexes under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log ALTER COLUMN duration TYPE bigint",
    ),
    _rule(
        "set-not-null-proven",
        "ALTER COLUMN ... SET NOT NULL, after a validated CHECK (column IS NOT NULL)",
        r"alter\s+(?:column\s+)?\S+\s+set\s+not\s+null\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "the validated check already keeps NULL out, so PostgreSQL skips the scan",
        refines="set-not-null",
    ),
    _rule(
        "set-not-null",
        "ALTER COLUMN ... SET NOT NULL",
        r"alter\s+(?:column\s+)?\S+\s+set\s+not\s+null\b",
        "ACCESS EXCLUSIVE",
        SCAN,
        OFFLINE,
        "scans every row under ACCESS EXCLUSIVE, and the running release may still write NULL",
        example="ALTER TABLE call_log ALTER COLUMN caller SET NOT NULL",
    ),
    _rule(
        "drop-not-null",
        "ALTER COLUMN ... DROP NOT NULL",
        r"alter\s+(?:column\s+)?\S+\s+drop\s+not\s+null\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change",
        example="ALTER TABLE call_log ALTER COLUMN caller DROP NOT NULL",
    ),
    _rule(
        "set-default",
        "ALTER COLUMN ... SET DEFAULT / DROP DEFAULT",
        r"alter\s+(?:column\s+)?\S+\s+(?:set|drop)\s+default\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change: it applies to new rows only",
        example="ALTER TABLE call_log ALTER COLUMN duration SET DEFAULT 0",
    ),
    _rule(
        "set-statistics",
        "ALTER COLUMN ... SET STATISTICS / SET (...) / RESET (...)",
        r"alter\s+(?:column\s+)?\S+\s+(?:set\s+statistics\b|(?:set|reset)\s*\()",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a planner setting, under a lock that lets reads and writes go on",
        example="ALTER TABLE call_log ALTER COLUMN caller SET STATISTICS 500",
    ),
    _rule(
        "set-storage",
        "ALTER COLUMN ... SET STORAGE / SET COMPRESSION",
        r"alter\s+(?:column\s+)?\S+\s+set\s+(?:storage|compression)\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change: it applies to new values only",
        example="ALTER TABLE call_log ALTER COLUMN note SET STORAGE external",
    ),
    _rule(
        "drop-expression",
        "ALTER COLUMN ... DROP EXPRESSION / identity options",
        r"alter\s+(?:column\s+)?\S+\s+(?:drop\s+expression|drop\s+identity|add\s+generated|set\s+generated|restart|set\s+(?:increment|start|minvalue|maxvalue|cycle|no))\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change",
        example="ALTER TABLE call_log ALTER COLUMN duration DROP EXPRESSION IF EXISTS",
    ),
    _rule(
        "set-storage-parameter",
        "SET (fillfactor, autovacuum_*, toast_tuple_target, parallel_workers, ...) / RESET (...)",
        r"(?:set|reset)\s*\(",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a storage or planner setting for new pages, under a lock that lets reads and writes go on",
        example="ALTER TABLE call_log SET (fillfactor = 90)",
    ),
    _rule(
        "cluster-on",
        "CLUSTER ON / SET WITHOUT CLUSTER",
        r"(?:cluster\s+on|set\s+without\s+cluster)\b",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "marks an index for a later CLUSTER; nothing moves",
        example="ALTER TABLE call_log CLUSTER ON call_log_caller_idx",
    ),
    _rule(
        "set-logged",
        "SET TABLESPACE / SET LOGGED / SET UNLOGGED / SET ACCESS METHOD",
        r"set\s+(?:tablespace|logged|unlogged|access\s+method)\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "rewrites the table under ACCESS EXCLUSIVE",
        example="ALTER TABLE call_log SET UNLOGGED",
    ),
    _rule(
        "trigger",
        "ENABLE / DISABLE TRIGGER",
        r"(?:enable|disable)\s+(?:(?:replica|always)\s+)?trigger\b",
        "SHARE ROW EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change; it blocks writes only for its moment",
        example="ALTER TABLE call_log DISABLE TRIGGER USER",
    ),
    _rule(
        "row-security",
        "ENABLE / DISABLE / FORCE ROW LEVEL SECURITY, ENABLE / DISABLE RULE",
        r"(?:(?:enable|disable|force|no\s+force)\s+row\s+level\s+security|(?:enable|disable)\s+(?:(?:replica|always)\s+)?rule)\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "changes which rows the running release's queries see or touch",
        example="ALTER TABLE call_log ENABLE ROW LEVEL SECURITY",
    ),
    _rule(
        "replica-identity",
        "REPLICA IDENTITY / OWNER TO / OF / NOT OF",
        r"(?:replica\s+identity|owner\s+to|of|not\s+of)\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change",
        example="ALTER TABLE call_log REPLICA IDENTITY FULL",
    ),
    _rule(
        "inherit",
        "INHERIT / NO INHERIT",
        r"(?:no\s+)?inherit\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "changes which rows queries on the parent table see (the parent itself gets only"
        " SHARE UPDATE EXCLUSIVE)",
        example="ALTER TABLE call_log_2027 INHERIT call_log_archive",
        target="call_log_2027",
    ),
    _rule(
        "attach-partition",
        "ATTACH PARTITION",
        r"attach\s+partition\b",
        "SHARE UPDATE EXCLUSIVE",
        SCAN,
        OFFLINE,
        "scans the new partition under ACCESS EXCLUSIVE on it, and its rows join the table",
        example="ALTER TABLE call_log_part ATTACH PARTITION call_log_2027"
        " FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
        target="call_log_part",
    ),
    _rule(
        "detach-partition",
        "DETACH PARTITION [CONCURRENTLY]",
        r"detach\s+partition\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the partition's rows leave the table the running release queries",
        example="ALTER TABLE call_log_part DETACH PARTITION call_log_2026",
        target="call_log_part",
    ),
)

# --- statements ---------------------------------------------------------------------------

STATEMENTS: tuple[LockRule, ...] = (
    _rule(
        "create-table",
        "CREATE TABLE / CREATE TABLE ... AS",
        r"create\s+(?:(?:global|local)\s+)?(?:(?:temp|temporary|unlogged)\s+)?table\b",
        "",
        CATALOG,
        ONLINE,
        "a new table: nothing uses it yet",
    ),
    _rule(
        "create-index-concurrently",
        "CREATE INDEX CONCURRENTLY",
        r"create\s+(?:unique\s+)?index\s+concurrently\b",
        "SHARE UPDATE EXCLUSIVE",
        BUILD,
        ONLINE,
        "builds the index while reads and writes go on",
        example="CREATE INDEX CONCURRENTLY call_log_duration_idx ON call_log (duration)",
        transactional=False,
    ),
    _rule(
        "create-index",
        "CREATE INDEX",
        r"create\s+(?:unique\s+)?index\b",
        "SHARE",
        BUILD,
        OFFLINE,
        "blocks every write to the table while it builds",
        example="CREATE INDEX call_log_duration_idx ON call_log (duration)",
    ),
    _rule(
        "drop-index-concurrently",
        "DROP INDEX CONCURRENTLY",
        r"drop\s+index\s+concurrently\b",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "waits for the queries using the index, without blocking reads or writes",
        example="DROP INDEX CONCURRENTLY call_log_caller_idx",
        transactional=False,
    ),
    _rule(
        "drop-index",
        "DROP INDEX",
        r"drop\s+index\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change: ACCESS EXCLUSIVE on the table for a moment",
        example="DROP INDEX call_log_caller_idx",
    ),
    _rule(
        "alter-index",
        "ALTER INDEX ... RENAME / SET (...) / RESET (...) / ATTACH PARTITION",
        r"alter\s+index\b(?!.*\bset\s+tablespace\b)",
        "",
        CATALOG,
        ONLINE,
        "a catalog change on the index; queries do not name indexes",
    ),
    _rule(
        "reindex-concurrently",
        "REINDEX ... CONCURRENTLY",
        r"reindex\b.*\bconcurrently\b",
        "SHARE UPDATE EXCLUSIVE",
        BUILD,
        ONLINE,
        "rebuilds while reads and writes go on",
        example="REINDEX INDEX CONCURRENTLY call_log_caller_idx",
        transactional=False,
    ),
    _rule(
        "reindex",
        "REINDEX",
        r"reindex\b",
        "SHARE",
        BUILD,
        OFFLINE,
        "blocks writes, and the reads that use the index, while it rebuilds",
        example="REINDEX TABLE call_log",
    ),
    _rule(
        "cluster",
        "CLUSTER",
        r"cluster\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "rewrites the table under ACCESS EXCLUSIVE",
        example="CLUSTER call_log USING call_log_caller_idx",
    ),
    _rule(
        "vacuum-full",
        "VACUUM FULL",
        r"vacuum\b.*\bfull\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "rewrites the table under ACCESS EXCLUSIVE",
        example="VACUUM FULL call_log",
        transactional=False,
    ),
    _rule(
        "vacuum",
        "VACUUM / ANALYZE",
        r"(?:vacuum|analy[sz]e)\b",
        "SHARE UPDATE EXCLUSIVE",
        SCAN,
        ONLINE,
        "reads the table under a lock that lets reads and writes go on",
        example="ANALYZE call_log",
    ),
    _rule(
        "refresh-concurrently",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY",
        r"refresh\s+materialized\s+view\s+concurrently\b",
        "EXCLUSIVE",
        DATA,
        ONLINE,
        "reads go on while it refreshes; nothing writes a materialized view",
        example="REFRESH MATERIALIZED VIEW CONCURRENTLY call_log_mv",
        target="call_log_mv",
    ),
    _rule(
        "refresh",
        "REFRESH MATERIALIZED VIEW",
        r"refresh\s+materialized\s+view\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "blocks every read of the view while it refills it",
        example="REFRESH MATERIALIZED VIEW call_log_mv",
        target="call_log_mv",
    ),
    _rule(
        "create-view",
        "CREATE [OR REPLACE] [MATERIALIZED] VIEW",
        r"create\s+(?:or\s+replace\s+)?(?:(?:temp|temporary|recursive)\s+)?(?:materialized\s+)?view\b",
        "ACCESS SHARE",
        CATALOG,
        ONLINE,
        "reads only the catalog of the tables it selects from",
        example="CREATE OR REPLACE VIEW call_log_view AS SELECT id, caller FROM call_log",
    ),
    _rule(
        "alter-view-rename",
        "ALTER [MATERIALIZED] VIEW ... RENAME / SET SCHEMA",
        r"alter\s+(?:materialized\s+)?view\b.*\b(?:rename|set\s+schema)\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release still uses the old name",
        example="ALTER VIEW call_log_view RENAME TO call_log_list",
        target="call_log_view",
    ),
    _rule(
        "alter-view",
        "ALTER [MATERIALIZED] VIEW (other forms)",
        r"alter\s+(?:materialized\s+)?view\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change on the view",
        example="ALTER VIEW call_log_view SET (security_barrier = true)",
        target="call_log_view",
    ),
    _rule(
        "create-routine",
        "CREATE [OR REPLACE] FUNCTION / PROCEDURE / TRIGGER / AGGREGATE / OPERATOR",
        r"create\s+(?:or\s+replace\s+)?(?:constraint\s+)?(?:function|procedure|aggregate|operator|trigger|cast|collation|conversion)\b",
        "",
        CATALOG,
        ONLINE,
        "a catalog change (a function body is checked by its own rule)",
    ),
    _rule(
        "create-statistics",
        "CREATE STATISTICS",
        r"create\s+statistics\b",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a planner object, under a lock that lets reads and writes go on",
        example="CREATE STATISTICS call_log_caller_stats ON caller, duration FROM call_log",
    ),
    _rule(
        "create-type",
        "CREATE TYPE / DOMAIN / SEQUENCE / SCHEMA / EXTENSION / ROLE / POLICY / PUBLICATION",
        r"create\s+(?:type|domain|(?:(?:temp|temporary|unlogged)\s+)?sequence|schema|extension|role|user|group|policy|publication|text\s+search)\b",
        "",
        CATALOG,
        ONLINE,
        "a new object: nothing uses it yet",
    ),
    _rule(
        "alter-type-add-value",
        "ALTER TYPE ... ADD VALUE / ALTER SEQUENCE / ALTER FUNCTION / ALTER STATISTICS"
        " / ALTER DOMAIN ... SET DEFAULT",
        r"alter\s+(?:type\b(?=.*\badd\s+value\b)|sequence\b|function\b(?!.*\brename\b)|procedure\b(?!.*\brename\b)|statistics\b|domain\b(?=.*\b(?:set|drop)\s+default\b))",
        "",
        CATALOG,
        ONLINE,
        "a catalog change the running release does not see",
    ),
    _rule(
        "grant",
        "GRANT",
        r"grant\b",
        "",
        CATALOG,
        ONLINE,
        "a catalog change that only adds privileges",
        example="GRANT SELECT ON call_log TO prosaas_reader",
    ),
    _rule(
        "comment",
        "COMMENT ON",
        r"comment\s+on\b",
        "SHARE UPDATE EXCLUSIVE",
        CATALOG,
        ONLINE,
        "a catalog change",
        example="COMMENT ON TABLE call_log IS 'calls'",
    ),
    _rule(
        "security-label",
        "SECURITY LABEL / ALTER DEFAULT PRIVILEGES",
        r"(?:security\s+label|alter\s+default\s+privileges)\b",
        "",
        CATALOG,
        ONLINE,
        "a catalog change",
    ),
    _rule(
        "set",
        "SET / SET LOCAL / RESET (a session setting)",
        r"(?:set|reset)\b(?!\s+(?:role|session\s+authorization)\b)",
        "",
        CATALOG,
        ONLINE,
        "changes only the migration's own session (the runner's lock and statement bounds"
        " still apply: a file can only tighten them)",
    ),
    _rule(
        "opaque-code",
        "DO / CALL / SELECT of a function",
        rf"(?:do\b|call\b|select\s+(?:(?:all|distinct)\s+)?{QUALIFIED}\s*\()",
        "",
        DATA,
        OFFLINE,
        "runs code whose statements the classifier cannot see",
    ),
    _rule(
        "select",
        "SELECT (no function call)",
        r"select\b",
        "ACCESS SHARE",
        CATALOG,
        ONLINE,
        "reads only",
        example="SELECT id FROM call_log LIMIT 1",
    ),
    _rule(
        "data-change",
        "INSERT / UPDATE / DELETE / MERGE / COPY on an existing table",
        r"(?:insert|update|delete|merge|copy|with)\b",
        "ROW EXCLUSIVE",
        DATA,
        OFFLINE,
        "changes data of a table in use (row locks, one long transaction)",
        example="UPDATE call_log SET note = 'x'",
    ),
    _rule(
        "truncate",
        "TRUNCATE",
        r"truncate\b",
        "ACCESS EXCLUSIVE",
        REWRITE,
        OFFLINE,
        "empties a table in use under ACCESS EXCLUSIVE (it gets a new, empty file)",
        example="TRUNCATE call_log_archive",
        target="call_log_archive",
    ),
    _rule(
        "revoke",
        "REVOKE",
        r"revoke\b",
        "",
        CATALOG,
        OFFLINE,
        "the running release may lose a privilege it uses",
    ),
    _rule(
        "drop",
        "DROP TABLE / VIEW / FUNCTION / TYPE / SEQUENCE / SCHEMA / ..."
        " (not an index or statistics)",
        r"drop\s+(?!index\b|statistics\b)",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "the running release may still use what is dropped, and its data is gone",
        example="DROP TABLE call_log_archive",
        target="call_log_archive",
    ),
    _rule(
        "drop-statistics",
        "DROP STATISTICS",
        r"drop\s+statistics\b",
        "",
        CATALOG,
        ONLINE,
        "a planner object",
    ),
    _rule(
        "lock",
        "LOCK TABLE",
        r"lock\b",
        "ACCESS EXCLUSIVE",
        CATALOG,
        OFFLINE,
        "holds its lock until the migration's transaction ends",
        example="LOCK TABLE call_log",
    ),
    _rule(
        "alter-renames",
        "ALTER ... RENAME / SET SCHEMA / ALTER TYPE (other forms) / ALTER DOMAIN (other forms)",
        r"alter\s+(?:function|procedure|type|domain|sequence|schema|extension)\b",
        "",
        CATALOG,
        OFFLINE,
        "the running release still uses the old name or definition",
    ),
)

# The statements the classifier reads by their kind rather than their pattern alone.
ALTER_TABLE = re.compile(
    rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?P<table>{QUALIFIED})\s*\*?\s+(?P<rest>.*)$"
)
BY_NAME: dict[str, LockRule] = {rule.name: rule for rule in (*ACTIONS, *STATEMENTS)}


def split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses: the actions of one ALTER TABLE."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def alter_table_mode(sql: str) -> str:
    """The strongest lock an ALTER TABLE statement (SQL as written) takes on its table, by
    the rows of its actions (ACCESS EXCLUSIVE for an action no row knows); "" when SQL is
    not an ALTER TABLE."""
    altered = ALTER_TABLE.match(" ".join(blank(sql).lower().split()))
    if not altered:
        return ""
    rules = [action_rule(action) for action in split_top_level(altered["rest"])]
    return strongest([rule.lock if rule else "ACCESS EXCLUSIVE" for rule in rules])


# The modes that block the app's writes (they conflict with ROW EXCLUSIVE).
BLOCKING = ("SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")


def first_match(rules: tuple[LockRule, ...], text: str) -> LockRule | None:
    """The first row of RULES whose pattern matches TEXT (refinements are never matched);
    None when no row knows it."""
    return next((rule for rule in rules if not rule.refines and rule.regex.match(text)), None)


def action_rule(action: str) -> LockRule | None:
    """The row of one ALTER TABLE action; None when no row knows it."""
    return first_match(ACTIONS, action)


def statement_rule(text: str) -> LockRule | None:
    """The row of a statement other than ALTER TABLE; None when no row knows it."""
    return first_match(STATEMENTS, text)


def strongest(modes: list[str]) -> str:
    """The strongest of MODES (PostgreSQL's names); "" for none."""
    known = [MODES.index(mode) for mode in modes if mode in MODES]
    return MODES[max(known)] if known else ""


def markdown_table() -> str:
    """The lock table as docs/lint-rules.md shows it: one line per row, in order."""
    lines = [
        "| row | form | lock on the table | rows | class | why |",
        "|---|---|---|---|---|---|",
    ]
    for group, rules in (("ALTER TABLE", ACTIONS), ("statement", STATEMENTS)):
        for rule in rules:
            form = f"ALTER TABLE ... {rule.form}" if group == "ALTER TABLE" else rule.form
            refines = f" (refines `{rule.refines}`)" if rule.refines else ""
            lines.append(
                f"| `{rule.name}`{refines} | {form.replace('|', '/')} | {rule.lock or 'none'}"
                f" | {rule.effect} | {rule.kind} | {rule.why} |"
            )
    return "\n".join(lines) + "\n"
