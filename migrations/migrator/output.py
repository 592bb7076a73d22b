"""Where the migrator writes: progress on stderr, results and the summary on stdout.

Every progress line carries a UTC timestamp. ``say`` lines (``✅ Migration 109 complete``,
tables of ``status`` / ``plan`` / ``verify``) go to stdout; with ``--json`` only the closing
JSON summary is written there (result lines then go to stderr). Everything is flushed at
once, so a pipe sees it live.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO


class Output:
    def __init__(
        self, json_only: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_only = json_only
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        print(f"{stamp} migrator: {message}", file=self.stderr, flush=True)

    def say(self, message: str) -> None:
        """A result line; with ``--json`` it goes to stderr, keeping stdout pure JSON."""
        print(message, file=self.stderr if self.json_only else self.stdout, flush=True)

    def error(self, message: str) -> None:
        print(f"error: {' '.join(message.split())}", file=self.stderr, flush=True)

    def summary(self, data: dict) -> None:
        print(json.dumps(data, ensure_ascii=False, default=str), file=self.stdout, flush=True)
