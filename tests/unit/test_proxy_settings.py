"""The inventory check of the proxy's settings (plugins/filter/proxy.py proxy_problems): the
bind address, the redirect port, and the TLS certificate against its key, with certificates
made here (tests/tls.py). Each problem is one line naming the setting, never quoting the key."""

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ROOT
from tests.tls import DAY, ThrowawayCa

spec = importlib.util.spec_from_file_location("proxy_filters", ROOT / "plugins/filter/proxy.py")
proxy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxy)

CA = ThrowawayCa.make()
SERVER = CA.issue("api.example.internal")
OTHER = CA.issue("other.example.internal")
NOW = datetime.now(UTC)
EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - the setting under test, never bound here


def key_body(key: str) -> str:
    """A line of the key's base64: what must never appear in a message."""
    return key.splitlines()[1]


def problems(
    certificate: str = "", key: str = "", bind: str = EVERY_ADDRESS, port: object = 0
) -> list:
    found = proxy.proxy_problems(bind, certificate, key, port)
    for line in found:
        assert "\n" not in line
        for secret in (SERVER.key, OTHER.key):
            assert key_body(secret) not in line
    return found


def test_plain_http_has_no_problem() -> None:
    assert problems() == []
    assert problems(bind="127.0.0.1", port="") == []


def test_a_certificate_and_the_key_it_was_issued_for_pass() -> None:
    assert problems(SERVER.certificate, SERVER.key, port=80) == []


def test_a_chain_after_the_server_certificate_passes() -> None:
    assert problems(SERVER.certificate + CA.pem, SERVER.key) == []


def test_a_certificate_that_does_not_match_its_key_is_refused() -> None:
    (line,) = problems(SERVER.certificate, OTHER.key)
    assert line.startswith(
        "prosaas_proxy_tls_certificate (CN=api.example.internal) does not match"
        " prosaas_proxy_tls_key (vault_prosaas_proxy_tls_key in the inventory's vault)"
    )
    assert "put the key that certificate was issued for" in line


def test_a_chain_in_the_wrong_order_says_which_comes_first() -> None:
    (line,) = problems(CA.pem + SERVER.certificate, SERVER.key)
    assert "is not the first one: put the server's certificate first, then its chain" in line


def test_an_expired_certificate_is_refused_with_its_date() -> None:
    expired = CA.issue(not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    (line,) = problems(expired.certificate, expired.key)
    assert line.startswith("prosaas_proxy_tls_certificate (CN=localhost) expired on ")
    assert f"{(NOW - DAY):%Y-%m-%d}" in line
    assert "renew it" in line


def test_a_certificate_not_valid_yet_is_refused() -> None:
    later = CA.issue(not_before=NOW + DAY, not_after=NOW + 30 * DAY)
    (line,) = problems(later.certificate, later.key)
    assert "is not valid before" in line


def test_the_check_takes_the_time_it_is_given() -> None:
    expiring = CA.issue(not_after=NOW + timedelta(hours=1))
    assert proxy.tls_problems(expiring.certificate, expiring.key, NOW) == []
    assert proxy.tls_problems(expiring.certificate, expiring.key, NOW + DAY) != []


def test_a_certificate_without_its_key_is_refused() -> None:
    (line,) = problems(SERVER.certificate, "")
    assert line.startswith(
        "prosaas_proxy_tls_certificate is set but prosaas_proxy_tls_key"
        " (vault_prosaas_proxy_tls_key in the inventory's vault) is empty"
    )


def test_a_key_without_a_certificate_is_refused() -> None:
    (line,) = problems("", SERVER.key)
    assert "is set but prosaas_proxy_tls_certificate is empty" in line


@pytest.mark.parametrize(
    "certificate",
    [
        "replace me with the certificate",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----",
    ],
)
def test_a_certificate_that_does_not_parse_is_refused(certificate: str) -> None:
    (line,) = problems(certificate, SERVER.key)
    assert line.startswith("prosaas_proxy_tls_certificate is not PEM certificate text")


def test_a_key_pasted_in_the_certificate_setting_is_refused_without_quoting_it() -> None:
    (line,) = problems(SERVER.certificate + SERVER.key, SERVER.key)
    assert line.startswith("prosaas_proxy_tls_certificate holds a private key")


@pytest.mark.parametrize(
    "key",
    [
        "example-staging-tls-key-replace-me",
        SERVER.key.replace(key_body(SERVER.key), "AAAA" + key_body(SERVER.key)[4:]),
        CA.issue(password=b"secret").key,
    ],
    ids=["placeholder", "damaged", "with a passphrase"],
)
def test_a_key_that_does_not_parse_is_refused_without_quoting_it(key: str) -> None:
    (line,) = problems(SERVER.certificate, key)
    assert line.startswith(
        "prosaas_proxy_tls_key (vault_prosaas_proxy_tls_key in the inventory's vault) is not a"
        " PEM private key without a passphrase"
    )
    assert not any(part in line for part in key.splitlines() if "-----" not in part)


@pytest.mark.parametrize("bind", ["localhost", "0.0.0.0:443", ""])
def test_a_bind_that_is_no_ip_address_is_refused(bind: str) -> None:
    (line,) = problems(bind=bind)
    assert line.startswith(f"prosaas_proxy_bind is {bind!r}, it must be the IP address")


def test_an_ipv6_bind_needs_its_brackets() -> None:
    assert problems(bind="[::]") == []
    (line,) = problems(bind="::")
    assert line == "prosaas_proxy_bind is '::': write an IPv6 address in brackets, [::]"


@pytest.mark.parametrize("port", ["http", -1, 70000, True])
def test_a_redirect_port_that_is_no_port_is_refused(port: object) -> None:
    (line,) = problems(SERVER.certificate, SERVER.key, port=port)
    assert line.startswith(f"prosaas_proxy_http_redirect_port is {port!r}")


def test_a_redirect_without_a_certificate_is_refused() -> None:
    (line,) = problems(port=80)
    assert line == (
        "prosaas_proxy_http_redirect_port is 80 but prosaas_proxy_tls_certificate is empty: the"
        " redirect goes to HTTPS, so set the certificate (and its key), or set the port to 0"
    )


def test_a_certificate_is_not_checked_without_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy, "x509", None)
    assert problems(SERVER.certificate, SERVER.key) == [
        "prosaas_proxy_tls_certificate cannot be checked: the Python that runs Ansible lacks the"
        " cryptography library (a requirement of ansible-core): install it there"
    ]
