"""Clients of the stack's API that run through a deploy and count every answer."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Background:
    """A loop on its own thread: start() runs run(), finish() stops it and waits for it."""

    stop: threading.Event = field(default_factory=threading.Event, init=False)
    thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=10)


@dataclass
class CallWriter(Background):
    """POSTs /calls every 50 ms with a new call_sid; keeps the ones answered 201, and
    counts every other answer: ``503 retry-after 5``, ``refused``, ``timed out``, ..."""

    port: int
    acked: list[tuple[float, str]] = field(default_factory=list)
    failed: int = 0
    answers: Counter[str] = field(default_factory=Counter)

    def run(self) -> None:
        url = f"http://127.0.0.1:{self.port}/calls"
        while not self.stop.is_set():
            call_sid = f"e2e-{uuid.uuid4().hex}"
            request = urllib.request.Request(
                url,
                data=json.dumps({"call_sid": call_sid, "from_number": "+15550100"}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    if response.status == 201:
                        self.acked.append((time.monotonic(), call_sid))
                    self.answers[str(response.status)] += 1
            except urllib.error.HTTPError as error:
                self.failed += 1
                self.answers[f"{error.code} retry-after {error.headers.get('Retry-After')}"] += 1
            except (OSError, urllib.error.URLError) as error:
                self.failed += 1
                reason = getattr(error, "reason", error)
                refused = isinstance(reason, ConnectionRefusedError)
                self.answers["refused" if refused else type(reason).__name__] += 1
            time.sleep(0.05)


@dataclass
class HeldCall(Background):
    """One call in progress on the calls service: POST /calls/<sid>/hold for SECONDS; keeps
    the answer (status and body, or the error)."""

    port: int
    seconds: float
    status: int = 0
    body: dict = field(default_factory=dict)
    error: str = ""

    def run(self) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/calls/held-{uuid.uuid4().hex[:8]}/hold",
            data=json.dumps({"seconds": self.seconds}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.seconds + 30) as response:  # noqa: S310
                self.status = response.status
                self.body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            self.status = error.code
        except OSError as error:
            self.error = repr(error)

    def finish(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=self.seconds + 40)
