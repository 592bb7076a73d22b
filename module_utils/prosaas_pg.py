"""PostgreSQL access shared by the prosaas modules: argument spec, import guard, connection.

Also the pure helpers behind them: a DSN shown without its password, messages scrubbed of
it, and the type-name handling pg_schema_verify needs to compare through the catalog.
"""

from __future__ import annotations

import re
import traceback
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import psycopg
    from psycopg import conninfo as psycopg_conninfo

    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    psycopg = None
    psycopg_conninfo = None
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

APPLICATION_NAME = "prosaas-deploy"
MASK = "***"
UNPARSABLE = "<unparsable DSN>"

PG_COMMON_ARGS: dict[str, dict[str, Any]] = {
    "dsn": {"type": "str", "required": True, "no_log": True},
    "connect_timeout": {"type": "int", "default": 10},
}

KEY_VALUE = re.compile(r"\s*(?P<key>\w+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\S*)")
MODIFIER = re.compile(r"\((?P<args>[^()]*)\)")
TIME_ZONE_SUFFIX = re.compile(r" with(out)? time zone$")


def pg_argument_spec(**module_args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the module's own arguments merged with the common PostgreSQL ones."""
    return {**PG_COMMON_ARGS, **module_args}


def require_psycopg(module: AnsibleModule) -> None:
    if PSYCOPG_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR)


# --- DSNs and messages ----------------------------------------------------------------


def dsn_params(dsn: str) -> dict[str, str]:
    """The DSN's parameters (URL or key=value form); empty when it cannot be parsed."""
    if psycopg_conninfo is not None:
        try:
            parsed = psycopg_conninfo.conninfo_to_dict(dsn)
        except Exception:  # an unparsable DSN is shown as such, never raw
            return {}
        return {key: str(value) for key, value in parsed.items() if value is not None}
    return _parse_without_psycopg(dsn)


def _parse_without_psycopg(dsn: str) -> dict[str, str]:
    if dsn.startswith(("postgresql://", "postgres://")):
        try:
            url = urlsplit(dsn)
            port = url.port
        except ValueError:
            return {}
        found = {
            "user": unquote(url.username or ""),
            "password": unquote(url.password or ""),
            "host": unquote(url.hostname or ""),
            "port": str(port) if port else "",
            "dbname": unquote(url.path.lstrip("/")),
        }
        return {key: value for key, value in found.items() if value}
    found = {}
    position = 0
    while position < len(dsn.rstrip()):
        match = KEY_VALUE.match(dsn, position)
        if not match:
            return {}
        value = match["value"]
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[match["key"]] = value
        position = match.end()
    return found


def redact_dsn(dsn: str) -> str:
    """``user@host:port/dbname``: where a DSN points, never its password."""
    params = dsn_params(dsn)
    if not params:
        return UNPARSABLE
    user = params.get("user", "")
    host = params.get("host", "") or params.get("hostaddr", "") or "local socket"
    port = params.get("port", "")
    dbname = params.get("dbname", "") or user
    where = f"{host}:{port}" if port else host
    return f"{user}@{where}/{dbname}" if user else f"{where}/{dbname}"


def secrets_of(dsn: str) -> list[str]:
    """Strings never to show: the whole DSN, the password raw and URL-encoded; longest first."""
    found = {dsn}
    password = dsn_params(dsn).get("password")
    if password:
        found |= {password, quote(password, safe=""), quote(password)}
    try:
        url_password = urlsplit(dsn).password
    except ValueError:
        url_password = None
    if url_password:
        found |= {url_password, unquote(url_password)}
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """``text`` on one line, the DSN replaced by its redacted form and the password by ***."""
    line = " ".join(str(text).split())
    for secret in secrets_of(dsn):
        line = line.replace(secret, redact_dsn(dsn) if secret == dsn else MASK)
    return line


def error_text(exc: BaseException, dsn: str) -> str:
    """One password-free line describing a psycopg (or any) exception."""
    return scrub(str(exc).strip() or type(exc).__name__, dsn)


# --- Connection -----------------------------------------------------------------------


def pg_connect(module: AnsibleModule) -> Any:
    """A read-only connection (no autocommit) to the module's DSN, or a one-line failure."""
    require_psycopg(module)
    dsn = module.params["dsn"]
    where = redact_dsn(dsn)
    if where == UNPARSABLE:
        module.fail_json(
            msg=f"cannot connect to PostgreSQL at {where}: "
            "the DSN is neither a postgresql:// URL nor key=value pairs"
        )
    try:
        conn = psycopg.connect(
            dsn,
            connect_timeout=module.params["connect_timeout"],
            application_name=APPLICATION_NAME,
        )
        conn.read_only = True
    except psycopg.Error as exc:
        module.fail_json(msg=f"cannot connect to PostgreSQL at {where}: {error_text(exc, dsn)}")
    return conn


# --- Type names -----------------------------------------------------------------------


def type_modifier(type_name: str) -> str | None:
    """The modifier written in a type name, without spaces: ``numeric(10, 2)`` -> ``(10,2)``."""
    match = MODIFIER.search(type_name)
    if not match:
        return None
    return "(" + "".join(match["args"].split()) + ")"


def with_modifier(base: str, modifier: str | None) -> str:
    """Put a modifier where format_type() does: before ``[]`` and ``with[out] time zone``.

    ``with_modifier("timestamp without time zone", "(3)")`` ->
    ``timestamp(3) without time zone``; ``("character varying[]", "(20)")`` ->
    ``character varying(20)[]``.
    """
    if not modifier:
        return base
    array = ""
    while base.endswith("[]"):
        base, array = base[:-2], array + "[]"
    zone = TIME_ZONE_SUFFIX.search(base)
    if zone:
        return f"{base[: zone.start()]}{modifier}{base[zone.start() :]}{array}"
    return f"{base}{modifier}{array}"
