"""The range of ansible-core the project supports: one range, the one requirements.in declares,
which the pins of both ends and the check play (playbooks/check-ansible.yml) hold to; every
playbook checks it first, and a core outside it gets one line naming the range before any
other task. The runs use the ansible-core installed beside this interpreter, whichever end."""

from __future__ import annotations

from pathlib import Path

import ansible.release
import ansible_runner
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import ROOT, run_playbook

CHECK_PLAY = "playbooks/check-ansible.yml"
CHECK_TASK = "Stop when this ansible-core is outside the range the project supports"
RUNNING = ansible.release.__version__
PLAYBOOKS = sorted(
    path.name for path in (ROOT / "playbooks").glob("*.yml") if path.name != "check-ansible.yml"
)


def check_vars() -> dict[str, str]:
    return yaml.safe_load((ROOT / CHECK_PLAY).read_text())[0]["vars"]


def pinned_core(requirements: str) -> Version:
    for line in (ROOT / requirements).read_text().splitlines():
        if line.startswith("ansible-core=="):
            return Version(line.split("==", 1)[1])
    raise AssertionError(f"{requirements} pins no ansible-core")


def declared_range() -> SpecifierSet:
    for line in (ROOT / "requirements.in").read_text().splitlines():
        if line.startswith("ansible-core"):
            return Requirement(line).specifier
    raise AssertionError("requirements.in names no ansible-core")


def test_the_check_play_holds_the_range_requirements_in_declares() -> None:
    bounds = check_vars()
    assert declared_range() == SpecifierSet(
        f">={bounds['prosaas_ansible_core_min']},<{bounds['prosaas_ansible_core_below']}"
    )


def test_the_pins_are_the_two_ends_of_the_range() -> None:
    newest, oldest = pinned_core("requirements.txt"), pinned_core("requirements-oldest.txt")
    assert newest in declared_range() and oldest in declared_range()
    bounds = check_vars()
    assert (oldest.major, oldest.minor) == Version(bounds["prosaas_ansible_core_min"]).release
    assert (newest.major, newest.minor + 1) == Version(bounds["prosaas_ansible_core_below"]).release


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_checks_the_core_in_its_first_play(playbook: str) -> None:
    first = yaml.safe_load((ROOT / "playbooks" / playbook).read_text())[0]
    assert first.get("ansible.builtin.import_playbook") == "check-ansible.yml", first


def tasks_started(runner: ansible_runner.Runner) -> list[str]:
    return [
        event["event_data"]["task"]
        for event in runner.events
        if event.get("event") == "playbook_on_task_start"
    ]


def failure_lines(runner: ansible_runner.Runner) -> list[str]:
    return [
        str(event["event_data"]["res"].get("msg", ""))
        for event in runner.events
        if event.get("event") == "runner_on_failed"
    ]


@pytest.mark.parametrize(
    ("bounds", "named"),
    [
        ({"prosaas_ansible_core_min": "2.99"}, ">=2.99, <2.20"),  # a core older than the range
        ({"prosaas_ansible_core_below": RUNNING}, f">=2.16, <{RUNNING}"),  # the upper end excluded
    ],
    ids=["below the range", "at its upper end"],
)
def test_a_core_outside_the_range_stops_the_deploy_with_one_line_before_any_task(
    tmp_path: Path, bounds: dict[str, str], named: str
) -> None:
    runner = run_playbook("deploy.yml", tmp_path, bounds)
    assert runner.rc != 0
    assert tasks_started(runner) == [CHECK_TASK]
    assert failure_lines(runner) == [
        f"ansible-core {RUNNING} is outside the range this project supports ({named}):"
        " install one in it (pip install -r requirements.txt)"
    ]


def test_a_core_in_the_range_passes_the_check_and_its_lower_end_is_included(
    tmp_path: Path,
) -> None:
    for bounds in ({}, {"prosaas_ansible_core_min": RUNNING}):
        runner = run_playbook(CHECK_PLAY, tmp_path, bounds)
        assert runner.rc == 0, failure_lines(runner)
        assert tasks_started(runner) == [CHECK_TASK]
        assert runner.stats["skipped"] == {"localhost": 1}, runner.stats
