"""Action plugin: make the reports folder on the control node, and prove it can be written,
before a deploy touches anything (a job runner may point it anywhere)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
---
action: check_reports_dir
short_description: Check, before a deploy touches anything, that its reports folder can be written
description:
  - Creates O(path) on the control node (mode 0700) when it is missing, then writes and
    removes a file in it. Fails in one line naming C(prosaas_reports_dir) when it cannot.
  - In check mode nothing is created; a missing folder passes when the nearest folder above
    it that exists can be written.
author: prosaas-deploy (!UNKNOWN)
options:
  path:
    description: The reports folder (C(prosaas_reports_dir)).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Check that the reports folder can be written
  check_reports_dir:
    path: "{{ prosaas_reports_dir }}"
"""

RETURN = r"""
path:
  description: The folder, with C(~) expanded.
  returned: always
  type: str
  sample: /srv/awx/reports
created:
  description: Whether the folder was made (would be, in check mode); never reported as a change.
  returned: success
  type: bool
  sample: true
"""


def os_reason(exc: OSError) -> str:
    """`Permission denied: /srv/reports`, from an OSError."""
    text = exc.strerror or str(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def write_probe(folder: Path) -> None:
    """Write and remove a file in FOLDER; OSError when it cannot be written."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".write-check.")
    os.close(handle)
    os.unlink(name)


def nearest_existing(folder: Path) -> Path:
    return next(path for path in (folder, *folder.parents) if path.exists())


def planned_folder_reason(folder: Path) -> str | None:
    """Check mode: why FOLDER could not be made and written, judged without making it."""
    if folder.is_dir():
        write_probe(folder)
        return None
    above = nearest_existing(folder)
    if not above.is_dir():
        return f"Not a directory: {above}"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"Permission denied: {above}"
    return None


def unwritable_reason(folder: Path, create: bool) -> str | None:
    """Why FOLDER cannot take the reports, or None. A missing FOLDER is made (mode 0700) when
    CREATE, else judged by the folder above it."""
    if folder.exists() and not folder.is_dir():
        return "it exists and is not a folder"
    try:
        if not create:
            return planned_folder_reason(folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_probe(folder)
    except OSError as exc:
        return os_reason(exc)
    return None


def refusal(folder: Path, reason: str) -> str:
    return (
        f"prosaas_reports_dir {folder} cannot be written ({reason}): point prosaas_reports_dir"
        " (or the PROSAAS_REPORTS_DIR environment variable) at a folder this control node's"
        " user can write, and run again"
    )


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path",))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        given = str(self._task.args.get("path") or "").strip()
        if not given:
            return {**result, "failed": True, "msg": "prosaas_reports_dir is empty: name a folder"}
        folder = Path(os.path.expanduser(given))
        existed = folder.is_dir()
        reason = unwritable_reason(folder, create=not self._task.check_mode)
        if reason:
            return {**result, "failed": True, "msg": refusal(folder, reason), "path": str(folder)}
        # The run's own bookkeeping on the control node, like the lock: never a change.
        return {**result, "changed": False, "created": not existed, "path": str(folder)}
