"""module_utils/prosaas_proxy_runtime.py against the real engine and the real proxy image, as
docker_services and docker_stop drive it: a new container takes over from the old one behind
the proxy with no failed request, the request in flight to the old one finishes, and each
failure is one line.

One proxy (configured by module_utils/prosaas_proxy_config.py) on a throwaway network serves
the whole file; each test starts its own app containers with the service's network alias and
removes them. States are read back straight from the runtime API (proxy-api), not from the
functions.
"""

from __future__ import annotations

import importlib
import ipaddress
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ansible.module_utils
import docker
import pytest

from tests.conftest import ROOT

# module_utils/prosaas_proxy_runtime.py as Ansible ships it to docker_services and docker_stop
# (its siblings as ansible.module_utils.*).
if str(ROOT / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(ROOT / "module_utils"))
runtime = importlib.import_module("ansible.module_utils.prosaas_proxy_runtime")
proxy_config = importlib.import_module("ansible.module_utils.prosaas_proxy_config")

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
        environment={"HAPROXY_CONFIG": proxy_config.haproxy_config([route], 5)},
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


@dataclass
class Driven:
    """A runtime.Proxy on the file's proxy container, and the warnings it gave."""

    proxy: Any
    warnings: list[str]


def drive(stack: ProxyStack, check: bool = False, backend: str = SERVICE) -> Driven:
    """The proxy as the modules find it (running_proxy) and drive it (Proxy)."""
    container = runtime.running_proxy(stack.client, stack.proxy)
    assert container is not None, f"{stack.proxy} is not running"
    warnings: list[str] = []
    return Driven(runtime.Proxy(container, backend, check, warnings.append), warnings)


def slot_of(proxy: Any, app: App) -> Any:
    """The slot APP's container fills, as the runtime API says now."""
    return next(slot for slot in proxy.slots() if slot.address == app.address)


def serving(stack: ProxyStack, app: App) -> None:
    """APP's slot UP and READY, whatever an earlier test left on that slot."""
    proxy = drive(stack).proxy
    runtime.bring_up(proxy, [app.address], 30)
    assert slot_of(proxy, app).state == "UP"


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


def while_in_flight(
    stack: ProxyStack, proxy: Any, app: App, seconds: int, action: Callable[[], Any]
) -> tuple[Any, int, Answer]:
    """ACTION run once a SECONDS-long request to APP is in flight: what it returned, APP's
    sessions just after it, and the request's answer."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = slow_request(pool, stack, seconds)
        stack.wait_for_session(app)
        result = action()
        sessions = slot_of(proxy, app).sessions
        return result, sessions, in_flight.result()


def switch(stack: ProxyStack, new: App, old: App) -> tuple[Driven, bool, float]:
    """What docker_services does with the beside replace: ready NEW, then drain OLD and wait
    for its requests in flight; (the driven proxy, drained, seconds the drain waited)."""
    driven = drive(stack)
    runtime.bring_up(driven.proxy, [new.address], 30)
    drained, waited = runtime.drain_backends(driven.proxy, {SERVICE: old.address}, 30)
    return driven, drained, waited


def test_a_new_container_takes_over_with_no_failed_request_and_the_old_one_drains(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    old = start_app("old")
    serving(stack, old)
    loop = ClientLoop(stack.url)
    with ThreadPoolExecutor(max_workers=2) as pool:
        looping = pool.submit(loop.run)
        in_flight = slow_request(pool, stack, 6)  # the only server is the old one
        stack.wait_for_session(old)

        new = start_app("new")  # the same alias: the proxy finds it in a free slot
        first, drained, waited = switch(stack, new, old)
        switched = time.monotonic()
        slots = {slot.address: slot for slot in first.proxy.slots()}  # the old one still there
        slow = in_flight.result()

        again, drained_again, _ = switch(stack, new, old)
        stack.client.containers.get(old.name).remove(force=True)  # the deploy stops it now
        time.sleep(2)
        loop.stop.set()
        looping.result()

    assert first.proxy.changed is True
    assert f"drain {slots[old.address].name} ({old.address})" in first.proxy.actions
    assert slots[new.address].state == "UP"
    assert (slots[old.address].state, slots[old.address].sessions) == ("DRAIN", 0)
    # The request in flight to the old container finished, and the drain waited for it.
    assert (slow.status, slow.body) == (200, old.name)
    assert drained is True
    assert waited >= 1.0, waited
    assert slow.at <= switched
    assert first.warnings == []
    # The same calls again: nothing to do.
    assert (again.proxy.changed, again.proxy.actions) == (False, [])
    assert drained_again is True
    # The client: no failed request during the whole switch, only the new one after it.
    failed = [answer for answer in loop.answers if answer.status != 200]
    after = {answer.body for answer in loop.answers if answer.at > switched}
    print(
        f"\nswitch: {len(loop.answers)} requests, {len(failed)} failed; "
        f"drain waited {waited:.1f} s for the request in flight"
    )
    # Traffic spanned the switch (answered by the old one, then the new one); how many
    # requests that is depends on the machine's speed, so it is shown, not asserted.
    assert failed == []
    assert {answer.body for answer in loop.answers} == {old.name, new.name}
    assert after == {new.name}


def test_a_drain_longer_than_its_timeout_is_a_warning_and_cuts_nothing(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    old = start_app("old")
    serving(stack, old)
    driven = drive(stack)

    def drain() -> tuple[bool, float]:
        return runtime.drain_backends(driven.proxy, {SERVICE: old.address}, 1)

    (drained, waited), sessions, slow = while_in_flight(stack, driven.proxy, old, 6, drain)

    assert driven.proxy.changed is True
    assert drained is False
    assert 1 <= waited < 5
    warnings = " ".join(driven.warnings)
    assert "sessions left after drain_timeout 1 s" in warnings
    assert old.address in warnings
    assert sessions == 1
    assert stack.admin_state(old) == FORCED_DRAIN
    assert (slow.status, slow.body) == (200, old.name)


def test_check_mode_changes_nothing_and_ready_undoes_a_drain(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    old = start_app("old")
    serving(stack, old)

    planned = drive(stack, check=True).proxy
    # no session: nothing to wait for
    assert runtime.drain_backends(planned, {SERVICE: old.address}, 30)[0] is True
    assert planned.changed is True
    assert planned.actions == [f"would drain {slot_of(planned, old).label()}"]
    assert stack.admin_state(old) == 0

    # by container name, as the modules find it: its address on the proxy's network
    container = stack.client.containers.get(old.name)
    proxy_container = stack.client.containers.get(stack.proxy)
    assert runtime.address_on(container, proxy_container) == old.address
    drained = drive(stack).proxy
    address = runtime.address_on(container, proxy_container)
    assert runtime.drain_backends(drained, {SERVICE: address}, 30)[0] is True
    assert drained.actions == [f"drain {slot_of(drained, old).label()}"]
    assert stack.admin_state(old) == FORCED_DRAIN

    rolled_back = drive(stack).proxy
    runtime.bring_up(rolled_back, [old.address], 10)
    assert rolled_back.changed is True
    assert rolled_back.actions == [f"ready {slot_of(rolled_back, old).label()}"]
    assert stack.admin_state(old) == 0
    assert get(stack.url).body == old.name


def test_an_address_that_never_fills_a_slot_fails_in_one_line_and_drains_nothing(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    old = start_app("old")
    serving(stack, old)
    ghost = stack.unused_address()
    proxy = drive(stack).proxy

    started = time.monotonic()
    with pytest.raises(runtime.ProxyError) as raised:
        runtime.bring_up(proxy, [ghost], 3)
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert message.startswith(
        f"proxy container {stack.proxy}, backend {SERVICE}: {ghost} in no slot after 3 s (slots: "
    )
    assert old.address in message
    assert f"with the alias {SERVICE}?" in message
    assert "\n" not in message
    assert old.address in {slot.address for slot in raised.value.slots}
    assert elapsed < 3 + 10
    assert (proxy.changed, proxy.actions) == (False, [])
    assert stack.admin_state(old) == 0


def test_an_address_in_no_slot_is_a_warning_and_nothing_to_drain(stack: ProxyStack) -> None:
    ghost = stack.unused_address()
    driven = drive(stack)
    assert runtime.drain_backends(driven.proxy, {SERVICE: ghost}, 5)[0] is True
    assert (driven.proxy.changed, driven.proxy.actions) == (False, [])
    assert len(driven.warnings) == 1
    assert f"{ghost} is in no slot" in driven.warnings[0]
    assert "nothing to drain" in driven.warnings[0]


def test_an_unknown_backend_is_named_with_the_backends_there_are(stack: ProxyStack) -> None:
    proxy = drive(stack, backend="tpx-nope").proxy
    with pytest.raises(runtime.ProxyError) as raised:
        proxy.slots()
    assert str(raised.value) == (
        f"proxy container {stack.proxy}, backend tpx-nope: no such backend "
        f"(the proxy has: {SERVICE}); the backend is the route's service"
    )


def test_a_missing_or_stopped_proxy_is_none_and_gives_no_address(
    docker_engine: docker.DockerClient, base_image: str
) -> None:
    """The first deploy drains before its proxy exists: no request reaches the app then."""
    assert runtime.running_proxy(docker_engine, f"tpx-no-such-{uuid.uuid4().hex[:6]}") is None
    stopped = docker_engine.containers.create(
        base_image, ["true"], name=f"tpx-stopped-{uuid.uuid4().hex[:6]}"
    )
    try:
        assert runtime.running_proxy(docker_engine, stopped.name, wait=1) is None
        assert runtime.address_on(None, stopped) == ""
        assert runtime.address_on(stopped, stopped) == ""  # not running: nothing to drain
    finally:
        stopped.remove(force=True)


def test_the_stop_flows_drain_waits_for_the_request_in_flight_and_names_an_unknown_backend(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    """drain_backends, as docker_stop drains before it stops: the slot drained in the same
    line that reads it back, the request in flight answered, a new one refused by the proxy."""
    old = start_app("old")
    serving(stack, old)
    driven = drive(stack)
    (drained, _), sessions, slow = while_in_flight(
        stack,
        driven.proxy,
        old,
        2,
        lambda: runtime.drain_backends(driven.proxy, {SERVICE: old.address}, 30),
    )

    assert drained is True
    assert sessions == 0  # the drain returned only once the request in flight was done
    assert driven.proxy.actions == [f"drain {slot_of(driven.proxy, old).label()}"]
    assert driven.warnings == []
    assert stack.admin_state(old) == FORCED_DRAIN
    assert (slow.status, slow.body) == (200, old.name)
    assert get(stack.url).status == 503

    with pytest.raises(runtime.ProxyError) as raised:
        runtime.drain_backends(driven.proxy, {"tpx-nope": old.address}, 5)
    assert str(raised.value).endswith(
        f"no such backend tpx-nope (the proxy has: {SERVICE}); the backend is the route's service"
    )


def test_the_start_readies_every_drained_slot_in_one_line_and_then_has_nothing_to_do(
    stack: ProxyStack, start_app: Callable[[str], App]
) -> None:
    """ready_backends, as docker_services readies while the stop flow's containers start:
    the slot the stop drained takes requests again, and a second call changes nothing."""
    old = start_app("old")
    serving(stack, old)
    runtime.drain_backends(drive(stack).proxy, {SERVICE: old.address}, 5)
    assert stack.admin_state(old) == FORCED_DRAIN

    readied = drive(stack)
    runtime.ready_backends(readied.proxy, [SERVICE])
    assert readied.proxy.changed is True
    assert readied.proxy.actions == [f"{SERVICE}/{slot_of(readied.proxy, old).name} state ready"]
    assert stack.admin_state(old) == 0
    assert get(stack.url).body == old.name

    again = drive(stack)
    runtime.ready_backends(again.proxy, [SERVICE])
    assert (again.proxy.changed, again.proxy.actions) == (False, [])
