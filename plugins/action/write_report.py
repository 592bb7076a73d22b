"""Action plugin: write the deploy report as JSON on the control node, in-process.

The report belongs to the control node, so nothing is sent to a host: no module runs,
which keeps the record phase (inside the measured deploy time) short.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
action: write_report
short_description: Write a deploy report as JSON on the control node
description:
  - Creates the folder (mode 0700) when needed and writes O(content) to O(path) atomically
    with mode 0600. A file with the same content is left alone.
  - In check mode nothing is written.
author: prosaas-deploy (!UNKNOWN)
options:
  path:
    description: The report file.
    type: path
    required: true
  content:
    description: The report.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Writes nothing; says whether the file would change.
  diff_mode:
    support: none
    description: The report is the file's whole content; it is not shown as a diff.
"""

EXAMPLES = r"""
- name: Write the deploy report on the control node
  write_report:
    path: "{{ playbook_dir }}/../reports/{{ release_id }}.json"
    content: "{{ report }}"
"""

RETURN = r"""
path:
  description: The report file, with C(~) expanded.
  returned: success
  type: str
  sample: /home/ops/prosaas-deploy/reports/20261124T120000Z-v2.json
"""


def report_text(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=4, ensure_ascii=False, default=str) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "content"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        path = Path(os.path.expanduser(str(self._task.args.get("path") or "")))
        content = self._task.args.get("content")
        if not path.name or not isinstance(content, dict):
            return {**result, "failed": True, "msg": "write_report needs path and a dict content"}
        text = report_text(content)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return {**result, "changed": False, "path": str(path)}
        if not self._task.check_mode:
            try:
                write_atomically(path, text)
            except OSError as exc:
                return {**result, "failed": True, "msg": f"cannot write {path}: {exc.strerror}"}
        return {**result, "changed": True, "path": str(path)}
