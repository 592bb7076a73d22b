"""Failpoints (module_utils/prosaas_failpoint.py): inert unless a test arms one."""

import threading
from pathlib import Path

import pytest
from ansible.module_utils.prosaas_failpoint import ENVIRONMENT_VARIABLE, failpoint


def test_a_failpoint_is_inert_without_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    (tmp_path / "switch-draining").touch()
    assert not failpoint("switch-draining")
    assert not (tmp_path / "switch-draining.reached").exists()


def test_a_failpoint_not_armed_lets_the_flow_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    (tmp_path / "other").touch()
    assert not failpoint("switch-draining")
    assert not (tmp_path / "switch-draining.reached").exists()


def test_an_armed_failpoint_holds_the_flow_until_the_test_releases_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    armed, reached = tmp_path / "switch-draining", tmp_path / "switch-draining.reached"
    armed.touch()
    passed = threading.Event()

    def flow() -> None:
        failpoint("switch-draining")
        passed.set()

    thread = threading.Thread(target=flow, daemon=True)
    thread.start()
    while not reached.exists():
        assert thread.is_alive(), "the flow passed an armed failpoint"
        passed.wait(0.02)
    assert not passed.wait(0.3), "the flow went on while the failpoint was armed"
    armed.unlink()
    assert passed.wait(5), "the flow stayed held after the failpoint was released"
