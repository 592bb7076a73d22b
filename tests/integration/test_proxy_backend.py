"""proxy_backend through Ansible against the real engine and the real proxy image: a new
container takes over from the old one behind the proxy with no failed request, the request
in flight to the old one finishes, and each failure is one line.

One proxy (configured by plugins/filter/proxy.py) on a throwaway network serves the whole
file; each test starts its own app containers with the service's network alias and removes
them. States are read back straight from the runtime API (proxy-api), not from the module.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from tests.conftest import ROOT, ModuleRun, run_module

spec = importlib.util.spec_from_file_location("proxy_filters", ROOT / "plugins/filter/proxy.py")
assert spec is not None and spec.loader is not None
proxy_filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxy_filters)

PROXY_IMAGE = "prosaas-deploy/proxy:1"
SERVICE = "tpx-app"  # the route's service: the backend, and the app containers' alias
PORT = 8000
# The app: / answers its name, /health 200, /slow?s=N its name after N seconds (a request
# in flight). HTTP/1.0, so every request is a connection of its own.
APP = """
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/slow":
            time.sleep(float(parse_qs(url.query)["s"][0]))
        body = os.environ["APP_NAME"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("", 8000), Handler).serve_forever()
"""
FORCED_DRAIN = 0x08  # srv_admin_state after `set server ... state drain`
NOT_EXECUTABLE = (126, 127)  # docker exec's exit status for a command it cannot run
LOOP_INTERVAL_S = 0.05
LOOP_LIMIT = 400


@dataclass(frozen=True)
class App:
    name: str
    address: str


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    status: int  # 0: no HTTP answer at all
    body: str


def get(url: str) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 (loopback http)
            return Answer(time.monotonic(), response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(time.monotonic(), exc.code, exc.read().decode())
    except OSError as exc:
        return Answer(time.monotonic(), 0, str(exc))


@dataclass
class ProxyStack:
    """The proxy of the file, on its own network, reached on a loopback port."""

    client: docker.DockerClient
    prefix: str
    network: str
    proxy: str
    url: str
    base_image: str

    def start_app(self, label: str) -> App:
        name = f"{self.prefix}{label}"
        endpoint = self.client.api.create_endpoint_config(aliases=[SERVICE])
        container = self.client.containers.create(
            self.base_image, ["python3", "-c", APP], name=name,
            environment={"APP_NAME": name}, network=self.network,
            networking_config={self.network: endpoint},
        )  # fmt: skip
        container.start()
        container.reload()
        return App(name, container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    def api(self, command: str) -> str:
        """The proxy's runtime API's reply to COMMAND."""
        code, output = self.client.containers.get(self.proxy).exec_run(["proxy-api", command])
        assert code == 0, output
        return output.decode()

    def sessions(self, app: App) -> int:
        """Requests APP's slot is serving, as HAProxy's statistics say (0 without a slot)."""
        lines = self.api("show stat -1 4 -1").splitlines()
        header = lines[0].removeprefix("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return sum(
            int(row["scur"])
            for row in rows
            if row["pxname"] == SERVICE and row["addr"] == f"{app.address}:{PORT}"
        )

    def admin_state(self, app: App) -> int:
        """srv_admin_state of APP's slot: 0 when nothing was set through the runtime API
        (a health check flapping on this busy machine changes the op state, never this)."""
        lines = self.api(f"show servers state {SERVICE}").splitlines()
        rows = [line.split() for line in lines[2:] if line.strip()]
        return next(int(row[6]) for row in rows if row[4] == app.address)

    def wait_for_session(self, app: App, timeout: float = 5) -> None:
        """Until APP's slot serves a request (the one in flight has reached it)."""
        deadline = time.monotonic() + timeout
        while self.sessions(app) < 1:
            assert time.monotonic() < deadline, f"no session reached {app.name}"
            time.sleep(0.1)

    def unused_address(self) -> str:
        subnet = self.client.networks.get(self.network).attrs["IPAM"]["Config"][0]["Subnet"]
        return str(list(ipaddress.ip_network(subnet).hosts())[-2])


def wait_for_runtime_api(client: docker.DockerClient, name: str, timeout: float = 30) -> None:
    """Until proxy-api answers in container NAME; an image without it fails at once."""
    deadline = time.monotonic() + timeout
    while (code := client.containers.get(name).exec_run(["proxy-api", "show backend"])[0]) != 0:
        if code in NOT_EXECUTABLE:
            pytest.fail(f"{PROXY_IMAGE} has no proxy-api: rebuild it from proxy/ (scripts/test.sh)")
        assert time.monotonic() < deadline, f"{name}: runtime API not up after {timeout} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(
    docker_engine: docker.DockerClient, demo_images: list[str], base_image: str
) -> Iterator[ProxyStack]:
    prefix = f"tpx-{uuid.uuid4().hex[:6]}-"
    network = docker_engine.networks.create(f"{prefix}net")
    route = {"service": SERVICE, "port": PORT, "listen": PORT, "publish": "127.0.0.1:0"}
    proxy = docker_engine.containers.run(
        PROXY_IMAGE, name=f"{prefix}proxy", detach=True, network=network.name,
        environment={"HAPROXY_CONFIG": proxy_filters.haproxy_config([route], 5)},
        ports={f"{PORT}/tcp": ("127.0.0.1", None)},
    )  # fmt: skip
    try:
        wait_for_runtime_api(docker_engine, proxy.name)
        proxy.reload()
        published = proxy.attrs["NetworkSettings"]["Ports"][f"{PORT}/tcp"][0]["HostPort"]
        yield ProxyStack(
            docker_engine, prefix, network.name, proxy.name,
            f"http://127.0.0.1:{published}", base_image,
        )  # fmt: skip
    finally:
        for container in docker_engine.containers.list(all=True, filters={"name": f"^{prefix}"}):
            container.remove(force=True)
        network.remove()


@pytest.fixture
def start_app(stack: ProxyStack) -> Iterator[Callable[[str], App]]:
    """Start app containers of SERVICE for one test; removed after it."""
    started: list[str] = []

    def start(label: str) -> App:
        app = stack.start_app(f"{label}-{uuid.uuid4().hex[:4]}")
        started.append(app.name)
        return app

    yield start
    for container in stack.client.containers.list(all=True, filters={"name": started}):
        container.remove(force=True)


def switch(tmp_path: Path, stack: ProxyStack, check: bool = False, **args: object) -> ModuleRun:
    return run_module(
        tmp_path, "proxy_backend", {"container": stack.proxy, "backend": SERVICE, **args},
        check=check,
    )  # fmt: skip


def slot_result(run: ModuleRun, app: App) -> dict:
    """The module's result for the slot APP fills."""
    return next(slot for slot in run.result["servers"] if slot["address"] == app.address)


def slot_of(run: ModuleRun, app: App) -> str:
    return slot_result(run, app)["name"]


def serving(tmp_path: Path, stack: ProxyStack, app: App) -> None:
    """APP's slot UP and READY, whatever an earlier test left on that slot."""
    run = switch(tmp_path, stack, ready=[app.address], timeout=30)
    assert run.rc == 0, run.result
    assert {"address": app.address, "state": "UP"}.items() <= slot_result(run, app).items()


@dataclass
class ClientLoop:
    """GET / every LOOP_INTERVAL_S until stopped (LOOP_LIMIT at most), each answer kept."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set() and len(self.answers) < LOOP_LIMIT:
            self.answers.append(get(self.url))
            self.stop.wait(LOOP_INTERVAL_S)


def slow_request(pool: ThreadPoolExecutor, stack: ProxyStack, seconds: int) -> Future[Answer]:
    return pool.submit(get, f"{stack.url}/slow?s={seconds}")


def test_a_new_container_takes_over_with_no_failed_request_and_the_old_one_drains(
    stack: ProxyStack, start_app: Callable[[str], App], tmp_path: Path
) -> None:
    old = start_app("old")
    serving(tmp_path, stack, old)
    loop = ClientLoop(stack.url)
    with ThreadPoolExecutor(max_workers=2) as pool:
        looping = pool.submit(loop.run)
        in_flight = slow_request(pool, stack, 6)  # the only server is the old one
        stack.wait_for_session(old)

        new = start_app("new")  # the same alias: the proxy finds it in a free slot
        run = switch(
            tmp_path, stack, ready=[new.address], drain=[old.address],
            timeout=30, drain_timeout=30,
        )  # fmt: skip
        switched = time.monotonic()
        slow = in_flight.result()

        again = switch(
            tmp_path, stack, ready=[new.address], drain=[old.address],
            timeout=30, drain_timeout=30,
        )  # fmt: skip
        stack.client.containers.get(old.name).remove(force=True)  # the deploy stops it now
        time.sleep(2)
        loop.stop.set()
        looping.result()

    assert run.rc == 0, run.result
    assert run.result["changed"] is True
    servers = {server["address"]: server for server in run.result["servers"]}
    assert f"drain {servers[old.address]['name']} ({old.address})" in run.result["actions"]
    assert servers[new.address]["state"] == "UP"
    assert (servers[old.address]["state"], servers[old.address]["sessions"]) == ("DRAIN", 0)
    # The request in flight to the old container finished, and the drain waited for it.
    assert (slow.status, slow.body) == (200, old.name)
    assert run.result["drained"] is True
    assert run.result["waited_s"]["drain"] >= 1.0, run.result["waited_s"]
    assert slow.at <= switched
    # The same call again: nothing to do.
    assert again.rc == 0, again.result
    assert (again.result["changed"], again.result["actions"]) == (False, [])
    assert again.result["drained"] is True
    # The client: no failed request during the whole switch, only the new one after it.
    failed = [answer for answer in loop.answers if answer.status != 200]
    after = {answer.body for answer in loop.answers if answer.at > switched}
    print(
        f"\nswitch: {len(loop.answers)} requests, {len(failed)} failed; "
        f"drain waited {run.result['waited_s']['drain']} s for the request in flight"
    )
    assert len(loop.answers) >= 100
    assert failed == []
    assert {answer.body for answer in loop.answers} == {old.name, new.name}
    assert after == {new.name}


def test_a_drain_longer_than_drain_timeout_is_a_warning_and_cuts_nothing(
    stack: ProxyStack, start_app: Callable[[str], App], tmp_path: Path
) -> None:
    old = start_app("old")
    serving(tmp_path, stack, old)
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = slow_request(pool, stack, 6)
        stack.wait_for_session(old)
        run = switch(tmp_path, stack, drain=[old.address], drain_timeout=1)
        slow = in_flight.result()

    assert run.rc == 0, run.result
    assert run.result["changed"] is True
    assert run.result["drained"] is False
    assert 1 <= run.result["waited_s"]["drain"] < 5
    warnings = " ".join(str(warning) for warning in run.result.get("warnings", []))
    assert "sessions left after drain_timeout 1 s" in warnings
    assert old.address in warnings
    assert slot_result(run, old)["sessions"] == 1
    assert stack.admin_state(old) == FORCED_DRAIN
    assert (slow.status, slow.body) == (200, old.name)


def test_check_mode_changes_nothing_and_ready_undoes_a_drain(
    stack: ProxyStack, start_app: Callable[[str], App], tmp_path: Path
) -> None:
    old = start_app("old")
    serving(tmp_path, stack, old)

    planned = switch(tmp_path, stack, check=True, drain=[old.address])
    assert planned.rc == 0, planned.result
    assert planned.result["changed"] is True
    assert planned.result["actions"] == [f"would drain {slot_of(planned, old)} ({old.address})"]
    assert stack.admin_state(old) == 0

    # by container name: its address on the proxy's network
    drained = switch(tmp_path, stack, drain=[old.name])
    assert drained.result["actions"] == [f"drain {slot_of(drained, old)} ({old.address})"]
    assert stack.admin_state(old) == FORCED_DRAIN

    rolled_back = switch(tmp_path, stack, ready=[old.name], timeout=10)
    assert rolled_back.result["changed"] is True
    assert rolled_back.result["actions"] == [f"ready {slot_of(drained, old)} ({old.address})"]
    assert stack.admin_state(old) == 0
    assert get(stack.url).body == old.name


def test_an_address_that_never_fills_a_slot_fails_in_one_line_and_drains_nothing(
    stack: ProxyStack, start_app: Callable[[str], App], tmp_path: Path
) -> None:
    old = start_app("old")
    serving(tmp_path, stack, old)
    ghost = stack.unused_address()

    started = time.monotonic()
    run = switch(tmp_path, stack, ready=[ghost], drain=[old.address], timeout=3)
    elapsed = time.monotonic() - started

    assert run.failed
    message = run.result["msg"]
    assert message.startswith(
        f"proxy container {stack.proxy}, backend {SERVICE}: {ghost} in no slot after 3 s (slots: "
    )
    assert old.address in message
    assert f"with the alias {SERVICE}?" in message
    assert "\n" not in message
    assert elapsed < 3 + 10
    assert stack.admin_state(old) == 0  # ready comes first: nothing was drained


def test_an_unknown_backend_is_named_with_the_backends_there_are(
    stack: ProxyStack, tmp_path: Path
) -> None:
    run = run_module(tmp_path, "proxy_backend", {"container": stack.proxy, "backend": "tpx-nope"})
    assert run.failed
    assert run.result["msg"] == (
        f"proxy container {stack.proxy}, backend tpx-nope: no such backend "
        f"(the proxy has: {SERVICE}); the backend is the route's service"
    )


def test_a_missing_proxy_container_leaves_nothing_to_drain_but_cannot_ready(
    docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    """The first deploy drains before its proxy exists: no request reaches the app then."""
    args = {"container": "tpx-no-such", "backend": SERVICE}
    drained = run_module(tmp_path, "proxy_backend", {**args, "drain": ["tpx-gone"]})
    assert drained.rc == 0, drained.result
    assert (drained.result["changed"], drained.result["actions"]) == (False, [])

    run = run_module(tmp_path, "proxy_backend", {**args, "ready": ["10.0.0.9"]})
    assert run.failed
    assert run.result["msg"] == (
        "proxy container tpx-no-such not found on the engine at unix:///var/run/docker.sock: "
        "start the proxy service, or name its container"
    )
