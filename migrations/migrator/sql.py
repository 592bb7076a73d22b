"""Split a migration file into statements, for files that run outside a transaction.

PostgreSQL refuses ``CREATE INDEX CONCURRENTLY`` inside a multi-statement query string, so
such files are sent one statement at a time. The splitter knows single quotes (with ``''``),
``E''`` strings (with backslash escapes), double-quoted identifiers, dollar quoting
(``$$`` and ``$tag$``), ``--`` comments and nested ``/* */`` comments.
"""

from __future__ import annotations

import re

DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
CREATED_INDEX = re.compile(
    r"\bcreate\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    r"(?!on\b)(?P<name>\"(?:[^\"]|\"\")+\"|[a-z_][a-z0-9_$]*)",
    re.IGNORECASE,
)


def _skip_quoted(sql: str, start: int, quote: str, backslash: bool) -> int:
    """Index just after the closing quote of the literal opening at ``start``."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _skip_block_comment(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _is_escape_string(sql: str, i: int) -> bool:
    """True when the quote at ``i`` opens an ``E'...'`` literal."""
    if i == 0 or sql[i - 1] not in "eE":
        return False
    return i == 1 or not (sql[i - 2].isalnum() or sql[i - 2] in "_$")


def _skip_literal(sql: str, i: int) -> int:
    """Index after the quoted literal, identifier or dollar-quoted body at ``i`` (else i+1)."""
    char = sql[i]
    if char == "'":
        return _skip_quoted(sql, i, "'", backslash=_is_escape_string(sql, i))
    if char == '"':
        return _skip_quoted(sql, i, '"', backslash=False)
    if char == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] in "_$")):
        match = DOLLAR_TAG.match(sql, i)
        if match:
            end = sql.find(match.group(), match.end())
            return len(sql) if end < 0 else end + len(match.group())
    return i + 1


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, without the ``;``; comment-only pieces are dropped."""
    statements: list[str] = []
    start, i, has_code = 0, 0, False
    while i < len(sql):
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = len(sql) if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif sql[i] == ";":
            if has_code:
                statements.append(sql[start:i].strip())
            start, i, has_code = i + 1, i + 1, False
        else:
            has_code = has_code or not sql[i].isspace()
            i = _skip_literal(sql, i)
    if has_code:
        statements.append(sql[start:].strip())
    return statements


def created_index_names(sql: str) -> list[str]:
    """Names of the indexes a file builds with ``CREATE INDEX CONCURRENTLY name``."""
    names = []
    for statement in split_statements(sql):
        for match in CREATED_INDEX.finditer(statement):
            name = match["name"]
            if name.startswith('"'):
                names.append(name[1:-1].replace('""', '"'))
            else:
                names.append(name.lower())
    return names
