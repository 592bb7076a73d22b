"""module_utils/prosaas_pg: DSNs shown without their password, type names and modifiers."""

import prosaas_pg
import pytest
from prosaas_pg import redact_dsn, scrub, type_modifier, with_modifier

PASSWORD = "s3cr=t p@ss/word"  # noqa: S105 - a test value, with characters that need quoting
URL = "postgresql://deploy:s3cr%3Dt%20p%40ss%2Fword@db.example.com:5433/prosaas?sslmode=require"
KEY_VALUE = "host=db.example.com port=5433 user=deploy password='s3cr=t p@ss/word' dbname=prosaas"


@pytest.mark.parametrize("dsn", [URL, KEY_VALUE])
def test_redact_dsn_names_where_never_the_password(dsn: str) -> None:
    shown = redact_dsn(dsn)
    assert shown == "deploy@db.example.com:5433/prosaas"
    for part in ("s3cr", "p@ss", "word", "%40"):
        assert part not in shown


@pytest.mark.parametrize("dsn", [URL, KEY_VALUE])
def test_redact_dsn_without_psycopg(monkeypatch: pytest.MonkeyPatch, dsn: str) -> None:
    monkeypatch.setattr(prosaas_pg, "psycopg_conninfo", None)
    assert redact_dsn(dsn) == "deploy@db.example.com:5433/prosaas"


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://db/prosaas", "db/prosaas"),
        ("dbname=prosaas", "local socket/prosaas"),
        ("postgresql://me@/app?host=/var/run/postgresql", "me@/var/run/postgresql/app"),
    ],
)
def test_redact_dsn_short_forms(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


@pytest.mark.parametrize(
    "dsn", ["host=db password", "password='abc", "postgresql://u:pw@db/x?bogus=1"]
)
def test_an_unparsable_dsn_is_never_shown(dsn: str) -> None:
    assert redact_dsn(dsn) == "<unparsable DSN>"


@pytest.mark.parametrize("dsn", [URL, KEY_VALUE])
def test_scrub_removes_the_password_and_the_dsn(dsn: str) -> None:
    text = f"failed for {dsn}:\n  password {PASSWORD} or s3cr%3Dt%20p%40ss%2Fword rejected"
    line = scrub(text, dsn)
    assert "\n" not in line
    assert "s3cr" not in line
    assert "deploy@db.example.com:5433/prosaas" in line


@pytest.mark.parametrize(
    ("written", "modifier"),
    [
        ("integer", None),
        ("varchar(20)", "(20)"),
        ("numeric( 10 , 2 )", "(10,2)"),
        ("timestamp(3) without time zone", "(3)"),
    ],
)
def test_type_modifier(written: str, modifier: str | None) -> None:
    assert type_modifier(written) == modifier


@pytest.mark.parametrize(
    ("base", "modifier", "full"),
    [
        ("integer", None, "integer"),
        ("character varying", "(20)", "character varying(20)"),
        ("numeric", "(10,2)", "numeric(10,2)"),
        ("timestamp without time zone", "(3)", "timestamp(3) without time zone"),
        ("time with time zone", "(0)", "time(0) with time zone"),
        ("character varying[]", "(20)", "character varying(20)[]"),
    ],
)
def test_with_modifier_puts_it_where_format_type_does(
    base: str, modifier: str | None, full: str
) -> None:
    assert with_modifier(base, modifier) == full
