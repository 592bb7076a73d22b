"""How volatile an SQL expression is, from PostgreSQL 15's own catalog.

Since PostgreSQL 11, ``ADD COLUMN ... DEFAULT expr`` with a non-volatile ``expr`` is
evaluated once and kept in the catalog (no rewrite); a volatile one is evaluated for every
existing row. ``expression_volatility`` says which it is:

- a function call (``name(``, ``schema.name(``, ``"name"(``) counts as its name's entry in
  ``volatility_pg15.json`` (written by ``scripts/gen_volatility.py``: the most volatile
  overload of each ``pg_catalog`` name) or in ``declared`` (functions earlier migrations
  created). Names resolve without their schema; a name in both counts as the more
  volatile; a name in neither is volatile;
- the SQL-standard keyword functions (``current_timestamp``, ``current_user``, ...; with
  or without parentheses) are stable: PostgreSQL parses them into an SQLValueFunction,
  which ``contain_mutable_functions_walker`` (src/backend/optimizer/util/clauses.c)
  counts as stable in all its variants;
- ``trim(``, ``extract(``, ``position(``, ``substring(``, ``overlay(``, ``normalize(``,
  ``xmlexists(``, ``collation for (`` and ``at time zone`` count as the catalog functions
  the grammar (gram.y) turns them into;
- any other reserved or column-name keyword before ``(`` is syntax, never a call
  (``cast(``, ``coalesce(``, ``nullif(``, ``greatest(``, ``least(``, ``row(``,
  ``array(``, ``values(``, a type's modifiers as in ``numeric(10,2) '1'``), and so is a
  type after ``::`` or ``as`` and the table after ``references``: only the calls inside
  count;
- operators and casts count as immutable: no PostgreSQL 15 built-in operator, cast
  function or type input/output function is volatile (tests/integration/
  test_volatility_table.py checks the catalog for it), but some are stable
  (``timestamptz + interval``), so "immutable" may really be stable. Volatile or not, the
  question a rewrite turns on, is exact.

The text may be raw SQL or the lint's (lower-cased, literals blanked by ``migrator.sql.blank``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from migrator.sql import blank

TABLE = Path(__file__).with_name("volatility_pg15.json")
LEVELS = ("immutable", "stable", "volatile")
PROVOLATILE = {"i": "immutable", "s": "stable", "v": "volatile"}

KEYWORD_FUNCTIONS = frozenset(
    {
        "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
        "current_role", "current_user", "session_user", "user", "current_catalog",
        "current_schema",
    }
)  # fmt: skip
# Keyword syntax before "(" that the grammar turns into calls of these catalog functions.
SYNTAX_CALLS = {
    "extract": ("extract",),
    "normalize": ("normalize",),
    "overlay": ("overlay",),
    "position": ("position",),
    "substring": ("substring",),
    "trim": ("btrim", "ltrim", "rtrim"),
    "xmlexists": ("xmlexists",),
}
# Keyword phrases the grammar turns into a call: first word -> (the words after, function).
SYNTAX_PHRASES = {
    "collation": (("for",), "pg_collation_for"),
    "at": (("time", "zone"), "timezone"),
}
# Operators spelled as words: after an operand, "x like (...)" is no call of like().
OPERATOR_WORDS = frozenset({"like", "ilike", "overlaps", "escape"})
OPENERS = ("(", "[", ",")
# Words that go on in a type name: double precision, character varying(10),
# timestamp(3) with time zone, interval day to second, int array.
TYPE_WORDS = frozenset(
    {
        "array", "char", "character", "day", "hour", "minute", "month", "precision",
        "second", "time", "to", "varying", "with", "without", "year", "zone",
    }
)  # fmt: skip
TOKEN = re.compile(
    r"(?P<string>'[^']*')"
    r"|(?P<dollar>\$(?:[a-z_][a-z0-9_]*)?\$)"
    r'|(?P<quoted>"(?:[^"]|"")*")'
    r"|(?P<word>[a-z_\x80-\uffff][a-z0-9_$\x80-\uffff]*)"
    r"|(?P<number>(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)"
    r"|(?P<cast>::)"
    r"|(?P<other>\S)"
)
CREATE_FUNCTION = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?function\s+(?P<rest>.*)$", re.S)
ROUTINE_BODY = frozenset({"return", "begin"})  # RETURN expr / BEGIN ATOMIC ... END
VOLATILITY_WORDS = frozenset({"immutable", "stable", "volatile"})


@dataclass(frozen=True)
class Token:
    kind: str  # a group name of TOKEN
    text: str


@dataclass(frozen=True)
class Call:
    """What a name in an expression is: ``level`` None when it calls nothing."""

    written: str
    level: str | None
    end: int  # the index of the token after it


@cache
def _table() -> dict:
    return json.loads(TABLE.read_text())


@cache
def catalog() -> dict[str, str]:
    """Function name -> volatility of its most volatile overload, from the generated table."""
    return {name: PROVOLATILE[letter] for name, letter in _table()["functions"].items()}


@cache
def syntax_keywords() -> frozenset[str]:
    """Reserved and column-name keywords: never a function name unless qualified or quoted."""
    keywords = _table()["keywords"]
    return frozenset(keywords["reserved"]) | frozenset(keywords["column_name"])


def tokens(sql: str) -> list[Token]:
    """The tokens of ``sql``, comments and literals blanked, words lower-cased."""
    text = blank(sql).lower()
    return [Token(match.lastgroup or "other", match[0]) for match in TOKEN.finditer(text)]


def identifier(token: Token) -> str:
    """A word or quoted identifier as a name: ``"my""fn"`` -> ``my"fn``."""
    if token.kind == "quoted":
        return token.text[1:-1].replace('""', '"')
    return token.text


def at(items: list[Token], i: int) -> Token | None:
    return items[i] if 0 <= i < len(items) else None


def is_name(token: Token | None) -> bool:
    return token is not None and token.kind in ("word", "quoted")


def is_text(token: Token | None, text: str) -> bool:
    return token is not None and token.kind != "quoted" and token.text == text


def after_brackets(items: list[Token], i: int) -> int:
    """The index after the ``(...)`` or ``[...]`` group that opens at ``items[i]``."""
    depth = 0
    for j in range(i, len(items)):
        if items[j].kind == "other" and items[j].text in "([":
            depth += 1
        elif items[j].kind == "other" and items[j].text in ")]":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(items)


def after_qualified_name(items: list[Token], i: int) -> int:
    """The index after the (possibly schema-qualified) name that starts at ``items[i]``."""
    i += 1
    while is_text(at(items, i), ".") and is_name(at(items, i + 1)):
        i += 2
    return i


def after_type(items: list[Token], i: int) -> int:
    """The index after the type name that starts at ``items[i]`` (``i`` if none does)."""
    if not is_name(at(items, i)):
        return i
    i = after_qualified_name(items, i)
    while (token := at(items, i)) is not None:
        if is_text(token, "(") or is_text(token, "["):
            i = after_brackets(items, i)
        elif token.kind == "word" and token.text in TYPE_WORDS:
            i += 1
        else:
            break
    return i


def most_volatile(levels: Iterable[str]) -> str:
    return max(levels, key=LEVELS.index)


def known_volatility(name: str, declared: dict[str, str]) -> str:
    """The catalog's or ``declared``'s volatility of ``name`` (the more volatile of the
    two); volatile when neither knows it."""
    known = [found for found in (catalog().get(name), declared.get(name)) if found]
    return most_volatile(known) if known else "volatile"


def phrase_call_at(items: list[Token], i: int, declared: dict[str, str]) -> Call | None:
    """``collation for`` or ``at time zone`` at ``items[i]``, as its catalog function."""
    word = items[i].text
    if word not in SYNTAX_PHRASES:
        return None
    rest, function = SYNTAX_PHRASES[word]
    if not all(is_text(at(items, i + 1 + k), part) for k, part in enumerate(rest)):
        return None
    written = " ".join((word, *rest))
    return Call(written, known_volatility(function, declared), i + 1 + len(rest))


def skipped_after(items: list[Token], i: int) -> int | None:
    """The index after the type (``as TYPE``) or table (``references TABLE``) the word at
    ``items[i]`` introduces; None for other words."""
    word = items[i].text
    if word == "as":
        return after_type(items, i + 1)
    if word == "references" and is_name(at(items, i + 1)):
        return after_qualified_name(items, i + 1)
    return None


def syntax_call(word: str, end: int, declared: dict[str, str]) -> Call:
    """A reserved or column-name keyword before ``(``: its catalog functions, if any."""
    functions = SYNTAX_CALLS.get(word)
    if not functions:
        return Call(word, None, end)
    return Call(word, most_volatile(known_volatility(f, declared) for f in functions), end)


def word_call_at(items: list[Token], i: int, declared: dict[str, str]) -> Call:
    """The unqualified, unquoted word at ``items[i]``: a call, keyword syntax or a column."""
    word, end = items[i].text, i + 1
    if word in KEYWORD_FUNCTIONS:
        return Call(word, "stable", end)
    if (skipped := skipped_after(items, i)) is not None:
        return Call(word, None, skipped)
    if phrase := phrase_call_at(items, i, declared):
        return phrase
    previous = at(items, i - 1)
    operator = word in OPERATOR_WORDS and previous is not None and previous.text not in OPENERS
    if not is_text(at(items, end), "(") or operator:
        return Call(word, None, end)
    if word in syntax_keywords():
        return syntax_call(word, end, declared)
    return Call(word, known_volatility(word, declared), end)


def call_at(items: list[Token], i: int, declared: dict[str, str]) -> Call:
    """What the name at ``items[i]`` is: a call with its volatility, or no call."""
    end = after_qualified_name(items, i)
    if end - i == 1 and items[i].kind == "word":
        return word_call_at(items, i, declared)
    written = "".join(item.text for item in items[i:end])
    if not is_text(at(items, end), "("):
        return Call(written, None, end)
    return Call(written, known_volatility(identifier(items[end - 1]), declared), end)


def normalized(declared: dict[str, str] | None) -> dict[str, str]:
    """``declared`` keyed by unqualified lower-case name; a volatility not in LEVELS is
    refused, naming the function."""
    result: dict[str, str] = {}
    for name, volatility in (declared or {}).items():
        if volatility not in LEVELS:
            raise ValueError(
                f"declared volatility of {name} is {volatility!r}: use one of {', '.join(LEVELS)}"
            )
        result[name.lower().replace('"', "").rsplit(".", 1)[-1]] = volatility
    return result


def expression_volatility(
    expression: str, declared: dict[str, str] | None = None
) -> tuple[str, str]:
    """(``immutable`` | ``stable`` | ``volatile``, the call that makes it so, "" if none).

    The most volatile call wins (the first written among equals); ``declared`` maps the
    names of functions earlier migrations created to their volatility.
    """
    known = normalized(declared)
    items = tokens(expression)
    level, culprit, i = "immutable", "", 0
    while i < len(items):
        if items[i].kind == "cast":
            i = after_type(items, i + 1)
            continue
        if not is_name(items[i]):
            i += 1
            continue
        call = call_at(items, i, known)
        i = call.end
        if call.level and (not culprit or LEVELS.index(call.level) > LEVELS.index(level)):
            level, culprit = call.level, call.written
    return level, culprit


def routine_options(items: list[Token]) -> list[str]:
    """The words of a routine's options: what follows its argument list, outside brackets,
    up to its SQL-standard body (``RETURN``, ``BEGIN ATOMIC``)."""
    words, depth = [], 0
    for token in items[after_brackets(items, 0) :]:
        if is_text(token, "(") or is_text(token, "["):
            depth += 1
        elif is_text(token, ")") or is_text(token, "]"):
            depth -= 1
        elif token.kind == "word" and depth == 0:
            if token.text in ROUTINE_BODY:
                break
            words.append(token.text)
    return words


def declared_volatility(create_function_sql: str) -> tuple[str, str] | None:
    """(name, volatility) a ``CREATE [OR REPLACE] FUNCTION`` declares (volatile when it
    says none); None for any other statement. The name is lower-case, without its schema."""
    match = CREATE_FUNCTION.match(blank(create_function_sql).lower())
    if not match:
        return None
    items = tokens(match["rest"])
    end = after_qualified_name(items, 0) if is_name(at(items, 0)) else 0
    if end == 0 or not is_text(at(items, end), "("):
        return None
    said = [word for word in routine_options(items[end:]) if word in VOLATILITY_WORDS]
    return identifier(items[end - 1]), said[-1] if said else "volatile"
