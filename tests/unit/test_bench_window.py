"""bench/deploy.py's account of the stop flow's window, task by task, from the lines of
bench/callback_plugins/task_times.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import deploy as bench_deploy  # bench/ runs as scripts, not as a package


def line(task: str, start: float, end: float, status: str = "ok") -> dict:
    return {"task": task, "host": "localhost", "start": start, "end": end, "status": status}


def test_the_window_is_the_tasks_between_the_stop_and_record_phases_and_the_time_between() -> None:
    lines = [
        line("Check the release", 0.0, 1.0),
        line("Enter the stop phase", 1.0, 1.5),
        line("Stop the app services", 1.6, 2.6),
        line("Bring up healthy the infra services the release changes", 2.7, 2.7, "skipped"),
        line("Enter the migrate phase", 2.8, 3.0),
        line("Enter the start phase", 3.1, 3.3),
        line("Start the app services", 3.4, 6.4),
        line("Enter the record phase", 6.5, 7.0),
    ]
    window = bench_deploy.window_tasks(lines)
    assert window == {
        "Stop the app services": 1.0,
        "Enter the migrate phase": 0.2,
        "Enter the start phase": 0.2,
        "Start the app services": 3.0,
        bench_deploy.BETWEEN_TASKS: pytest.approx(0.6),
    }
    assert sum(window.values()) == pytest.approx(6.5 - 1.5)


def test_a_deploy_with_no_stop_phase_has_no_window() -> None:
    lines = [line("Enter the start phase", 0.0, 0.2), line("Enter the record phase", 3.0, 3.1)]
    assert bench_deploy.window_tasks(lines) == {}
