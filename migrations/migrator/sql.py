"""The one SQL tokenizer of the migrator: the runner and the lint both read SQL through it.

It knows single quotes (with ``''``), ``E''`` strings (with backslash escapes),
double-quoted identifiers (with ``""``), dollar quoting (``$$`` and ``$tag$``), ``--``
comments and nested ``/* */`` comments. ``regions`` finds those; the rest is code.

- ``split_statements``: the statements to send one at a time (PostgreSQL refuses
  ``CREATE INDEX CONCURRENTLY`` inside a multi-statement query string).
- ``blank``: the text the lint matches its rules on, with comments and the insides of
  literals blanked and every offset kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
CREATED_INDEX = re.compile(
    r"\bcreate\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    r"(?!on\b)(?P<name>\"(?:[^\"]|\"\")+\"|[a-z_][a-z0-9_$]*)",
    re.IGNORECASE,
)

COMMENT, STRING, IDENTIFIER, DOLLAR = "comment", "string", "identifier", "dollar"


@dataclass(frozen=True)
class Region:
    """A comment, literal or quoted identifier: ``sql[start:end]``, its inside ``body``."""

    kind: str
    start: int
    end: int
    body_start: int
    body_end: int


def _quoted_end(sql: str, start: int, quote: str, backslash: bool) -> int:
    """Index of the closing quote of the literal opening at ``start`` (len(sql) if none)."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if sql.startswith(quote, i + 1):
                i += 2
                continue
            return i
        i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
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


def _region_at(sql: str, i: int) -> Region | None:
    """The comment, literal or quoted identifier that opens at ``i``, if one does."""
    char = sql[i]
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        end = len(sql) if newline < 0 else newline
        return Region(COMMENT, i, end, i, end)
    if sql.startswith("/*", i):
        end = _block_comment_end(sql, i)
        return Region(COMMENT, i, end, i, end)
    if char in "'\"":
        backslash = char == "'" and _is_escape_string(sql, i)
        close = _quoted_end(sql, i, char, backslash)
        kind = STRING if char == "'" else IDENTIFIER
        return Region(kind, i, min(close + 1, len(sql)), i + 1, close)
    if char == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] in "_$")):
        tag = DOLLAR_TAG.match(sql, i)
        if tag:
            close = sql.find(tag[0], tag.end())
            if close < 0:
                return Region(DOLLAR, i, len(sql), tag.end(), len(sql))
            return Region(DOLLAR, i, close + len(tag[0]), tag.end(), close)
    return None


def regions(sql: str) -> Iterator[Region]:
    """Every comment, literal and quoted identifier of ``sql``, in order."""
    i = 0
    while i < len(sql):
        region = _region_at(sql, i)
        if region is None:
            i += 1
            continue
        yield region
        i = region.end


def statement_spans(sql: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each statement that has code, without its ``;``.

    A statement's span begins after the previous ``;`` (leading comments included) and
    ends before its own ``;``; pieces with only comments and blanks are dropped.
    """
    spans, start, has_code, i = [], 0, False, 0
    for region in [*regions(sql), None]:
        stop = len(sql) if region is None else region.start
        for j in range(i, stop):
            if sql[j] == ";":
                if has_code:
                    spans.append((start, j))
                start, has_code = j + 1, False
            elif not sql[j].isspace():
                has_code = True
        if region is None:
            break
        has_code = has_code or region.kind != COMMENT
        i = region.end
    if has_code:
        spans.append((start, len(sql)))
    return spans


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, without the ``;``; comment-only pieces are dropped."""
    return [sql[start:end].strip() for start, end in statement_spans(sql)]


def blank(sql: str) -> str:
    """The SQL with comments and the insides of literals replaced by spaces.

    Offsets and newlines are kept, so a position still maps to its line in the file.
    Quoted identifiers are kept. Literals keep their quotes (``'   '``), so a constant
    default still reads as a constant; dollar-quoted bodies are blanked the same way.
    """
    out = list(sql)
    for region in regions(sql):
        if region.kind == IDENTIFIER:
            continue
        for k in range(region.body_start, region.body_end):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


def bodies(sql: str, start: int, end: int) -> list[str]:
    """The insides of the string and dollar-quoted literals within ``sql[start:end]``."""
    return [
        sql[region.body_start : region.body_end]
        for region in regions(sql)
        if region.kind in (STRING, DOLLAR) and start <= region.start < end
    ]


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
