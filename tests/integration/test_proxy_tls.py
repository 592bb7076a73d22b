"""The proxy with TLS, against the real engine and the real proxy image: docker_services (run
through Ansible) starts it from the service entry plugins/filter/proxy.py makes with a
certificate of a throwaway CA (tests/tls.py), and it serves HTTPS to a backend, redirects
HTTP, keeps the key out of everything `docker inspect` shows, in a file readable by HAProxy's
user alone, and serves on after `docker restart`.

One proxy and one app container on a throwaway network serve the whole file.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import ROOT, run_module
from tests.pg_cluster import free_loopback_port
from tests.tls import Issued, ThrowawayCa

spec = importlib.util.spec_from_file_location(
    "prosaas_proxy_config", ROOT / "module_utils/prosaas_proxy_config.py"
)
assert spec is not None and spec.loader is not None
proxy_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxy_config)

PROXY_IMAGE = "prosaas-deploy/proxy:1"
SERVICE = "ttls-app"
PEM_PATH = "/run/haproxy/tls.pem"
# The app answers every GET with its name and the path it was asked, 200.
APP = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"app {self.path} {self.headers.get('X-Forwarded-Proto')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("", 8000), Handler).serve_forever()
"""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str
    certificate: bytes  # the server's certificate (DER); b"" over HTTP


def request(port: int, path: str, ca: ThrowawayCa | None = None) -> Answer:
    """GET PATH on loopback PORT, over HTTPS trusting CA when given; redirects not followed."""
    if ca is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        context = ssl.create_default_context(cadata=ca.pem)
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        peer = conn.sock.getpeercert(binary_form=True) if ca is not None else b""
        headers = {key.lower(): value for key, value in response.getheaders()}
        return Answer(response.status, headers, response.read().decode(), peer or b"")
    finally:
        conn.close()


def pem_lines(pem: str) -> list[str]:
    """The base64 lines of PEM text: what no output may show."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def der(certificate: str) -> bytes:
    return x509.load_pem_x509_certificate(certificate.encode()).public_bytes(
        serialization.Encoding.DER
    )


@dataclass
class TlsStack:
    client: docker.DockerClient
    prefix: str
    network: str
    ca: ThrowawayCa
    api_port: int
    redirect_port: int
    app: str
    issued: Issued

    @property
    def proxy(self) -> str:
        return f"{self.prefix}proxy"

    def arguments(self, issued: Issued) -> dict:
        route = {
            "service": SERVICE, "port": 8000, "listen": 8000,
            "publish": f"127.0.0.1:{self.api_port}", "health": "/health",
        }  # fmt: skip
        service = proxy_config.proxy_service(
            [route], PROXY_IMAGE, 5, bind="127.0.0.1", tls_certificate=issued.certificate,
            tls_key=issued.key, http_redirect_port=self.redirect_port,
        )  # fmt: skip
        return {
            "services": [service], "name_prefix": self.prefix, "network": self.network,
            "labels": {"prosaas.project": "t"}, "wait_timeout": 60, "stop_timeout": 5,
        }  # fmt: skip

    def https_until(self, status: int, timeout: float = 30) -> Answer:
        """GET /ping over HTTPS until it answers STATUS (the proxy starting, a backend
        going down); the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = request(self.api_port, "/ping", self.ca)
                if answer.status == status:
                    return answer
            except OSError as exc:
                answer = Answer(0, {}, str(exc), b"")
            assert time.monotonic() < deadline, f"no {status} over HTTPS: {answer}"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def stack(
    docker_engine: docker.DockerClient,
    demo_images: list[str],
    base_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TlsStack]:
    prefix = f"ttls-{uuid.uuid4().hex[:6]}-"
    network = docker_engine.networks.create(f"{prefix}net")
    ca = ThrowawayCa.make()
    stack = TlsStack(
        docker_engine, prefix, network.name, ca, free_loopback_port(), free_loopback_port(),
        f"{prefix}app", ca.issue(),
    )  # fmt: skip
    try:
        docker_engine.containers.run(
            base_image, ["python3", "-c", APP], name=stack.app, detach=True,
            network=network.name,
            networking_config={network.name: docker_engine.api.create_endpoint_config(
                aliases=[SERVICE])},
        )  # fmt: skip
        started = run_module(
            tmp_path_factory.mktemp("tls"), "docker_services", stack.arguments(stack.issued)
        )
        assert started.rc == 0, started.result
        for line in pem_lines(stack.issued.key):
            assert line not in started.stdout + json.dumps(started.result)
        stack.https_until(200)
        yield stack
    finally:
        for container in docker_engine.containers.list(all=True, filters={"name": f"^{prefix}"}):
            container.remove(force=True)
        network.remove()


def test_the_proxy_serves_https_with_the_certificate_to_the_backend(stack: TlsStack) -> None:
    answer = request(stack.api_port, "/calls?page=2", stack.ca)
    assert (answer.status, answer.body) == (200, "app /calls?page=2 https")
    assert answer.certificate == der(stack.issued.certificate)


def test_the_http_port_redirects_every_request_to_https(stack: TlsStack) -> None:
    answer = request(stack.redirect_port, "/calls?page=2")
    assert answer.status == 308
    assert answer.headers["location"] == f"https://127.0.0.1:{stack.api_port}/calls?page=2"


def test_docker_inspect_shows_neither_the_key_nor_the_certificate(stack: TlsStack) -> None:
    shown = json.dumps(stack.client.api.inspect_container(stack.proxy))
    assert "PRIVATE KEY" not in shown
    assert "BEGIN CERTIFICATE" not in shown
    for line in pem_lines(stack.issued.key) + pem_lines(stack.issued.certificate):
        assert line not in shown
    assert PEM_PATH in shown  # the spec label and the configuration name the file only


def test_the_key_file_is_readable_by_haproxy_alone(stack: TlsStack) -> None:
    proxy = stack.client.containers.get(stack.proxy)
    code, output = proxy.exec_run(["stat", "-c", "%a %U:%G", PEM_PATH])
    assert (code, output.decode().strip()) == (0, "600 haproxy:haproxy")
    code, output = proxy.exec_run(["cat", PEM_PATH], user="nobody")
    assert code != 0
    assert "Permission denied" in output.decode()


def test_docker_restart_keeps_it_serving(stack: TlsStack) -> None:
    proxy = stack.client.containers.get(stack.proxy)
    started_at = proxy.attrs["State"]["StartedAt"]
    proxy.restart(timeout=5)
    proxy.reload()
    assert proxy.attrs["State"]["StartedAt"] != started_at
    assert stack.https_until(200).certificate == der(stack.issued.certificate)
    assert request(stack.redirect_port, "/").status == 308


def test_a_rerun_keeps_it_and_a_new_certificate_recreates_it(
    stack: TlsStack, tmp_path: Path
) -> None:
    again = run_module(tmp_path, "docker_services", stack.arguments(stack.issued))
    assert (again.rc, again.result["changed"]) == (0, False), again.result

    renewed = stack.ca.issue()
    run = run_module(tmp_path, "docker_services", stack.arguments(renewed))

    assert run.rc == 0, run.result
    (service,) = run.result["services"]
    assert service["differences"] == [f"secret_files ({PEM_PATH})"]
    for line in pem_lines(renewed.key) + pem_lines(renewed.certificate):
        assert line not in run.stdout + json.dumps(run.result)
    stack.issued = renewed
    assert stack.https_until(200).certificate == der(renewed.certificate)


def test_while_the_backend_is_down_https_gets_503_with_retry_after(stack: TlsStack) -> None:
    app = stack.client.containers.get(stack.app)
    app.stop(timeout=1)
    try:
        answer = stack.https_until(503)
        assert answer.headers["retry-after"] == "5"
    finally:
        app.start()
    stack.https_until(200)
