"""A loopback TCP relay for the tests and benchmarks: it counts what a server sends back, can
stall once it has sent enough (a pull cut off mid-way), or serve one connection and refuse
the rest (a database that goes away after the first query).

Bytes are relayed as they are, so TLS passes through untouched: a client reaching a registry
through the relay still checks the registry's own certificate (it names 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class Relay:
    """Listens on a free loopback port and relays every connection to TARGET_PORT.

    With STALL_AFTER set, once the server has sent that many bytes (over all connections)
    nothing more is relayed either way, and ON_STALL is called once, in .stall_thread; the
    connections stay open until close(). With MAX_CONNECTIONS set, later connections are
    refused.
    """

    def __init__(
        self,
        target_port: int,
        *,
        stall_after: int | None = None,
        on_stall: Callable[[], None] | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.target_port = target_port
        self.stall_after = stall_after
        self.on_stall = on_stall
        self.max_connections = max_connections
        self.stall_thread: threading.Thread | None = None
        self.bytes_from_server = 0
        self.stalled = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def accept(self) -> None:
        accepted = 0
        with contextlib.suppress(OSError):
            while not self.closed.is_set():
                client, _ = self.listener.accept()
                accepted += 1
                if accepted == self.max_connections:
                    self.listener.close()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                with self.lock:
                    self.sockets += [client, upstream]
                for ends in ((client, upstream, False), (upstream, client, True)):
                    threading.Thread(target=self.pipe, args=ends, daemon=True).start()

    def pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_server:
                    self.count(len(data))
                if self.stalled.is_set():
                    self.closed.wait()  # hold the connection open, relaying nothing
                    return
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def count(self, size: int) -> None:
        with self.lock:
            self.bytes_from_server += size
            stall = (
                self.stall_after is not None
                and self.bytes_from_server >= self.stall_after
                and not self.stalled.is_set()
            )
            if stall:
                self.stalled.set()
        if stall and self.on_stall is not None:
            self.stall_thread = threading.Thread(target=self.on_stall, daemon=True)
            self.stall_thread.start()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
