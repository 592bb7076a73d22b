"""The preflight host check (roles/preflight/files/host_check.py) says on one line what a host
lacks for a deploy, run here in this interpreter as ansible.builtin.raw runs it on a host."""

import getpass
import json
import subprocess
import sys
from pathlib import Path

import docker

from tests.conftest import ROOT

SCRIPT = ROOT / "roles/preflight/files/host_check.py"


def host_check(libraries: dict[str, str], engine: str, state_dir: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.read_text(), json.dumps(libraries), engine, state_dir],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("prosaas-host-check: ")
    return line.removeprefix("prosaas-host-check: ")


def test_a_missing_library_an_old_one_and_no_engine_socket_on_one_line(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    said = host_check({"docker": "99.0", "no_such_library": "1.0"}, f"unix://{socket}", "")
    assert said == (
        f"docker {docker.__version__} in {sys.executable} is older than 99.0;"
        f" no no_such_library library in {sys.executable};"
        f" no Docker engine access for {getpass.getuser()}:"
        f" no engine socket at {socket}"
    )


def test_a_state_folder_that_can_be_made_is_enough(tmp_path: Path) -> None:
    engine = f"unix://{tmp_path / 'docker.sock'}"
    said = host_check({}, engine, str(tmp_path / "new" / "state"))
    assert "state folder" not in said


def test_a_state_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    said = host_check({}, f"unix://{tmp_path / 'docker.sock'}", str(tmp_path / "state"))
    assert said.endswith(f"; state folder {tmp_path / 'state'} is not a folder")
