"""What a one-shot container's log says, pure logic (the docker_oneshot module's).

The migrator's commands (up, status, plan, backfill) end their log with one line of JSON, their
summary; the module returns it parsed so that no play has to dig it out of the log.
"""

from __future__ import annotations

import json
from typing import Any


def last_json_object(log: str) -> dict[str, Any]:
    """The last line of LOG that parses as a JSON object; {} when no line does."""
    for raw in reversed((log or "").splitlines()):
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
