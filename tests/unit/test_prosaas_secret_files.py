"""The pure parts of putting secret files into a container (module_utils/
prosaas_secret_files.py): the tar member the archive API receives, reading one back, and the
owner the container's user resolves to. Putting them into a real container:
tests/integration/test_proxy_tls.py."""

import io
import tarfile

import pytest
from prosaas_secret_files import file_tar, tar_file_content, user_ids

# The container's /etc/passwd and /etc/group.
USERS = """root:x:0:0:root:/root:/bin/bash
# a comment
haproxy:x:100:101::/var/lib/haproxy:/usr/sbin/nologin
"""
GROUPS = """root:x:0:
haproxy:x:101:
ssl-cert:x:108:
"""


def test_the_tar_member_is_the_file_owned_by_the_user_readable_by_it_alone() -> None:
    archive = file_tar("tls.pem", "PEM\n", 100, 101)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        (member,) = tar.getmembers()
        content = tar.extractfile(member).read()
    assert (member.name, member.isfile(), member.mode, member.uid, member.gid) == (
        "tls.pem", True, 0o600, 100, 101,
    )  # fmt: skip
    assert content == b"PEM\n"


def test_a_file_read_back_from_its_archive_is_its_content() -> None:
    assert tar_file_content(file_tar("tls.pem", "PEM\nkey\n", 0, 0)) == "PEM\nkey\n"


def folder_member(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE
    return member


def test_an_archive_without_a_regular_file_has_no_content() -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.addfile(folder_member("folder"))
    assert tar_file_content(archive.getvalue()) is None


@pytest.mark.parametrize(
    ("user", "ids"),
    [
        ("haproxy", (100, 101)),
        ("100", (100, 101)),
        ("haproxy:ssl-cert", (100, 108)),
        ("haproxy:0", (100, 0)),
        ("1234", (1234, 0)),
        ("1234:1234", (1234, 1234)),
        ("", (0, 0)),
    ],
)
def test_the_owner_is_the_user_the_engine_runs_the_container_as(
    user: str, ids: tuple[int, int]
) -> None:
    assert user_ids(user, USERS, GROUPS) == ids


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("nobody", "user 'nobody' is not in the container's /etc/passwd"),
        ("haproxy:wheel", "group 'wheel' is not in the container's /etc/group"),
    ],
)
def test_a_user_the_container_does_not_know_is_one_line(user: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        user_ids(user, USERS, GROUPS)
