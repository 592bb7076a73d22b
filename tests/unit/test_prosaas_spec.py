"""The pure logic behind docker_services: canonical specs and what differs between two."""

import pytest
from prosaas_spec import (
    build_spec,
    healthcheck_for_sdk,
    normalize_port,
    normalize_volume,
    ports_for_sdk,
    secret_env_differences,
    spec_differences,
    spec_from_labels,
    spec_to_label,
)

BASE = {
    "image": "prosaas-demo/app:v1",
    "command": ["api"],
    "env": {"RUN_MIGRATIONS": "0", "LOG_LEVEL": "info"},
    "secret_env": {"DATABASE_URL": "postgresql://u:s3cret@db/prosaas"},
    "ports": ["127.0.0.1:8080:8000"],
    "network": "prosaas",
    "network_aliases": ["api"],
    "volumes": [],
    "labels": {"prosaas.release": "v1"},
    "healthcheck": None,
    "restart_policy": "unless-stopped",
    "user": None,
}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("8000", "::8000/tcp"),
        ("8080:8000", ":8080:8000/tcp"),
        ("127.0.0.1:8080:8000", "127.0.0.1:8080:8000/tcp"),
        ("127.0.0.1::8000/udp", "127.0.0.1::8000/udp"),
    ],
)
def test_normalize_port_accepts_every_form(entry: str, expected: str) -> None:
    assert normalize_port(entry) == expected


@pytest.mark.parametrize("entry", ["", "http", "70000", "1:2:3:4", "8080:8000/icmp"])
def test_normalize_port_rejects_bad_entries_naming_them(entry: str) -> None:
    with pytest.raises(ValueError, match="port"):
        normalize_port(entry)


def test_ports_for_sdk_keeps_host_ip_and_port() -> None:
    canonical = [normalize_port("127.0.0.1:8080:8000"), normalize_port("9000")]
    assert ports_for_sdk(canonical) == {"8000/tcp": ("127.0.0.1", 8080), "9000/tcp": None}


def test_ports_for_sdk_keeps_every_binding_of_a_port_published_twice() -> None:
    canonical = [normalize_port("127.0.0.1:5433:5432"), normalize_port("10.0.0.1:6543:5432")]
    assert ports_for_sdk(canonical) == {"5432/tcp": [("127.0.0.1", 5433), ("10.0.0.1", 6543)]}


def test_normalize_volume_defaults_to_read_write_and_rejects_relative_targets() -> None:
    assert normalize_volume("pgdata:/var/lib/postgresql/data") == (
        "pgdata:/var/lib/postgresql/data:rw"
    )
    with pytest.raises(ValueError, match="volume"):
        normalize_volume("pgdata:relative")


def test_healthcheck_durations_become_nanoseconds() -> None:
    sdk = healthcheck_for_sdk({"test": ["CMD", "true"], "interval": 2, "retries": 3,
                               "timeout": None, "start_period": 0.5})  # fmt: skip
    assert sdk == {"test": ["CMD", "true"], "interval": 2_000_000_000, "retries": 3,
                   "start_period": 500_000_000}  # fmt: skip


def test_identical_specs_have_no_differences() -> None:
    spec = build_spec(BASE, "sha256:1")
    assert spec_differences(spec_from_labels({"prosaas.spec": spec_to_label(spec)}), spec) == []


def test_spec_names_changed_env_keys_and_image() -> None:
    before = build_spec(BASE, "sha256:1")
    after = build_spec(
        {**BASE, "image": "prosaas-demo/app:v2", "env": {"RUN_MIGRATIONS": "0"}}, "sha256:2"
    )
    assert spec_differences(before, after) == ["env (LOG_LEVEL)", "image"]


def test_same_tag_rebuilt_counts_as_a_difference() -> None:
    assert spec_differences(build_spec(BASE, "sha256:1"), build_spec(BASE, "sha256:2")) == [
        "image_id (same tag, new image)"
    ]


def test_spec_never_carries_secret_values() -> None:
    label = spec_to_label(build_spec(BASE, "sha256:1"))
    assert "s3cret" not in label
    assert "DATABASE_URL" in label


def test_container_without_our_label_is_reported_as_unmanaged() -> None:
    assert spec_from_labels({"other": "x"}) is None
    assert spec_from_labels({"prosaas.spec": "{not json"}) is None
    assert spec_differences(None, build_spec(BASE, "sha256:1")) == ["not created by prosaas-deploy"]


def test_secret_env_differences_compare_with_the_container_environment() -> None:
    wanted = {"DATABASE_URL": "postgresql://new", "TOKEN": "t"}
    running = ["PATH=/usr/bin", "DATABASE_URL=postgresql://old", "TOKEN=t"]
    assert secret_env_differences(wanted, running) == ["DATABASE_URL"]
    assert secret_env_differences({"TOKEN": "t"}, running) == []


def test_secret_files_are_in_the_spec_by_path_only_and_only_when_there_are_some() -> None:
    plain = build_spec(BASE, "sha256:1")
    assert "secret_files" not in plain  # a container made before secret files: no difference
    assert spec_differences(plain, build_spec({**BASE, "secret_files": {}}, "sha256:1")) == []
    pem = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n"
    with_file = build_spec({**BASE, "secret_files": {"/run/haproxy/tls.pem": pem}}, "sha256:1")
    assert with_file["secret_files"] == ["/run/haproxy/tls.pem"]
    assert "MIIsecret" not in spec_to_label(with_file)
    assert spec_differences(plain, with_file) == ["secret_files"]


@pytest.mark.parametrize("path", ["tls.pem", "/run/haproxy/", "/run/../etc/tls.pem"])
def test_a_secret_file_path_must_be_the_absolute_path_of_a_file(path: str) -> None:
    with pytest.raises(ValueError, match=r"^secret_files path .* must be the absolute path"):
        build_spec({**BASE, "secret_files": {path: "x"}}, "sha256:1")
