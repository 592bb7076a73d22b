"""Is this host prepared for a deploy? One line: what is missing, or that nothing is.

roles/preflight/tasks/host.yml runs it over ansible.builtin.raw in the interpreter the deploy's
modules use, as the user they run as (a missing virtualenv must still get an answer, so no
Ansible module). Arguments: the libraries with their lowest versions (JSON), the engine's URL,
and the state folder (empty: not checked).
"""

from __future__ import annotations

import importlib
import json
import os
import pwd
import re
import sys
from pathlib import Path

try:
    import docker
except ImportError:  # reported with the libraries
    docker = None

MARKER = "prosaas-host-check:"
READY = "ready"
# What an engine's socket says, from the error's text, in words that point at the fix.
SOCKET_ERRORS = {
    "Permission denied": "permission denied on {socket}",
    "No such file or directory": "no engine socket at {socket}",
    "Connection refused": "the engine at {socket} refuses connections",
}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def library_problems(lowest: dict[str, str]) -> list[str]:
    problems = []
    for name, wanted in lowest.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            problems.append(f"no {name} library in {sys.executable}")
            continue
        have = str(getattr(module, "__version__", "0"))
        if version_tuple(have) < version_tuple(wanted):
            problems.append(f"{name} {have} in {sys.executable} is older than {wanted}")
    return problems


def engine_problem(url: str, user: str) -> str | None:
    if docker is None:
        return None
    try:
        docker.DockerClient(base_url=url, timeout=10).ping()
    except Exception as exc:  # any failure means no access; its text says which
        socket = url.removeprefix("unix://")
        text = str(exc)
        reason = next(
            (said.format(socket=socket) for cause, said in SOCKET_ERRORS.items() if cause in text),
            " ".join(text.split()),
        )
        return f"no Docker engine access for {user}: {reason}"
    return None


def state_dir_problem(path: str, user: str) -> str | None:
    """The deploy makes a missing state folder itself, where its parent lets it."""
    if not path:
        return None
    folder = Path(path)
    if folder.is_dir():
        writable = os.access(folder, os.W_OK | os.X_OK)
        return None if writable else f"state folder {path} is not writable by {user}"
    if folder.exists():
        return f"state folder {path} is not a folder"
    parent = next(p for p in folder.parents if p.exists())
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return None
    return f"no state folder {path}, which {user} cannot make"


def main() -> None:
    lowest, url, state_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    user = pwd.getpwuid(os.geteuid()).pw_name
    problems = library_problems(lowest)
    problems += [p for p in (engine_problem(url, user), state_dir_problem(state_dir, user)) if p]
    print(MARKER, "; ".join(problems) or READY)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # one line for the operator, never a traceback
        print(MARKER, "the host check failed:", " ".join(str(exc).split()) or type(exc).__name__)
