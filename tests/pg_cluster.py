"""A throwaway PostgreSQL cluster from the local server binaries, for tests and benchmarks.

initdb in a temporary folder, a free loopback port, a random password; removed by stop().
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

PG_USER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be made, started or stopped; the message says why."""


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if not candidates:
        raise ClusterError(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: set TEST_DATABASE_URL "
            "or install Debian's postgresql package (scripts/test.sh does it as root)"
        )
    return Path(candidates[-1]).parent


def _version_key(path: str) -> int:
    return int(Path(path).parent.parent.name.split(".")[0])


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the postgres account then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", PG_USER, "--", *command]


# The server whose lock rules and catalog the migrator's tables follow.
POSTGRES_15_BIN = Path("/usr/lib/postgresql/15/bin")


class ThrowawayCluster:
    """A cluster made with initdb in a temporary folder, on a free loopback port; BIN: the
    server's binaries (the newest installed by default)."""

    def __init__(self, *, fsync: bool = False, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or postgres_bin_dir()
        self.fsync = fsync
        self.dsn = ""
        self.base = Path(tempfile.mkdtemp(prefix="prosaas-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_loopback_port()
        self.password = secrets.token_urlsafe(16)

    def start(self) -> str:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.base, PG_USER)
            shutil.chown(pwfile, PG_USER)
        self._run(
            "initdb", "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        pwfile.unlink()
        fsync = "on" if self.fsync else "off"
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync={fsync}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self.dsn = f"postgresql://{PG_USER}:{quote(self.password)}@127.0.0.1:{self.port}/postgres"
        return self.dsn

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            _as_postgres_user([str(self.bin / tool), *args]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise ClusterError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()} {log[-500:]}"
            )


@contextlib.contextmanager
def postgres15() -> Iterator[str]:
    """The DSN of a throwaway PostgreSQL 15 cluster, whatever else is installed; ClusterError
    (which fails a test's set-up, never skips it) without the binaries."""
    if not (POSTGRES_15_BIN / "initdb").exists():
        raise ClusterError(f"no PostgreSQL 15 under {POSTGRES_15_BIN}: install postgresql-15")
    cluster = ThrowawayCluster(bin_dir=POSTGRES_15_BIN)
    cluster.start()
    try:
        yield cluster.dsn
    finally:
        cluster.stop()
