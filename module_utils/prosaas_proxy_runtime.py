"""The proxy's runtime API: its server slots as the API reports them (pure logic, which unit
tests import directly), and driving it from a module: ready, drain and wait on those slots.

One read is the reply to ``show servers state <backend>; show stat -1 4 -1``
(state_command): the slots' addresses and states, then every server's statistics, sessions
among them; ALL_STATE_COMMAND reads every backend at once. One `docker exec proxy-api` per
runtime API line, so nothing of HAProxy is reached from outside its container and nothing is
reloaded; a line may hold several commands. docker_services and docker_stop drive it around
the containers they start and stop.
Failures raise ProxyError; the calling module decides what to undo before it fails.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.prosaas_docker import ENGINE_CONNECTION_ERRORS, find_container, one_line
from ansible.module_utils.prosaas_failpoint import failpoint

# srv_admin_state bits (HAProxy's SRV_ADMF_*): set by the CLI (forced), by the
# configuration, by a tracked server, or by DNS resolution (a slot without an address).
FORCED_MAINT = 0x01
FORCED_DRAIN = 0x08
FORCED = FORCED_MAINT | FORCED_DRAIN
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
DRAIN_BITS = 0x08 | 0x10
# srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
SERVING = (1, 2)
# What `set server ... state X` leaves in the forced bits.
TARGETS = {"ready": 0, "drain": FORCED_DRAIN, "maint": FORCED_MAINT}

UNKNOWN_BACKEND = "Can't find backend."


def state_command(backend: str) -> str:
    """One runtime API line that reads BACKEND's slots and every server's sessions."""
    return f"show servers state {backend}; show stat -1 4 -1"


# Every backend's slots and every server's sessions, in one runtime API line.
ALL_STATE_COMMAND = "show servers state; show stat -1 4 -1"


@dataclass(frozen=True)
class Slot:
    """One server slot of a backend: the container's address it holds, if any."""

    name: str
    address: str | None
    op_state: int
    admin_state: int
    sessions: int
    check: str

    @property
    def state(self) -> str:
        """UP, DOWN, MAINT or DRAIN, the way HAProxy's stats page ranks them."""
        if self.admin_state & MAINT_BITS:
            return "MAINT"
        if not self.serving:
            return "DOWN"
        if self.admin_state & DRAIN_BITS:
            return "DRAIN"
        return "UP"

    @property
    def serving(self) -> bool:
        """Passing its health check (the last one, while checks are paused in MAINT)."""
        return self.op_state in SERVING

    def needs(self, target: str) -> bool:
        """Whether `set server ... state TARGET` would change this slot."""
        return self.admin_state & FORCED != TARGETS[target]

    def label(self) -> str:
        return f"{self.name} ({self.address})"

    def summary(self) -> str:
        """Name, address and state on a few words, for messages."""
        if self.address is None:
            return f"{self.name} empty"
        return f"{self.name} {self.address} {self.state}"

    def as_result(self) -> dict[str, object]:
        return {
            "name": self.name,
            "address": self.address,
            "state": self.state,
            "sessions": self.sessions,
        }


def _csv_fields(line: str) -> list[str]:
    return next(csv.reader([line]))


# How each table of a read opens (its header line), and how its lines split into fields.
SERVERS_STATE = "# be_id "
STAT = "# pxname,"
TABLES: dict[str, Callable[[str], list[str]]] = {SERVERS_STATE: str.split, STAT: _csv_fields}


def _tables(reply: str) -> dict[str, list[list[str]]]:
    """The reply's tables by their header's opening, each its header's fields then its
    rows' (a table ends at a blank line)."""
    tables: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    split: Callable[[str], list[str]] = str.split
    for line in reply.splitlines():
        opening = next((opening for opening in TABLES if line.startswith(opening)), None)
        if opening is not None:
            split = TABLES[opening]
            current = tables[opening] = [split(line[2:])]
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(split(line))
    return tables


def _rows(table: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = table
    return [dict(zip(header, row, strict=False)) for row in rows]


def parse_slots(reply: str, backend: str) -> list[Slot] | None:
    """BACKEND's slots from the reply to state_command(BACKEND); None when HAProxy has no
    such backend. ValueError, naming the reply's first line, when it is no such reply."""
    if UNKNOWN_BACKEND in reply:
        return None
    tables = _tables(reply)
    if SERVERS_STATE not in tables:
        first = next((line for line in reply.splitlines() if line.strip()), "(nothing)")
        raise ValueError(f"not the servers' state: {first.strip()}")
    stats = {
        row["svname"]: row for row in _rows(tables.get(STAT, [[]])) if row["pxname"] == backend
    }
    slots = []
    for row in _rows(tables.get(SERVERS_STATE, [[]])):
        if row["be_name"] != backend:
            continue
        stat = stats.get(row["srv_name"], {})
        check = " ".join(
            part for part in (stat.get("check_status", ""), stat.get("check_desc", "")) if part
        )
        slots.append(
            Slot(
                name=row["srv_name"],
                address=None if row["srv_addr"] in ("-", "") else row["srv_addr"],
                op_state=int(row["srv_op_state"]),
                admin_state=int(row["srv_admin_state"]),
                sessions=int(stat.get("scur") or 0),
                check=check,
            )
        )
    return slots


def refusals_before_read(reply: str) -> list[str]:
    """What the commands before a read said, in the reply to one line of commands that ends
    with a read (ALL_STATE_COMMAND): one line per refusal, none when every one was taken."""
    head = reply.split(f"\n{SERVERS_STATE}", 1)[0]
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    return lines[:-1]  # the last is the servers' state format version


def backends_in(reply: str) -> list[str]:
    """The backends whose slots a read (ALL_STATE_COMMAND) lists."""
    rows = _rows(_tables(reply).get(SERVERS_STATE, [[]]))
    return sorted({row["be_name"] for row in rows})


def parse_backends(reply: str) -> list[str]:
    """Backend names from the reply to `show backend`."""
    return [line.strip() for line in reply.splitlines() if line.strip() and line[0] != "#"]


def slot_of(slots: list[Slot], address: str) -> Slot | None:
    """The slot holding ADDRESS, or None."""
    return next((slot for slot in slots if slot.address == address), None)


def summary(slots: list[Slot]) -> str:
    return ", ".join(slot.summary() for slot in slots)


with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError

# How often the proxy's slots are read while waiting (a drain, a container coming UP, one
# started in place being placed): each read is one exec in the proxy's container, and in the
# stop flow the app's window lasts until the wait ends.
POLL_SECONDS = 0.1
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


def read_backends(
    proxy: Proxy, backends: list[str], command: str = ALL_STATE_COMMAND
) -> dict[str, list[Slot]]:
    """The slots of each of BACKENDS, from the reply to COMMAND (a line that ends with the
    read of every backend)."""
    reply = proxy.ask(command)
    refused = refusals_before_read(reply)
    if refused:
        raise proxy.error(f"'{command}' answered: {refused[0]}")
    try:
        found = {backend: parse_slots(reply, backend) or [] for backend in backends}
    except ValueError as exc:
        raise proxy.error(f"unexpected runtime API reply, {exc}") from None
    unknown = [backend for backend, slots in found.items() if not slots]
    if unknown:
        known = ", ".join(backends_in(reply)) or "none"
        raise proxy.error(
            f"no such backend {', '.join(unknown)} (the proxy has: {known}); the backend is the"
            " route's service"
        )
    return found


def ready_backends(proxy: Proxy, backends: list[str]) -> None:
    """Ready every slot of BACKENDS that is not READY (a drained or maintained one, with or
    without an address), in one runtime API line after one read of every backend."""
    slots = read_backends(proxy, backends)
    commands = [
        f"set server {backend}/{slot.name} state ready"
        for backend in backends
        for slot in slots[backend]
        if slot.needs("ready")
    ]
    if commands:
        read_backends(proxy, backends, "; ".join([*commands, ALL_STATE_COMMAND]))
        proxy.changed = True
        proxy.actions += [command.removeprefix("set server ") for command in commands]


def drain_backends(
    proxy: Proxy, addresses: dict[str, str], timeout: float, held_at: str = ""
) -> tuple[bool, float]:
    """Take each backend's address (ADDRESSES: backend -> address) out of rotation and wait
    for the requests in flight, every backend in the same exchanges: a read, one line that
    drains them all and reads again, then a read every POLL_SECONDS while a request is in
    flight. Whether they all finished within TIMEOUT, and the seconds waited; an address in
    no slot is a warning. HELD_AT names the failpoint passed between the drain and the wait.
    Check mode looks once."""
    started = time.monotonic()
    backends = list(addresses)
    slots = read_backends(proxy, backends)
    placed = {}
    for backend, address in addresses.items():
        slot = slot_of(slots[backend], address)
        if slot is None:
            proxy.warn(
                f"proxy container {proxy.container.name}, backend {backend}: {address} is in"
                f" no slot (slots: {summary(slots[backend])}), so it gets no request: nothing"
                " to drain"
            )
        else:
            placed[backend] = slot
    draining = {backend: slot for backend, slot in placed.items() if slot.needs("drain")}
    if draining:
        proxy.changed = True
        verb = "would drain" if proxy.check_mode else "drain"
        proxy.actions += [f"{verb} {slot.label()}" for slot in draining.values()]
    if draining and not proxy.check_mode:
        commands = [f"set server {b}/{slot.name} state drain" for b, slot in draining.items()]
        slots = read_backends(proxy, backends, "; ".join([*commands, ALL_STATE_COMMAND]))
    if held_at and failpoint(held_at):
        slots = read_backends(proxy, backends)
    while True:
        busy = [
            (backend, slot)
            for backend, address in addresses.items()
            if (slot := slot_of(slots[backend], address)) and slot.sessions
        ]
        waited = time.monotonic() - started
        if not busy or proxy.check_mode:
            return not busy, waited
        if waited >= timeout:
            left = ", ".join(f"{backend} {slot.label()} {slot.sessions}" for backend, slot in busy)
            proxy.warn(
                f"proxy container {proxy.container.name}: sessions left after drain_timeout"
                f" {int(timeout)} s: {left}; stopping the containers now cuts them"
            )
            return False, waited
        time.sleep(POLL_SECONDS)
        slots = read_backends(proxy, backends)


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
