"""The state directory's file store on a deploy host: pure logic, no Ansible imports.

The deploy lock (prosaas_lock) and the release history (prosaas_history) keep their files
here: the directory (mode 0700), files replaced atomically or created exclusively (0600),
and one mutex that serialises the writers. Their errors are StateError, one line each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MUTEX_FILE = ".deploy_state.mutex"
DIR_MODE = 0o700
FILE_MODE = 0o600


class StateError(Exception):
    """A failure an operator can act on; its text is one line."""


# --- Text and time, as the lock and the history record them -------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def os_message(what: str, path: str | os.PathLike[str], exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or one_line(exc)
    return f"{what} {path}: {text}" + (f" ({code})" if code else "")


# --- Files ------------------------------------------------------------------------------
def ensure_dir(path: str) -> bool:
    """Create PATH (and its parents) with mode 0700 when missing; True when it was created."""
    if Path(path).is_dir():
        return False
    try:
        os.makedirs(path, mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # makedirs applies the umask
    except FileExistsError:
        if Path(path).is_dir():
            return False
        raise StateError(
            f"cannot create state directory {path}: it exists and is not a directory"
        ) from None
    except OSError as exc:
        raise StateError(os_message("cannot create state directory", path, exc)) from None
    return True


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(directory: str, name: str, text: str) -> str:
    """TEXT in a new 0600 file beside NAME, flushed to disk; its path."""
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _keep_backup(path: str) -> None:
    """Make PATH.bak a copy of PATH (a hard link where the filesystem allows it)."""
    backup = f"{path}.bak"
    link = f"{backup}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    try:
        os.link(path, link)
    except OSError:
        shutil.copy2(path, link)
        os.chmod(link, FILE_MODE)
    os.replace(link, backup)


def atomic_write(path: str, text: str, keep_backup: bool = True) -> None:
    """Replace PATH by TEXT atomically (0600); the prior file is kept as PATH.bak.

    A reader sees the old or the new content, never a part; a crash leaves one of them.
    """
    directory = os.path.dirname(path) or "."
    name = os.path.basename(path)
    try:
        temp = _write_temp(directory, name, text)
        try:
            if keep_backup and os.path.exists(path):
                _keep_backup(path)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _fsync_dir(directory)
    except OSError as exc:
        raise StateError(os_message("cannot write", path, exc)) from None


def create_exclusive(path: str, text: str) -> bool:
    """Create PATH holding TEXT only if it does not exist; False when it already does.

    The content is written to a temporary file first and hard-linked into place: link(2)
    fails with EEXIST like open(O_CREAT|O_EXCL), and nobody ever sees a half-written lock.
    Where hard links are not supported, O_CREAT|O_EXCL is used directly.
    """
    directory = os.path.dirname(path) or "."
    try:
        temp = _write_temp(directory, os.path.basename(path), text)
    except OSError as exc:
        raise StateError(os_message("cannot write", path, exc)) from None
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise StateError(os_message("cannot create", path, exc)) from None
        return _create_excl_open(path, text)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    _fsync_dir(directory)
    return True


def _create_excl_open(path: str, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateError(os_message("cannot create", path, exc)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def remove_file(path: str) -> bool:
    """Remove PATH; False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(os_message("cannot remove", path, exc)) from None
    _fsync_dir(os.path.dirname(path) or ".")
    return True


@contextlib.contextmanager
def state_mutex(directory: str) -> Iterator[None]:
    """Serialise the writers of one state directory (lock, unlock, begin, finish).

    Without it, two runs breaking the same stale lock could both succeed.
    """
    path = os.path.join(directory, MUTEX_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise StateError(os_message("cannot write", path, exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
