"""Failpoints (module_utils/prosaas_failpoint.py): inert unless a test arms one."""

import multiprocessing
import os
import threading
import time
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
    assert reached.read_text() == f"{os.getpid()}\n"  # the process held there
    armed.unlink()
    assert passed.wait(5), "the flow stayed held after the failpoint was released"


def test_each_process_that_reaches_a_failpoint_adds_its_pid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    armed, reached = tmp_path / "lock-taking", tmp_path / "lock-taking.reached"
    armed.touch()
    fork = multiprocessing.get_context("fork")
    held = [fork.Process(target=failpoint, args=("lock-taking",)) for _ in range(2)]
    for process in held:
        process.start()
    try:
        deadline = time.monotonic() + 30
        while len(reached.read_text().split() if reached.exists() else []) < 2:
            assert time.monotonic() < deadline, "two processes never both reached the failpoint"
            assert all(process.is_alive() for process in held), "one passed the failpoint"
            time.sleep(0.05)
        pids = sorted(int(pid) for pid in reached.read_text().split())
        assert pids == sorted(process.pid for process in held)
    finally:
        armed.unlink()
    for process in held:
        process.join(timeout=10)
    assert [process.exitcode for process in held] == [0, 0]
