"""Filters of the proxy's settings: ``proxy_problems`` checks the address the proxy publishes
on, its TLS certificate against its key, and its HTTP redirect port, on the control node: the
inventory check runs it before anything is touched. The configuration itself is built in
module_utils/prosaas_proxy_config.py."""

from __future__ import annotations

import importlib
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # a requirement of ansible-core, yet a Python can have ansible-core without it
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:
    x509 = None

# checkout only: begin. Plugins run on the controller, where Ansible does not put the
# checkout's module_utils on the path: they are added to ansible.module_utils, the name they
# import each other by on a host. The prosaas.deploy collection (scripts/collection.py) has
# none of these lines: it imports module_utils by the collection's name.
MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
ANSIBLE_MODULE_UTILS = importlib.import_module("ansible.module_utils")
if MODULE_UTILS_DIR not in ANSIBLE_MODULE_UTILS.__path__:
    ANSIBLE_MODULE_UTILS.__path__.append(MODULE_UTILS_DIR)
# checkout only: end
from ansible.module_utils.prosaas_proxy_config import pem  # noqa: E402 - needs the path set up just above

# --- The inventory check of the proxy's settings ---------------------------------------

CERTIFICATE = "prosaas_proxy_tls_certificate"
KEY = "prosaas_proxy_tls_key (vault_prosaas_proxy_tls_key in the inventory's vault)"


def _bind_problems(bind: Any) -> list[str]:
    try:
        ipaddress.ip_address(str(bind).removeprefix("[").removesuffix("]"))
    except ValueError:
        return [
            f"prosaas_proxy_bind is {bind!r}, it must be the IP address the proxy publishes its"
            " ports on (127.0.0.1: this machine only; 0.0.0.0: every address; IPv6 in"
            " brackets, [::])"
        ]
    if ":" in str(bind) and not str(bind).startswith("["):
        return [f"prosaas_proxy_bind is {bind!r}: write an IPv6 address in brackets, [{bind}]"]
    return []


def _redirect_problems(port: Any, certificate: str) -> list[str]:
    port = 0 if port in (None, "") else port
    if isinstance(port, bool) or not str(port).isdigit():
        return [
            f"prosaas_proxy_http_redirect_port is {port!r}, it must be a port number (80), or 0"
            " for no HTTP redirect"
        ]
    if not 0 <= int(port) < 65536:
        return [f"prosaas_proxy_http_redirect_port is {port}, it must be within 1-65535 (0: none)"]
    if int(port) and not certificate:
        return [
            f"prosaas_proxy_http_redirect_port is {port} but {CERTIFICATE} is empty: the"
            " redirect goes to HTTPS, so set the certificate (and its key), or set the port to 0"
        ]
    return []


def _certificates(certificate: str) -> tuple[list[x509.Certificate], str]:
    """The certificates of the PEM text, the server's first; or none and why."""
    if "PRIVATE KEY-----" in certificate:
        return [], (
            f"{CERTIFICATE} holds a private key: only the certificate (and its chain) goes"
            " there, the key goes in the inventory's vault as vault_prosaas_proxy_tls_key"
        )
    try:
        return x509.load_pem_x509_certificates(certificate.encode()), ""
    except ValueError:
        return [], (
            f"{CERTIFICATE} is not PEM certificate text (-----BEGIN CERTIFICATE-----): put the"
            " server's certificate there, then its chain, as the CA issued them"
        )


def _private_key(key: str) -> tuple[Any, str]:
    """The private key of the PEM text; or None and why (never quoting it)."""
    why = (
        f"{KEY} is not a PEM private key without a passphrase: put the certificate's key"
        " there, decrypted (openssl pkey -in key.pem -out plain-key.pem)"
    )
    try:
        return serialization.load_pem_private_key(key.encode(), password=None), ""
    except (ValueError, TypeError, UnsupportedAlgorithm):  # TypeError: it has a passphrase
        return None, why


def _public_key(item: Any) -> bytes:
    return item.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _match_problems(certificates: list[x509.Certificate], key: Any) -> list[str]:
    server = certificates[0]
    if _public_key(server) == _public_key(key):
        return []
    if any(_public_key(other) == _public_key(key) for other in certificates[1:]):
        return [
            f"{CERTIFICATE}: the certificate of {KEY} is not the first one: put the server's"
            " certificate first, then its chain"
        ]
    return [
        f"{CERTIFICATE} ({server.subject.rfc4514_string()}) does not match {KEY}: put the"
        " key that certificate was issued for in the vault, or the certificate of that key"
    ]


def _validity_problems(server: x509.Certificate, now: datetime) -> list[str]:
    subject = server.subject.rfc4514_string()
    if server.not_valid_after_utc <= now:
        return [
            f"{CERTIFICATE} ({subject}) expired on {server.not_valid_after_utc:%Y-%m-%d %H:%M}"
            " UTC: renew it and put the new certificate (and its key, if new) in the inventory"
        ]
    if server.not_valid_before_utc > now:
        return [
            f"{CERTIFICATE} ({subject}) is not valid before"
            f" {server.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: use a certificate valid now"
            " (or check this machine's clock)"
        ]
    return []


def tls_problems(certificate: Any, key: Any, now: datetime | None = None) -> list[str]:
    """One line per problem of the proxy's certificate (PEM, chain allowed) and key (PEM);
    both empty is plain HTTP. No line ever quotes the key."""
    certificate, key = pem(certificate), pem(key)
    if not certificate and not key:
        return []
    if not key:
        return [
            f"{CERTIFICATE} is set but {KEY} is empty: put the certificate's private key in"
            " the vault, or empty the certificate for plain HTTP"
        ]
    if not certificate:
        return [
            f"{KEY} is set but {CERTIFICATE} is empty: set the certificate (PEM, then its"
            " chain) in the inventory's group_vars, or remove the key for plain HTTP"
        ]
    if x509 is None:
        return [
            f"{CERTIFICATE} cannot be checked: the Python that runs Ansible lacks the"
            " cryptography library (a requirement of ansible-core): install it there"
        ]
    certificates, certificate_problem = _certificates(certificate)
    private_key, key_problem = _private_key(key)
    problems = [problem for problem in (certificate_problem, key_problem) if problem]
    if problems:
        return problems
    return _match_problems(certificates, private_key) + _validity_problems(
        certificates[0], now or datetime.now(UTC)
    )


def proxy_problems(bind: Any, certificate: Any, key: Any, http_redirect_port: Any) -> list[str]:
    """One line per problem of the proxy's settings: the address it publishes on, its TLS
    certificate and key, and its HTTP redirect port."""
    return (
        _bind_problems(bind)
        + tls_problems(certificate, key)
        + _redirect_problems(http_redirect_port, pem(certificate))
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "proxy_problems": proxy_problems,
        }
