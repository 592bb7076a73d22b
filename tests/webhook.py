"""A chat webhook for tests: a loopback HTTP server that records each post."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "T000-hook-token-0123456789"  # noqa: S105 - a fake webhook token, searched for in output


@dataclass
class Webhook:
    """A loopback HTTP server: every POST body is kept; ANSWER is the status it returns."""

    answer: int = 200
    posts: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"

    def start(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.answer)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [post["prosaas"]["event"] for post in self.posts]
