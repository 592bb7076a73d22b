"""Each task's wall time on each host, as JSON lines in the file PROSAAS_TASK_TIMES names:
{"task", "host", "start", "end", "status"} (epoch seconds). bench/deploy.py enables it to
show what the stop flow's window is made of; nothing of the project uses it.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: each task's wall time per host, as JSON lines
description: Writes one JSON line per task result to the file PROSAAS_TASK_TIMES names.
requirements: [PROSAAS_TASK_TIMES set in the environment]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.path = os.environ.get("PROSAAS_TASK_TIMES", "")
        self.started: dict[str, float] = {}

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self.started[task._uuid] = time.time()

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.started[task._uuid] = time.time()

    def write(self, result, status: str) -> None:
        if not self.path:
            return
        task = result._task
        line = {
            "task": task.get_name(),
            "host": result._host.get_name(),
            "start": self.started.get(task._uuid, time.time()),
            "end": time.time(),
            "status": status,
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self.write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self.write(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self.write(result, "skipped")
