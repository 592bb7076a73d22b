"""The proxy's server slots as its runtime API reports them, pure logic.

module_utils/prosaas_proxy_runtime.py drives these functions for docker_services and
docker_stop; unit tests import them directly. One read is the reply to
``show servers state <backend>; show stat -1 4 -1`` (STATE_COMMAND): the slots' addresses
and states, then every server's statistics, sessions among them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

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


def parse_backends(reply: str) -> list[str]:
    """Backend names from the reply to `show backend`."""
    return [line.strip() for line in reply.splitlines() if line.strip() and line[0] != "#"]


def slot_of(slots: list[Slot], address: str) -> Slot | None:
    """The slot holding ADDRESS, or None."""
    return next((slot for slot in slots if slot.address == address), None)


def summary(slots: list[Slot]) -> str:
    return ", ".join(slot.summary() for slot in slots)
