"""The state directory's file store (module_utils/prosaas_store.py): atomic writes with a
backup, exclusive creation and the directory's mode."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from ansible.module_utils.prosaas_store import (
    StateError,
    atomic_write,
    create_exclusive,
    ensure_dir,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_keeps_the_prior_file_as_bak(tmp_path: Path) -> None:
    path = tmp_path / "releases.json"
    atomic_write(str(path), "first\n")
    assert path.read_text() == "first\n"
    assert not (tmp_path / "releases.json.bak").exists()
    atomic_write(str(path), "second\n")
    assert path.read_text() == "second\n"
    assert (tmp_path / "releases.json.bak").read_text() == "first\n"
    assert mode(path) == 0o600
    assert mode(tmp_path / "releases.json.bak") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["releases.json", "releases.json.bak"]


def test_atomic_write_failure_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "releases.json"
    with pytest.raises(StateError, match=f"cannot write {target}: Not a directory"):
        atomic_write(str(target), "x")


def test_create_exclusive_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    assert create_exclusive(str(path), json.dumps({"pid": 1}))
    assert not create_exclusive(str(path), json.dumps({"pid": 2}))
    assert json.loads(path.read_text()) == {"pid": 1}
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.lock"], "no temporary file left"


def test_ensure_dir_creates_0700_and_reports_errno(tmp_path: Path) -> None:
    target = tmp_path / "a" / "state"
    assert ensure_dir(str(target))
    assert mode(target) == 0o700
    assert not ensure_dir(str(target))
    (tmp_path / "afile").write_text("")
    with pytest.raises(StateError) as raised:
        ensure_dir(str(tmp_path / "afile" / "sub"))
    assert str(raised.value) == (
        f"cannot create state directory {tmp_path / 'afile' / 'sub'}: Not a directory (ENOTDIR)"
    )
