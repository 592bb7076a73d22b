"""Failpoints: named places of the deploy where a test holds the flow until the fault it
injects is in place, so that no fault races the deploy's progress.

Inert unless the environment variable PROSAAS_FAILPOINTS names a folder, which only a test
sets. A failpoint NAME is armed when the file NAME exists in that folder: a process that
passes it adds its pid as a line of NAME.reached beside it and waits there until the test
removes NAME. The pids let a test that killed the run wait for a held process it orphaned.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROSAAS_FAILPOINTS"
POLL_SECONDS = 0.05
# A test that never releases its failpoint must not hang the deploy for ever.
HOLD_LIMIT_SECONDS = 600.0


def failpoint(name: str) -> bool:
    """Hold here while a test holds NAME; whether the flow was held."""
    folder = os.environ.get(ENVIRONMENT_VARIABLE)
    if not folder:
        return False
    armed = Path(folder) / name
    if not armed.exists():
        return False
    with (Path(folder) / f"{name}.reached").open("a", encoding="utf-8") as reached:
        reached.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while armed.exists() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return True
