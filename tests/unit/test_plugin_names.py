"""No module or plugin of this project takes a short name Ansible already resolves: one in
ansible-core's plugin routing table (names moved to collections, e.g. docker_service to
community.general), one ansible-core ships, or, for filters, one Jinja2 has. With such a
name, what a task or template runs depends on which of the two Ansible finds first."""

import importlib.util
from pathlib import Path

import ansible
import jinja2.filters
import pytest
import yaml

from tests.conftest import ROOT

ANSIBLE = Path(ansible.__file__).parent
ROUTING = yaml.safe_load((ANSIBLE / "config" / "ansible_builtin_runtime.yml").read_text())[
    "plugin_routing"
]


def shipped(folder: str, suffix: str = ".py") -> set[str]:
    """Short names of the plugins ansible-core ships in FOLDER (a builtin filter or test is
    documented in a .yml file of its own name)."""
    return {path.stem for path in (ANSIBLE / folder).glob(f"*{suffix}")} - {"__init__"}


def stems(folder: str) -> set[str]:
    return {path.stem for path in (ROOT / folder).glob("*.py")}


def filter_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "plugins" / "filter").glob("*.py"):
        spec = importlib.util.spec_from_file_location(f"filter_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        names |= set(module.FilterModule().filters())
    return names


# Tasks name modules and action plugins alike, so both share one namespace.
TASK_NAMES = set(ROUTING["modules"]) | set(ROUTING["action"]) | shipped("modules")
TASK_NAMES |= shipped("plugins/action")
TAKEN = {
    "module (library/)": (stems("library"), TASK_NAMES),
    "action plugin": (stems("plugins/action"), TASK_NAMES),
    "lookup plugin": (stems("plugins/lookup"), set(ROUTING["lookup"]) | shipped("plugins/lookup")),
    "filter": (
        filter_names(),
        set(ROUTING["filter"]) | shipped("plugins/filter", ".yml") | set(jinja2.filters.FILTERS),
    ),
    "doc fragment": (
        stems("plugins/doc_fragments"),
        set(ROUTING["doc_fragments"]) | shipped("plugins/doc_fragments"),
    ),
}


@pytest.mark.parametrize("kind", TAKEN)
def test_no_name_is_taken_by_ansible(kind: str) -> None:
    ours, taken = TAKEN[kind]
    assert ours, f"no {kind} found: the test looks in the wrong place"
    assert sorted(ours & taken) == []


def test_the_taken_names_hold_routed_shipped_and_jinja_ones() -> None:
    assert "docker_service" in TASK_NAMES  # routed to community.general
    assert "copy" in TASK_NAMES
    assert "json_query" in TAKEN["filter"][1]
    assert "map" in TAKEN["filter"][1]
