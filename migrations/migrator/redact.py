"""Keep passwords out of every line the migrator prints.

A DSN is only ever shown as ``postgresql://user:***@host:port/db``. Messages from libpq or
psycopg may quote parts of the connection string, so they go through :func:`scrub` first.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from psycopg import conninfo

MASK = "***"


def _params(dsn: str) -> dict[str, str]:
    try:
        return {key: str(value) for key, value in conninfo.conninfo_to_dict(dsn).items()}
    except Exception:  # an unparsable DSN is shown as such, never raw
        return {}


def redact_dsn(dsn: str) -> str:
    """``postgresql://user:***@host:port/db``; the password is never part of the result."""
    params = _params(dsn)
    if not params:
        return "<unparsable DATABASE_URL>"
    user = params.get("user", "")
    host = params.get("host", "") or params.get("hostaddr", "")
    port = params.get("port", "")
    dbname = params.get("dbname", "")
    auth = f"{quote(user, safe='')}:{MASK}@" if user else f"{MASK}@"
    netloc = host if "/" not in host else quote(host, safe="")
    if port:
        netloc = f"{netloc}:{port}"
    return f"postgresql://{auth}{netloc}/{quote(dbname, safe='')}"


def secrets_of(dsn: str) -> list[str]:
    """Strings that must never be printed: the password (raw and URL-encoded), the DSN."""
    found = {dsn}
    password = _params(dsn).get("password")
    if password:
        found |= {password, quote(password, safe=""), quote(password)}
    try:
        url_password = urlsplit(dsn).password
    except ValueError:
        url_password = None
    if url_password:
        found |= {url_password, unquote(url_password)}
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, dsn: str | None) -> str:
    """``text`` on one line with every secret of ``dsn`` replaced by ``***``."""
    line = " ".join(str(text).split())
    if dsn:
        for secret in secrets_of(dsn):
            line = line.replace(secret, redact_dsn(dsn) if secret == dsn else MASK)
    return line


def error_text(exc: BaseException, dsn: str | None) -> str:
    """A one-line, password-free description of a psycopg (or other) exception."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    return scrub(text, dsn)
