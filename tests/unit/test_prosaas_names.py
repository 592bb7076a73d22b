"""Values that become part of a name (module_utils/prosaas_names.py): what Docker accepts as a
tag, an image reference and a container name, and the one line the inventory check says."""

import pytest
import yaml
from ansible.module_utils.prosaas_names import (
    host_name_problem,
    naming_problems,
    prefix_problem,
    reference_reason,
    registry_problem,
    service_name_problem,
    tag_problem,
)

from tests.conftest import ROOT

TAG_LINE = (
    "is not a valid image tag: use letters, digits, '_', '.' and '-' (at most 128, not"
    " starting with '.' or '-'), e.g. v2 or 2026.12.07-1"
)


@pytest.mark.parametrize("tag", ["v2", "2026.12.07-1", "_x", "V2.0-rc_1", "a" * 128])
def test_a_tag_docker_accepts_is_no_problem(tag: str) -> None:
    assert tag_problem("prosaas_app_version", tag) == ""


@pytest.mark.parametrize(
    "tag", ["v2;id", "../v1", "", ".v2", "-v2", "v2 ", "v2/x", "v2:x", "é", "a" * 129]
)
def test_a_tag_docker_refuses_is_one_line_naming_the_setting_and_a_valid_example(
    tag: str,
) -> None:
    assert tag_problem("prosaas_app_version", tag) == f"prosaas_app_version {tag!r} {TAG_LINE}"


def test_a_version_yaml_read_as_a_number_is_asked_to_be_quoted() -> None:
    line = tag_problem("prosaas_app_version", 1.1)
    assert line.startswith("prosaas_app_version is a number (1.1), not a string: quote it")


@pytest.mark.parametrize(
    "reference",
    [
        "redis:7",
        "prosaas-demo/app:v2",
        "prosaas-deploy/proxy:1",
        "registry.example.internal/prosaas/app",
        "registry.example.internal:5000/prosaas/app:v2",
        "localhost:5000/a/b:c",
        "localhost/a",
        "127.0.0.1:32805/prosaas-demo/app:v2-ballast",
        "[::1]:5000/app:v2",
        "a__b/c--d.e_f",
        "registry.test:5000/prosaas/api@sha256:" + "a" * 64,
        "app:v2@sha256:" + "0" * 64,
    ],
)
def test_a_reference_docker_accepts_is_no_problem(reference: str) -> None:
    assert reference_reason(reference) == ""


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("", "it is empty"),
        ("prosaas-demo/app:v2;id", "its tag 'v2;id' is not a valid tag"),
        ("prosaas-demo/app:", "its tag '' is not a valid tag"),
        ("Prosaas/app:v2", "its repository 'Prosaas/app' must be lowercase"),
        ("reg.example/App:v2", "its repository 'App' must be lowercase"),
        ("reg_x.example:5000/app", "its registry 'reg_x.example:5000' is not a host or host:port"),
        ("app@sha256:12", "its digest 'sha256:12' is not an algorithm and hex digits"),
        ("a___b", "its repository 'a___b' is not lowercase letters and digits separated by"),
        ("app//x", "its repository 'app//x' is not lowercase"),
        ("x" * 256, "its name is longer than 255 characters"),
    ],
)
def test_a_reference_docker_refuses_says_which_part_is_wrong(reference: str, reason: str) -> None:
    assert reference_reason(reference).startswith(reason)


@pytest.mark.parametrize("prefix", ["", "t1a2b3c4d-", "staging_", "a.b"])
def test_a_container_prefix_docker_accepts_is_no_problem(prefix: str) -> None:
    assert prefix_problem(prefix) == ""


@pytest.mark.parametrize("prefix", ["-x", "my stack-", "a/b", "_x"])
def test_a_container_prefix_docker_refuses_names_the_setting_and_an_example(prefix: str) -> None:
    assert prefix_problem(prefix) == (
        f"prosaas_container_prefix {prefix!r} is not a valid start of a container name: use"
        " letters, digits, '_', '.' and '-', starting with a letter or a digit, e.g. staging-"
        ' (or "" for none)'
    )


def test_a_service_name_must_be_a_container_name() -> None:
    assert service_name_problem("prosaas_app_services[2] (worker)", "worker") == ""
    assert service_name_problem("prosaas_app_services[2] (wor ker)", "wor ker") == (
        "prosaas_app_services[2] (wor ker) name 'wor ker' is not a valid container name: use"
        " letters, digits, '_', '.' and '-', starting with a letter or a digit, e.g. worker"
    )


def test_the_registry_host_must_be_a_host_and_an_optional_port() -> None:
    assert registry_problem({}) == ""
    assert registry_problem({"host": "registry.example.internal:5000", "user": "ci"}) == ""
    assert registry_problem({"host": "https://registry.example.internal"}).startswith(
        "prosaas_registry.host 'https://registry.example.internal' is not a valid registry host"
    )


def test_a_host_name_must_fit_in_its_report_file_name() -> None:
    assert host_name_problem("prod-api1.example.internal") == ""
    assert host_name_problem("::1") == ""
    assert host_name_problem("a/b").startswith(
        "the inventory host 'a/b' cannot name its report (<release>.<host>.json)"
    )


def local_inventory() -> tuple[dict, dict]:
    """The service lists and names of the local inventory, as its templates give them for v2."""
    common = yaml.safe_load((ROOT / "inventories" / "common.yml").read_text())
    local = yaml.safe_load((ROOT / "inventories/local/group_vars/all/main.yml").read_text())
    apps = [
        {**service, "image": "prosaas-demo/app:v2"} for service in common["prosaas_app_services"]
    ]
    lists = {
        "prosaas_infra_services": local["prosaas_infra_services"],
        "prosaas_app_services": apps,
    }
    names = {
        "prosaas_app_version": "v2",
        "prosaas_app_image": local["prosaas_app_image"],
        "prosaas_migrate_image": "prosaas-demo/migrate:v2",
        "prosaas_proxy_image": common["prosaas_proxy_image"],
        "prosaas_container_prefix": "",
        "prosaas_registry": common["prosaas_registry"],
    }
    return lists, names


def with_version(lists: dict, names: dict, version: str) -> tuple[dict, dict]:
    """LISTS and NAMES as the inventory's templates make them with another VERSION."""
    apps = [
        {**service, "image": f"prosaas-demo/app:{version}"}
        for service in lists["prosaas_app_services"]
    ]
    return (
        {**lists, "prosaas_app_services": apps},
        {**names, "prosaas_app_version": version, "prosaas_migrate_image": f"x/migrate:{version}"},
    )


def test_the_local_inventory_has_no_naming_problem() -> None:
    lists, names = local_inventory()
    assert naming_problems(lists, names, {}, ["localhost"]) == []


@pytest.mark.parametrize("version", ["v2;id", "../v1", ""])
def test_a_bad_version_is_one_line_not_one_per_image_made_of_it(version: str) -> None:
    lists, names = with_version(*local_inventory(), version)
    assert naming_problems(lists, names, {}, ["localhost"]) == [
        f"prosaas_app_version {version!r} {TAG_LINE}"
    ]


def test_a_bad_pin_is_named_by_its_service_and_its_image_not_again() -> None:
    lists, names = local_inventory()
    lists["prosaas_app_services"][2]["image"] = "prosaas-demo/app:v2 x"
    assert naming_problems(lists, names, {"worker": "v2 x"}, ["localhost"]) == [
        f"prosaas_app_pins['worker'] 'v2 x' {TAG_LINE}"
    ]


def test_a_bad_app_image_is_one_line_and_other_images_each_their_own() -> None:
    lists, names = local_inventory()
    names["prosaas_app_image"] = "Prosaas/app"
    for service in lists["prosaas_app_services"]:
        service["image"] = "Prosaas/app:v2"
    lists["prosaas_infra_services"][1]["image"] = "redis:7;x"
    names["prosaas_proxy_image"] = ""
    assert naming_problems(lists, names, {}, ["localhost", "a b"]) == [
        "prosaas_app_image 'Prosaas/app' is not a valid image reference: its repository"
        " 'Prosaas/app' must be lowercase; e.g. registry.example.internal:5000/prosaas/app:v2",
        "prosaas_proxy_image '' is not a valid image reference: it is empty; e.g."
        " registry.example.internal:5000/prosaas/app:v2",
        "prosaas_infra_services[1] (redis) image 'redis:7;x' is not a valid image reference:"
        " its tag '7;x' is not a valid tag; e.g. registry.example.internal:5000/prosaas/app:v2",
        host_name_problem("a b"),
    ]
