"""DSNs and error messages are printed without their password."""

import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator.redact import error_text, redact_dsn, scrub

SECRET = "p@ss:w/rd%20x"  # noqa: S105 - a test password
URL = "postgresql://app:p%40ss%3Aw%2Frd%2520x@db.internal:6432/prosaas?sslmode=require"
KEYWORDS = "host=db.internal port=6432 user=app password='p@ss:w/rd%20x' dbname=prosaas"


@pytest.mark.parametrize("dsn", [URL, KEYWORDS])
def test_redacted_form(dsn: str) -> None:
    assert redact_dsn(dsn) == "postgresql://app:***@db.internal:6432/prosaas"


def test_minimal_and_broken_dsns() -> None:
    assert redact_dsn("postgresql:///prosaas") == "postgresql://***@/prosaas"
    assert redact_dsn("host=h user=u password=zz") == "postgresql://u:***@h/"
    assert redact_dsn("this is = not a dsn 'pw") == "<unparsable DATABASE_URL>"


@pytest.mark.parametrize("dsn", [URL, KEYWORDS])
def test_scrub_removes_every_form_of_the_password_and_the_dsn(dsn: str) -> None:
    text = f"failed for {dsn}\n raw {SECRET} encoded p%40ss%3Aw%2Frd%2520x"
    cleaned = scrub(text, dsn)
    assert SECRET not in cleaned
    assert "p%40ss%3Aw%2Frd%2520x" not in cleaned
    assert dsn not in cleaned
    assert "\n" not in cleaned
    assert "***" in cleaned


def test_error_text_prefers_the_server_message_and_stays_on_one_line() -> None:
    exc = psycopg.OperationalError(f'connection failed:\n  password "{SECRET}" rejected')
    text = error_text(exc, URL)
    assert SECRET not in text and "\n" not in text
    assert text.startswith("connection failed:")


def test_without_a_dsn_scrub_only_joins_lines() -> None:
    assert scrub("a\n  b", None) == "a b"
