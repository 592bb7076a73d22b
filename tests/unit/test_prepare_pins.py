"""The libraries playbooks/prepare.yml installs on each host for the modules are those
requirements.txt pins, at the same versions, with every library they pull in."""

from importlib import metadata

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# What the modules (library/, module_utils/) import on the host.
MODULE_LIBRARIES = {"docker", "psycopg", "psycopg-binary"}
# The hosts: Debian 12, whose Python is 3.11, on Linux.
HOST_MARKERS = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}


def pins(lines: list[str]) -> dict[str, str]:
    """Canonical name -> version of each `name==version` line."""
    pinned = {}
    for line in lines:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pinned[canonicalize_name(requirement.name)] = specifier.version
    return pinned


def role_pins() -> dict[str, str]:
    defaults = yaml.safe_load((ROOT / "roles/prepare/defaults/main.yml").read_text())
    return pins(defaults["prepare_python_requirements"])


def requirements_txt_pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return pins([line for line in lines if line and not line.startswith("#")])


def test_the_hosts_libraries_are_pinned_as_in_requirements_txt() -> None:
    role, project = role_pins(), requirements_txt_pins()
    assert role.keys() >= MODULE_LIBRARIES
    assert role == {name: project.get(name) for name in role}


def test_the_hosts_libraries_include_every_library_they_pull_in() -> None:
    role = role_pins()
    pulled_in = set()
    for name, version in role.items():
        # The test environment is installed from requirements.txt: its metadata is the pins'.
        assert metadata.version(name) == version, name
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or marker.evaluate({**HOST_MARKERS, "extra": ""}):
                pulled_in.add(canonicalize_name(requirement.name))
    assert pulled_in - role.keys() == set()
