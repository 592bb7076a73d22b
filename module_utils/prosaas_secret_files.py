"""Secret files of a container: put into it before it starts, never in its environment,
command line or labels, and readable by the container's user alone.

docker_services creates the container, puts each file with the engine's archive API (one tar
member owned by the user the container runs as, mode 0600), then starts it. The file lives in
the container's own layer, so a restart (its restart policy, ``docker restart``) keeps it,
and a recreated container gets it put again. A later run reads each file back the same way
and compares its content, so a new value recreates the container without any label carrying
it or a hash of it.

The engine's own ownership mapping (the archive API's copyUIDGID) looks the container's user
up in the engine host's passwd database on some engines (20.10), not in the container's:
the owner is resolved here, from the container's /etc/passwd and /etc/group.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
from typing import Any

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import NotFound

SECRET_FILE_MODE = 0o600


def file_tar(name: str, content: str, uid: int, gid: int) -> bytes:
    """A tar archive of one file NAME holding CONTENT, owned by UID:GID, mode 0600."""
    data = content.encode()
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = SECRET_FILE_MODE
    member.uid, member.gid = uid, gid
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.addfile(member, io.BytesIO(data))
    return archive.getvalue()


def tar_file_content(archive: bytes) -> str | None:
    """The content of the one regular file in ARCHIVE (what the archive API gives for a
    file's path); None when it holds no regular file."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                return extracted.read().decode(errors="replace") if extracted else None
    return None


def _entries(table: str) -> list[list[str]]:
    """The colon-separated fields of each line of /etc/passwd or /etc/group."""
    return [line.split(":") for line in table.splitlines() if line and not line.startswith("#")]


def _passwd_entry(user: str, passwd: str) -> list[str] | None:
    """The passwd line of USER (a name or a uid), or None."""
    for fields in _entries(passwd):
        if len(fields) >= 4 and user in (fields[0], fields[2]):
            return fields
    return None


def _group_id(group: str, groups: str) -> int:
    if group.isdigit():
        return int(group)
    for fields in _entries(groups):
        if len(fields) >= 3 and fields[0] == group:
            return int(fields[2])
    raise ValueError(f"group {group!r} is not in the container's /etc/group")


def user_ids(user: str, passwd: str, groups: str) -> tuple[int, int]:
    """The uid and gid the engine runs a container as when its user is USER (name or uid,
    optionally :group), given its /etc/passwd and /etc/group; root when USER is empty."""
    name, _colon, group = (user or "0").partition(":")
    entry = _passwd_entry(name, passwd)
    if entry is None and not name.isdigit():
        raise ValueError(f"user {name!r} is not in the container's /etc/passwd")
    uid = int(entry[2]) if entry else int(name)
    if group:
        return uid, _group_id(group, groups)
    return uid, int(entry[3]) if entry else 0


def read_file(container: Any, path: str) -> str | None:
    """The content of PATH in CONTAINER (running or not), or None when there is none."""
    try:
        stream, _stat = container.get_archive(path)
    except NotFound:
        return None
    return tar_file_content(b"".join(stream))


def container_user_ids(container: Any) -> tuple[int, int]:
    """The uid and gid CONTAINER runs as, from its user and its own /etc/passwd, /etc/group."""
    user = container.attrs["Config"].get("User") or ""
    if not user:
        return 0, 0
    passwd = read_file(container, "/etc/passwd") or ""
    return user_ids(user, passwd, read_file(container, "/etc/group") or "")


def put_secret_files(container: Any, files: dict[str, str]) -> None:
    """Put each of FILES (path -> content) into CONTAINER, owned by its user, mode 0600."""
    if not files:
        return
    uid, gid = container_user_ids(container)
    for path, content in sorted(files.items()):
        folder, name = posixpath.split(path)
        container.put_archive(folder, file_tar(name, content, uid, gid))


def secret_file_differences(container: Any, files: dict[str, str]) -> list[str]:
    """The paths of FILES whose content in CONTAINER is not the wanted one (or missing)."""
    return sorted(path for path, content in files.items() if read_file(container, path) != content)
