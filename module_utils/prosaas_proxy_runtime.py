"""The proxy's runtime API driven from a module: ready, drain and wait on its server slots.

One `docker exec proxy-api` per runtime API line, so nothing of HAProxy is reached from
outside its container and nothing is reloaded. docker_services and docker_stop drive it
around the containers they start and stop.
Failures raise ProxyError; the calling module decides what to undo before it fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.prosaas_docker import ENGINE_CONNECTION_ERRORS, find_container, one_line
from ansible.module_utils.prosaas_proxy import (
    Slot,
    parse_backends,
    parse_slots,
    slot_of,
    state_command,
    summary,
)

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

POLL_SECONDS = 0.5
SOCKET_UNREACHABLE = 1  # proxy-api's exit status
NOT_RUNNABLE = (126, 127)  # docker exec's exit status for a command it cannot run
KILLED_BY_SIGNAL = 128  # above it, the command was killed by signal (status - 128)
RUNNING = "running"


class ProxyError(Exception):
    """The proxy refused or could not be asked; the message is one line. TRANSIENT: HAProxy
    could not be reached at all (its container restarting, its socket not open yet)."""

    def __init__(
        self, message: str, slots: list[Slot] | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.slots = slots or []
        self.transient = transient


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(nothing)")


class Proxy:
    """The runtime API of the proxy in one container, for one backend; it keeps what it did
    so that a failure can report it."""

    def __init__(
        self, container: Any, backend: str, check_mode: bool, warn: Callable[[str], None]
    ) -> None:
        self.container = container
        self.backend = backend
        self.check_mode = check_mode
        self.warn = warn
        self.actions: list[str] = []
        self.changed = False

    def error(
        self, message: str, slots: list[Slot] | None = None, transient: bool = False
    ) -> ProxyError:
        return ProxyError(
            f"proxy container {self.container.name}, backend {self.backend}: {message}",
            slots,
            transient,
        )

    def ask(self, command: str) -> str:
        """HAProxy's reply to one runtime API line."""
        try:
            code, (out, err) = self.container.exec_run(["proxy-api", command], demux=True)
        except (APIError, *ENGINE_CONNECTION_ERRORS) as exc:
            raise self.error(
                f"cannot run proxy-api in it: {one_line(exc)}", transient=True
            ) from None
        said = first_line((err or out or b"").decode("utf-8", "replace"))
        if code == SOCKET_UNREACHABLE:
            raise self.error(
                f"{said}; is HAProxy running (docker logs {self.container.name})?", transient=True
            )
        if code in NOT_RUNNABLE:
            raise self.error(
                f"proxy-api cannot run (exit status {code}): {said}; "
                "its image needs proxy-api: rebuild it from proxy/Dockerfile"
            )
        if code > KILLED_BY_SIGNAL:
            raise self.error(
                f"proxy-api was killed (signal {code - KILLED_BY_SIGNAL}): did the container "
                f"stop or restart (docker logs {self.container.name})?",
                transient=True,
            )
        if code != 0:
            raise self.error(f"proxy-api failed (exit status {code}): {said}")
        return (out or b"").decode("utf-8", "replace")

    def slots(self) -> list[Slot]:
        """The backend's slots now."""
        try:
            slots = parse_slots(self.ask(state_command(self.backend)), self.backend)
        except ValueError as exc:
            raise self.error(f"unexpected runtime API reply, {exc}") from None
        if slots is None:
            known = ", ".join(parse_backends(self.ask("show backend"))) or "none"
            raise self.error(
                f"no such backend (the proxy has: {known}); the backend is the route's service"
            )
        return slots

    def put(self, slot: Slot, target: str) -> None:
        """Set SLOT's state to TARGET (ready, drain, maint) unless it is so already."""
        if not slot.needs(target):
            return
        self.changed = True
        if self.check_mode:
            self.actions.append(f"would {target} {slot.label()}")
            return
        command = f"set server {self.backend}/{slot.name} state {target}"
        reply = self.ask(command).strip()
        if reply:
            raise self.error(f"'{command}' answered: {first_line(reply)}")
        self.actions.append(f"{target} {slot.label()}")


def not_up(slots: list[Slot], address: str, backend: str, timeout: int) -> str:
    """Why ADDRESS is not in an UP slot, on one line."""
    slot = slot_of(slots, address)
    if slot is None:
        return (
            f"{address} in no slot after {timeout} s (slots: {summary(slots)}); "
            f"is its container on the proxy's network with the alias {backend}?"
        )
    return (
        f"{slot.label()} not UP after {timeout} s ({slot.state}, last check: "
        f"{slot.check or 'none yet'}); is the container healthy?"
    )


def bring_up(proxy: Proxy, addresses: list[str], timeout: float) -> float:
    """Wait until every address is in a READY slot that is UP, readying the slots that
    need it; seconds waited. Check mode looks once and waits for nothing."""
    started = time.monotonic()
    pending = list(addresses)
    while True:
        try:
            slots = proxy.slots()
        except ProxyError as exc:
            # A proxy that restarts comes back with every container in a slot: wait for it.
            if not exc.transient or time.monotonic() - started >= timeout:
                raise
            time.sleep(POLL_SECONDS)
            continue
        for address in list(pending):
            slot = slot_of(slots, address)
            if slot is None:
                continue
            if slot.needs("ready"):
                proxy.put(slot, "ready")
            if slot.state == "UP" or (proxy.check_mode and slot.serving):
                pending.remove(address)
        waited = time.monotonic() - started
        if not pending:
            return waited
        if proxy.check_mode:
            proxy.actions += [f"would wait for {address} to be UP" for address in pending]
            return waited
        if waited >= timeout:
            reasons = [not_up(slots, address, proxy.backend, int(timeout)) for address in pending]
            raise proxy.error("; ".join(reasons), slots)
        time.sleep(POLL_SECONDS)


def put_all(proxy: Proxy, addresses: list[str], target: str) -> None:
    """Set the slots of ADDRESSES to TARGET; an address in no slot is a warning."""
    if not addresses:
        return
    slots = proxy.slots()
    for address in addresses:
        slot = slot_of(slots, address)
        if slot is None:
            proxy.warn(
                f"proxy container {proxy.container.name}, backend {proxy.backend}: "
                f"{address} is in no slot (slots: {summary(slots)}), so it gets no request: "
                f"nothing to {target}"
            )
        else:
            proxy.put(slot, target)


def wait_drained(proxy: Proxy, addresses: list[str], timeout: float) -> tuple[bool, float]:
    """Wait until the slots of ADDRESSES have no session; whether they got there, and the
    seconds waited. Check mode looks once."""
    started = time.monotonic()
    while True:
        slots = proxy.slots()
        busy = [
            slot for address in addresses if (slot := slot_of(slots, address)) and slot.sessions
        ]
        waited = time.monotonic() - started
        if not busy:
            return True, waited
        if proxy.check_mode:
            proxy.actions += [f"would wait for {slot.label()} to drain" for slot in busy]
            return False, waited
        if waited >= timeout:
            left = ", ".join(f"{slot.label()} {slot.sessions}" for slot in busy)
            proxy.warn(
                f"proxy container {proxy.container.name}, backend {proxy.backend}: sessions "
                f"left after drain_timeout {int(timeout)} s: {left}; stopping the container "
                "now cuts them"
            )
            return False, waited
        time.sleep(POLL_SECONDS)


def drain(proxy: Proxy, addresses: list[str], timeout: float) -> bool:
    """Take ADDRESSES out of rotation and wait for their requests in flight; whether they
    all finished within TIMEOUT."""
    put_all(proxy, addresses, "drain")
    return wait_drained(proxy, addresses, timeout)[0]


def address_on(container: Any, proxy: Any) -> str:
    """CONTAINER's address on a network it shares with PROXY; "" when it is not running
    or shares none."""
    if container is None or container.status != RUNNING:
        return ""
    shared = set(proxy.attrs["NetworkSettings"]["Networks"] or {})
    networks = container.attrs["NetworkSettings"]["Networks"] or {}
    found = [settings["IPAddress"] for name, settings in networks.items() if name in shared]
    return found[0] if found and found[0] else ""


def running_proxy(client: Any, name: str, wait: float = 0) -> Any:
    """The proxy's container when it runs, waiting up to WAIT seconds for one that is
    restarting; None when it is missing or stopped."""
    deadline = time.monotonic() + wait
    while True:
        container = find_container(client, name)
        if container is not None and container.status == RUNNING:
            return container
        if container is None or container.status != "restarting" or time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
